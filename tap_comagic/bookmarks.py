"""Where a stream's reading starts, and how far its state says it got.

A stream's state (its partition for one account) holds the SDK's bookmark, ``replication_key_value``,
and while a run has not finished the stream, ``resume_from``: the end of its last complete window. Both
move only when a window is complete (:meth:`BookmarkKeeper.commit`), never per record, so that a run
stopped or killed at any moment resumes from the last complete window, whatever order the report
returned its rows in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from tap_comagic.timezones import API_FORMAT, instant
from tap_comagic.timezones import resume_point as wall_time_to_resume

# In a stream's state while a run has not finished it: the end of its last complete window.
RESUME_KEY = "resume_from"


class DateRange(Protocol):
    """The settings a start depends on (naive account-local wall time)."""

    @property
    def start_date(self) -> dt.datetime: ...

    @property
    def end_date(self) -> dt.datetime: ...

    @property
    def lookback_days(self) -> int: ...


def fmt(moment: dt.datetime) -> str:
    """A date-time as the API writes it, "YYYY-MM-DD hh:mm:ss"."""
    return moment.strftime(API_FORMAT)


def date_moment(value: str) -> dt.datetime:
    """A bookmark that is a date ("YYYY-MM-DD", no time or zone), as a moment that compares as the date."""
    return dt.datetime.fromisoformat(value[:10])


class BookmarkKeeper:
    """One stream's bookmark in one account's state partition.

    ``state``: the partition (read at each use); ``zone``/``to_state``: the account's time zone and how an
    account-local "YYYY-MM-DD hh:mm:ss" is written into state; ``moment``: a bookmark value as an instant,
    for comparing (the default: RFC 3339 in the account's zone); ``write_state``: sends the state once it
    moved; ``selected``: whether the stream's records are emitted (a stream synced only to feed its children
    keeps no bookmark).
    """

    def __init__(self, replication_key: str | None, state: Callable[[], dict[str, Any]], dates: DateRange,
                 zone: ZoneInfo, to_state: Callable[[str], str | None], write_state: Callable[[], None],
                 selected: Callable[[], bool], moment: Callable[[str], dt.datetime] | None = None) -> None:
        self.replication_key = replication_key
        self.state = state
        self.dates = dates
        self.zone = zone
        self.to_state = to_state
        self.write_state = write_state
        self.selected = selected
        # the instant, not the wall time: "02:50+02:00" is before "02:10+01:00" on the autumn night
        self.moment: Callable[[str], dt.datetime] = moment or (lambda value: instant(value, zone))
        self.candidate: str | None = None  # the newest value of the window being read
        self.finished = False  # every window of this run is done
        self._start: dt.datetime | None = None

    def start(self) -> dt.datetime | None:
        """Where the stream's reading starts in this run (None: not selected): where the last run stopped
        if it did not finish, else the bookmark less the look-back, else `start_date`. Fixed at first use,
        so that the bookmarks this run writes do not move it."""
        if not self.selected():
            return None
        if self._start is None:
            state, dates = self.state(), self.dates
            start = dates.start_date
            stopped_at = self.parse(state.get(RESUME_KEY))
            bookmark = self.parse(state.get("replication_key_value"))
            if stopped_at is not None:
                # the stopped run already re-read the look-back: spending the next day's budget on it
                # again would keep a small budget from ever catching up
                start = max(start, stopped_at)
            elif bookmark is not None:
                start = max(start, bookmark - dt.timedelta(days=dates.lookback_days))
            self._start = min(start, dates.end_date)
        return self._start

    def parse(self, value: Any) -> dt.datetime | None:
        """A state value as naive account-local wall time (before both occurrences of a repeated hour)."""
        if not value:
            return None
        try:
            return wall_time_to_resume(self.moment(str(value)), self.zone)
        except ValueError:
            return None

    def offer(self, value: str) -> None:
        """A record's value: the window's newest so far becomes the candidate (per record: kept cheap)."""
        candidate = self.candidate
        # RFC 3339 strings compare as instants only when they carry the same offset
        if candidate is None or (value > candidate if value[-6:] == candidate[-6:]
                                 else self.moment(value) > self.moment(candidate)):
            self.candidate = value

    def commit(self, window_end: dt.datetime | None) -> None:
        """A window is done: the bookmark takes its newest value, and, until the run ends, the window's
        end is where the next run resumes (however old its records: a window's end is progress)."""
        candidate, self.candidate = self.candidate, None
        if not self.selected():
            return
        state = self.state()
        moved = False
        current = state.get("replication_key_value")
        if candidate is not None and (current is None or self.moment(candidate) > self.moment(str(current))):
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = candidate
            moved = True
        own = self.start()
        if window_end is not None and own is not None and window_end > own:
            state[RESUME_KEY] = self.to_state(fmt(window_end))
            moved = True
        if moved:
            self.write_state()

    def finish(self) -> bool:
        """Every window of the run is done: the next run starts from the bookmark less the look-back again.
        Whether the state changed (the caller writes it)."""
        self.finished = True
        return self.state().pop(RESUME_KEY, None) is not None

    def hold_finished(self) -> None:
        """The run stops for the daily limit: a stream it finished resumes at this run's end, so that the
        next day's budget goes to the streams not finished rather than to this one's look-back again."""
        if self.finished and self.selected():
            self.state()[RESUME_KEY] = self.to_state(fmt(self.dates.end_date))
