"""The tap against servers that answer a little differently from ours: the real API's details that no
public source settles (no total_items, ISO "T" date-times with fractions) and a wrong address."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tap_comagic.sandbox import Faults, Sandbox, SandboxConfig
from tests.tap_harness import as_emitted, bookmarks_of, by_key, discover, run_tap, select

START = "2026-01-01"
STREAMS = {"calls", "chats", "chat_messages"}


def instants(value: Any) -> Any:
    """Date-time strings as moments, so "…:56.000+03:00" and "…:56+03:00" compare equal."""
    if isinstance(value, dict):
        return {k: instants(v) for k, v in value.items()}
    if isinstance(value, list):
        return [instants(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d", value):
        return dt.datetime.fromisoformat(value)
    return value


def rewrite(sim: Sandbox, change: Callable[[bytes], bytes]) -> None:
    original = sim.handle

    def handle(body: bytes) -> Any:
        answer = original(body)
        if answer.status == 200 and answer.fault is None:
            answer.body = [change(b"".join(answer.body))]
        return answer

    sim.handle = handle  # type: ignore[method-assign]


def without_total(body: bytes) -> bytes:
    doc = json.loads(body)
    doc.get("result", {}).get("metadata", {}).pop("total_items", None)
    return json.dumps(doc).encode()


def iso_with_fractions(body: bytes) -> bytes:
    return re.sub(rb'"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)"', rb'"\1T\2.000"', body)


@pytest.fixture(params=[without_total, iso_with_fractions], ids=["no-total_items", "iso-T-fractions"])
def variant(request: pytest.FixtureRequest) -> Iterator[tuple[Sandbox, Callable[[bytes], bytes]]]:
    with Sandbox(SandboxConfig(seed=21, start=START, days=9, calls_per_day=45, chats_per_day=20)) as sim:
        yield sim, request.param


def test_every_record_arrives_once_with_offsets(variant):
    sim, change = variant
    config = {"api_url": sim.url, "access_token": sim.api_key, "start_date": START,
              "end_date": "2026-01-09 23:59:59", "window_days": 3, "page_size": 50, "retry_backoff_seconds": 0.01}
    catalog = select(discover(config), STREAMS)
    rewrite(sim, change)
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    for stream, method, key in (("calls", "get.calls_report", ("id",)), ("chats", "get.chats_report", ("id",))):
        truth = [as_emitted(r) for r in sim.truth(method)]
        emitted = run.records[stream]
        assert len(emitted) == len(truth)
        assert instants(by_key(emitted, key)) == instants(by_key(truth, key))
    messages = sim.truth("get.chat_messages_report", chat_ids=[c["id"] for c in sim.truth("get.chats_report")])
    got = sorted(map(repr, instants(run.records["chat_messages"])))
    assert got == sorted(repr(instants(as_emitted(m))) for m in messages)
    bookmark = bookmarks_of(run.state)["calls"]["replication_key_value"]
    assert bookmark.endswith("+00:00")  # datetime_output utc, the default
    if change is without_total:  # without a total, pages are read one after another until one is short
        sent = [e for e in sim.log if e.method == "get.calls_report"]
        assert len(sent) == sum(len(sim.truth("get.calls_report", a, b)) // 50 + 1 for a, b in (
            ("2026-01-01 00:00:00", "2026-01-04 00:00:00"), ("2026-01-04 00:00:00", "2026-01-07 00:00:00"),
            ("2026-01-07 00:00:00", "2026-01-10 00:00:00")))


def test_a_wrong_address_fails_at_once_naming_api_url():
    with Sandbox(SandboxConfig(seed=1, days=2)) as sim:
        config = {"api_url": sim.url.replace("/v2.0", "/v1"), "access_token": sim.api_key, "start_date": START,
                  "end_date": "2026-01-02"}
        run = run_tap(config, catalog=select(discover(config), {"calls"}))
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, errors
    assert "`api_url`" in errors[0]
    assert "HTTP 404" in errors[0]
    assert "retry" not in run.stderr
    assert "Traceback" not in run.stderr


def test_a_server_that_wants_the_specs_chat_id_gets_one_chat_per_request():
    with Sandbox(SandboxConfig(seed=23, start=START, days=4, chats_per_day=15)) as sim:
        original = sim.handle

        def handle(body: bytes) -> Any:
            request = json.loads(body)
            if "chat_ids" in request.get("params", {}):  # answer as a server that knows only `chat_id`
                error = {"code": -32602, "message": "Required parameter missed",
                         "data": {"mnemonic": "required_parameter_missed", "field": "chat_id"}}
                answer = original(body)
                answer.body = [json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error}).encode()]
                return answer
            return original(body)

        sim.handle = handle  # type: ignore[method-assign]
        config = {"api_url": sim.url, "access_token": sim.api_key, "start_date": START,
                  "end_date": "2026-01-04 23:59:59", "window_days": 2, "max_parallel_requests": 3}
        run = run_tap(config, catalog=select(discover(config), {"chat_messages"}))
        assert run.returncode == 0, run.stderr[-2000:]
        chat_ids = [c["id"] for c in sim.truth("get.chats_report")]
        expected = [as_emitted(m) for m in sim.truth("get.chat_messages_report", chat_ids=chat_ids)]
        assert sorted(map(repr, run.records["chat_messages"])) == sorted(map(repr, expected))
        per_chat = [e for e in sim.log if e.method == "get.chat_messages_report" and "chat_id" in e.params]
        assert len(per_chat) == len(chat_ids)


def test_a_disabled_child_report_is_skipped_once_however_many_windows():
    with Sandbox(SandboxConfig(seed=25, start=START, days=6),
                 faults=Faults(disabled_methods=frozenset({"get.chat_messages_report"}))) as sim:
        config = {"api_url": sim.url, "access_token": sim.api_key, "start_date": START,
                  "end_date": "2026-01-06 23:59:59", "window_days": 1}
        run = run_tap(config, catalog=select(discover(config), {"chats", "chat_messages"}))
        assert run.returncode == 0, run.stderr[-2000:]
        assert len(run.records["chats"]) == len(sim.truth("get.chats_report"))
        warnings = [line for line in run.stderr.splitlines() if "| WARNING" in line and "chat_messages" in line]
        assert len(warnings) == 1, warnings
        assert len([e for e in sim.log if e.method == "get.chat_messages_report"]) == 1
