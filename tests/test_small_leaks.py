"""Smaller leaks: `filters` of the reports read by id or by month, value types against the schema, the
api_requests key, and account zones with daylight saving time."""

from __future__ import annotations

from typing import Any

from tap_comagic.sandbox import Sandbox
from tests.reliability_helpers import catalog, error_lines, small_world, tap_config
from tests.tap_harness import run_tap


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
