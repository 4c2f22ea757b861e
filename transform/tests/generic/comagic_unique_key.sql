{#- The columns together are unique in the model (a composite key; null counts as a value). -#}
{% test comagic_unique_key(model, columns) %}
select {{ columns | join(', ') }}, count(*) as rows_with_this_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
