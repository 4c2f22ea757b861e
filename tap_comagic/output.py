"""The tap's Singer output: messages encoded into one buffer, written to stdout in large chunks.

The SDK's msgspec writer makes one ``write`` system call per message (and flushes after each); a run of
100,000 records makes 100,000 of them. This writer keeps the encoded lines in one buffer and writes it
when it passes :data:`CHUNK` bytes, and at once whenever a message other than a RECORD is written:

- a STATE line is never left in the buffer, and the buffer is first-in first-out, so every RECORD a
  STATE covers has reached stdout before that STATE has, or with it in the same write;
- :func:`flushing` (the tap's run entries) and an exit handler write what is left when the run ends,
  however it ends (a daily-limit stop, an error, SIGTERM or SIGINT: the SDK's handler writes the state,
  then exits through them).

A kill that leaves no handler (SIGKILL, the machine going down) loses at most the lines buffered since
the last write: RECORDs that no STATE written yet covers (a STATE empties the buffer), whose window the
next run reads again from the last STATE. Nothing a written STATE says is done is lost.

Lines are whole: a message is encoded into the buffer in one step (msgspec, in C: no Python code, so no
signal handler, runs inside it) and its newline follows; a message written by a handler that ran between
the two (the SDK's, which writes a STATE and exits) first ends the line before it. The buffer is written
with SIGINT and SIGTERM held, so that the handler never runs in the middle of a write.
"""

from __future__ import annotations

import atexit
import functools
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecWriter, enc_hook
from singer_sdk.singerlib import Message, RecordMessage

CHUNK = 1 << 18  # bytes buffered before a write: a few hundred writes for 100,000 records of 80 fields
_HELD = {signal.SIGINT, signal.SIGTERM}
NEWLINE = ord("\n")


def record_encoder() -> Callable[[Any, bytearray, int], None]:
    """``encode_into`` of the SDK's msgspec encoding of a record, for every path a record leaves by (RECORD
    messages here, BATCH files in batches.py), so that both write the same JSON."""
    return msgspec.json.Encoder(enc_hook=enc_hook, decimal_format="number").encode_into

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait (in the main thread, where Python runs their handlers) until the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class BufferedWriter(MsgSpecWriter):
    """The SDK's msgspec encoding (same lines), written in chunks; see the module's docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()
        self._encode_into = record_encoder()
        self.writes = 0  # chunks written so far
        _WRITERS.add(self)

    def write_message(self, message: Message) -> None:
        """Append the message's line; write the buffer if it is full or the message is not a RECORD."""
        if type(message) is RecordMessage:
            # RecordMessage.to_dict, without its call: the keys in the same order
            line: dict[str, Any] = {"type": "RECORD", "stream": message.stream, "record": message.record}
            if message.version is not None:
                line["version"] = message.version
            if message.time_extracted is not None:
                line["time_extracted"] = message.time_extracted
            buffer = self._buffer
            self._encode_into(line, buffer, -1)
            if buffer and buffer[-1] != NEWLINE:  # else a handler's message ended the line (module docstring)
                buffer.append(NEWLINE)
            if len(buffer) >= CHUNK:
                self.flush()
            return
        self._end_line()
        self._encode_into(message.to_dict(), self._buffer, -1)
        self._buffer.append(NEWLINE)
        self.flush()

    def _end_line(self) -> None:
        """End a line that a signal handler's message interrupted between its JSON and its newline."""
        if self._buffer and self._buffer[-1] != NEWLINE:
            self._buffer.append(NEWLINE)

    def flush(self) -> None:
        """Write every buffered line to stdout, in order."""
        with _signals_held():
            if not self._buffer:
                return
            self._end_line()
            out = sys.stdout  # looked up at each write: a caller may have redirected it
            out.flush()  # anything written to the text layer goes first
            out.buffer.write(self._buffer)
            out.buffer.flush()
            self._buffer.clear()
            self.writes += 1


_WRITERS: weakref.WeakSet[BufferedWriter] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    """At exit (a return from ``main``, ``sys.exit`` from a signal handler): nothing stays buffered."""
    for writer in list(_WRITERS):
        writer.flush()


def flush_output(plugin: Any) -> None:
    """Write what ``plugin``'s message writer holds, if it buffers."""
    writer = getattr(plugin, "message_writer", None)
    if isinstance(writer, BufferedWriter):
        writer.flush()


def flushing(method: F) -> F:
    """A run entry of the tap (``sync_all``, ``run_sync_dry_run``) that leaves nothing buffered when it
    returns or raises (SystemExit included), so that a caller reading stdout right after has every line."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            flush_output(self)

    return wrapper  # type: ignore[return-value]
