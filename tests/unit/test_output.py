"""The buffered Singer writer: the same lines as the SDK's msgspec writer, written in chunks, never a STATE
before the RECORDs it covers, and nothing left behind when a run ends (returns, exits, stops for the daily
limit); a kill loses only RECORDs that no STATE written covers."""

from __future__ import annotations

import datetime as dt
import io
import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.contrib.msgspec import serialize_jsonl
from singer_sdk.singerlib import Message, RecordMessage, SchemaMessage, StateMessage

from tap_comagic import output
from tap_comagic.output import BufferedWriter
from tap_comagic.sandbox import Sandbox
from tests.reliability_helpers import catalog, small_world, tap_config, truth

ROOT = Path(__file__).resolve().parents[2]


class Chunks(io.BytesIO):
    """stdout's binary layer, keeping each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        return super().write(data)


@contextmanager
def stdout_chunks() -> Iterator[Chunks]:
    raw = Chunks()
    saved = sys.stdout
    sys.stdout = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    try:
        yield raw
    finally:
        sys.stdout.detach()
        sys.stdout = saved


def record(i: int, size: int = 10) -> RecordMessage:
    return RecordMessage(stream="calls", record={"id": i, "note": "x" * size},
                         time_extracted=dt.datetime(2026, 1, 1, 12, 0, i % 60, tzinfo=dt.timezone.utc))


def state(i: int) -> StateMessage:
    """The state after record ``i``: it covers records 0 to ``i``."""
    return StateMessage(value={"bookmarks": {"calls": {"replication_key_value": "2026-01-01T00:00:00+03:00"}},
                               "covers": i})


def lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def test_the_lines_are_the_sdk_writers_lines_in_the_order_written() -> None:
    messages: list[Message] = [SchemaMessage("calls", {"properties": {}}, ["id"]), record(1), record(2), state(2),
                               record(3)]
    writer = BufferedWriter()
    with stdout_chunks() as raw:
        for message in messages:
            writer.write_message(message)
        writer.flush()
    assert raw.getvalue() == b"".join(bytes(serialize_jsonl(m.to_dict())) for m in messages)


def test_records_wait_in_the_buffer_and_a_state_writes_them_before_itself() -> None:
    writer = BufferedWriter()
    with stdout_chunks() as raw:
        for i in range(5):
            writer.write_message(record(i))
        assert raw.chunks == []  # buffered: no write per message
        writer.write_message(state(4))
        written = lines(raw.getvalue())
        writer.write_message(record(5))
        writer.write_message(record(6))
    assert [m["type"] for m in written] == ["RECORD"] * 5 + ["STATE"]
    assert [m["record"]["id"] for m in written[:5]] == [0, 1, 2, 3, 4]
    assert raw.chunks[-1].endswith(b"\n")
    assert lines(raw.chunks[-1])[-1]["type"] == "STATE"


def test_a_state_never_precedes_a_record_written_before_it_over_many_chunks() -> None:
    writer = BufferedWriter()
    n = 3 * output.CHUNK // 400
    with stdout_chunks() as raw:
        for i in range(n):
            writer.write_message(record(i, size=300))
            if i % 97 == 96:
                writer.write_message(state(i))
        writer.flush()
    assert 3 <= len(raw.chunks) < n // 50, "one write per chunk, not per message"
    assert all(chunk.endswith(b"\n") for chunk in raw.chunks), "a chunk holds whole lines"
    seen = -1
    for message in lines(raw.getvalue()):
        if message["type"] == "RECORD":
            assert message["record"]["id"] == seen + 1
            seen += 1
        else:  # every record the state covers is written before it
            assert message["value"]["covers"] == seen
    assert seen == n - 1


def test_a_state_written_by_a_signal_handler_between_a_record_and_its_newline_leaves_whole_lines() -> None:
    """The SDK's SIGTERM handler writes a STATE wherever the main thread is; here it runs right after a record's
    JSON is in the buffer, before its newline."""
    writer = BufferedWriter()
    encode_into = writer._encode_into
    fired: list[bool] = []

    def encode_then_signal(obj: Any, buffer: bytearray, offset: int) -> None:
        encode_into(obj, buffer, offset)
        if obj.get("type") == "RECORD" and obj["record"]["id"] == 2 and not fired:
            fired.append(True)
            writer.write_message(state(2))  # the handler

    writer._encode_into = encode_then_signal  # type: ignore[assignment]
    with stdout_chunks() as raw:
        for i in range(4):
            writer.write_message(record(i))
        writer.flush()
    written = lines(raw.getvalue())  # every line parses: none is two messages run together, none is blank
    assert [m.get("record", {}).get("id", "state") for m in written] == [0, 1, 2, "state", 3]


class Run:
    """A tap's run entry: writes records (no STATE), then returns or exits."""

    def __init__(self) -> None:
        self.message_writer = BufferedWriter()

    @output.flushing
    def sync_all(self, exit_code: int | None) -> None:
        for i in range(3):
            self.message_writer.write_message(record(i))
        if exit_code is not None:
            sys.exit(exit_code)


@pytest.mark.parametrize("exit_code", [None, 0, 1])
def test_a_run_entry_leaves_nothing_buffered_when_it_returns_or_exits(exit_code: int | None) -> None:
    with stdout_chunks() as raw:
        if exit_code is None:
            Run().sync_all(exit_code)
        else:
            with pytest.raises(SystemExit):
                Run().sync_all(exit_code)
        written = lines(raw.getvalue())  # read before anything else could flush
    assert [m["record"]["id"] for m in written] == [0, 1, 2]


CHILD = textwrap.dedent("""
    import datetime as dt, sys
    from singer_sdk.singerlib import RecordMessage, StateMessage
    from tap_comagic.output import BufferedWriter

    writer = BufferedWriter()
    def rec(i):
        return RecordMessage(stream="calls", record={"id": i}, time_extracted=dt.datetime.now(dt.timezone.utc))
    for i in range(5):
        writer.write_message(rec(i))
    writer.write_message(StateMessage(value={"done": 4}))
    for i in range(5, 8):
        writer.write_message(rec(i))
    print("ready", file=sys.stderr, flush=True)
    if sys.argv[1] == "wait":
        sys.stdin.readline()  # until killed
""")


def run_child(mode: str, kill: signal.Signals | None) -> tuple[list[dict[str, Any]], int]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stderr is not None
    assert proc.stdout is not None
    assert proc.stderr.readline().strip() == b"ready"
    if kill is not None:
        proc.send_signal(kill)
    out, _ = proc.communicate(timeout=60)
    return lines(out), proc.returncode


def test_a_normal_exit_writes_every_buffered_line() -> None:
    written, code = run_child("exit", None)
    assert code == 0
    assert [m.get("record", {}).get("id") for m in written] == [0, 1, 2, 3, 4, None, 5, 6, 7]


def test_a_kill_loses_only_the_records_no_written_state_covers() -> None:
    written, code = run_child("wait", signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert [m["type"] for m in written] == ["RECORD"] * 5 + ["STATE"]
    assert [m["record"]["id"] for m in written[:5]] == [0, 1, 2, 3, 4]


def test_a_daily_limit_stop_writes_every_record_of_the_windows_its_last_state_has_done(
        caplog: pytest.LogCaptureFixture) -> None:
    from tap_comagic.tap import TapCoMagic

    with Sandbox(small_world(day_limit=6, calls_per_day=24, chats_per_day=6)) as sim:
        tap = TapCoMagic(config=tap_config(sim, page_size=10, window_days=1, max_parallel_requests=1),
                         catalog=catalog({"calls"}))
        with stdout_chunks() as raw:
            tap.sync_all()  # returns (a daily-limit stop is a clean end); the writer is emptied by then
        written = lines(raw.getvalue())
        assert written[-1]["type"] == "STATE"
        (partition,) = written[-1]["value"]["bookmarks"]["calls"]["partitions"]
        done_till = partition["resume_from"]  # the end of the last window written
        expected = truth(sim, {"calls"}, date_till=done_till[:10] + " " + done_till[11:19])["calls"]
    assert "daily API limit is spent" in caplog.text, "the budget did not stop the run: nothing tested"
    emitted = {m["record"]["id"] for m in written if m["type"] == "RECORD"}
    assert expected
    assert {r["id"] for r in expected} <= emitted
    # and every record the run made is written, those of the window the stop cut included
    made = sum(t.records for t in tap.run.progress.tallies)
    assert sum(1 for m in written if m["type"] == "RECORD") == made > len(expected)
