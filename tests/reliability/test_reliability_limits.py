"""Rate limits: throttle ahead of the minute limit, wait out limit bursts, stop cleanly on a spent day."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tap_comagic.sandbox import Faults, Sandbox
from tests.reliability_helpers import (
    DEFAULT_STREAMS,
    catalog,
    compare,
    log_lines,
    retry_lines,
    small_world,
    tap_config,
    truth,
)
from tests.tap_harness import Run, run_tap


def test_minute_limit_is_throttled_ahead_and_everything_arrives() -> None:
    minute_limit = 8
    with Sandbox(small_world(minute_limit=minute_limit)) as sim:
        run = run_tap(tap_config(sim, max_parallel_requests=4), catalog=catalog(), clock=sim)
        report_calls = [e for e in sim.log if (e.method or "").startswith("get.")]
        exceeded = [e for e in report_calls if e.outcome == "limit_exceeded"]
        cmp = compare(run.records, truth(sim, DEFAULT_STREAMS))
    assert run.returncode == 0
    assert cmp.ok, cmp.detail
    assert len(report_calls) > 3 * minute_limit  # several minutes' worth: the limit was really in play
    assert exceeded == [], f"{len(exceeded)} limit_exceeded: the throttle did not wait ahead of the limit"
    # it waited for the minute to reset (on the simulator's clock), about once per minute's budget
    assert run.slept >= 60 * (len(report_calls) // minute_limit - 1)


def test_limit_bursts_are_waited_out_and_retried() -> None:
    faults = Faults(seed=5, limit_burst=0.03, limit_reset_seconds=0.3)
    with Sandbox(small_world(), faults=faults) as sim:
        run = run_tap(tap_config(sim), catalog=catalog(), timeout=120)
        cmp = compare(run.records, truth(sim, DEFAULT_STREAMS))
        bursts = sim.injected["limit_burst"]
    assert run.returncode == 0, run.stderr[-2000:]
    assert bursts >= 2
    assert cmp.ok, cmp.detail
    assert len(retry_lines(run.stderr)) >= 2
    assert all("limit_exceeded" in line for line in retry_lines(run.stderr))


def test_limit_errors_without_a_reset_time_wait_out_the_minute() -> None:
    # Bursts of refusals lasting 30 s whose errors carry no reset time; a retry at once is refused again.
    faults = Faults(seed=3, limit_burst=0.1, limit_reset_seconds=30, limit_error_resets=False)
    with Sandbox(small_world(), faults=faults) as sim:
        run = run_tap(tap_config(sim, max_retries=2), catalog=catalog(), clock=sim)
        refused = sorted(e.at for e in sim.log if e.outcome == "limit_exceeded")
        cmp = compare(run.records, truth(sim, DEFAULT_STREAMS))
    bursts, burst_end = 0, float("-inf")
    for at in refused:
        if at >= burst_end:
            bursts, burst_end = bursts + 1, at + 30
    assert bursts >= 2, "the simulator started too few bursts for the test to mean anything"
    assert run.returncode == 0
    assert cmp.ok, cmp.detail
    assert run.slept > 59 * bursts  # each burst was waited out on the simulator's clock ...
    assert len(refused) <= 2 * bursts  # ... not retried into (two workers may each be refused once)


@pytest.fixture(scope="module")
def day_spent() -> Iterator[tuple[Sandbox, Run]]:
    with Sandbox(small_world(day_limit=25)) as sim:
        first = run_tap(tap_config(sim), catalog=catalog(), timeout=120)
        yield sim, first


def test_spent_day_ends_the_run_cleanly_with_a_resume_time(day_spent: tuple[Sandbox, Run]) -> None:
    sim, first = day_spent
    assert first.returncode == 0, first.stderr[-2000:]
    assert "Traceback" not in first.stderr
    warnings = [line for line in log_lines(first.stderr, "WARNING") if "daily" in line.lower()]
    assert warnings, first.stderr[-2000:]
    assert re.search(r"run again after \d{4}-\d\d-\d\d \d\d:\d\d UTC", warnings[0]), warnings[0]
    assert first.states, "no STATE: nothing to resume from"
    assert sum(1 for e in sim.log if e.outcome == "ok" and (e.method or "").startswith("get.")) <= 25


def test_spent_day_warns_once(day_spent: tuple[Sandbox, Run]) -> None:
    _, first = day_spent
    warnings = [line for line in log_lines(first.stderr, "WARNING") if "daily" in line.lower()]
    assert len(warnings) == 1, warnings


def test_a_run_after_the_day_reset_resumes_with_nothing_lost(day_spent: tuple[Sandbox, Run]) -> None:
    sim, first = day_spent
    expected = truth(sim, DEFAULT_STREAMS)
    assert not compare(first.records, expected).ok, "the day limit should have cut the first run short"
    sim.clock.advance(24 * 3600 + 1)
    # what the first run left takes more than 25 points: the windows whose children it did not finish
    # come again (their parents' bookmarks did not pass them)
    sim.new_day(day_limit=1000)
    second = run_tap(tap_config(sim), catalog=catalog(), state=first.state, timeout=120)
    assert second.returncode == 0, second.stderr[-2000:]
    assert not [line for line in log_lines(second.stderr, "WARNING") if "daily" in line.lower()]
    both = {s: first.records.get(s, []) + second.records.get(s, []) for s in DEFAULT_STREAMS}
    cmp = compare(both, expected)
    assert cmp.ok, cmp.detail
    # the second run resumed rather than starting over: it re-read at most the look-back and one window
    assert cmp.duplicates < sum(len(v) for v in expected.values()) / 2
