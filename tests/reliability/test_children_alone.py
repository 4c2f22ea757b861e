"""Child streams keep their own bookmark: selected without their parent, added after it, or fed by a parent
field the user deselected."""

from __future__ import annotations

from typing import Any

import pytest

from tap_comagic.sandbox import Sandbox, SandboxConfig
from tests.tap_harness import as_emitted, by_key, discover, run_tap, select

START, END = "2026-01-01", "2026-01-30 23:59:59"
PARENT = {"call_legs": "calls", "chat_messages": "chats", "visitors": "visitor_sessions"}
METHOD = {"calls": "get.calls_report", "call_legs": "get.call_legs_report", "chats": "get.chats_report",
          "chat_messages": "get.chat_messages_report", "visitor_sessions": "get.visitor_sessions_report",
          "visitors": "get.visitors_report"}
KEY = {"calls": ("id",), "call_legs": ("id",), "chats": ("id",), "visitors": ("id",), "visitor_sessions": ("id",),
       "chat_messages": ("chat_id", "date_time", "source", "text")}


def world() -> SandboxConfig:
    return SandboxConfig(seed=31, start=START, days=30, calls_per_day=20, chats_per_day=6,
                         visitor_sessions_per_day=10)


def config(sim: Sandbox) -> dict[str, Any]:
    return {"api_url": sim.url, "access_token": sim.api_key, "start_date": START, "end_date": END,
            "window_days": 3, "page_size": 50, "lookback_days": 1, "retry_backoff_seconds": 0.01}


def truth(sim: Sandbox, stream: str) -> list[dict[str, Any]]:
    """The child's records of the whole range, from the simulator alone."""
    if stream == "call_legs":
        rows = sim.truth(METHOD[stream], START + " 00:00:00", END)
    elif stream == "chat_messages":
        chats = sim.truth("get.chats_report", START + " 00:00:00", END)
        rows = sim.truth(METHOD[stream], chat_ids=[c["id"] for c in chats])
    else:
        sessions = sim.truth("get.visitor_sessions_report", START + " 00:00:00", END)
        ids = sorted({s["visitor_id"] for s in sessions if s["visitor_id"] is not None})
        rows = [v for i in ids for v in sim.truth(METHOD[stream], visitor_id=i)]
    return [as_emitted(r) for r in rows]


def requests_made(sim: Sandbox, since: int) -> int:
    return sum(1 for e in sim.log[since:] if (e.method or "").startswith("get."))


@pytest.mark.parametrize("child", ["call_legs", "chat_messages", "visitors"])
def test_a_child_alone_resumes_from_its_own_bookmark(child: str) -> None:
    with Sandbox(world()) as sim:
        cfg = config(sim)
        catalog = select(discover(cfg), {child})
        first = run_tap(cfg, catalog=catalog)
        assert first.returncode == 0, first.stderr[-2000:]
        assert PARENT[child] not in first.records
        expected = truth(sim, child)
        assert len(first.records[child]) == len(expected)
        assert by_key(first.records[child], KEY[child]) == by_key(expected, KEY[child])
        first_requests = requests_made(sim, 0)

        mark = len(sim.log)
        second = run_tap(cfg, catalog=catalog, state=first.state)
        assert second.returncode == 0, second.stderr[-2000:]
        # the look-back (a day of thirty) and its window, not everything since start_date again
        assert len(second.records[child]) < len(first.records[child]) / 5
        assert requests_made(sim, mark) < first_requests / 5


@pytest.mark.parametrize("child", ["call_legs", "chat_messages"])
def test_a_child_added_later_backfills_from_start_date(child: str) -> None:
    parent = PARENT[child]
    with Sandbox(world()) as sim:
        cfg = config(sim)
        first = run_tap(cfg, catalog=select(discover(cfg), {parent}))
        assert first.returncode == 0, first.stderr[-2000:]
        mark = len(sim.log)
        second = run_tap(cfg, catalog=select(discover(cfg), {parent, child}), state=first.state)
        assert second.returncode == 0, second.stderr[-2000:]
        expected = truth(sim, child)
        assert len(second.records[child]) == len(expected)
        assert by_key(second.records[child], KEY[child]) == by_key(expected, KEY[child])
        # the parent emits its look-back only, not its history again
        assert 0 < len(second.records[parent]) < len(first.records[parent]) / 5
        if parent == "calls":  # call_legs take calls' windows: the older ones need no calls request
            calls = [e for e in sim.log[mark:] if e.method == "get.calls_report"]
            assert len(calls) <= 2


@pytest.mark.parametrize("deselect", [False, True], ids=["visitors-alone", "visitor_id-deselected"])
def test_visitors_are_read_for_the_sessions_even_without_their_visitor_id(deselect: bool) -> None:
    with Sandbox(world()) as sim:
        cfg = config(sim)
        streams = {"visitors", "visitor_sessions"} if deselect else {"visitors"}
        catalog = select(discover(cfg), streams, {"visitor_sessions": {"visitor_id"}} if deselect else None)
        run = run_tap(cfg, catalog=catalog)
        assert run.returncode == 0, run.stderr[-2000:]
        expected = truth(sim, "visitors")
        assert expected
        assert len(run.records["visitors"]) == len(expected)
        assert by_key(run.records["visitors"], ("id",)) == by_key(expected, ("id",))
        if deselect:
            assert run.records["visitor_sessions"]
            assert all("visitor_id" not in s for s in run.records["visitor_sessions"])
        else:
            assert "visitor_sessions" not in run.records
