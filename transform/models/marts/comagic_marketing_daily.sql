-- One row per account, local day, site and campaign with any communication or cost that day: what each
-- campaign brought (communications of each kind, lost calls) and what it cost.
{%- set costs_loaded = comagic_source_exists('campaign_daily_stat') %}

with facts as (

    select customer_id, local_date, site_id, campaign_id, communication_type, is_lost,
           cast(null as {{ dbt.type_numeric() }}) as cost_sum
    from {{ ref('comagic_communications') }}

    union all

    -- a cost alone makes a row too (a day with visits and spend but no communication)
    select customer_id, local_date, site_id, campaign_id, cast(null as {{ dbt.type_string() }}),
           cast(null as {{ dbt.type_boolean() }}), cost_sum
    from {{ ref('stg_comagic__campaign_daily_stat') }}
    where cost_sum is not null

),

daily as (

    select
        customer_id,
        local_date,
        site_id,
        campaign_id,
        count(case when communication_type = 'call' then 1 end) as calls,
        count(case when communication_type = 'call' and is_lost then 1 end) as lost_calls,
        count(case when communication_type = 'chat' then 1 end) as chats,
        count(case when communication_type = 'goal' then 1 end) as goals,
        count(case when communication_type = 'offline_message' then 1 end) as offline_messages,
        count(communication_type) as communications,
        {%- if costs_loaded %}
        -- the stream was loaded: no cost row (or only null costs) is no spend
        cast(coalesce(sum(cost_sum), 0) as {{ dbt.type_numeric() }}) as cost
        {%- else %}
        cast(null as {{ dbt.type_numeric() }}) as cost
        {%- endif %}
    from facts
    group by customer_id, local_date, site_id, campaign_id

)

select
    daily.customer_id,
    daily.local_date,
    daily.site_id,
    sites.site_name,
    daily.campaign_id,
    campaigns.campaign_name,
    daily.calls,
    daily.lost_calls,
    daily.chats,
    daily.goals,
    daily.offline_messages,
    daily.communications,
    daily.cost,
    case when daily.cost > 0 and daily.communications > 0 then daily.cost / daily.communications end
        as cost_per_communication
from daily
left join {{ ref('stg_comagic__sites') }} as sites
    on sites.customer_id = daily.customer_id and sites.site_id = daily.site_id
left join {{ ref('stg_comagic__campaigns') }} as campaigns
    on campaigns.customer_id = daily.customer_id and campaigns.campaign_id = daily.campaign_id
