"""The schemas derived from the public docs (tools/publicdocs.py): how a docs page is read, and the types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tap_comagic.client import load_schema
from tap_comagic.sandbox.catalog import REFERENCE_PATH
from tests.tap_harness import schema_type
from tools.publicdocs import EXAMPLE_FIXES, METHODS, NESTED_BEYOND_EXAMPLE, read_method, schema_for

PAGE = """<article>
<table><thead><tr><th>Метод</th><th><code>get.things</code></th></tr></thead>
<tbody><tr><td>Кому доступен</td><td>Агент, Клиент</td></tr></tbody></table>
<table><thead><tr><th>Название</th><th>Тип</th><th>Обязательный</th><th>Описание</th></tr></thead><tbody>
<tr><td><code>access_token</code></td><td>string</td><td>да</td><td></td></tr>
<tr><td><code>limit</code></td><td>number</td><td>нет</td><td></td></tr>
<tr><td><code>site_id</code></td><td>number</td><td>да</td><td></td></tr>
</tbody></table>
<table><tbody>
<tr><th>Название</th><th>Тип</th><th>Допустимые значения</th><th>Фильтрация</th><th>Сортировка</th>
<th>Описание</th></tr>
<tr><td><code>id</code></td><td>number</td><td></td><td>да</td><td></td><td></td></tr>
<tr><td><code>created</code></td><td>iso8601</td><td>YYYY-MM-DD hh:mm:ss</td><td></td><td>да</td><td></td></tr>
<tr><td><code>rules</code></td><td>object</td><td></td><td></td><td></td><td></td></tr>
<tr><td colspan="6">A heading row</td></tr>
<tr><td><code>groups</code></td><td>array</td><td></td><td></td><td></td><td></td></tr>
<tr><td><code>type</code></td><td>enum</td><td></td><td></td><td></td><td></td></tr>
<tr><td><code>total_cost</code></td><td>number</td><td></td><td></td><td></td><td></td></tr>
<tr><td><code>type</code></td><td>enum</td><td></td><td>да</td><td></td><td></td></tr>
<tr><td><code>phone_number</code></td><td>number</td><td></td><td></td><td></td><td></td></tr>
<tr><td><code>note</code></td><td>string</td><td></td><td></td><td></td><td></td></tr>
</tbody></table>
<h3>JSON структура ответа</h3><pre><code>{"result": {"data": [{"id": "number", "created": "iso8601",
 "type": "enum", "phone_number": "string", "rules": {"groups": [{"type": "enum", "total_cost": "number"}]},
 "labels": ["string"], "stats": {"string": "number"}}]}}</code></pre>
</article>"""


@pytest.fixture
def method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    page = tmp_path / "data_api" / "x" / "get_things" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text(PAGE, encoding="utf-8")
    monkeypatch.setitem(METHODS, "things", ("x/get_things", "get.things"))
    return read_method(tmp_path, "things")


def test_a_docs_page_gives_params_and_fields_nested_as_its_example(method):
    assert method.params == {"access_token": "string", "limit": "number", "site_id": "number",
                             "user_id": "number", "offset": "number", "filter": "object", "fields": "array",
                             "sort": "array"}
    assert method.required == ["access_token", "site_id"]
    props = schema_for(method)["properties"]
    assert list(props) == ["id", "created", "rules", "type", "phone_number", "note", "labels", "stats"]
    groups = props["rules"]["properties"]["groups"]
    assert groups["items"]["properties"] == {"type": {"type": ["string", "null"]},
                                             "total_cost": {"type": ["number", "null"]}}
    assert props["created"] == {"type": ["string", "null"], "format": "date-time"}
    assert props["phone_number"] == {"type": ["string", "null"]}
    assert props["note"] == {"type": ["string", "null"]}  # not in the example: stays where the table has it
    assert props["labels"] == {"type": ["array", "null"], "items": {"type": ["string", "null"]}}
    assert props["stats"] == {"type": ["object", "null"], "additionalProperties": {"type": ["integer", "null"]}}
    flags = schema_for(method)["x-comagic"]
    assert flags["filterable"] == ["id", "type"]
    assert flags["sortable"] == ["created"]


@pytest.mark.parametrize(("stream", "path", "json_type"), [
    ("sites", ("id",), "integer"),
    ("sites", ("default_phone_number",), "string"),
    ("campaigns", ("costs",), "number"),
    ("campaigns", ("campaign_conditions", "group_conditions", "conditions", "campaign_parameter"), "string"),
    ("site_blocks", ("phone_numbers", "phone_number_id"), "integer"),  # an id, though named for a phone number
    ("virtual_numbers", ("virtual_phone_number",), "string"),
    ("employees", ("groups", "group_id"), "integer"),
    ("employee_groups", ("phone_numbers", "employee_phone_number"), "string"),
    ("campaign_daily_stat", ("cost_sum",), "number"),  # declared string: money
    ("campaign_daily_stat", ("keyword_id",), "string"),
    ("campaign_daily_stat", ("communications", "tags", "tag_employee_full_name"), "string"),  # the table's name
    ("ct_summary", ("dt_ratio",), "number"),
    ("ct_ac_summary", ("site_id",), "integer"),  # added by the tap
    ("employee_stat", ("date",), "string"),
    ("deals_history", ("revenue",), "number"),  # money
    ("deals_history", ("modified_stage_date_time",), "string"),
    ("deals_history", ("communication_id",), "integer"),
    ("source_costs", ("cost",), "number"),
    ("source_costs", ("site_key",), "integer"),  # added by the tap: the key's stand-in for a null site
    ("sources", ("static_parameters", "parameter"), "string"),  # a row whose <tr> the page lost, nested
    ("chat_channels", ("channel_external_id",), "string"),  # the table's string, not the example's number
    ("lead_funnel_stages", ("order",), "integer"),  # the table's name, not the example's `sort`
    ("schedules", ("schedules", "activity_days", "type"), "string"),
])
def test_types_follow_the_reports_conventions(stream, path, json_type):
    schema, _ = load_schema(stream)
    assert schema_type(schema, *path) == [json_type, "null"]


@pytest.mark.parametrize("stream", sorted(METHODS))
def test_each_stream_has_its_schema_and_its_simulator_method(stream):
    schema, flags = load_schema(stream)
    assert flags["method"] == METHODS[stream][1]
    assert set(flags["added"]) <= set(schema["properties"])
    catalogue = json.loads(REFERENCE_PATH.read_text(encoding="utf-8"))
    fields = [f["name"] for f in catalogue[flags["method"]]["fields"]]
    assert [p for p in schema["properties"] if p not in flags["added"]] == fields


LAYOUTS = """<article>
<table><tbody><tr><td>Кому доступен</td><td>Клиент</td></tr></tbody></table>
<table><tbody>
<tr><th>Название</th><th>Тип</th><th>Фильтрация</th></tr>
<tr><td><code>id</code></td><td>number</td><td>да</td></tr>
<tr><td><code>link</code></td><td>object</td><td></td></tr>
<tr><td><code>url</code></td><td>string</td><td></td></tr>
<tr><td><code>state</code></td><td>string</td><td></td></tr>
<tr><td><code>blocks</code></td><td>array</td><td></td></tr>
<tr><td><code>block_id</code></td><td>number</td><td></td></tr>
<tr><td><code>utm_source</code></td><td>string</td><td>да</td></tr>
<tr><td><code>enabled</code></td><td>boolean</td><td></td></tr>
<tr><td><code>tracking</code></td><td>object</td><td></td></tr>
<tr><td><code>visits</code></td><td>number</td><td></td></tr>
<tr><td><code>share</code></td><td>number</td><td></td></tr>
</tbody></table>
<h3>JSON структура ответа</h3><pre><code>{"result": {"data": [{"id": "number", "link": {"url": "string"},
 "blocks": [{"block_id": "number", "enabled": "boolean"}], "tracking": {"visits": "number"}}]}}</code></pre>
</article>"""


def test_a_row_the_example_lacks_is_a_record_field_unless_kept_in_its_container(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # the layouts of get.sites (state after widget_link) and get.campaigns (static_utm_* among the rows
    # of site_blocks, dynamic_call_tracking.coverage_visitors kept)
    page = tmp_path / "data_api" / "x" / "get_layouts" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text(LAYOUTS, encoding="utf-8")
    monkeypatch.setitem(METHODS, "layouts", ("x/get_layouts", "get.layouts"))
    monkeypatch.setitem(NESTED_BEYOND_EXAMPLE, "layouts", {"share": "tracking"})
    props = schema_for(read_method(tmp_path, "layouts"))["properties"]
    assert list(props) == ["id", "link", "state", "blocks", "utm_source", "tracking"]
    assert list(props["link"]["properties"]) == ["url"]
    assert list(props["blocks"]["items"]["properties"]) == ["block_id", "enabled"]
    assert list(props["tracking"]["properties"]) == ["visits", "share"]


@pytest.mark.parametrize(("stream", "outer", "inner"), [
    ("sites", ["state"], ("widget_link", ["enabled", "text", "url"])),
    ("campaigns", [f"static_utm_{n}" for n in ("source", "medium", "campaign", "term", "content", "referrer",
                                               "expid")],
     ("site_blocks", ["site_block_id", "site_block_name", "phone_number_type", "phone_number_id", "phone_number",
                      "redirection_phone_number_id", "redirection_phone_number", "dynamic_call_tracking_enabled"])),
    ("scenarios", ["operations"], ("campaigns", ["site_id", "site_domain_name", "campaign_id", "campaign_name"])),
])
def test_shipped_schemas_keep_record_fields_out_of_containers(stream, outer, inner):
    schema, _ = load_schema(stream)
    props = schema["properties"]
    assert set(outer) <= set(props)
    container, members = inner
    node = props[container].get("items", props[container])
    assert list(node["properties"]) == members
    catalogue = json.loads(REFERENCE_PATH.read_text(encoding="utf-8"))[METHODS[stream][1]]["fields"]
    assert set(outer) <= {f["name"] for f in catalogue}
    assert [f["name"] for f in next(f for f in catalogue if f["name"] == container)["fields"]] == members


BROKEN = """<article>
<table><tbody><tr><td>Кому доступен</td><td>Партнёр, Клиент</td></tr></tbody></table>
<table><tbody>
<tr><th>Название</th><th>Тип</th><th>Фильтрация</th></tr>
<tr><td><code>id</code></td><td>number</td><td>да</td></tr>
</tr>
<td><code>params</code></td><td>array</td><td></td>
<tr><td><code>value</code></td><td>string</td><td></td></tr>
<tr><td><code>source</code></td><td>string</td><td>да</td></tr>
<tr><td><code>source</code></td><td>string</td><td>да</td></tr>
</tbody></table>
<h3>JSON структура ответа</h3><pre><code>{"result": {"data": [{"id": "number", "params": [{"value": "string"}]]
}]}}</code></pre>
</article>"""


def test_a_page_with_a_lost_row_start_a_broken_example_and_a_repeated_row(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    # get.sources (a row without <tr>, "]]" in its example), get.deals_history (source twice),
    # get.chat_channels ("Партнёр": an agent's method, user_id)
    page = tmp_path / "data_api" / "x" / "get_broken" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text(BROKEN, encoding="utf-8")
    monkeypatch.setitem(METHODS, "broken", ("x/get_broken", "get.broken"))
    monkeypatch.setitem(EXAMPLE_FIXES, "broken", ("]]\n", "]\n"))
    method = read_method(tmp_path, "broken")
    assert "user_id" in method.params
    schema = schema_for(method)
    assert list(schema["properties"]) == ["id", "params", "source"]
    assert list(schema["properties"]["params"]["items"]["properties"]) == ["value"]
    assert schema["x-comagic"]["filterable"] == ["id", "source"]
