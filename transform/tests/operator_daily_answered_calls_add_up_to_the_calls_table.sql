-- The answered calls of comagic_operator_daily add up, per account and employee, to the loaded calls the
-- employee last answered; rows returned are the employees that differ.

with raw as (
    select cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
           cast(last_answered_employee_id as {{ dbt.type_bigint() }}) as employee_id,
           count(distinct id) as calls
    from {{ source('comagic', 'calls') }}
    where last_answered_employee_id is not null
    group by 1, 2
),

mart as (
    select customer_id, employee_id, sum(answered_calls) as calls
    from {{ ref('comagic_operator_daily') }}
    group by 1, 2
)

select coalesce(raw.customer_id, mart.customer_id) as customer_id,
       coalesce(raw.employee_id, mart.employee_id) as employee_id,
       raw.calls as raw_calls, mart.calls as mart_calls
from raw
full outer join mart on mart.customer_id = raw.customer_id and mart.employee_id = raw.employee_id
where coalesce(raw.calls, 0) <> coalesce(mart.calls, 0)
