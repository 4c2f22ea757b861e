"""Smaller leaks: `filters` of the reports read by id or by month, value types against the schema, the
api_requests key, and account zones with daylight saving time."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from tap_comagic.sandbox import Sandbox
from tests.reliability_helpers import END, START, catalog, error_lines, small_world, tap_config
from tests.tap_harness import Run, as_emitted, run_tap


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
    key = key_properties(run, "api_requests")
    keys = Counter(tuple(r[k] for k in key) for r in run.records["api_requests"])
    assert not key or max(keys.values()) == 1, f"key {key} is not unique: {keys.most_common(2)}"
    # nothing lost, nothing doubled at the windows' shared boundary seconds (the simulator's till is inclusive)
    assert Counter(map(repr, run.records["api_requests"])) == Counter(map(repr, truth))
