"""STATE messages after windows: every one while cheap; a dear one (a state of many accounts) at most so often
that writing takes about 2% of the run, so that the cost does not grow with the square of the accounts."""

from __future__ import annotations

import itertools

from tap_comagic.context import WindowStates


class Writer:
    """A state writer on a simulated clock: each write takes ``cost`` seconds."""

    def __init__(self, cost: float) -> None:
        self.now = 0.0
        self.cost = cost
        self.writes: list[float] = []

    def clock(self) -> float:
        return self.now

    def write(self) -> None:
        self.writes.append(self.now)
        self.now += self.cost


def windows(writer: Writer, every: float, count: int) -> None:
    gate = WindowStates(writer.write, clock=writer.clock)
    for _ in range(count):
        writer.now += every  # a window's work
        gate()


def test_a_cheap_state_is_written_after_every_window() -> None:
    writer = Writer(cost=0.001)
    windows(writer, every=0.01, count=100)
    assert len(writer.writes) == 100


def test_a_dear_state_takes_about_two_percent_of_the_run() -> None:
    writer = Writer(cost=0.01)  # 10 ms a message: 50 ms of work per window would make it 17 % of the run
    windows(writer, every=0.05, count=1000)
    share = len(writer.writes) * writer.cost / writer.now
    assert 0.01 < share <= 0.021, share
    gaps = [b - a for a, b in itertools.pairwise(writer.writes)]
    assert max(gaps) <= 0.5 + 0.05 + 0.01  # never longer than the quiet time and one window


def test_the_records_buffered_before_a_state_are_written_first_and_their_time_is_not_the_states() -> None:
    """A blocked stdout (a slow target) makes writing the buffered records slow: that is not the STATE's cost,
    and must not space the STATE messages out (a kill would then repeat many windows)."""
    writer = Writer(cost=0.001)
    order: list[str] = []

    def flush() -> None:
        order.append("flush")
        writer.now += 0.5  # the pipe was full

    def write() -> None:
        order.append("state")
        writer.write()

    gate = WindowStates(write, clock=writer.clock, flush=flush)
    for _ in range(20):
        writer.now += 0.01
        gate()
    assert len(writer.writes) == 20
    assert order == ["flush", "state"] * 20
