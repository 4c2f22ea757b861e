-- comagic_communications holds, per account and kind, as many rows as the four loaded report tables have
-- distinct records; rows returned are the kinds that differ.

with raw as (
    {%- for table, kind in [('calls', 'call'), ('chats', 'chat'), ('goals', 'goal'),
                            ('offline_messages', 'offline_message')] %}
    select cast(customer_id as {{ dbt.type_bigint() }}) as customer_id, '{{ kind }}' as communication_type,
           count(distinct id) as records
    from {{ source('comagic', table) }}
    group by customer_id
    {{ "union all" if not loop.last }}
    {%- endfor %}
),

mart as (
    select customer_id, communication_type, count(*) as records
    from {{ ref('comagic_communications') }}
    group by customer_id, communication_type
)

select coalesce(raw.customer_id, mart.customer_id) as customer_id,
       coalesce(raw.communication_type, mart.communication_type) as communication_type,
       raw.records as raw_records, mart.records as mart_records
from raw
full outer join mart
    on mart.customer_id = raw.customer_id and mart.communication_type = raw.communication_type
where coalesce(raw.records, 0) <> coalesce(mart.records, 0)
