"""How date-times leave the tap (`datetime_output`), bookmarks across the change, and BATCH files.

Expectations come from the simulator's truth (``as_emitted``) and from the RECORD path of the same run,
never from the tap's own conversion.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from tap_comagic.sandbox import Sandbox, SandboxConfig
from tests.tap_harness import as_emitted, bookmarks_of, by_key, discover, messages_with_batches, run_tap, select

START, END = "2026-01-01", "2026-01-06 23:59:59"
UTC = dt.timezone.utc
STREAMS = {"calls", "call_legs", "chats", "chat_messages", "sites", "employees", "account"}


@pytest.fixture(scope="module")
def sim() -> Any:
    with Sandbox(SandboxConfig(seed=21, start=START, days=6)) as sandbox:
        yield sandbox


def cfg(sim: Sandbox, **extra: object) -> dict[str, object]:
    return {"api_url": sim.url, "access_token": sim.api_key, "start_date": START, "end_date": END,
            "window_days": 2, "page_size": 200, "retry_backoff_seconds": 0.01, **extra}


@pytest.fixture(scope="module")
def catalog(sim: Sandbox) -> dict[str, Any]:
    return select(discover(cfg(sim)), STREAMS)


def datetime_values(record: Any) -> list[str]:
    """Every string in a record (nested ones too) that is a date-time with a time of day."""
    if isinstance(record, dict):
        return [v for x in record.values() for v in datetime_values(x)]
    if isinstance(record, list):
        return [v for x in record for v in datetime_values(x)]
    if isinstance(record, str) and len(record) >= 19 and record[4] == "-" and record[10] == "T":
        return [record]
    return []


@pytest.mark.parametrize("output", ["utc", "account_offset"])
def test_records_carry_the_truths_instants_in_the_chosen_form(sim, catalog, output):
    config = cfg(sim) if output == "utc" else cfg(sim, datetime_output=output)
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    utc = output == "utc"
    for stream, method in (("calls", "get.calls_report"), ("chats", "get.chats_report")):
        expected = [as_emitted(r, utc=utc) for r in sim.truth(method, f"{START} 00:00:00", END)]
        assert expected
        assert by_key(run.records[stream], ("id",)) == by_key(expected, ("id",))
    # every stream's date-times, reference tables and nested ones too, in the one form
    suffix = "+00:00" if utc else "+03:00"
    values = [v for s in STREAMS for r in run.records[s] for v in datetime_values(r)]
    assert len(values) > 100
    assert [v for v in values if not v.endswith(suffix)][:3] == []


def test_a_state_written_with_offsets_resumes_at_the_same_instant(sim, catalog):
    """A state of an earlier release (bookmarks "...+03:00") resumes where that instant says, and the
    bookmarks written next are the same instants in UTC."""
    old = run_tap(cfg(sim, datetime_output="account_offset", end_date="2026-01-04 23:59:59"), catalog=catalog)
    assert old.returncode == 0, old.stderr[-2000:]
    old_marks = bookmarks_of(old.state)
    assert old_marks["calls"]["replication_key_value"].endswith("+03:00")
    new = run_tap(cfg(sim, lookback_days=1), catalog=catalog, state=old.state)
    assert new.returncode == 0, new.stderr[-2000:]
    bookmark = dt.datetime.fromisoformat(old_marks["calls"]["replication_key_value"])
    resume = (bookmark - dt.timedelta(days=1)).astimezone(UTC)
    starts = sorted(dt.datetime.fromisoformat(r["start_time"]) for r in new.records["calls"])
    truth = sorted(dt.datetime.fromisoformat(r["start_time"]) for r in
                   (as_emitted(x) for x in sim.truth("get.calls_report", f"{START} 00:00:00", END)))
    assert starts == [t for t in truth if t >= resume]  # nothing before the look-back, nothing after it missed
    marks = bookmarks_of(new.state)
    for stream in ("calls", "chats"):
        value = marks[stream]["replication_key_value"]
        assert value.endswith("+00:00")
        field = "start_time" if stream == "calls" else "date_time"
        assert dt.datetime.fromisoformat(value) == max(dt.datetime.fromisoformat(r[field])
                                                       for r in new.records[stream])


def batch_records(run: Any) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """The records of the BATCH messages' files, by stream, and the message types in order."""
    records: dict[str, list[dict[str, Any]]] = {}
    kinds = []
    for msg in messages_with_batches(run.stdout):
        kinds.append(msg.get("type", ""))
        if msg.get("type") == "BATCH":
            records.setdefault(msg["stream"], []).extend(msg["records"])
    return records, kinds


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_batch_files_hold_the_record_paths_records(sim, catalog, tmp_path, compression):
    records = run_tap(cfg(sim), catalog=catalog)
    assert records.returncode == 0, records.stderr[-2000:]
    batch = {"encoding": {"format": "jsonl", "compression": compression},
             "storage": {"root": tmp_path.as_uri(), "prefix": "t-"}, "batch_size": 50}
    batched = run_tap(cfg(sim, batch_config=batch), catalog=catalog)
    assert batched.returncode == 0, batched.stderr[-2000:]
    assert not any(batched.records.values()), "BATCH mode wrote RECORD messages"
    files, kinds = batch_records(batched)
    assert set(files) == {s for s in STREAMS if records.records[s]}
    for stream, rows in files.items():
        # the same records, key order included (customer_id last, as on the RECORD path)
        want = [json.dumps({**r, "customer_id": owner}) for r, owner in
                zip(records.records[stream], records.owners[stream], strict=True)]
        assert sorted(json.dumps(r) for r in rows) == sorted(want), stream
    assert len(list(tmp_path.iterdir())) == kinds.count("BATCH") > len(files)  # several files a stream
    assert kinds[-1] == "STATE"
    assert bookmarks_of(batched.states[-1]) == bookmarks_of(records.states[-1])
    # no STATE covers a record that is in no file yet: each bookmark is at most the newest value written
    written: dict[str, dt.datetime] = {}
    states = 0
    for msg in messages_with_batches(batched.stdout):
        if msg.get("type") == "BATCH" and msg["stream"] in ("calls", "chats"):
            field = "start_time" if msg["stream"] == "calls" else "date_time"
            newest = max(dt.datetime.fromisoformat(r[field]) for r in msg["records"])
            written[msg["stream"]] = max(newest, written.get(msg["stream"], newest))
        elif msg.get("type") == "STATE":
            for stream, mark in bookmarks_of(msg["value"]).items():
                if stream in ("calls", "chats") and mark.get("replication_key_value"):
                    states += 1
                    assert stream in written, f"a {stream} bookmark before any {stream} file"
                    assert dt.datetime.fromisoformat(mark["replication_key_value"]) <= written[stream]
    assert states > 2
