-- One row per call: started_at and finished_at in UTC, local_date the start's day in the account's zone.
{%- set relation = source('comagic', 'calls') %}
{%- set types = comagic_column_types(relation) %}

with source as (
    {{ comagic_one_per_key(relation, ['customer_id', 'id'], types) }}
),

typed as (
    select
        cast(source.customer_id as {{ dbt.type_bigint() }}) as customer_id,
        cast(source.id as {{ dbt.type_bigint() }}) as call_id,
        cast(source.communication_id as {{ dbt.type_bigint() }}) as communication_id,
        {{ comagic_utc(types, 'start_time') }} as started_at,
        {{ comagic_utc(types, 'finish_time') }} as finished_at,
        cast(source.direction as {{ dbt.type_string() }}) as direction,
        cast(source.is_lost as {{ dbt.type_boolean() }}) as is_lost,
        cast(source.source as {{ dbt.type_string() }}) as call_source,
        cast(source.contact_phone_number as {{ dbt.type_string() }}) as contact_phone_number,
        cast(source.virtual_phone_number as {{ dbt.type_string() }}) as virtual_phone_number,
        cast(source.site_id as {{ dbt.type_bigint() }}) as site_id,
        cast(source.campaign_id as {{ dbt.type_bigint() }}) as campaign_id,
        cast(source.last_answered_employee_id as {{ dbt.type_bigint() }}) as last_answered_employee_id,
        cast(source.wait_duration as {{ dbt.type_bigint() }}) as wait_duration,
        cast(source.talk_duration as {{ dbt.type_bigint() }}) as talk_duration,
        cast(source.total_duration as {{ dbt.type_bigint() }}) as total_duration,
        cast(source.sale_cost as {{ dbt.type_numeric() }}) as sale_cost
    from source
)

{{ comagic_with_local_date('typed', 'started_at') }}
