-- One row per day (the account's own: the report's date), site, campaign and ad (ad_key). Empty when the
-- stream was not loaded (it is opt-in): the marts then give cost null.
{%- set loaded = comagic_source_exists('campaign_daily_stat') %}

{%- if loaded %}
{%- set relation = source('comagic', 'campaign_daily_stat') %}
{%- set types = comagic_column_types(relation) %}

with source as (
    {{ comagic_one_per_key(relation, ['customer_id', 'date', 'site_id', 'campaign_id', 'ad_key'], types) }}
)

select
    cast(source.customer_id as {{ dbt.type_bigint() }}) as customer_id,
    cast(source.{{ adapter.quote('date') }} as date) as local_date,
    cast(source.site_id as {{ dbt.type_bigint() }}) as site_id,
    cast(source.campaign_id as {{ dbt.type_bigint() }}) as campaign_id,
    cast(source.ad_key as {{ dbt.type_string() }}) as ad_key,
    cast(source.cost_sum as {{ dbt.type_numeric() }}) as cost_sum,
    cast(source.shows_count as {{ dbt.type_bigint() }}) as shows_count,
    cast(source.clicks_count as {{ dbt.type_bigint() }}) as clicks_count,
    cast(source.visits_count as {{ dbt.type_bigint() }}) as visits_count
from source

{%- else %}

select
    cast(null as {{ dbt.type_bigint() }}) as customer_id,
    cast(null as date) as local_date,
    cast(null as {{ dbt.type_bigint() }}) as site_id,
    cast(null as {{ dbt.type_bigint() }}) as campaign_id,
    cast(null as {{ dbt.type_string() }}) as ad_key,
    cast(null as {{ dbt.type_numeric() }}) as cost_sum,
    cast(null as {{ dbt.type_bigint() }}) as shows_count,
    cast(null as {{ dbt.type_bigint() }}) as clicks_count,
    cast(null as {{ dbt.type_bigint() }}) as visits_count
where 1 = 0

{%- endif %}
