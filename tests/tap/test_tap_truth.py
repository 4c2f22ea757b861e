"""The tap against the simulator: every stream equals the ground truth, with the fewest requests."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator

import pytest

from tap_comagic.sandbox import Sandbox, SandboxConfig
from tests.tap_harness import REPORTS, as_emitted, bookmarks_of, by_key, discover, keys_of, multiset, run_tap, select
from tools.specdoc import ROOT

pytestmark = pytest.mark.slow  # 200 days of a full-size account, read twice (inclusive and exclusive till)

START, DAYS, WINDOW, PAGE = "2026-01-01", 200, 30, 500
END = "2026-07-19 23:59:59"  # the last day of data


def config(sim: Sandbox, **extra: object) -> dict[str, object]:
    return {"api_url": sim.url, "access_token": sim.api_key, "start_date": START, "end_date": END,
            "window_days": WINDOW, "page_size": PAGE, "lookback_days": 3, "retry_backoff_seconds": 0.01,
            **extra}


@pytest.fixture(scope="module", params=[False, True], ids=["till-inclusive", "till-exclusive"])
def world(request: pytest.FixtureRequest) -> Iterator[tuple[Sandbox, object]]:
    with Sandbox(SandboxConfig(seed=7, start=START, days=DAYS, till_exclusive=request.param)) as sim:
        cfg = config(sim)
        catalog = select(discover(cfg), set(REPORTS) | {"chat_messages", "financial_summary", "visitors"})
        run = run_tap(cfg, catalog=catalog)
        assert run.returncode == 0, run.stderr[-3000:]
        yield sim, run


def windows() -> list[tuple[str, str]]:
    start, end = dt.datetime.fromisoformat(START), dt.datetime.fromisoformat(END)
    out, cur = [], start
    while cur < end:
        nxt = min(cur + dt.timedelta(days=WINDOW), end)
        out.append((cur, nxt))
        cur = nxt
    fmt = "%Y-%m-%d %H:%M:%S"
    return [(a.strftime(fmt), b.strftime(fmt)) for a, b in out]


@pytest.mark.parametrize("stream", sorted(REPORTS))
def test_windowed_stream_equals_ground_truth(world, stream):
    sim, run = world
    method, key, _ = REPORTS[stream]
    truth = [as_emitted(r, run.schemas[stream]) for r in sim.truth(method, START + " 00:00:00", END)]
    emitted = run.records[stream]
    assert len(truth) > 100
    assert len(emitted) == len(set(keys_of(emitted, key))), "a record was emitted twice in one run"
    assert multiset(emitted) == multiset(truth)


def test_chat_messages_equal_the_messages_of_the_chats(world):
    sim, run = world
    chat_ids = [c["id"] for c in run.records["chats"]]
    truth = [as_emitted(m, run.schemas["chat_messages"])
             for m in sim.truth("get.chat_messages_report", chat_ids=chat_ids)]
    assert len(truth) > len(chat_ids)
    assert multiset(run.records["chat_messages"]) == multiset(truth)


def test_every_schema_property_is_emitted(world):
    """Every property of every schema file, the public docs' fields too, is in every record (all selected)."""
    _, run = world
    for stream in (*REPORTS, "chat_messages", "visitors", "financial_summary"):
        schema = json.loads((ROOT / "tap_comagic" / "schemas" / f"{stream}.json").read_text("utf-8"))
        assert run.records[stream], stream
        names = set(schema["properties"])
        assert all(set(r) == names for r in run.records[stream]), stream


def test_visitors_are_each_visitor_of_the_sessions_once(world):
    sim, run = world
    visitor_ids = {s["visitor_id"] for s in run.records["visitor_sessions"] if s["visitor_id"] is not None}
    emitted = run.records["visitors"]
    assert sorted(v["id"] for v in emitted) == sorted(visitor_ids)
    sample = sorted(visitor_ids)[:20]
    truth = {v: [as_emitted(r, run.schemas["visitors"]) for r in sim.truth("get.visitors_report", visitor_id=v)]
             for v in sample}
    got = by_key(emitted, ("id",))
    for v in sample:
        assert [got[(v,)]] == truth[v]


def test_financial_summary_is_read_month_by_month(world):
    sim, run = world
    truth = [r for m in range(1, 8) for r in sim.truth("get.financial_summary_report", year=2026, month=m)
             if START <= r["date"][:10] <= END[:10]]
    assert by_key(run.records["financial_summary"], ("date",)) == by_key(truth, ("date",))
    calls = [e for e in sim.log if e.method == "get.financial_summary_report"]
    assert len(calls) == 7


@pytest.mark.parametrize("stream", ["calls", "communications", "goals", "call_legs"])
def test_requests_are_pages_plus_windows_no_more(world, stream):
    sim, _ = world
    method = REPORTS[stream][0]
    expected = 0
    for date_from, date_till in windows():
        rows = len(sim.truth(method, date_from, date_till))
        expected += max(1, math.ceil(rows / PAGE))
    sent = [e for e in sim.log if e.method == method]
    assert all(e.outcome == "ok" for e in sent)
    # the last window asks one second more (exclusive date_till): at most one page more in all
    assert expected <= len(sent) <= expected + 1


def test_chat_messages_requests_grow_with_pages_not_with_chats(world):
    sim, run = world
    sent = [e for e in sim.log if e.method == "get.chat_messages_report"]
    chats = len(run.records["chats"])
    messages = len(run.records["chat_messages"])
    assert all("chat_ids" in e.params for e in sent)
    assert len(sent) <= len(windows()) * 2 + math.ceil(messages / PAGE)
    assert len(sent) < chats / 10


def test_fields_sent_are_the_selected_properties(world):
    """Every property of the stream's schema file (all selected here), not the API's default set."""
    sim, _ = world
    for stream, (method, _, _) in REPORTS.items():
        schema = json.loads((ROOT / "tap_comagic" / "schemas" / f"{stream}.json").read_text("utf-8"))
        for sent in (e for e in sim.log if e.method == method):
            assert sorted(sent.params["fields"]) == sorted(schema["properties"])


def test_deselected_fields_are_neither_requested_nor_emitted():
    with Sandbox(SandboxConfig(seed=8, start=START, days=3)) as sim:
        cfg = config(sim, end_date="2026-01-03 23:59:59")
        dropped = {"ua_client_id", "tags", "visitor_city"}
        run = run_tap(cfg, catalog=select(discover(cfg), {"calls"}, {"calls": dropped}))
        assert run.returncode == 0, run.stderr[-2000:]
        sent = [e for e in sim.log if e.method == "get.calls_report"]
        assert sent
        assert all(not dropped & set(e.params["fields"]) for e in sent)
        assert "id" in sent[0].params["fields"]
        assert run.records["calls"]
        assert all(not dropped & set(r) for r in run.records["calls"])


def test_state_bookmarks_are_the_newest_values_with_offsets(world):
    _, run = world
    bookmarks = bookmarks_of(run.state)
    for stream, (_, _, rk) in REPORTS.items():
        newest = max(dt.datetime.fromisoformat(r[rk]) for r in run.records[stream])
        value = bookmarks[stream]["replication_key_value"]
        assert value.endswith("+00:00")  # datetime_output utc, the default
        assert dt.datetime.fromisoformat(value) == newest
