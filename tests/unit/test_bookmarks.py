"""The bookmark keeper and the child feed on a state dictionary: bookmarks move only at window ends, a run
resumes where the last one stopped and never past work not done, children hold their parent back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tap_comagic.bookmarks import RESUME_KEY, BookmarkKeeper, date_moment
from tap_comagic.children import IDS, WINDOWS, ChildFeed, Link, ids_of
from tap_comagic.pagination import Window
from tap_comagic.timezones import FromApi

BERLIN = ZoneInfo("Europe/Berlin")
START, END = dt.datetime(2026, 10, 1), dt.datetime(2026, 10, 31)


@dataclass
class Dates:
    start_date: dt.datetime = START
    end_date: dt.datetime = END
    lookback_days: int = 2


@dataclass
class Keeper:
    """A keeper on its own state partition, counting the STATE messages it asks for."""

    state: dict[str, Any] = field(default_factory=dict)
    selected: bool = True
    dates: Dates = field(default_factory=Dates)
    writes: int = 0
    keeper: BookmarkKeeper = field(init=False)

    def __post_init__(self) -> None:
        self.keeper = self.make()

    def make(self, moment: Any = None) -> BookmarkKeeper:
        def write() -> None:
            self.writes += 1

        return BookmarkKeeper("start_time", lambda: self.state, self.dates, BERLIN, FromApi(BERLIN), write,
                              lambda: self.selected, moment)


def day(d: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2026, 10, d, hour)


def test_records_move_nothing_until_their_window_is_done() -> None:
    k = Keeper()
    for value in ("2026-10-02T10:00:00+02:00", "2026-10-02T09:00:00+02:00"):
        k.keeper.offer(value)
    assert (k.state, k.writes) == ({}, 0)
    k.keeper.commit(day(3))
    assert k.state["replication_key_value"] == "2026-10-02T10:00:00+02:00"  # the window's newest, not its last
    assert k.state[RESUME_KEY] == "2026-10-03T00:00:00+02:00"
    assert k.writes == 1


def test_the_newest_value_is_the_latest_instant_across_the_autumn_offset_change() -> None:
    k = Keeper()
    k.keeper.offer("2026-10-25T02:50:00+02:00")  # 00:50 UTC
    k.keeper.offer("2026-10-25T02:10:00+01:00")  # 01:10 UTC: later, though its wall time is earlier
    k.keeper.commit(day(26))
    assert k.state["replication_key_value"] == "2026-10-25T02:10:00+01:00"


def test_an_older_window_never_moves_the_bookmark_back() -> None:
    k = Keeper(state={"replication_key_value": "2026-10-20T00:00:00+02:00"})
    k.keeper.offer("2026-10-10T00:00:00+02:00")
    k.keeper.commit(day(19))
    assert k.state["replication_key_value"] == "2026-10-20T00:00:00+02:00"


def test_a_window_without_records_still_moves_the_resume_point_and_a_window_before_the_start_does_not() -> None:
    k = Keeper(state={RESUME_KEY: "2026-10-10T00:00:00+02:00"})
    assert k.keeper.start() == day(10)
    k.keeper.commit(day(9))  # a child's window from before this stream's own start: not this stream's progress
    k.keeper.commit(day(10))
    assert (k.state[RESUME_KEY], k.writes) == ("2026-10-10T00:00:00+02:00", 0)
    k.keeper.commit(day(12))
    assert (k.state[RESUME_KEY], k.writes) == ("2026-10-12T00:00:00+02:00", 1)
    assert "replication_key_value" not in k.state


def test_a_stopped_run_resumes_at_its_last_window_end_without_the_look_back() -> None:
    state = {"replication_key_value": "2026-10-20T05:00:00+02:00", RESUME_KEY: "2026-10-15T00:00:00+02:00"}
    assert Keeper(state=state).keeper.start() == day(15)


def test_a_finished_run_resumes_from_its_bookmark_less_the_look_back_never_before_start_date() -> None:
    assert Keeper(state={"replication_key_value": "2026-10-20T05:00:00+02:00"}).keeper.start() == day(18, 5)
    assert Keeper(state={"replication_key_value": "2026-10-01T05:00:00+02:00"}).keeper.start() == START
    assert Keeper(state={"replication_key_value": "2026-11-20T05:00:00+01:00"}).keeper.start() == END
    assert Keeper(state={"replication_key_value": "not a date"}).keeper.start() == START


def test_the_start_is_fixed_at_first_use_so_this_runs_commits_do_not_move_it() -> None:
    k = Keeper()
    assert k.keeper.start() == START
    k.keeper.offer("2026-10-09T00:00:00+02:00")
    k.keeper.commit(day(10))
    assert k.keeper.start() == START


def test_a_resume_point_in_the_repeated_hour_starts_before_both_occurrences() -> None:
    k = Keeper(state={RESUME_KEY: "2026-10-25T02:30:00+02:00"}, dates=Dates(lookback_days=0))
    assert k.keeper.start() == dt.datetime(2026, 10, 25, 1, 30)


def test_a_stream_read_only_for_its_children_keeps_no_bookmark() -> None:
    k = Keeper(selected=False)
    k.keeper.offer("2026-10-02T10:00:00+02:00")
    k.keeper.commit(day(3))
    assert (k.state, k.writes, k.keeper.start()) == ({}, 0, None)


def test_finishing_drops_the_resume_point_and_a_daily_limit_stop_holds_a_finished_stream_at_the_end() -> None:
    k = Keeper()
    k.keeper.commit(day(5))
    assert k.keeper.finish() is True
    assert RESUME_KEY not in k.state
    assert k.keeper.finish() is False  # nothing left to drop
    k.keeper.hold_finished()
    assert k.state[RESUME_KEY] == "2026-10-31T00:00:00+01:00"


def test_a_stream_not_finished_is_not_held_at_the_end() -> None:
    k = Keeper()
    k.keeper.commit(day(5))
    k.keeper.hold_finished()
    assert k.state[RESUME_KEY] == "2026-10-05T00:00:00+02:00"


def test_date_bookmarks_compare_as_dates() -> None:
    k = Keeper()
    keeper = k.make(date_moment)
    keeper.offer("2026-10-03")
    keeper.offer("2026-10-02")
    keeper.commit(None)
    assert k.state["replication_key_value"] == "2026-10-03"
    assert RESUME_KEY not in k.state


# ---- the child feed ---------------------------------------------------------------------------------

@dataclass
class Child:
    """A child stream as the feed sees it: its link, its keeper and the contexts it was synced with."""

    fed: Link | None
    keeper: Keeper = field(default_factory=Keeper)
    selected: bool = True
    synced: list[dict[str, Any]] = field(default_factory=list)

    @property
    def bookmarks(self) -> BookmarkKeeper:
        return self.keeper.keeper


def feed_of(*children: Child) -> ChildFeed:
    return ChildFeed(lambda: children, lambda child, context: child.synced.append(context))


def test_a_window_hands_each_child_its_batch_once_and_a_child_with_nothing_to_read_is_done_with_it() -> None:
    chats, legs = Child(ids_of("id")), Child(WINDOWS)
    feed = feed_of(chats, legs)
    assert feed.fields() == ["id"]
    assert feed.takes_windows()
    assert not feed_of(chats).takes_windows()
    collect = feed.collector()
    assert collect is not None
    for row in ({"id": 1}, {"id": None}, {"id": 2}):
        collect(row)
    feed.window_done(Window(day(1), day(3)))
    assert chats.synced == [{"date_from": "2026-10-01 00:00:00", "date_till": "2026-10-03 00:00:00", IDS: [1, 2]}]
    assert legs.synced == [{"date_from": "2026-10-01 00:00:00", "date_till": "2026-10-03 00:00:00"}]
    feed.window_done(Window(day(3), day(5)))  # no chat in this window: chat_messages is done with it too
    assert len(chats.synced) == 1
    assert chats.keeper.state[RESUME_KEY] == "2026-10-05T00:00:00+02:00"
    assert len(legs.synced) == 2


def test_a_value_fed_once_per_run_is_handed_in_the_first_window_only() -> None:
    visitors = Child(ids_of("visitor_id", once_per_run=True))
    feed = feed_of(visitors)
    collect = feed.collector()
    assert collect is not None
    for window, seen in ((Window(day(1), day(2)), (7, 8, 7)), (Window(day(2), day(3)), (8, 9))):
        for value in seen:
            collect({"visitor_id": value})
        feed.window_done(window)
    assert [c[IDS] for c in visitors.synced] == [[7, 8], [9]]


def test_children_not_selected_are_neither_fed_nor_asked_for_fields() -> None:
    feed = feed_of(Child(ids_of("id"), selected=False), Child(None))
    assert (feed.fields(), feed.collector(), feed.starts()) == ([], None, [])


@pytest.mark.parametrize("child_state", [{RESUME_KEY: "2026-10-04T00:00:00+02:00"}, {}])
def test_a_child_holds_its_parent_back_to_where_the_child_resumes_and_finishes_with_it(
        child_state: dict[str, Any]) -> None:
    child = Child(ids_of("id"), Keeper(state=dict(child_state)))
    feed = feed_of(child)
    assert feed.starts() == [day(4) if child_state else START]
    assert feed.finish() is bool(child_state)
    assert child.bookmarks.finished
    assert RESUME_KEY not in child.keeper.state
