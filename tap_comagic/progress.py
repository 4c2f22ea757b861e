"""What a long run tells the person watching it: a progress line every few seconds of work (customer k/n,
stream, window i/m, records and requests so far, rate, ETA) and, at the end, a summary table (customer x
stream -> records, requests, seconds, skipped). Plain log lines, so Meltano shows them as they come; they
name accounts and streams, never a credential."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Tally:
    """One stream of one account in this run."""

    customer_id: int | None
    stream: str
    records: int = 0
    requests: int = 0
    seconds: float = 0.0
    skipped: str | None = None  # why the stream (or, as stream "*", the whole account) was skipped
    stopped: str | None = None  # why it stopped before its end (the daily limit, a failure)


class Progress:
    """Counts the run's work and logs where it is every ``interval`` seconds, from a thread of its own, so
    that a line comes also while a request or a rate-limit wait takes long."""

    def __init__(self, logger: logging.Logger, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self.started = clock()
        self.tallies: list[Tally] = []
        self._lock = threading.Lock()
        self.customers = 1
        self.customer_index = 0  # 1-based while a customer is read
        self.customer_id: int | None = None
        self.plan: list[str] = []  # the streams the current customer's run visits, in order
        self.stream: str | None = None
        self.window = (0, 0)  # windows of the current stream: done, planned
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- what the run tells it ----------------------------------------------------------------------

    def tally(self, customer_id: int | None, stream: str) -> Tally:
        """A new tally for a stream of an account (kept for the summary)."""
        entry = Tally(customer_id, stream)
        with self._lock:
            self.tallies.append(entry)
        return entry

    def count_request(self, tally: Tally) -> None:
        """A request was sent (from any thread)."""
        with self._lock:
            tally.requests += 1

    def at_customer(self, index: int, total: int, customer_id: int | None, plan: list[str]) -> None:
        """The run starts reading account ``index`` of ``total``; ``plan``: its streams, in order."""
        self.customer_index, self.customers, self.customer_id, self.plan = index, total, customer_id, plan
        self.stream, self.window = None, (0, 0)

    def at_stream(self, stream: str) -> None:
        """A top-level stream starts (its children's windows count as its own)."""
        self.stream, self.window = stream, (0, 0)

    def at_window(self, done: int, planned: int) -> None:
        """The current stream has finished ``done`` of ``planned`` windows."""
        self.window = (done, planned)

    # ---- what it says -------------------------------------------------------------------------------

    def done_fraction(self) -> float:
        """About how much of the run is done: accounts done, streams of this one, windows of this stream."""
        if self.customer_index == 0:
            return 0.0
        streams = max(1, len(self.plan))
        position = self.plan.index(self.stream) if self.stream in self.plan else 0
        done, planned = self.window
        within = (position + (done / planned if planned else 0.0)) / streams
        return min(1.0, (self.customer_index - 1 + within) / max(1, self.customers))

    def line(self) -> str:
        """Where the run is, in one line."""
        elapsed = max(1e-9, self._clock() - self.started)
        with self._lock:
            records = sum(t.records for t in self.tallies)
            requests = sum(t.requests for t in self.tallies)
        parts = [f"customer {self.customer_index}/{self.customers}"
                 + (f" ({self.customer_id})" if self.customer_id is not None else "")]
        if self.stream:
            parts.append(f"stream {self.stream}")
            done, planned = self.window
            if planned:
                parts.append(f"window {min(done + 1, planned)}/{planned}")
        parts += [f"{records:,} records", f"{requests:,} requests", f"{records / elapsed:,.0f} records/s"]
        fraction = self.done_fraction()
        if fraction > 0:
            left = elapsed * (1 - fraction) / fraction
            parts.append(f"ETA {_duration(left)} ({fraction:.0%} done)")
        return "Progress: " + ", ".join(parts)

    def summary(self) -> list[str]:
        """The end-of-run table, one line per account and stream that did something or was skipped."""
        rows = [t for t in self.tallies if t.records or t.requests or t.skipped or t.stopped]
        head = f"{'customer':>10}  {'stream':<22} {'records':>10} {'requests':>9} {'seconds':>8}  skipped"
        lines = ["Summary: customer x stream -> records, requests, seconds, skipped", head]
        for t in rows:
            customer = "" if t.customer_id is None else str(t.customer_id)
            lines.append(f"{customer:>10}  {t.stream:<22} {t.records:>10,} {t.requests:>9,} {t.seconds:>8.1f}  "
                         f"{t.skipped or t.stopped or ''}".rstrip())
        records, requests = sum(t.records for t in rows), sum(t.requests for t in rows)
        lines.append(f"{'':>10}  {'total':<22} {records:>10,} {requests:>9,} {self._clock() - self.started:>8.1f}")
        return lines

    # ---- the thread ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Log a line every ``interval`` seconds until :meth:`stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="tap-comagic-progress", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.logger.info("%s", self.line())

    def stop(self) -> None:
        """No more lines."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
