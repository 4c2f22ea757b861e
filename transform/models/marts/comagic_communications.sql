-- One row per communication of each account: every call, chat, goal and offline message, with when it
-- happened (UTC and the account's day), where it came from (site, campaign) and who handled it.

with communications as (

    select
        customer_id, 'call' as communication_type, communication_id, call_id as record_id,
        started_at as occurred_at, local_date, site_id, campaign_id,
        last_answered_employee_id as employee_id, is_lost, sale_cost
    from {{ ref('stg_comagic__calls') }}

    union all

    select
        customer_id, 'chat', communication_id, chat_id,
        occurred_at, local_date, site_id, campaign_id,
        employee_id, cast(null as {{ dbt.type_boolean() }}), sale_cost
    from {{ ref('stg_comagic__chats') }}

    union all

    select
        customer_id, 'goal', communication_id, goal_id,
        occurred_at, local_date, site_id, campaign_id,
        cast(null as {{ dbt.type_bigint() }}), cast(null as {{ dbt.type_boolean() }}), sale_cost
    from {{ ref('stg_comagic__goals') }}

    union all

    select
        customer_id, 'offline_message', communication_id, offline_message_id,
        occurred_at, local_date, site_id, campaign_id,
        employee_id, cast(null as {{ dbt.type_boolean() }}), sale_cost
    from {{ ref('stg_comagic__offline_messages') }}

)

select
    communications.customer_id,
    cast(communications.communication_type as {{ dbt.type_string() }}) as communication_type,
    communications.communication_id,
    communications.record_id,
    communications.occurred_at,
    communications.local_date,
    communications.site_id,
    sites.site_name,
    communications.campaign_id,
    campaigns.campaign_name,
    communications.employee_id,
    employees.employee_name,
    communications.is_lost,
    communications.sale_cost
from communications
left join {{ ref('stg_comagic__sites') }} as sites
    on sites.customer_id = communications.customer_id and sites.site_id = communications.site_id
left join {{ ref('stg_comagic__campaigns') }} as campaigns
    on campaigns.customer_id = communications.customer_id and campaigns.campaign_id = communications.campaign_id
left join {{ ref('stg_comagic__employees') }} as employees
    on employees.customer_id = communications.customer_id and employees.employee_id = communications.employee_id
