"""The schemas hold every field of the spec's report tables, with the types the spec's README settles."""

from __future__ import annotations

import json

import pytest

from tap_comagic.client import load_schema
from tests.tap_harness import schema_type
from tools.publicdocs import METHODS as PUBLIC_DOCS_STREAMS
from tools.specdoc import ROOT, SKIP_REASON, SPEC_PATH, load, load_merged, stream_name

SCHEMAS = ROOT / "tap_comagic" / "schemas"
needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason=SKIP_REASON)


@needs_spec
def test_every_get_method_of_the_spec_has_a_schema():
    methods = [m for m in load() if m.startswith("get.")]
    assert len(methods) == 13
    from_public_docs = list(PUBLIC_DOCS_STREAMS)  # the reference tables and summaries (tools/publicdocs.py)
    assert sorted([*(stream_name(m) for m in methods), *from_public_docs]) == sorted(
        p.stem for p in SCHEMAS.glob("*.json"))


@needs_spec
@pytest.mark.parametrize("method", [
    "get.communications_report", "get.calls_report", "get.call_legs_report", "get.goals_report",
    "get.chats_report", "get.chat_messages_report", "get.offline_messages_report",
    "get.visitor_sessions_report", "get.visitors_report", "get.sales_report", "get.financial_summary_report",
    "get.financial_call_legs_report", "get.api_requests_report"])
def test_schema_has_every_field_and_sub_field_of_the_table(method):
    report = load()[method]
    schema, flags = load_schema(stream_name(method))
    props = schema["properties"]
    for field in report.fields:
        assert field.name in props, f"{method}: schema lacks {field.name}"
        sub = props[field.name].get("items", props[field.name]).get("properties", {})
        for child in field.children:
            assert child.name in sub, f"{method}: {field.name} lacks {child.name}"
    public = set(flags.get("public_docs_only", ()))
    assert sorted(set(flags["filterable"]) - public) == sorted(f.name for f in report.fields if f.filterable)


def test_derived_files_are_current():
    """The committed schemas are what tools/specdoc.py derives from the spec today."""
    if not SPEC_PATH.exists():
        pytest.skip(SKIP_REASON)
    from tools.specdoc import schema_for

    for method, report in load_merged().items():
        if method.startswith("get."):
            on_disk = json.loads((SCHEMAS / f"{stream_name(method)}.json").read_text("utf-8"))
            assert on_disk == schema_for(report), f"regenerate with python -m tools.specdoc ({method})"


# Public-docs fields the spec's tables lack, per report (counted in shared/spec/public-docs-fields.md).
PUBLIC_ONLY = {"communications": 14, "calls": 25, "call_legs": 6, "goals": 12, "chats": 25, "chat_messages": 4,
               "offline_messages": 19, "visitor_sessions": 8}


@needs_spec
def test_schemas_add_every_public_field_the_spec_lacks():
    spec = load()
    for stream, count in PUBLIC_ONLY.items():
        schema, flags = load_schema(stream)
        spec_names = {f.name for f in spec[f"get.{stream}_report"].fields}
        added = [p for p in schema["properties"] if p not in spec_names]
        assert len(added) == count, stream
        assert sorted(flags["public_docs_only"]) == sorted(added), stream
    for name in ("ym_client_id", "source_id", "source_name", "communication_page_url", "eq_utm_source"):
        assert name in load_schema("communications")[0]["properties"]
    assert "cpn_region_id" in load_schema("calls")[0]["properties"]
    assert "finish_reason" in load_schema("call_legs")[0]["properties"]
    messages, _ = load_schema("chat_messages")
    assert schema_type(messages, "id") == ["integer", "null"]
    assert set(messages["properties"]["resource"]["properties"]) == {"size", "type", "file_url", "file_name",
                                                                     "mime_type"}


def test_the_spec_wins_where_both_list_a_field():
    # chats.duration: the public docs say string; the spec's table holds seconds
    assert schema_type(load_schema("chats")[0], "duration") == ["integer", "null"]
    assert "duration" not in load_schema("chats")[1].get("public_docs_only", [])
    # goals.ext_id: the docs' example says number, their table string: a string, numbers turned into strings
    schema, flags = load_schema("goals")
    assert schema_type(schema, "ext_id") == ["string", "null"]
    assert flags["as_string"] == ["ext_id"]
    assert schema_type(load_schema("chats")[0], "visitor_ids") == ["array", "null"]
    assert load_schema("chats")[0]["properties"]["visitor_ids"]["items"]["type"] == ["integer", "null"]


@pytest.mark.parametrize(("stream", "path", "json_type"), [
    ("calls", ("id",), "integer"),
    ("calls", ("virtual_phone_number",), "string"),  # declared number: digit strings on the live API
    ("calls", ("contact_phone_number",), "string"),
    ("offline_messages", ("visitor_phone_number",), "string"),
    ("calls", ("sale_cost",), "number"),
    ("calls", ("tags", "tag_id"), "integer"),
    ("chats", ("duration",), "integer"),  # declared string, holds seconds
    ("financial_call_legs", ("call_session_id",), "integer"),
    ("financial_call_legs", ("cost_per_minute",), "number"),
    ("financial_call_legs", ("chargeable_duration",), "integer"),
    ("call_legs", ("call_records",), "array"),
    ("communications", ("tags", "tag_employee_full_name"), "string"),  # the table's spelling
    ("calls", ("scenario_id",), "integer"),
])
def test_types_follow_the_spec_readme(stream, path, json_type):
    schema, _ = load_schema(stream)
    assert schema_type(schema, *path) == [json_type, "null"]


@pytest.mark.parametrize("stream", [p.stem for p in sorted(SCHEMAS.glob("*.json"))])
def test_everything_is_nullable(stream):
    schema, _ = load_schema(stream)

    def walk(props: dict) -> None:
        for name, prop in props.items():
            assert "null" in prop["type"], f"{stream}.{name} is not nullable"
            inner = prop.get("items", prop).get("properties")
            if inner:
                walk(inner)

    walk(schema["properties"])


@needs_spec
def test_spec_date_times_are_date_time_strings():
    """Every field the spec declares iso8601 with a time is a formatted date-time; a bare date a date."""
    for method, report in load().items():
        if not method.startswith("get."):
            continue
        schema, _ = load_schema(stream_name(method))
        for field in report.fields:
            for f, prop in [(field, schema["properties"][field.name])] + [
                    (c, schema["properties"][field.name].get("items", schema["properties"][field.name])
                     ["properties"][c.name]) for c in field.children]:
                if f.declared == "iso8601":
                    assert prop.get("format") in ("date-time", "date"), f"{method}.{f.name}"
                    assert prop["type"] == ["string", "null"]
