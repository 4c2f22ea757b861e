"""Smaller leaks: `filters` of the reports read by id or by month, value types against the schema, the
api_requests key, and account zones with daylight saving time."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from tap_comagic.sandbox import Sandbox
from tests.reliability_helpers import END, START, catalog, error_lines, small_world, tap_config
from tests.tap_harness import Run, as_emitted, method_and_key, page_data, run_tap


def rewrite(sim: Sandbox, change: Callable[[bytes], bytes]) -> None:
    """Answer as a server whose successful answers ``change`` rewrites."""
    original = sim.handle

    def handle(body: bytes) -> Any:
        answer = original(body)
        if answer.status == 200 and answer.fault is None and answer.outcome == "ok":
            answer.body = [change(b"".join(answer.body))]
        return answer

    sim.handle = handle  # type: ignore[method-assign]


def key_properties(run: Run, stream: str) -> list[str]:
    for line in run.stdout.splitlines():
        msg = json.loads(line) if line.startswith("{") else {}
        if msg.get("type") == "SCHEMA" and msg["stream"] == stream:
            return list(msg["key_properties"])
    raise AssertionError(f"no SCHEMA of {stream}")


def test_filters_of_the_reports_read_by_id_are_sent_and_applied() -> None:
    with Sandbox(small_world(visitor_sessions_per_day=10)) as sim:
        chats = sim.truth("get.chats_report")
        left_out = chats[0]["id"]
        filters = {"chat_messages": {"field": "chat_id", "operator": "!=", "value": left_out},
                   "visitors": {"field": "visits_count", "operator": ">", "value": 1}}
        streams = {"chat_messages", "visitor_sessions", "visitors"}
        run = run_tap(tap_config(sim, filters=filters), catalog=catalog(streams), timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        for method, stream in (("get.chat_messages_report", "chat_messages"), ("get.visitors_report", "visitors")):
            sent = [e.params for e in sim.log if e.method == method]
            assert sent, method
            assert all(p.get("filter") == filters[stream] for p in sent), sent[:2]
    messages = run.records["chat_messages"]
    assert messages
    assert left_out not in {m["chat_id"] for m in messages}
    visitors: list[dict[str, Any]] = run.records["visitors"]
    assert visitors
    assert all(v["visits_count"] > 1 for v in visitors)


def test_a_financial_summary_filter_is_sent_and_a_refusal_named() -> None:
    with Sandbox(small_world()) as sim:
        flt = {"field": "date", "operator": ">=", "value": "2026-01-02"}
        run = run_tap(tap_config(sim, filters={"financial_summary": flt}), catalog=catalog({"financial_summary"}),
                      timeout=120)
        sent = [e.params for e in sim.log if e.method == "get.financial_summary_report"]
    assert sent
    assert sent[0].get("filter") == flt
    # the simulator, like the spec, marks no field of this report filterable
    assert run.returncode == 1
    errors = error_lines(run.stderr)
    assert len(errors) == 1, errors
    assert "`filters`" in errors[0]
    assert "Traceback" not in run.stderr


def test_api_requests_declare_no_key_that_merges_distinct_requests() -> None:
    """`request_id` is whatever id the caller sent: here every caller sends 1 and calls one method."""

    def constant_ids(body: bytes) -> bytes:
        doc = json.loads(body)
        for row in (doc.get("result") or {}).get("data") or []:
            row.update(request_id=1, method="get.calls_report")
        return json.dumps(doc).encode()

    with Sandbox(small_world(api_requests_per_day=9)) as sim:
        rewrite(sim, constant_ids)
        run = run_tap(tap_config(sim), catalog=catalog({"api_requests"}), timeout=120)
        rows = sim.truth("get.api_requests_report", START + " 00:00:00", END)
    assert run.returncode == 0, run.stderr[-2000:]
    fields = run.schemas["api_requests"]["properties"]
    truth = [as_emitted({k: v for k, v in r.items() if k in fields}) for r in rows]
    for r in truth:
        r.update(request_id=1, method="get.calls_report")
    # the premise: several distinct requests share their request_id and method
    assert max(Counter((r["request_id"], r["method"]) for r in truth).values()) > 1
    # the documented key (none: any key would make an upserting target merge distinct requests)
    assert key_properties(run, "api_requests") == list(method_and_key("api_requests")[1])
    # nothing lost, nothing doubled at the windows' shared boundary seconds (the simulator's till is inclusive)
    assert Counter(map(repr, run.records["api_requests"])) == Counter(map(repr, truth))


def wrong_shapes(body: bytes) -> bytes:
    """Calls as a server that sends some values in another shape than the spec declares."""
    doc = json.loads(body)
    for row in (doc.get("result") or {}).get("data") or []:
        if "talk_duration" not in row:
            continue
        row["id"] = str(row["id"])  # a digit string for an integer
        if row["talk_duration"] is not None:
            row["talk_duration"] = "n/a"  # no integer at all
        if isinstance(row.get("contact_phone_number"), str) and row["contact_phone_number"].isdigit():
            row["contact_phone_number"] = int(row["contact_phone_number"])  # a number for a string
        if row.get("sale_cost") is not None:
            row["sale_cost"] = str(row["sale_cost"])  # a numeric string for a number
        if row.get("is_lost") is not None:
            row["is_lost"] = str(row["is_lost"]).lower()  # "true"/"false" for a boolean
        for tag in row.get("tags") or []:
            tag["tag_id"] = "x"  # nested: no integer
    return json.dumps(doc).encode()


def test_values_of_the_wrong_shape_never_break_the_schema_nor_vanish_silently() -> None:
    import jsonschema

    with Sandbox(small_world()) as sim:
        rewrite(sim, wrong_shapes)
        run = run_tap(tap_config(sim), catalog=catalog({"calls"}), timeout=120)
        truth = sim.truth("get.calls_report", START + " 00:00:00", END)
    assert run.returncode == 0, run.stderr[-2000:]
    schema = run.schemas["calls"]
    for record in run.records["calls"]:
        jsonschema.validate(record, schema)
    expected = {}
    for row in truth:
        want = as_emitted(row)
        if want["talk_duration"] is not None:
            want["talk_duration"] = None
        if isinstance(row.get("contact_phone_number"), str) and row["contact_phone_number"].isdigit():
            want["contact_phone_number"] = str(int(row["contact_phone_number"]))
        for tag in want.get("tags") or []:
            tag["tag_id"] = None
        expected[row["id"]] = want
    emitted = {r["id"]: r for r in run.records["calls"]}
    assert emitted == expected
    # each null the tap had to make is told: stream, field and how many
    warned: Counter[str] = Counter()
    for line in run.stderr.splitlines():
        match = re.search(r"calls: (\d+) value\(s\) of field `([^`]+)`", line)
        if match and "| WARNING" in line:
            warned[match.group(2)] += int(match.group(1))
    assert set(warned) == {"talk_duration", "tags[].tag_id"}
    # counted per page read: a record read twice at a shared window boundary is counted twice
    assert warned["talk_duration"] >= sum(1 for r in truth if r["talk_duration"] is not None) > 0
    assert warned["tags[].tag_id"] >= sum(len(r.get("tags") or []) for r in truth) > 0


def test_the_decoder_converts_what_it_faithfully_can_and_nulls_the_rest_aloud(caplog) -> None:
    import logging

    from tap_comagic.client import load_schema
    from tap_comagic.shapes import RecordDecoder

    schema = {"properties": {"id": {"type": ["integer", "null"]}, "cost": {"type": ["number", "null"]},
                             "name": {"type": ["string", "null"]}, "ok": {"type": ["boolean", "null"]},
                             "list": {"type": ["array", "null"], "items": {"type": ["string", "null"]}}}}
    decode = RecordDecoder("s", schema, ["id", "cost", "name", "ok", "list"], logging.getLogger("tap-test"))
    typed = b'[{"id": 1, "cost": 2, "name": "a", "ok": true, "list": ["x"], "unasked": 1}]'
    assert list(decode(page_data(typed))) == [{"id": 1, "cost": 2, "name": "a", "ok": True, "list": ["x"]}]
    mixed = (b'[{"id": "12", "cost": "2.5", "name": 7, "ok": "false", "list": [3, null]},'
             b' {"id": "abc", "cost": "nan", "name": {"a": 1}, "ok": 2, "list": "x"}, 5]')
    with caplog.at_level(logging.WARNING, logger="tap-test"):
        rows = list(decode(page_data(mixed)))
    assert rows == [{"id": 12, "cost": 2.5, "name": "7", "ok": False, "list": ["3", None]},
                    {"id": None, "cost": None, "name": '{"a":1}', "ok": None, "list": None}]
    told = " ".join(caplog.messages)
    for field in ("`id`", "`cost`", "`ok`", "`list`", "not JSON objects"):
        assert field in told
    # the spec's string-declared chats.duration, declared an integer here, still reads a digit string
    chats = load_schema("chats")[0]
    assert list(RecordDecoder("chats", chats, ["duration"], logging.getLogger("tap-test"))(
        page_data(b'[{"duration": "42"}]'))) == [{"duration": 42}]


# ---- daylight saving time: the repeated autumn hour -----------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc
# one call every 7 minutes across the night the clocks go back (2026-10-25, 03:00 CEST -> 02:00 CET):
# both occurrences of 02:xx hold calls: 02:06-02:55 at +02:00, then 02:02-02:58 at +01:00
AUTUMN = [dt.datetime(2026, 10, 24, 22, tzinfo=UTC) + dt.timedelta(minutes=7 * i) for i in range(52)]


def wall(moment: dt.datetime) -> str:
    return moment.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S")


def autumn_server(sim: Sandbox, keeps: str) -> None:
    """get.calls_report as a server keeping ``instants`` (sorted by them; it reads an ambiguous parameter
    as the first occurrence) or ``wall`` times (sorted and compared as strings)."""
    from tap_comagic.sandbox.server import _Answer

    original = sim.handle

    def handle(body: bytes) -> Any:
        request = json.loads(body)
        if request.get("method") != "get.calls_report":
            return original(body)
        params = request["params"]
        low, high = params["date_from"], params["date_till"]
        if keeps == "instants":
            first = [dt.datetime.fromisoformat(t).replace(tzinfo=BERLIN) for t in (low, high)]
            rows = [m for m in AUTUMN if first[0] <= m <= first[1]]
        else:
            rows = sorted((m for m in AUTUMN if low <= wall(m) <= high), key=wall)
        page = rows[params["offset"]:params["offset"] + params["limit"]]
        data = [{"id": AUTUMN.index(m) + 1, "start_time": wall(m)} for m in page]
        result = {"data": data, "metadata": {"total_items": len(rows)}}
        return _Answer(body=[json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()])

    sim.handle = handle  # type: ignore[method-assign]


def autumn_run(keeps: str) -> list[dict[str, Any]]:
    with Sandbox(small_world(timezone="Europe/Berlin")) as sim:
        autumn_server(sim, keeps)
        # windows of a day from 02:30: one boundary falls inside the repeated hour
        config = tap_config(sim, start_date="2026-10-24 02:30:00", end_date="2026-10-25 06:00:00",
                            timezone="Europe/Berlin", page_size=5)
        run = run_tap(config, catalog=catalog({"calls"}), timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    calls = run.records["calls"]
    assert sorted(c["id"] for c in calls) == list(range(1, len(AUTUMN) + 1))  # each once, none lost
    return calls


def test_a_report_sorted_by_instant_gets_both_offsets_of_the_repeated_hour_right() -> None:
    for call in autumn_run("instants"):
        assert dt.datetime.fromisoformat(call["start_time"]) == AUTUMN[call["id"] - 1], call


def test_a_report_sorted_by_wall_time_gets_one_of_the_two_valid_offsets() -> None:
    for call in autumn_run("wall"):
        local = dt.datetime.fromisoformat(wall(AUTUMN[call["id"] - 1]))
        readings = {local.replace(tzinfo=BERLIN, fold=f).astimezone(UTC) for f in (0, 1)}
        assert dt.datetime.fromisoformat(call["start_time"]) in readings, call


def test_bookmarks_compare_instants_across_the_offset_change() -> None:
    from tap_comagic.tap import TapCoMagic

    first, second = "2026-10-25T02:50:00+02:00", "2026-10-25T02:10:00+01:00"  # 00:50 and 01:10 UTC
    mark = {"replication_key": "start_time", "replication_key_value": first}
    # calls reads from where call_legs needs; the streams of a tap not running read the account of no id
    state = {"bookmarks": {s: {"partitions": [{"context": {"customer_id": None}, **mark}]}
                           for s in ("calls", "call_legs")}}
    tap = TapCoMagic(config={"access_token": "k", "start_date": "2026-10-01", "end_date": "2026-10-31",
                             "timezone": "Europe/Berlin", "lookback_days": 0}, state=state)
    calls: Any = tap.streams["calls"]
    calls._increment_stream_state({"start_time": first})
    calls._increment_stream_state({"start_time": second})
    assert calls.bookmarks.candidate == second
    assert calls.compare_start_date(second, first) == second
    # resuming from 02:50 (first occurrence) asks from before both 02:50s, however the API reads them
    calls._write_starting_replication_value(None)
    assert calls.bounds(None)[0] == dt.datetime(2026, 10, 25, 1, 50)
