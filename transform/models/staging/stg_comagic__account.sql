-- One row per account (customer_id): its name and the IANA time zone its local days are counted in.
{%- set relation = source('comagic', 'account') %}
{%- set types = comagic_column_types(relation) %}

with source as (
    {{ comagic_one_per_key(relation, ['customer_id'], types) }}
)

select
    cast(source.customer_id as {{ dbt.type_bigint() }}) as customer_id,
    cast(source.app_id as {{ dbt.type_bigint() }}) as app_id,
    cast(source.name as {{ dbt.type_string() }}) as account_name,
    {{ comagic_timezone('source') }} as timezone
from source
