"""Small daily budgets: each day's run resumes from the last STATE, makes progress, and over the days every
record arrives, none twice except those of the window a stopped run was in."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from typing import Any

import pytest

from tap_comagic.sandbox import Sandbox
from tests.reliability_helpers import (
    END,
    KEYS,
    RK,
    START,
    catalog,
    compare,
    small_world,
    tap_config,
    truth,
)
from tests.tap_harness import MOSCOW, bookmarks_of, run_tap

STREAMS = frozenset({"calls", "call_legs", "chats", "chat_messages"})
PAGE, WINDOW_DAYS, LOOKBACK_DAYS = 20, 1, 1
METHODS = {"calls": "get.calls_report", "call_legs": "get.call_legs_report", "chats": "get.chats_report"}


def moment(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=MOSCOW)


def window_costs(sim: Sandbox) -> list[int]:
    """Requests one window of each family takes: its parent's pages, then its child's."""
    costs = []
    day = dt.datetime.fromisoformat(START)
    for _ in range(4):
        a, b = (x.strftime("%Y-%m-%d %H:%M:%S") for x in (day, day + dt.timedelta(days=WINDOW_DAYS)))
        rows = {m: len(sim.truth(method, a, b)) for m, method in METHODS.items()}
        chats = sim.truth("get.chats_report", a, b)
        messages = len(sim.truth("get.chat_messages_report", chat_ids=[c["id"] for c in chats])) if chats else 0
        pages = {m: max(1, math.ceil(n / PAGE)) for m, n in rows.items()}
        costs += [pages["calls"] + pages["call_legs"], pages["chats"] + math.ceil(messages / PAGE)]
        day += dt.timedelta(days=WINDOW_DAYS)
    return costs


def resume_points(state: dict[str, Any]) -> dict[str, dt.datetime]:
    """Where a run given ``state`` starts each stream (the tap's documented rule, from the state alone)."""
    out = {}
    for stream in STREAMS:
        bookmark = bookmarks_of(state).get(stream, {})
        if bookmark.get("resume_from"):
            out[stream] = moment(bookmark["resume_from"])
        elif bookmark.get("replication_key_value"):
            out[stream] = moment(bookmark["replication_key_value"]) - dt.timedelta(days=LOOKBACK_DAYS)
        else:
            out[stream] = moment(START + "T00:00:00")
    return out


RUN_COST = 1  # every run first looks its account up (get.account): one point before any window


@pytest.mark.parametrize("budget", [6, 8, 11])
def test_daily_runs_under_a_small_budget_deliver_everything_once(budget: int) -> None:
    with Sandbox(small_world(day_limit=budget, calls_per_day=24, chats_per_day=6)) as sim:
        assert RUN_COST + max(window_costs(sim)) <= budget, "the budget must cover one window of each family"
        cfg = tap_config(sim, page_size=PAGE, window_days=WINDOW_DAYS, lookback_days=LOOKBACK_DAYS)
        chat_time = {c["id"]: moment(c["date_time"]) for c in sim.truth("get.chats_report", START + " 00:00:00", END)}
        cat = catalog(STREAMS)
        state: dict[str, Any] = {}
        emitted: dict[str, list[dict[str, Any]]] = {s: [] for s in STREAMS}
        stops = 0
        for day in range(40):
            starts = resume_points(state)
            run = run_tap(cfg, catalog=cat, state=state, clock=sim)
            assert run.returncode == 0
            daily = [w for w in run.warnings if "daily" in w.lower()]
            assert run.warnings == daily[:1], run.warnings  # a stop says so once, and nothing else warns
            for stream in STREAMS:
                seen = Counter(tuple(r.get(k) for k in KEYS[stream]) for r in emitted[stream])
                for record in run.records.get(stream, []):
                    at = chat_time[record["chat_id"]] if stream == "chat_messages" else moment(record[RK[stream]])
                    # a chat's messages come with their chat: they are placed at the chat's time
                    assert at >= starts[stream], f"day {day}: {stream} re-read {at}, before {starts[stream]}"
                    if seen[tuple(record.get(k) for k in KEYS[stream])]:
                        # only the window a stopped run was in comes again (never the look-back)
                        assert at <= starts[stream] + dt.timedelta(days=WINDOW_DAYS), f"day {day}: {stream} {at}"
                emitted[stream] += run.records.get(stream, [])
            if run.states:
                state = run.states[-1]
            if not daily:
                break
            stops += 1
            assert run.states, f"day {day}: stopped without a STATE"
            sim.new_day()
        else:
            pytest.fail("40 days did not finish the sync")
        assert stops >= 2, "the budget did not stop the runs: nothing tested"
        assert not any("resume_from" in b for b in bookmarks_of(state).values()), state
        cmp = compare(emitted, truth(sim, STREAMS))
        assert cmp.ok, cmp.detail  # every record, as the API holds it; repeats were checked run by run
