"""The two private singer-sdk members the tap still overrides, pinned: if an SDK release stops calling
either for every record, these fail (rather than the tap silently losing its window-end bookmarks or
its fast record path).

- ``Stream._increment_stream_state``: the SDK would move the bookmark on every record; the tap's moves
  at window ends (no public hook replaces it).
- ``Stream._generate_record_messages``: skips the SDK's per-record deselection and conformance passes,
  which have nothing to do on the tap's records (about 10x the cost of the record's message otherwise).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tap_comagic.client import CoMagicStream
from tap_comagic.reports import ReportStream
from tap_comagic.sandbox import Sandbox
from tests.reliability_helpers import catalog, tap_config
from tests.tap_harness import bookmarks_of, run_tap, small_world


def test_the_sdk_calls_both_overrides_once_per_record(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: Counter[str] = Counter()
    generate, increment = CoMagicStream._generate_record_messages, ReportStream._increment_stream_state

    def spy_generate(self: Any, record: dict[str, Any]) -> Any:
        calls["generate"] += 1
        return generate(self, record)

    def spy_increment(self: Any, latest_record: dict[str, Any], *, context: Any = None) -> None:
        calls["increment"] += 1
        increment(self, latest_record, context=context)

    monkeypatch.setattr(CoMagicStream, "_generate_record_messages", spy_generate)
    monkeypatch.setattr(ReportStream, "_increment_stream_state", spy_increment)
    with Sandbox(small_world()) as sim:
        run = run_tap(tap_config(sim), catalog=catalog({"goals"}), clock=sim)
    records = len(run.records["goals"])
    assert records > 0
    assert calls == {"generate": records, "increment": records}


def test_a_run_stopped_by_the_daily_limit_leaves_no_sdk_progress_markers_in_its_state() -> None:
    """The stop ends the SDK's sync early; its state is still finalized as a finished sync's is (no
    `starting_replication_value` or progress markers for the next run to trip on)."""
    with Sandbox(small_world(day_limit=6, calls_per_day=24, chats_per_day=6)) as sim:
        run = run_tap(tap_config(sim, page_size=10, window_days=2),
                      catalog=catalog({"calls", "chats", "chat_messages", "goals"}), clock=sim)
    assert run.returncode == 0
    assert [w for w in run.warnings if "daily" in w.lower()], "the budget did not stop the run: nothing tested"
    final = bookmarks_of(run.states[-1])
    assert {key for bookmark in final.values() for key in bookmark} <= {
        "context", "replication_key", "replication_key_value", "resume_from", "refused_fields"}, final
