"""Killed at any point (SIGKILL) and restarted with the last STATE it emitted, the tap loses nothing;
records come twice only from the window in flight and the look-back."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from tap_comagic.sandbox import Sandbox
from tests.reliability_helpers import KEYS, RK, START, catalog, compare, run_until, small_world, tap_config, truth
from tests.tap_harness import MOSCOW, bookmarks_of, run_tap

WINDOW_DAYS = 1
PARENTS = frozenset({"calls", "goals", "offline_messages"})
WITH_CHILDREN = frozenset({"calls", "call_legs", "chats", "chat_messages"})
KILLS = 3  # kill points per case, drawn from a seeded generator


def moment(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=MOSCOW)


def kill_points(sim: Sandbox, cfg: dict[str, Any], cat: dict[str, Any], seed: int) -> list[int]:
    """Seeded kill points spread over the RECORD/STATE lines of one whole run."""
    whole = run_until(cfg, kill_after=10**9, catalog=cat)
    assert whole.finished
    rng = random.Random(seed)
    return sorted(rng.sample(range(1, whole.lines_read), KILLS))


def check_resume(sim: Sandbox, cfg: dict[str, Any], streams: frozenset[str], kill_after: int,
                 bound_duplicates: bool) -> None:
    cat = catalog(streams)
    first = run_until(cfg, kill_after=kill_after, catalog=cat)
    assert not first.finished
    second = run_tap(cfg, catalog=cat, state=first.last_state, timeout=120)
    assert second.returncode == 0, second.stderr[-2000:]
    expected = truth(sim, streams)
    both = {s: first.records.get(s, []) + second.records.get(s, []) for s in streams}
    cmp = compare(both, expected)
    assert cmp.lost == 0, f"killed after {kill_after} lines: lost {cmp.detail}"
    assert cmp.ok, cmp.detail
    if not bound_duplicates:
        return
    bookmarks = bookmarks_of(first.last_state or {})
    lookback = dt.timedelta(days=int(cfg["lookback_days"]))
    window = dt.timedelta(days=WINDOW_DAYS)
    for stream in streams:
        value = bookmarks.get(stream, {}).get("replication_key_value")
        resume = moment(value) - lookback if value else moment(START + "T00:00:00")
        rk, key = RK[stream], KEYS[stream]
        seen = {tuple(r.get(k) for k in key) for r in first.records.get(stream, [])}
        for record in second.records.get(stream, []):
            at = moment(record[rk])
            assert at >= resume, f"{stream}: re-read {record[rk]}, before the resume point {resume}"
            if tuple(record.get(k) for k in key) in seen:
                # a record seen twice belongs to the look-back or to the window that was in flight
                assert at <= resume + lookback + window, f"{stream}: duplicate far from the resume point"


@pytest.mark.parametrize("lookback_days", [0, 1])
def test_parent_streams_resume_after_sigkill_with_nothing_lost(lookback_days: int) -> None:
    with Sandbox(small_world()) as sim:
        cfg = tap_config(sim, window_days=WINDOW_DAYS, lookback_days=lookback_days)
        for kill_after in kill_points(sim, cfg, catalog(PARENTS), seed=100 + lookback_days):
            check_resume(sim, cfg, PARENTS, kill_after, bound_duplicates=True)


def test_child_streams_resume_after_sigkill_with_a_look_back() -> None:
    with Sandbox(small_world()) as sim:
        cfg = tap_config(sim, window_days=WINDOW_DAYS, lookback_days=WINDOW_DAYS)
        for kill_after in kill_points(sim, cfg, catalog(WITH_CHILDREN), seed=7):
            check_resume(sim, cfg, WITH_CHILDREN, kill_after, bound_duplicates=False)


def test_child_streams_resume_after_sigkill_without_a_look_back() -> None:
    with Sandbox(small_world()) as sim:
        cfg = tap_config(sim, window_days=WINDOW_DAYS, lookback_days=0)
        cat = catalog(WITH_CHILDREN)
        # kill while the children of a window are read: their parent's window must not count as done
        whole = run_until(cfg, kill_after=10**9, catalog=cat)
        assert whole.finished
        points = [i + 1 for i, kind in enumerate(whole.kinds) if kind in ("call_legs", "chat_messages")]
        assert points, "no child records: nothing to test"
        for kill_after in random.Random(8).sample(points, min(KILLS, len(points))):
            check_resume(sim, cfg, WITH_CHILDREN, kill_after, bound_duplicates=False)
