{#- Every non-null id of the column is a row of the reference model for the same account (customer_id):
    ids are an account's own, so an agency's warehouse matches them within each client. -#}
{% test comagic_relationship(model, column_name, to, field) %}
select child.customer_id, child.{{ column_name }}
from {{ model }} as child
left join {{ to }} as parent
    on parent.customer_id = child.customer_id and parent.{{ field }} = child.{{ column_name }}
where child.{{ column_name }} is not null and parent.{{ field }} is null
{% endtest %}
