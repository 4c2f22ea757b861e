-- One row per site of each account.
{%- set relation = source('comagic', 'sites') %}
{%- set types = comagic_column_types(relation) %}

with source as (
    {{ comagic_one_per_key(relation, ['customer_id', 'id'], types) }}
)

select
    cast(source.customer_id as {{ dbt.type_bigint() }}) as customer_id,
    cast(source.id as {{ dbt.type_bigint() }}) as site_id,
    cast(source.name as {{ dbt.type_string() }}) as site_name,
    cast(source.domain_name as {{ dbt.type_string() }}) as domain_name
from source
