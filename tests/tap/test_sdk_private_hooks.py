"""The singer-sdk members the tap overrides although the SDK does not offer them, pinned: if an SDK release
stops calling them as the tap needs, these fail (rather than the tap silently losing its window-end
bookmarks, its fast record path, or the accounts after the first).

- ``Stream._increment_stream_state``: the SDK would move the bookmark on every record; the tap's moves
  at window ends (no public hook replaces it).
- ``Stream._generate_record_messages``: skips the SDK's per-record deselection and conformance passes,
  which have nothing to do on the tap's records (about 10x the cost of the record's message otherwise).
- ``Tap.sync_all`` and ``Tap.run_sync_dry_run`` (final): one set of streams per account, one account
  after another.
- ``Stream._sync_records(context, write_messages=False)`` and ``Stream._write_state_message``, which the
  BATCH path (``tap_comagic/batches.py``) calls and gates: pinned by the behaviour they give, in
  ``tests/reliability/test_batch_stops.py`` (no state before the files of what it covers) and
  ``tests/tap/test_datetime_output_and_batches.py`` (the files hold the RECORD path's records).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from singer_sdk import Tap

from tap_comagic.client import CoMagicStream
from tap_comagic.reports import ReportStream
from tap_comagic.sandbox import Sandbox, agency_demo
from tap_comagic.tap import TapCoMagic
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


def test_the_sdks_cli_reads_the_accounts_one_after_another_through_the_two_final_methods(tmp_path: Path) -> None:
    """``Tap.sync_all`` and ``Tap.run_sync_dry_run`` are final in the SDK, and the tap overrides both to read
    one set of streams per account. Pinned: if a release of the SDK lifts `final` (a supported hook may
    have come), or its CLI stops calling them (the accounts after the first would be lost), this fails."""
    assert getattr(Tap.sync_all, "__final__", False)
    assert getattr(Tap.run_sync_dry_run, "__final__", False)
    with Sandbox(agency_demo(agent_key="agent-key-pin", start="2026-01-01", days=2)) as sim:
        config = {"api_url": sim.url, "access_token": "agent-key-pin", "customers": "all",
                  "start_date": "2026-01-01", "end_date": "2026-01-02 23:59:59", "retry_backoff_seconds": 0.01}
        (tmp_path / "config.json").write_text(json.dumps(config))
        (tmp_path / "catalog.json").write_text(json.dumps(catalog({"goals"})))
        cli = TapCoMagic.cli
        sync = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.json"),
                                        "--catalog", str(tmp_path / "catalog.json")])
        dry = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.json"), "--test"])
    assert sync.exit_code == 0, sync.output
    assert dry.exit_code == 0, dry.output
    assert account_order(sync.stdout) == [5001, 5002]  # 5003 refuses the agent's IP; 5004 is archived
    assert account_order(dry.stdout) == [5001]  # the dry run reads the first account


def account_order(stdout: str) -> list[int]:
    """The accounts of the RECORD lines, in the order they first come."""
    order: list[int] = []
    for line in stdout.splitlines():
        message = json.loads(line) if line.startswith("{") else {}
        if message.get("type") == "RECORD" and message["record"]["customer_id"] not in order:
            order.append(message["record"]["customer_id"])
    return order
