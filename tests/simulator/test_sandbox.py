"""The CoMagic sandbox, spoken to over HTTP like a client: protocol, data, request semantics, auth, limits."""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tap_comagic.sandbox import DEFAULT_LOGIN, DEFAULT_PASSWORD, Sandbox
from tests.simulator import TEN_DAYS
from tests.tap_harness import small_world
from tools.specdoc import SKIP_REASON, SPEC_PATH, load, load_merged

DT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
RANGE = {"date_from": "2026-01-01 00:00:00", "date_till": "2026-01-10 23:59:59"}


def mnemonic(doc: dict[str, Any]) -> str | None:
    return doc["error"]["data"]["mnemonic"] if "error" in doc else None


def data(doc: dict[str, Any]) -> list[dict[str, Any]]:
    assert "error" not in doc, doc["error"]
    rows: list[dict[str, Any]] = doc["result"]["data"]
    return rows


def v3_filter(date_from: str, date_till: str, *extra: dict[str, Any]) -> dict[str, Any]:
    return {"filters": [{"field": "date_from", "operator": "eq", "value": date_from},
                        {"field": "date_till", "operator": "eq", "value": date_till}, *extra],
            "condition": "and"}


def raw_post(sb: Sandbox, body: bytes, path: str | None = None) -> tuple[int, bytes]:
    u = urlsplit(sb.url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
    try:
        conn.request("POST", path or u.path, body=body, headers={"Content-Type": "application/json"})
        with conn.getresponse() as r:
            return r.status, r.read()
    finally:
        conn.close()


# ---- protocol --------------------------------------------------------------------------------------------
def test_result_envelope(rpc):
    doc = rpc("get.calls_report", **RANGE, limit=5)
    assert doc["jsonrpc"] == "2.0"
    assert doc["id"] == 7
    assert len(doc["result"]["data"]) == 5
    meta = doc["result"]["metadata"]
    assert meta["total_items"] == 200
    assert set(meta["limits"]) == {"day_limit", "day_remaining", "day_reset", "minute_limit", "minute_remaining",
                                   "minute_reset"}


@pytest.mark.parametrize(("body", "expected", "code"), [
    (b"{not json", "parse_error", -32700),
    (b'{"jsonrpc": "2.0", "method": "get.calls_report", "params": {}}', "invalid_request", -32600),
    (b'[{"jsonrpc": "2.0", "id": 1, "method": "get.calls_report", "params": {}}]', "invalid_request", -32600),
    (b'{"jsonrpc": "1.0", "id": 1, "method": "get.calls_report", "params": {}}', "invalid_request", -32600),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "get.nothing_report", "params": {}}', "method_not_found", -32601),
])
def test_jsonrpc_errors(sandbox, body, expected, code):
    status, raw = raw_post(sandbox, body)
    assert status == 200
    doc = json.loads(raw)
    assert doc["error"]["code"] == code
    assert doc["error"]["data"]["mnemonic"] == expected


def test_other_paths_404_and_get_405(sandbox):
    status, _ = raw_post(sandbox, b"{}", path="/v1.0")
    assert status == 404
    with requests.get(sandbox.url, timeout=10) as r:
        assert r.status_code == 405


def test_keep_alive_and_concurrency(sandbox):
    u = urlsplit(sandbox.url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "get.goals_report",
                       "params": {"access_token": sandbox.api_key, **RANGE}}).encode()
    try:
        conn.request("POST", u.path, body=body)
        with conn.getresponse() as r:
            r.read()
        sock = conn.sock
        conn.request("POST", u.path, body=body)
        with conn.getresponse() as r:
            assert r.status == 200
            json.loads(r.read())
        assert conn.sock is sock  # the same connection served both
    finally:
        conn.close()
    results: list[int] = []

    def worker() -> None:
        with requests.Session() as s, s.post(sandbox.url, data=body, timeout=30) as r:
            results.append(len(r.json()["result"]["data"]))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [80] * 8


# ---- data: fields and types from the spec itself --------------------------------------------------------
def _type_ok(kind: str, v: Any) -> bool:
    if v is None:
        return True
    return {
        "integer": isinstance(v, int) and not isinstance(v, bool),
        "number": isinstance(v, (int, float)) and not isinstance(v, bool),
        "string": isinstance(v, str), "boolean": isinstance(v, bool),
        "date-time": isinstance(v, str) and bool(DT.match(v)),
        "date": isinstance(v, str) and bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v)),
        "array": isinstance(v, list), "object": isinstance(v, dict),
    }[kind]


def _check(field: Any, v: Any, where: str) -> None:
    assert _type_ok(field.json_type, v), f"{where}.{field.name}: {v!r} is not {field.json_type}"
    if v is None or field.json_type not in ("array", "object"):
        return
    items = v if field.json_type == "array" else [v]
    for item in items:
        if not field.children:
            kind = int if field.name.endswith("_ids") else str  # visitor_ids hold ids
            assert isinstance(item, kind), f"{where}.{field.name}: {item!r} is not a {kind.__name__}"
            continue
        assert set(item) == {c.name for c in field.children}, f"{where}.{field.name}: {sorted(item)}"
        for c in field.children:
            _check(c, item[c.name], f"{where}.{field.name}")


@pytest.mark.skipif(not SPEC_PATH.exists(), reason=SKIP_REASON)
def test_every_report_returns_the_spec_fields_with_their_types(sandbox, rpc):
    """Every field of the spec and of the public docs, with its type; the public docs' fields with values."""
    reports = load_merged()
    visitor = sandbox.truth("get.visitor_sessions_report")[0]["visitor_id"]
    chat = sandbox.truth("get.chats_report")[0]["id"]
    checked = set()
    for method, rep in reports.items():
        if not method.startswith("get."):
            continue
        names = [f.name for f in rep.fields]
        params: dict[str, Any] = {"field" if rep.version == "v3" else "fields": names}
        if "date_from" in rep.params:
            params.update(RANGE)
        if method == "get.visitors_report":
            params["visitor_id"] = visitor
        if method == "get.chat_messages_report":
            params["chat_id"] = chat
        if method == "get.financial_summary_report":
            params.update(year=2026, month=1)
        if rep.version == "v3":
            params["filter"] = v3_filter(RANGE["date_from"], RANGE["date_till"])
        doc = rpc(method, **params)
        rows = data(doc)
        assert rows, method
        non_null: Counter[str] = Counter()
        for row in rows:
            assert list(row) == names, method
            for f in rep.fields:
                _check(f, row[f.name], method)
                non_null[f.name] += row[f.name] not in (None, [])
        if len(rows) > 3:  # realistic data: most fields carry values somewhere
            assert len(non_null) >= 0.7 * len(names), (method, set(names) - set(non_null))
            public = {f.name for f in rep.fields if f.public}
            assert public <= set(non_null), (method, public - set(non_null))
        checked.add(method)
    assert len(checked) == 13


def test_data_shape_ids_phones_boundaries(sandbox):
    calls = sandbox.truth("get.calls_report")
    assert all(c["id"] > 2**32 for c in calls)
    assert all(re.fullmatch(r"7\d{10}", c["contact_phone_number"]) for c in calls)
    assert all(isinstance(c["sale_cost"], float) for c in calls if c["sale_cost"] is not None)
    times = Counter(c["start_time"] for c in calls)
    assert any(t.endswith(" 00:00:00") for t in times)
    assert max(times.values()) >= 2  # records sharing a second
    tags = [t for c in sandbox.truth("get.communications_report") for t in c["tags"]]
    assert tags
    assert any(re.search("[а-яА-Я]", t["tag_name"]) for t in tags)


def test_reports_are_consistent(sandbox):
    calls = sandbox.truth("get.calls_report")
    legs = sandbox.truth("get.call_legs_report")
    fin = sandbox.truth("get.financial_call_legs_report")
    call_ids = {c["id"] for c in calls}
    assert {leg["call_session_id"] for leg in legs} == call_ids
    assert {(f["call_session_id"], f["leg_id"]) for f in fin} == {(x["call_session_id"], x["id"]) for x in legs}
    chats = sandbox.truth("get.chats_report")
    for chat in chats[:10]:
        msgs = sandbox.truth("get.chat_messages_report", chat_ids=[chat["id"]])
        assert len(msgs) == chat["messages_count"]
    comms = sandbox.truth("get.communications_report")
    expected = {(c["communication_id"], c["communication_type"]) for m in (
        "get.calls_report", "get.chats_report", "get.goals_report", "get.offline_messages_report")
        for c in sandbox.truth(m)}
    assert {(c["id"], c["communication_type"]) for c in comms} == expected
    by_call = {c["communication_id"]: c for c in calls}
    for c in comms:
        if c["communication_type"] == "call":
            assert c["date_time"] == by_call[c["id"]]["start_time"]
    sessions = {s["id"]: s for s in sandbox.truth("get.visitor_sessions_report")}
    linked = [c for c in comms if c["visitor_session_id"] is not None]
    assert linked
    for c in linked:
        s = sessions[c["visitor_session_id"]]
        assert s["visitor_id"] == c["visitor_id"]
        assert {"communication_id": c["id"], "communication_type": c["communication_type"],
                "communication_date_time": c["date_time"]} in s["communications"]
    sales = sandbox.truth("get.sales_report", "2026-01-01 00:00:00", "2026-02-01 00:00:00")
    comm_keys = {(c["id"], c["communication_type"]): c for c in comms}
    assert sales
    for sale in sales:
        comm = comm_keys[(sale["communication"]["communication_id"], sale["communication"]["communication_type"])]
        assert comm["sale_cost"] == sale["transaction_value"]
        assert comm["sale_date"] == sale["date_time"]


def test_chat_messages_have_ids_and_twins(sandbox, rpc):
    """Messages carry an id unique across the account; some are twins: one chat, one second, one text (two
    files sent at once, or a text sent twice), and the API and truth() return both."""
    messages = sandbox.truth("get.chat_messages_report")
    assert len({m["id"] for m in messages}) == len(messages)
    old_key = Counter((m["chat_id"], m["date_time"], m["source"], m["text"]) for m in messages)
    twins = [k for k, n in old_key.items() if n > 1]
    assert len(twins) >= 5
    files = [m for m in messages if (m["chat_id"], m["date_time"], m["source"], m["text"]) in set(twins)
             and m["resource"] is not None]
    assert files
    assert any(m["text"] is not None for m in messages
               if (m["chat_id"], m["date_time"], m["source"], m["text"]) in set(twins))
    chat = twins[0][0]
    rows = data(rpc("get.chat_messages_report", chat_id=chat, fields=["id", "chat_id", "date_time", "text"]))
    assert len(rows) == len([m for m in messages if m["chat_id"] == chat])
    assert len({r["id"] for r in rows}) == len(rows)


def test_same_seed_same_bytes(sandbox):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "get.communications_report", "params": {
        "access_token": sandbox.api_key, **RANGE, "fields": ["id", "date_time", "tags", "visitor_id", "utm_source"]}})
    with Sandbox(small_world(**TEN_DAYS)) as twin, Sandbox(small_world(**TEN_DAYS, seed=2)) as other:
        a = raw_post(sandbox, body.encode())[1]
        b = raw_post(twin, body.encode())[1]
        c = raw_post(other, body.encode())[1]
    assert a == b
    assert a != c


# ---- dates -------------------------------------------------------------------------------------------------
def test_date_till_inclusive_by_default(sandbox, rpc):
    window = {"date_from": "2026-01-02 00:00:00", "date_till": "2026-01-03 00:00:00"}
    rows = data(rpc("get.calls_report", **window, fields=["id", "start_time"]))
    assert rows[-1]["start_time"] == "2026-01-03 00:00:00"
    assert [r["id"] for r in rows] == [r["id"] for r in sandbox.truth("get.calls_report", **window)]


def test_date_till_exclusive_when_configured(rpc):
    with Sandbox(small_world(**TEN_DAYS, till_exclusive=True)) as sb:
        window = {"date_from": "2026-01-02 00:00:00", "date_till": "2026-01-03 00:00:00"}
        rows = data(rpc("get.calls_report", sb=sb, **window, fields=["id", "start_time"]))
        truth = sb.truth("get.calls_report", **window)
    assert truth[-1]["start_time"] == "2026-01-03 00:00:00"
    assert rows[0]["start_time"] == "2026-01-02 00:00:00"
    assert [r["id"] for r in rows] == [r["id"] for r in truth if r["start_time"] < window["date_till"]]


@pytest.mark.parametrize(("date_from", "date_till", "expected", "field"), [
    ("2026-01-01", "2026-01-02 00:00:00", "invalid_parameter_value", "date_from"),
    ("2026-01-01T00:00:00", "2026-01-02 00:00:00", "invalid_parameter_value", "date_from"),
    ("2026-01-01 00:00:00", "2026-02-30 00:00:00", "invalid_parameter_value", "date_till"),
    ("2026-01-05 00:00:00", "2026-01-01 00:00:00", "invalid_parameter_value", "date_till"),
    ("2026-01-01 00:00:00", "2026-04-01 00:00:01", "date_interval_limit_reached", "date_till"),
    (20260101, "2026-01-02 00:00:00", "data_type_error", "date_from"),
])
def test_bad_date_ranges(rpc, date_from, date_till, expected, field):
    doc = rpc("get.calls_report", date_from=date_from, date_till=date_till)
    assert mnemonic(doc) == expected
    assert doc["error"]["data"]["field"] == field


def test_three_calendar_months_allowed_and_dates_required(rpc):
    assert mnemonic(rpc("get.calls_report", date_from="2026-01-01 00:00:00", date_till="2026-04-01 00:00:00")) is None
    doc = rpc("get.calls_report", date_from="2026-01-01 00:00:00")
    assert mnemonic(doc) == "required_parameter_missed"
    assert doc["error"]["data"]["field"] == "date_till"


# ---- paging ------------------------------------------------------------------------------------------------
def test_pages_add_up_to_the_truth(sandbox, rpc):
    truth = [r["id"] for r in sandbox.truth("get.call_legs_report", **RANGE)]
    got: list[int] = []
    offset = 0
    while True:
        doc = rpc("get.call_legs_report", **RANGE, fields=["id"], limit=37, offset=offset)
        assert doc["result"]["metadata"]["total_items"] == len(truth)
        page = data(doc)
        got += [r["id"] for r in page]
        offset += 37
        if offset >= len(truth):
            break
    assert got == truth


def test_default_limit_and_caps(rpc):
    with Sandbox(small_world(**{**TEN_DAYS, "calls_per_day": 150})) as big:
        doc = rpc("get.calls_report", sb=big, **RANGE, fields=["id"])
        assert len(data(doc)) == 1000
        assert doc["result"]["metadata"]["total_items"] == 1500
        assert len(data(rpc("get.calls_report", sb=big, **RANGE, fields=["id"], limit=10_000))) == 1500
    for bad in ({"limit": 10_001}, {"limit": 0}, {"offset": 100_001}, {"offset": -1}):
        doc = rpc("get.calls_report", **RANGE, **bad)
        assert mnemonic(doc) == "invalid_parameter_value"
        assert doc["error"]["data"]["field"] == next(iter(bad))
    assert data(rpc("get.calls_report", **RANGE, offset=100_000)) == []
    assert mnemonic(rpc("get.calls_report", **RANGE, limit="10")) == "data_type_error"


# ---- fields ------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not SPEC_PATH.exists(), reason=SKIP_REASON)
def test_default_fields_are_the_specs(rpc):
    """The spec's and the public docs' "returned by default" fields; only the spec's on an account that
    knows only those."""
    reports, spec = load_merged(), load()
    for method in ("get.calls_report", "get.goals_report", "get.visitor_sessions_report"):
        rows = data(rpc(method, **RANGE, limit=3))
        assert list(rows[0]) == [f.name for f in reports[method].fields if f.default]
    with Sandbox(small_world(**TEN_DAYS, spec_fields_only=True)) as old:
        rows = data(rpc("get.calls_report", sb=old, **RANGE, limit=3))
        assert set(rows[0]) == {f.name for f in spec["get.calls_report"].fields if f.default}
    goal = data(rpc("get.goals_report", **RANGE, limit=1))[0]
    assert "id" not in goal
    assert "date_time" not in goal


def test_fields_exact_and_unknown(rpc):
    rows = data(rpc("get.chats_report", **RANGE, fields=["status", "id"], limit=4))
    assert [list(r) for r in rows] == [["status", "id"]] * 4
    doc = rpc("get.chats_report", **RANGE, fields=["id", "no_such_field"])
    assert mnemonic(doc) == "unexpected_parameters"
    assert doc["error"]["data"]["field"] == "no_such_field"


def test_an_account_that_knows_only_the_spec_fields(sandbox, rpc):
    """spec_fields_only: a public-docs-only field is unknown wherever it is named, as any unknown field;
    unknown_fields refuses chosen fields too; truth() then holds the known fields only."""
    messages = {"chat_ids": [c["id"] for c in sandbox.truth("get.chats_report", **RANGE)[:5]]}
    assert data(rpc("get.chat_messages_report", **messages, fields=["id", "chat_id"]))
    config = small_world(**TEN_DAYS, spec_fields_only=True,
                         unknown_fields={"get.calls_report": frozenset({"talk_duration"})})
    with Sandbox(config) as old:
        for method, params, unknown in (
                ("get.calls_report", {**RANGE, "fields": ["id", "cpn_region_id"]}, "cpn_region_id"),
                ("get.calls_report", {**RANGE, "fields": ["id"], "filter": {
                    "field": "source_id", "operator": "=", "value": 1}}, "source_id"),
                ("get.calls_report", {**RANGE, "fields": ["id", "talk_duration"]}, "talk_duration"),
                ("get.chat_messages_report", {**messages, "fields": ["chat_id", "id"]}, "id")):
            doc = rpc(method, sb=old, **params)
            assert mnemonic(doc) == "unexpected_parameters", (method, params)
            assert doc["error"]["data"]["field"] == unknown, (method, params)  # the one it does not know
        assert data(rpc("get.calls_report", sb=old, **RANGE, fields=["id", "wait_duration"]))
        truth = old.truth("get.calls_report", **RANGE)
        assert "cpn_region_id" not in truth[0]
        assert "talk_duration" not in truth[0]
        assert "wait_duration" in truth[0]


def test_unexpected_parameter_and_user_id(rpc):
    doc = rpc("get.calls_report", **RANGE, colour="red")
    assert mnemonic(doc) == "unexpected_parameters"
    assert doc["error"]["data"]["field"] == "colour"
    assert mnemonic(rpc("get.calls_report", **RANGE, user_id=42, limit=1)) is None


# ---- sort and filter --------------------------------------------------------------------------------------
def test_sort_rules(sandbox, rpc):
    rows = data(rpc("get.calls_report", **RANGE, fields=["id", "finish_reason", "start_time"],
                    sort=[{"field": "finish_reason", "order": "desc"}]))
    truth = sandbox.truth("get.calls_report", **RANGE)
    expected = sorted(truth, key=lambda r: r["finish_reason"], reverse=True)  # stable: ties keep default order
    assert [r["id"] for r in rows] == [r["id"] for r in expected]
    doc = rpc("get.calls_report", **RANGE, sort=[{"field": "talk_duration", "order": "asc"}])
    assert mnemonic(doc) == "sort_prohibited"
    assert doc["error"]["data"]["field"] == "talk_duration"
    assert mnemonic(rpc("get.calls_report", **RANGE, sort=[{"field": "nope", "order": "asc"}])) == \
        "unexpected_parameters"
    assert mnemonic(rpc("get.calls_report", **RANGE, sort=[{"field": "direction", "order": "up"}])) == \
        "invalid_parameter_value"


@pytest.mark.parametrize(("flt", "pred"), [
    ({"field": "direction", "operator": "=", "value": "out"}, lambda r: r["direction"] == "out"),
    ({"field": "direction", "operator": "!=", "value": "out"}, lambda r: r["direction"] != "out"),
    ({"field": "talk_duration", "operator": "<", "value": 100}, lambda r: r["talk_duration"] < 100),
    ({"field": "talk_duration", "operator": ">=", "value": 100}, lambda r: r["talk_duration"] >= 100),
    ({"field": "talk_duration", "operator": "<=", "value": 0}, lambda r: r["talk_duration"] <= 0),
    ({"field": "talk_duration", "operator": ">", "value": 600}, lambda r: r["talk_duration"] > 600),
    ({"field": "source", "operator": "in", "value": ["va", "sitephone"]}, lambda r: r["source"] in ("va", "sitephone")),
    ({"field": "source", "operator": "not_in", "value": ["va"]}, lambda r: r["source"] != "va"),
    ({"field": "virtual_phone_number", "operator": "like", "value": "7495%"},
     lambda r: r["virtual_phone_number"].startswith("7495")),
    ({"filters": [{"field": "is_lost", "operator": "=", "value": True},
                  {"filters": [{"field": "direction", "operator": "=", "value": "in"},
                               {"field": "wait_duration", "operator": ">", "value": 20}], "condition": "and"}],
      "condition": "or"},
     lambda r: r["is_lost"] or (r["direction"] == "in" and r["wait_duration"] > 20)),
])
def test_filters_match_the_truth(sandbox, rpc, flt, pred):
    doc = rpc("get.calls_report", **RANGE, fields=["id"], filter=flt, limit=10_000)
    expected = [r["id"] for r in sandbox.truth("get.calls_report", **RANGE) if pred(r)]
    assert expected  # the filter selects something ...
    assert len(expected) < 200  # ... but not everything
    assert [r["id"] for r in data(doc)] == expected
    assert doc["result"]["metadata"]["total_items"] == len(expected)


def test_filter_rules(rpc):
    late = {"field": "start_time", "operator": ">", "value": "2026-01-02 00:00:00"}
    doc = rpc("get.calls_report", **RANGE, filter=late)
    assert mnemonic(doc) == "filter_prohibited"
    assert doc["error"]["data"]["field"] == "start_time"
    assert mnemonic(rpc("get.calls_report", **RANGE, filter={"field": "talk_duration", "operator": "=",
                                                               "value": "long"})) == "data_type_error"
    assert mnemonic(rpc("get.calls_report", **RANGE, filter={"field": "talk_duration", "operator": "~",
                                                               "value": 1})) == "invalid_parameter_value"
    assert mnemonic(rpc("get.calls_report", **RANGE, filter={"filters": [], "condition": "and"})) == \
        "invalid_parameter_value"


# ---- reports with their own parameters ----------------------------------------------------------------------
def test_chat_messages_parameters(sandbox, rpc):
    chats = sandbox.truth("get.chats_report", **RANGE)
    ids = [c["id"] for c in chats[:3]]
    rows = data(rpc("get.chat_messages_report", chat_ids=ids))
    assert len(rows) == sum(c["messages_count"] for c in chats[:3])
    assert [r["date_time"] for r in rows] == sorted(r["date_time"] for r in rows)
    one = data(rpc("get.chat_messages_report", chat_id=ids[0]))
    assert {r["chat_id"] for r in one} == {ids[0]}
    by_range = rpc("get.chat_messages_report", date_from="2026-01-01 00:00:00", date_till="2026-01-02 23:59:59")
    assert by_range["result"]["metadata"]["total_items"] == len(
        sandbox.truth("get.chat_messages_report", "2026-01-01 00:00:00", "2026-01-02 23:59:59"))
    assert mnemonic(rpc("get.chat_messages_report", date_from="2026-01-01 00:00:00",
                        date_till="2026-02-01 00:00:00")) == "date_interval_limit_reached"
    assert mnemonic(rpc("get.chat_messages_report")) == "required_parameter_missed"
    with Sandbox(small_world(**TEN_DAYS, chat_ids_supported=False)) as old:
        doc = rpc("get.chat_messages_report", sb=old, chat_ids=ids)
        assert mnemonic(doc) == "unexpected_parameters"
        assert doc["error"]["data"]["field"] == "chat_ids"
        assert data(rpc("get.chat_messages_report", sb=old, chat_id=ids[0]))


def test_visitors_and_financial_summary(sandbox, rpc):
    sessions = sandbox.truth("get.visitor_sessions_report")
    vid = Counter(s["visitor_id"] for s in sessions).most_common(1)[0][0]
    assert mnemonic(rpc("get.visitors_report")) == "required_parameter_missed"
    [v] = data(rpc("get.visitors_report", visitor_id=vid, fields=["id", "visits_count", "sessions"]))
    mine = [s["id"] for s in sessions if s["visitor_id"] == vid]
    assert v["visits_count"] == len(mine)
    assert [s["session_id"] for s in v["sessions"]] == mine
    rows = data(rpc("get.financial_summary_report", year=2026, month=1))
    assert [r["date"] for r in rows] == [f"2026-01-{d:02d}" for d in range(1, 11)]
    assert data(rpc("get.financial_summary_report", year=2025, month=12)) == []
    assert mnemonic(rpc("get.financial_summary_report", year=2026, month=13)) == "invalid_parameter_value"


def test_v3_reports(sandbox, rpc):
    flt = v3_filter("2026-01-01", "2026-01-10")
    doc = rpc("get.sales_report", filter=flt, field=["id", "date_time", "transaction_value"], limit=1000)
    assert "meta_data" in doc["result"]
    truth = sandbox.truth("get.sales_report", "2026-01-01 00:00:00", "2026-01-10 23:59:59")
    assert [r["id"] for r in data(doc)] == [r["id"] for r in truth]
    with Sandbox(small_world(**{**TEN_DAYS, "api_requests_per_day": 30})) as sb:
        doc = rpc("get.api_requests_report", sb=sb, filter=flt)
        assert len(data(doc)) == 100  # the v3 default limit
        assert doc["result"]["metadata"]["total_items"] == 300
    assert mnemonic(rpc("get.sales_report")) == "required_parameter_missed"
    assert mnemonic(rpc("get.sales_report", filter=flt, fields=["id"])) == "unexpected_parameters"
    big = v3_filter("2026-01-01", "2026-01-10", {"field": "transaction_value", "operator": "gt", "value": 50000})
    rows = data(rpc("get.sales_report", filter=big, limit=1000))
    assert [r["id"] for r in rows] == [r["id"] for r in truth if r["transaction_value"] > 50000]


def test_set_visitor_communication(sandbox, rpc):
    goal = sandbox.truth("get.goals_report")[3]
    doc = rpc("set.visitor_communication", communication_id=goal["communication_id"],
              cummunication_type="goal", visitor_id=123_456_789_012)
    assert mnemonic(doc) is None
    after = next(g for g in sandbox.truth("get.goals_report") if g["id"] == goal["id"])
    assert after["visitor_id"] == 123_456_789_012
    comm = next(c for c in sandbox.truth("get.communications_report")
            if (c["id"], c["communication_type"]) == (goal["communication_id"], "goal"))
    assert comm["visitor_id"] == 123_456_789_012
    assert mnemonic(rpc("set.visitor_communication", communication_id=1, cummunication_type="goal",
                        visitor_id=1)) == "invalid_parameter_value"


# ---- auth ----------------------------------------------------------------------------------------------------
def test_auth(sandbox, rpc):
    assert mnemonic(rpc("get.goals_report", token="wrong", **RANGE)) == "access_token_invalid"
    assert mnemonic(rpc("get.goals_report", token=None, **RANGE)) == "required_parameter_missed"
    assert mnemonic(rpc("login.user", token=None, login=DEFAULT_LOGIN, password="nope")) == "auth_error"
    session = rpc("login.user", token=None, login=DEFAULT_LOGIN, password=DEFAULT_PASSWORD)["result"]["data"]
    assert set(session) == {"access_token", "expire_at", "app_id"}
    assert session["expire_at"] == pytest.approx(sandbox.clock.now() + 3600, abs=5)
    tok = session["access_token"]
    assert mnemonic(rpc("get.goals_report", token=tok, **RANGE)) is None
    sandbox.clock.advance(3601)
    assert mnemonic(rpc("get.goals_report", token=tok, **RANGE)) == "access_token_expired"
    assert mnemonic(rpc("get.goals_report", **RANGE)) is None  # API keys do not expire
    again = rpc("login.user", token=None, login=DEFAULT_LOGIN, password=DEFAULT_PASSWORD)
    tok2 = again["result"]["data"]["access_token"]
    assert mnemonic(rpc("logout.user", token=tok2)) is None
    assert mnemonic(rpc("get.goals_report", token=tok2, **RANGE)) == "access_token_invalid"
    assert all("access_token" not in e.params and "password" not in e.params for e in sandbox.log)


def test_expired_and_blocked_keys(rpc):
    with Sandbox(small_world(**TEN_DAYS, api_keys=("good",), expired_api_keys=("old",), blocked_tokens=("bad",))) as sb:
        assert mnemonic(rpc("get.goals_report", sb=sb, token="good", **RANGE)) is None
        assert mnemonic(rpc("get.goals_report", sb=sb, token="old", **RANGE)) == "access_token_expired"
        assert mnemonic(rpc("get.goals_report", sb=sb, token="bad", **RANGE)) == "access_token_blocked"


def test_disabled_method(rpc):
    with Sandbox(small_world(**TEN_DAYS, disabled_methods=frozenset({"get.chats_report"}))) as sb:
        assert mnemonic(rpc("get.chats_report", sb=sb, **RANGE)) == "method_component_disabled"
        assert mnemonic(rpc("get.goals_report", sb=sb, **RANGE)) is None


# ---- limits ------------------------------------------------------------------------------------------------
def test_minute_and_day_limits(rpc):
    with Sandbox(small_world(**TEN_DAYS, minute_limit=3, day_limit=5)) as sb:
        remaining = [rpc("get.goals_report", sb=sb, **RANGE)["result"]["metadata"]["limits"]["minute_remaining"]
                     for _ in range(3)]
        assert remaining == [2, 1, 0]
        doc = rpc("get.goals_report", sb=sb, **RANGE)
        assert mnemonic(doc) == "limit_exceeded"
        assert doc["error"]["code"] == -32029
        assert 0 < doc["error"]["data"]["metadata"]["limits"]["minute_reset"] <= 60
        sb.clock.advance(61)
        assert mnemonic(rpc("get.goals_report", sb=sb, date_from="bad", date_till="bad")) == "invalid_parameter_value"
        limits = rpc("get.goals_report", sb=sb, **RANGE)["result"]["metadata"]["limits"]
        assert limits["minute_remaining"] == 2  # the failed call was not charged
        assert limits["day_remaining"] == 1
        rpc("get.goals_report", sb=sb, **RANGE)
        assert mnemonic(rpc("get.goals_report", sb=sb, **RANGE)) == "limit_exceeded"  # the day is spent
        sb.clock.advance(86_401)
        assert mnemonic(rpc("get.goals_report", sb=sb, **RANGE)) is None


def test_no_local_time_in_a_dst_gap():
    cfg = small_world(timezone="Europe/Berlin", start="2026-03-28", days=3, calls_per_day=400, chats_per_day=100)
    with Sandbox(cfg) as sb:
        day = "2026-03-29"
        seen = []
        for method, fld in (("get.calls_report", "start_time"), ("get.call_legs_report", "start_time"),
                            ("get.chat_messages_report", "date_time"), ("get.communications_report", "date_time")):
            seen += [r[fld] for r in sb.truth(method, f"{day} 00:00:00", f"{day} 23:59:59")]
    assert len(seen) > 1000
    assert not [t for t in seen if t[11:13] == "02"]  # 02:00-03:00 does not exist in Berlin that night
