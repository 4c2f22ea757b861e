"""BATCH files on runs that the daily limit stops: the records read before the stop are in files before the
state, no state covers a record that is in no file, and day after day every record arrives (with no
look-back to make up for a state that ran ahead)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tap_comagic.sandbox import Sandbox
from tests.reliability_helpers import catalog, compare, small_world, tap_config, truth
from tests.tap_harness import bookmarks_of, messages_with_batches, run_tap

STREAMS = frozenset({"calls", "call_legs", "chats", "chat_messages"})
TIME_FIELD = {"calls": "start_time", "chats": "date_time"}


def batch_config(folder: Path) -> dict[str, Any]:
    return {"encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": folder.as_uri(), "prefix": "stopped-"}, "batch_size": 15}


@pytest.mark.parametrize("budget", [7, 10])
def test_batch_runs_stopped_by_the_daily_limit_lose_nothing(budget: int, tmp_path: Path) -> None:
    with Sandbox(small_world(day_limit=budget, calls_per_day=24, chats_per_day=6)) as sim:
        cfg = tap_config(sim, page_size=20, window_days=1, lookback_days=0, batch_config=batch_config(tmp_path))
        state: dict[str, Any] = {}
        got: dict[str, list[dict[str, Any]]] = {s: [] for s in STREAMS}
        written: dict[str, dt.datetime] = {}  # parent stream -> the newest time in its files so far
        stops = checked = 0
        for day in range(60):
            run = run_tap(cfg, catalog=catalog(STREAMS), state=state, clock=sim)
            assert run.returncode == 0, run.stderr[-2000:]
            assert not any(run.records.values()), "BATCH mode wrote RECORD messages"
            kinds = []
            for msg in messages_with_batches(run.stdout):
                kinds.append(msg.get("type"))
                if msg.get("type") == "BATCH":
                    rows = msg["records"]
                    got[msg["stream"]] += [{k: v for k, v in r.items() if k != "customer_id"} for r in rows]
                    if msg["stream"] in TIME_FIELD:
                        newest = max(dt.datetime.fromisoformat(r[TIME_FIELD[msg["stream"]]]) for r in rows)
                        written[msg["stream"]] = max(newest, written.get(msg["stream"], newest))
                elif msg.get("type") == "STATE":
                    for stream, mark in bookmarks_of(msg["value"]).items():
                        if stream in TIME_FIELD and mark.get("replication_key_value"):
                            checked += 1
                            assert stream in written, f"day {day}: a {stream} bookmark before any {stream} file"
                            assert dt.datetime.fromisoformat(mark["replication_key_value"]) <= written[stream]
            if run.states:
                state = run.states[-1]
            if not [w for w in run.warnings if "daily" in w.lower()]:
                break
            stops += 1
            assert kinds[-1] == "STATE", f"day {day}: a stopped run's last message is {kinds[-1]}, not its state"
            sim.new_day()
        else:
            pytest.fail("60 days did not finish the sync")
        assert stops >= 2, "the budget did not stop the runs: nothing tested"
        assert checked > stops
        cmp = compare(got, truth(sim, STREAMS))
        assert cmp.ok, cmp.detail  # every record; a state ahead of the files would have lost some
