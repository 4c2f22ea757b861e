"""Progress lines and the end-of-run summary: what they say, and that the watcher speaks on its own."""

from __future__ import annotations

import logging
import threading

from tap_comagic.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def progress(interval: float = 30.0) -> tuple[Progress, Clock]:
    clock = Clock()
    return Progress(logging.getLogger("test-progress"), interval, clock=clock), clock


def test_a_line_says_customer_stream_window_counts_rate_and_eta() -> None:
    p, clock = progress()
    p.at_customer(2, 4, 5002, ["calls", "chats"])  # one of four customers done
    p.at_stream("chats")  # one of its two streams done
    p.at_window(1, 2)  # half of this stream's windows done
    calls = p.tally(5002, "calls")
    calls.records = 300
    p.count_request(calls)
    p.count_request(calls)
    clock.now += 60
    line = p.line()
    assert "customer 2/4 (5002)" in line
    assert "stream chats" in line
    assert "window 2/2" in line  # the window being read
    assert "300 records" in line
    assert "2 requests" in line
    assert "5 records/s" in line
    # done: (1 + (1 + 1/2) / 2) / 4 = 43.75 %; 60 s for that leaves 60 * 56.25 / 43.75 = 77 s
    assert "ETA 0:01:17 (44% done)" in line


def test_no_eta_before_anything_is_done() -> None:
    p, clock = progress()
    clock.now += 5
    assert "ETA" not in p.line()


def test_the_summary_lists_every_tally_that_did_or_skipped_something() -> None:
    p, clock = progress()
    done = p.tally(5001, "calls")
    done.records, done.seconds = 1234, 2.5
    p.count_request(done)
    p.tally(5001, "goals")  # nothing read, nothing skipped: no line
    p.tally(5003, "*").skipped = "ip_not_whitelisted: Your IP is not whitelisted"
    clock.now += 10
    lines = p.summary()
    body = lines[2:]
    assert len(body) == 3, lines
    assert body[0].split() == ["5001", "calls", "1,234", "1", "2.5"]
    assert body[1].split()[:2] == ["5003", "*"]
    assert body[1].endswith("ip_not_whitelisted: Your IP is not whitelisted")
    assert body[2].split() == ["total", "1,234", "1", "10.0"]


def test_the_watcher_logs_lines_until_stopped() -> None:
    spoke = threading.Event()

    class Ear(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Progress: "):
                spoke.set()

    logger = logging.getLogger("test-progress-watch")
    ear = Ear()
    logger.addHandler(ear)
    logger.setLevel(logging.INFO)
    watcher = Progress(logger, interval=0.01)
    try:
        watcher.start()
        assert spoke.wait(timeout=30), "no progress line"
    finally:
        watcher.stop()
        logger.removeHandler(ear)
    # stopped: its thread has ended (a watcher left running would log on after the summary, or keep the
    # process from exiting were it not a daemon)
    assert not [t for t in threading.enumerate() if t.name == "tap-comagic-progress"]
