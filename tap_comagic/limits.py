"""Rate limits ("points"): throttle ahead of the limit from ``metadata.limits``.

Every successful call costs a point against a per-minute and a per-day budget.  The
throttle remembers the last ``metadata.limits`` it saw (every key optional: the API may
send ``{}`` or extra ``hour_*`` keys), counts the calls made since, and makes a caller
wait for the minute to reset before spending the last points.  A spent day ends the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from tap_comagic.errors import DailyLimitSpent

MINUTE = 60.0  # a per-minute budget, however its minute is aligned, is whole again within this


def optional_int(value: Any) -> int | None:
    """An API value as an integer, or None when it is absent or not one."""
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


class Throttle:
    """Keeps an account within its per-minute and daily points: waits before a request the minute cannot pay for, and
    says when the day's are spent."""

    def __init__(
        self,
        reserve: int = 1,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.reserve = reserve  # points left unspent per minute (other clients of the account)
        self._sleep = sleep or time.sleep
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self.minute_remaining: int | None = None
        self.day_remaining: int | None = None
        self._minute_reset_at: float | None = None
        self._day_reset_at: float | None = None
        self._paused_until = 0.0  # after limit_exceeded: no request before this

    def fresh(self) -> Throttle:
        """A throttle for another account (its own points), on the same clock."""
        return Throttle(self.reserve, self._sleep, self._clock)

    def observe(self, limits: Mapping[str, Any] | None) -> None:
        """Take the remaining points and reset times an answer's metadata reports."""
        if not limits:
            return
        now = self._clock()
        with self._lock:
            minute, day = optional_int(limits.get("minute_remaining")), optional_int(limits.get("day_remaining"))
            if minute is not None:
                self.minute_remaining = minute
                reset = optional_int(limits.get("minute_reset"))
                self._minute_reset_at = None if reset is None else now + reset
            if day is not None:
                self.day_remaining = day
                reset = optional_int(limits.get("day_reset"))
                self._day_reset_at = None if reset is None else now + reset

    def day_reset_in(self) -> float | None:
        """Seconds until the daily points reset (None: unknown)."""
        return None if self._day_reset_at is None else max(0.0, self._day_reset_at - self._clock())

    def minute_reset_in(self) -> float | None:
        """Seconds until the minute's points reset (None: unknown)."""
        return None if self._minute_reset_at is None else max(0.0, self._minute_reset_at - self._clock())

    def before_request(self) -> None:
        """Reserve one point, waiting for the minute to reset when the budget is nearly spent."""
        with self._lock:
            if self.day_remaining is not None and self.day_remaining <= 0:
                raise DailyLimitSpent(self.day_reset_in())
            wait = max(0.0, self._paused_until - self._clock())  # every worker waits out a refusal
            if self.minute_remaining is not None and self.minute_remaining <= self.reserve:
                wait = max(wait, self.minute_reset_in() or 0.0)
                self.minute_remaining = None  # unknown until the next answer tells
            if self.minute_remaining is not None:
                self.minute_remaining -= 1
            if self.day_remaining is not None:
                self.day_remaining -= 1
        if wait > 0:
            self._sleep(wait)

    def on_limit_exceeded(self) -> float:
        """Pause every request until the limit resets; the seconds of that pause.

        The reset comes from the error or the last answer; when neither says, or what they said is
        past or zero, the minute is waited out: retrying at once would only be refused again. The
        pause is taken in :meth:`before_request`, through the throttle's own (injectable) sleep,
        whatever the back-off's jitter would make of it.
        """
        with self._lock:
            if self.day_remaining is not None and self.day_remaining <= 0:
                raise DailyLimitSpent(self.day_reset_in())
            self.minute_remaining = None
            wait = self.minute_reset_in() or MINUTE
            self._paused_until = max(self._paused_until, self._clock() + wait)
            return wait

    def parallelism(self, wanted: int) -> int:
        """Parallel requests allowed now: never more than the minute budget left."""
        with self._lock:
            if self.minute_remaining is None:
                return wanted
            return max(1, min(wanted, self.minute_remaining - self.reserve))
