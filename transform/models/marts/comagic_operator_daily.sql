-- One row per account, local day and employee with any work that day: calls answered (the employee last
-- answered them), their talk and wait, chats and offline messages handled.

with work as (

    select customer_id, local_date, last_answered_employee_id as employee_id, 'call' as kind,
           talk_duration, wait_duration
    from {{ ref('stg_comagic__calls') }}
    where last_answered_employee_id is not null

    union all

    select customer_id, local_date, employee_id, 'chat',
           cast(null as {{ dbt.type_bigint() }}), cast(null as {{ dbt.type_bigint() }})
    from {{ ref('stg_comagic__chats') }}
    where employee_id is not null

    union all

    select customer_id, local_date, employee_id, 'offline_message',
           cast(null as {{ dbt.type_bigint() }}), cast(null as {{ dbt.type_bigint() }})
    from {{ ref('stg_comagic__offline_messages') }}
    where employee_id is not null

),

daily as (

    select
        customer_id,
        local_date,
        employee_id,
        count(case when kind = 'call' then 1 end) as answered_calls,
        cast(coalesce(sum(talk_duration), 0) as {{ dbt.type_bigint() }}) as talk_seconds,
        avg(wait_duration) as avg_wait_seconds,
        count(case when kind = 'chat' then 1 end) as chats,
        count(case when kind = 'offline_message' then 1 end) as offline_messages
    from work
    group by customer_id, local_date, employee_id

)

select
    daily.customer_id,
    daily.local_date,
    daily.employee_id,
    employees.employee_name,
    daily.answered_calls,
    daily.talk_seconds,
    daily.avg_wait_seconds,
    daily.chats,
    daily.offline_messages
from daily
left join {{ ref('stg_comagic__employees') }} as employees
    on employees.customer_id = daily.customer_id and employees.employee_id = daily.employee_id
