-- One row per chat: occurred_at (its date_time) in UTC, local_date its day in the account's zone.
{%- set relation = source('comagic', 'chats') %}
{%- set types = comagic_column_types(relation) %}

with source as (
    {{ comagic_one_per_key(relation, ['customer_id', 'id'], types) }}
),

typed as (
    select
        cast(source.customer_id as {{ dbt.type_bigint() }}) as customer_id,
        cast(source.id as {{ dbt.type_bigint() }}) as chat_id,
        cast(source.communication_id as {{ dbt.type_bigint() }}) as communication_id,
        {{ comagic_utc(types, 'date_time') }} as occurred_at,
        cast(source.status as {{ dbt.type_string() }}) as status,
        cast(source.visitor_phone_number as {{ dbt.type_string() }}) as visitor_phone_number,
        cast(source.site_id as {{ dbt.type_bigint() }}) as site_id,
        cast(source.campaign_id as {{ dbt.type_bigint() }}) as campaign_id,
        cast(source.employee_id as {{ dbt.type_bigint() }}) as employee_id,
        cast(source.sale_cost as {{ dbt.type_numeric() }}) as sale_cost
    from source
)

{{ comagic_with_local_date('typed', 'occurred_at') }}
