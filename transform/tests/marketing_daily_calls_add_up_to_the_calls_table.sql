-- Each account's calls of each local day in comagic_marketing_daily add up to the rows of the loaded calls
-- table that started that day (counted from the raw table, the day in the account's zone); rows returned
-- are the days that differ.
{%- set raw = source('comagic', 'calls') %}
{%- set types = comagic_column_types(raw) %}

with raw_calls as (
    select distinct source.customer_id, source.id,
           {{ comagic_local_date(comagic_utc(types, 'start_time'), comagic_timezone()) }} as local_date
    from {{ raw }} as source
    left join {{ ref('stg_comagic__account') }} as account on account.customer_id = source.customer_id
),

raw_days as (
    select cast(customer_id as {{ dbt.type_bigint() }}) as customer_id, local_date, count(*) as calls
    from raw_calls
    group by 1, 2
),

mart_days as (
    select customer_id, local_date, sum(calls) as calls
    from {{ ref('comagic_marketing_daily') }}
    group by 1, 2
)

select coalesce(raw_days.customer_id, mart_days.customer_id) as customer_id,
       coalesce(raw_days.local_date, mart_days.local_date) as local_date,
       raw_days.calls as raw_calls, mart_days.calls as mart_calls
from raw_days
full outer join mart_days
    on mart_days.customer_id = raw_days.customer_id and mart_days.local_date = raw_days.local_date
where coalesce(raw_days.calls, 0) <> coalesce(mart_days.calls, 0)
