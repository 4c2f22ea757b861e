"""The simulator gives the analytics marts something to tell apart: lost calls called back within a day, later
or never; ad campaigns with a cost on some days and none on others. Deterministic, and late records leave
the calls already there as they were."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from tap_comagic.sandbox import Sandbox, SandboxConfig

RANGE = ("2026-01-01 00:00:00", "2026-01-12 23:59:59")


def config() -> SandboxConfig:
    return SandboxConfig(seed=3, start="2026-01-01", days=12)


def callbacks(calls: list[dict[str, Any]]) -> Counter[str]:
    """Each lost incoming call: called back within 24 hours, later, or never (an outgoing call to its number
    after it)."""
    start = {c["id"]: dt.datetime.fromisoformat(c["start_time"]) for c in calls}
    out = [c for c in calls if c["direction"] == "out"]
    kinds: Counter[str] = Counter()
    for lost in (c for c in calls if c["is_lost"] and c["direction"] == "in"):
        after = [start[o["id"]] - start[lost["id"]] for o in out
                 if o["contact_phone_number"] == lost["contact_phone_number"] and start[o["id"]] > start[lost["id"]]]
        kinds["within" if any(d <= dt.timedelta(hours=24) for d in after) else "later" if after else "never"] += 1
    return kinds


def test_lost_calls_are_called_back_within_a_day_later_or_never() -> None:
    kinds = callbacks(Sandbox(config()).truth("get.calls_report", *RANGE))
    assert min(kinds["within"], kinds["later"], kinds["never"]) >= 3, kinds


def test_calls_are_the_same_on_every_build_and_late_calls_change_none_of_them() -> None:
    first = Sandbox(config()).truth("get.calls_report", *RANGE)
    sim = Sandbox(config())
    assert sim.truth("get.calls_report", *RANGE) == first
    late = set(sim.add_late_records(30, report="calls", date_from=RANGE[0], date_till=RANGE[1]))
    assert [c for c in sim.truth("get.calls_report", *RANGE) if c["id"] not in late] == first


def test_ad_campaigns_cost_something_on_some_days_and_nothing_on_others() -> None:
    sim = Sandbox(config())
    rows = [r for site in sim.truth("get.sites")
            for r in sim.truth("get.campaign_daily_stat", *RANGE, site_id=site["id"])]
    days = {}
    for r in rows:
        if r["cost_sum"] is not None:  # a campaign of an ad system
            days.setdefault(r["campaign_id"], Counter())["paid" if r["cost_sum"] > 0 else "free"] += 1
    assert days, "no campaign of an ad system"
    assert all(c["paid"] and c["free"] for c in days.values()), days
    free = [r for r in rows if r["cost_sum"] == 0]
    assert all(r["shows_count"] == 0 and r["clicks_count"] == 0 for r in free)
