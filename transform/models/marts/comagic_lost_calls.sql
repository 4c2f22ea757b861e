-- One row per lost incoming call of each account, and whether someone called the number back: an
-- outgoing call of the same account to the same contact_phone_number that started after the lost call
-- and at most 24 hours after it.

with calls as (
    select * from {{ ref('stg_comagic__calls') }}
),

lost as (
    select * from calls where is_lost and direction = 'in'
),

outgoing as (
    select customer_id, contact_phone_number, started_at
    from calls
    where direction = 'out' and contact_phone_number is not null
),

callbacks as (
    select
        lost.customer_id,
        lost.call_id,
        min(case when outgoing.started_at <= {{ dbt.dateadd('hour', 24, 'lost.started_at') }}
                 then outgoing.started_at end) as callback_at,
        min(outgoing.started_at) as next_outgoing_call_at
    from lost
    inner join outgoing
        on outgoing.customer_id = lost.customer_id
        and outgoing.contact_phone_number = lost.contact_phone_number
        and outgoing.started_at > lost.started_at
    group by lost.customer_id, lost.call_id
)

select
    lost.customer_id,
    lost.call_id,
    lost.communication_id,
    lost.started_at as occurred_at,
    lost.local_date,
    lost.contact_phone_number,
    lost.site_id,
    lost.campaign_id,
    callbacks.callback_at is not null as called_back,
    callbacks.callback_at,
    cast(floor({{ dbt.datediff('lost.started_at', 'callbacks.callback_at', 'second') }} / 60.0)
         as {{ dbt.type_int() }}) as minutes_to_callback,
    -- the first outgoing call to the number at any time after, also past the 24 hours
    callbacks.next_outgoing_call_at
from lost
left join callbacks
    on callbacks.customer_id = lost.customer_id and callbacks.call_id = lost.call_id
