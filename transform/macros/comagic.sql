{#- Helpers of the staging models: what the loader stored, and how to read it the same way on every
    database. Only dbt-core's own cross-database macros (dbt.type_*, dbt.dateadd...) and standard SQL
    (AT TIME ZONE, window functions), which DuckDB and PostgreSQL both take. -#}

{#- The columns of a relation: lower-cased name -> lower-cased type. Empty while dbt parses (no database). -#}
{% macro comagic_column_types(relation) %}
  {%- set types = {} -%}
  {%- if execute -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
      {%- do types.update({column.name | lower: column.data_type | lower}) -%}
    {%- endfor -%}
  {%- endif -%}
  {{- return(types) -}}
{% endmacro %}

{#- Whether the loader created the table of a stream (an opt-in stream may never have been selected). -#}
{% macro comagic_source_exists(table) %}
  {%- if not execute -%}
    {{- return(true) -}}
  {%- endif -%}
  {%- set relation = source('comagic', table) -%}
  {%- set found = adapter.get_relation(database=relation.database, schema=relation.schema,
                                       identifier=relation.identifier) -%}
  {{- return(found is not none) -}}
{% endmacro %}

{#- The UTC instant of a date-time column, as a timestamp without time zone. The tap emits RFC 3339 with
    an offset (the account's, or UTC's); target-duckdb and target-postgres (INSERT) store the instant in
    UTC in a timestamp without time zone, a loader that keeps the offset stores a timestamp with time zone
    (converted here), and one that keeps text is parsed. -#}
{% macro comagic_utc(types, column, alias='source') %}
  {%- set kind = types.get(column | lower, 'timestamp') -%}
  {%- set ref = alias ~ '.' ~ adapter.quote(column) -%}
  {%- if 'with time zone' in kind or kind == 'timestamptz' -%}
    cast({{ ref }} at time zone 'UTC' as {{ dbt.type_timestamp() }})
  {%- elif 'timestamp' in kind -%}
    cast({{ ref }} as {{ dbt.type_timestamp() }})
  {%- else -%}
    cast(cast({{ ref }} as timestamp with time zone) at time zone 'UTC' as {{ dbt.type_timestamp() }})
  {%- endif -%}
{% endmacro %}

{#- The date, in an IANA time zone (a column or a quoted literal), of a UTC timestamp without time zone. -#}
{% macro comagic_local_date(utc_timestamp, timezone) %}
  cast(({{ utc_timestamp }} at time zone 'UTC') at time zone {{ timezone }} as date)
{%- endmacro %}

{#- The account's time zone for a staging row: account.timezone of its customer_id, else the default. -#}
{% macro comagic_timezone(alias='account') %}
  coalesce({{ alias }}.timezone, '{{ var("comagic_default_timezone") }}')
{%- endmacro %}

{#- The rows of a loaded table, one per key. Upserting loaders keep one already; an append-only one keeps
    every version: then the last one loaded wins where the loader records when (_sdc_batched_at or
    _sdc_extracted_at, its metadata columns), any one otherwise. -#}
{% macro comagic_one_per_key(relation, key_columns, types) %}
  {%- set order = [] -%}
  {%- for column in ['_sdc_batched_at', '_sdc_extracted_at', '_sdc_sequence'] -%}
    {%- if column in types -%}
      {%- do order.append(adapter.quote(column) ~ ' desc') -%}
    {%- endif -%}
  {%- endfor -%}
  select * from (
    select loaded.*,
           row_number() over (
             partition by {% for key in key_columns %}loaded.{{ adapter.quote(key) }}{{ ", " if not loop.last }}{% endfor %}
             {%- if order %} order by {{ order | join(', ') }}{% endif %}
           ) as comagic_version
    from {{ relation }} as loaded
  ) as versions
  where comagic_version = 1
{%- endmacro %}

{# The typed rows beside their instant's day in the account's own zone (the row's customer's account.timezone). #}
{% macro comagic_with_local_date(typed, instant) %}
select
    {{ typed }}.*,
    {{ comagic_local_date(typed ~ '.' ~ instant, comagic_timezone()) }} as local_date,
    {{ comagic_timezone() }} as account_timezone
from {{ typed }}
left join {{ ref('stg_comagic__account') }} as account
    on account.customer_id = {{ typed }}.customer_id
{%- endmacro %}
