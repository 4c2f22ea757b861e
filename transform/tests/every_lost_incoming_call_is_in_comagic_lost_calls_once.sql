-- Every lost incoming call of the loaded calls table is a row of comagic_lost_calls, exactly once, and
-- that mart holds no other call; rows returned are the calls that break this.

with raw_lost as (
    select distinct cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
           cast(id as {{ dbt.type_bigint() }}) as call_id
    from {{ source('comagic', 'calls') }}
    where is_lost and direction = 'in'
),

mart as (
    select customer_id, call_id, count(*) as times
    from {{ ref('comagic_lost_calls') }}
    group by customer_id, call_id
)

select coalesce(raw_lost.customer_id, mart.customer_id) as customer_id,
       coalesce(raw_lost.call_id, mart.call_id) as call_id,
       mart.times
from raw_lost
full outer join mart
    on mart.customer_id = raw_lost.customer_id and mart.call_id = raw_lost.call_id
where raw_lost.call_id is null or mart.call_id is null or mart.times <> 1
