-- One row per employee of each account.
{%- set relation = source('comagic', 'employees') %}
{%- set types = comagic_column_types(relation) %}

with source as (
    {{ comagic_one_per_key(relation, ['customer_id', 'id'], types) }}
)

select
    cast(source.customer_id as {{ dbt.type_bigint() }}) as customer_id,
    cast(source.id as {{ dbt.type_bigint() }}) as employee_id,
    cast(source.full_name as {{ dbt.type_string() }}) as employee_name,
    cast(source.status as {{ dbt.type_string() }}) as status
from source
