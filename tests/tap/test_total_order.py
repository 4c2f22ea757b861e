"""Offset pages of a server that orders tied rows differently on each request (as a database answering
LIMIT/OFFSET may): every report still equals the truth, and with a stable order no request is added."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tap_comagic.sandbox import Sandbox, SandboxConfig
from tests.tap_harness import REPORTS, Run, as_emitted, by_key, discover, keys_of, run_tap, select

START, END, DAYS = "2026-01-01", "2026-01-06 23:59:59", 6
PAGE, WINDOW_DAYS = 5, 2
V3 = {"sales": ("get.sales_report", ("id",)), "api_requests": ("get.api_requests_report",
                                                             ("date_time", "request_id", "method"))}
WINDOWED = {**{s: (m, k) for s, (m, k, _) in REPORTS.items()}, **V3}
STREAMS = set(WINDOWED) | {"chat_messages", "visitors", "financial_summary"}


def world(unstable: bool) -> SandboxConfig:
    return SandboxConfig(seed=41, start=START, days=DAYS, calls_per_day=30, chats_per_day=8, goals_per_day=20,
                         offline_messages_per_day=10, visitor_sessions_per_day=25, api_requests_per_day=10,
                         reorder_ties=unstable, unsorted_any_order=unstable)


def synced(unstable: bool) -> Iterator[tuple[Sandbox, Run]]:
    with Sandbox(world(unstable)) as sim:
        cfg = {"api_url": sim.url, "access_token": sim.api_key, "start_date": START, "end_date": END,
               "window_days": WINDOW_DAYS, "page_size": PAGE, "max_parallel_requests": 3,
               "retry_backoff_seconds": 0.01}
        run = run_tap(cfg, catalog=select(discover(cfg), STREAMS))
        assert run.returncode == 0, run.stderr[-3000:]
        yield sim, run


@pytest.fixture(scope="module")
def unstable() -> Iterator[tuple[Sandbox, Run]]:
    yield from synced(True)


@pytest.fixture(scope="module")
def stable() -> Iterator[tuple[Sandbox, Run]]:
    yield from synced(False)


def windows() -> list[tuple[str, str]]:
    fmt = "%Y-%m-%d %H:%M:%S"
    cur, end = dt.datetime.fromisoformat(START), dt.datetime.fromisoformat(END)
    out = []
    while cur < end:
        nxt = min(cur + dt.timedelta(days=WINDOW_DAYS), end)
        out.append((cur.strftime(fmt), nxt.strftime(fmt)))
        cur = nxt
    return out


@pytest.mark.parametrize("stream", sorted(WINDOWED))
def test_each_windowed_report_equals_the_truth_under_reordering(unstable: tuple[Sandbox, Run], stream: str) -> None:
    sim, run = unstable
    method, key = WINDOWED[stream]
    expected = [as_emitted(r) for r in sim.truth(method, START + " 00:00:00", END)]
    emitted = run.records[stream]
    assert len(expected) > (0 if stream == "sales" else 3 * PAGE)  # sales are few: a page or so
    assert len(emitted) == len(set(keys_of(emitted, key))), "a record was emitted twice"
    assert by_key(emitted, key) == by_key(expected, key)


def test_children_and_months_equal_the_truth_under_reordering(unstable: tuple[Sandbox, Run]) -> None:
    sim, run = unstable
    chat_ids = [c["id"] for c in sim.truth("get.chats_report", START + " 00:00:00", END)]
    messages = [as_emitted(m) for m in sim.truth("get.chat_messages_report", chat_ids=chat_ids)]
    assert Counter(map(repr, run.records["chat_messages"])) == Counter(map(repr, messages))
    sessions = sim.truth("get.visitor_sessions_report", START + " 00:00:00", END)
    visitors = {s["visitor_id"] for s in sessions if s["visitor_id"] is not None}
    assert sorted(v["id"] for v in run.records["visitors"]) == sorted(visitors)
    days = [as_emitted(r) for r in sim.truth("get.financial_summary_report", year=2026, month=1)
            if r["date"][:10] <= END[:10]]
    assert len(days) > PAGE
    assert by_key(run.records["financial_summary"], ("date",)) == by_key(days, ("date",))


def pages_of(sim: Sandbox, method: str) -> int:
    """Windows + pages: what a stable order needs (the last window asks one second more)."""
    return sum(max(1, math.ceil(len(sim.truth(method, a, b)) / PAGE)) for a, b in windows())


@pytest.mark.parametrize("stream", sorted(WINDOWED))
def test_a_stable_order_costs_windows_plus_pages(stable: tuple[Sandbox, Run], stream: str) -> None:
    sim, run = stable
    method, key = WINDOWED[stream]
    sent = [e for e in sim.log if e.method == method]
    assert pages_of(sim, method) <= len(sent) <= pages_of(sim, method) + 1
    assert by_key(run.records[stream], key) == by_key([as_emitted(r) for r in sim.truth(
        method, START + " 00:00:00", END)], key)


def test_reordering_costs_a_bounded_number_of_requests_more(stable: tuple[Sandbox, Run],
                                                             unstable: tuple[Sandbox, Run]) -> None:
    def count(sim: Sandbox) -> Counter[str]:
        return Counter(e.method for e in sim.log if (e.method or "").startswith("get."))

    calm, shuffled = count(stable[0]), count(unstable[0])
    report: dict[str, Any] = {m: (calm[m], shuffled[m]) for m in sorted(calm)}
    print("requests (stable, reordered):", report)
    # re-reading pieces of a page each: about twice the pages more, never one request per row
    assert sum(shuffled.values()) <= 4 * sum(calm.values()), report
