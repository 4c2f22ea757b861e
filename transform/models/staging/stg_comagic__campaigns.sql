-- One row per campaign of each account.
{%- set relation = source('comagic', 'campaigns') %}
{%- set types = comagic_column_types(relation) %}

with source as (
    {{ comagic_one_per_key(relation, ['customer_id', 'id'], types) }}
)

select
    cast(source.customer_id as {{ dbt.type_bigint() }}) as customer_id,
    cast(source.id as {{ dbt.type_bigint() }}) as campaign_id,
    cast(source.name as {{ dbt.type_string() }}) as campaign_name,
    cast(source.site_id as {{ dbt.type_bigint() }}) as site_id,
    cast(source.status as {{ dbt.type_string() }}) as status
from source
