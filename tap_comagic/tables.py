"""Reference tables and summaries: :class:`ReferenceStream` (a whole table on every run) and
:class:`DayStream` (a report over whole days, per site). Siblings of the windowed reports
(:mod:`tap_comagic.reports`): what the method's docs say it takes decides what is sent."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from typing_extensions import override

from tap_comagic.base import ApiStream
from tap_comagic.bookmarks import BookmarkKeeper, date_moment
from tap_comagic.children import IDS, ids_of
from tap_comagic.client import answer_of
from tap_comagic.errors import SplitWindow, TapError
from tap_comagic.pagination import Window, in_order, reachable_rows

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_comagic.context import RunContext

DAY = dt.timedelta(days=1)


class MethodParams(ApiStream):
    """What the method's docs say it takes decides what is sent (``fields``, paging, ``user_id``)."""

    @cached_property
    def params_taken(self) -> frozenset[str]:
        """The parameters the method's docs list (from the schema's x-comagic block)."""
        return frozenset(self.flags.get("params", ()))

    @override
    def fields_param(self) -> str | None:
        return "fields" if "fields" in self.params_taken and self.requested_fields else None

    def base_params(self) -> dict[str, Any]:
        """The parameters every request of the method gets (the user's filter, where it takes one)."""
        return self.filtered({}) if "filter" in self.params_taken else {}


class ReferenceStream(MethodParams):
    """A whole table on every run: no replication key; offset pages where the method takes them.

    Selected by default: together about ten requests a run, whatever the account's history or sites.
    """

    replication_key = None
    is_sorted = False
    # A method whose docs offer this flag (get.statuses, false by default) leaves deleted items out
    # unless asked, while old reports keep their ids: it is read a second time with the flag set.
    DELETED_FLAG: ClassVar[str] = "is_deleted"

    @override
    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        collect = self.feed.collector()  # the ids its children are fed (sites -> the per-site summaries)
        for row in self.table(context):
            if collect is not None:
                collect(row)
            yield row
        self.feed.window_done(Window(self.settings.start_date, self.settings.end_date))

    def table(self, context: Context | None) -> Iterator[dict[str, Any]]:
        """Every row of the table: in pages, twice for a method that hides deleted items, or in one answer."""
        if self.DELETED_FLAG in self.params_taken:
            yield from self.with_deleted(context)
        elif "limit" in self.params_taken:
            for page in self.pages(self.base_params(), context):
                yield from page.take()
        else:  # get.account: no paging, no fields; one object or a list of one
            data = answer_of(self.call(self.base_params(), context)).data()
            yield from [data] if isinstance(data, dict) else data or []

    def with_deleted(self, context: Context | None) -> Iterator[dict[str, Any]]:
        """The items of the default read, then those only a read with the flag set gives, each id once.

        The docs leave open whether the flag set gives the deleted items only or every item; either
        way an item only the second read gives is deleted, one the first gives is not: the flag's field
        says so where the answer leaves it out.
        """
        flag, key = self.DELETED_FLAG, self.row_keys[0]
        seen: set[Any] = set()
        for deleted in (False, True):
            params = {**self.base_params(), flag: True} if deleted else self.base_params()
            for page in self.pages(params, context):
                for row in page.take():
                    if row.get(key) in seen:
                        continue
                    seen.add(row.get(key))
                    if row.get(flag) is None:
                        row[flag] = deleted
                    yield row


def day_windows(start: dt.datetime, end: dt.datetime, step: int) -> list[tuple[dt.date, dt.date]]:
    """The days from ``start`` to ``end`` in windows of ``step`` whole days; ``end`` at midnight adds no day."""
    first = start.date()
    last = end.date() if end.time() != dt.time(0) or end.date() == first else end.date() - DAY
    windows = []
    while first <= last:
        till = min(first + (step - 1) * DAY, last)
        windows.append((first, till))
        first = till + DAY
    return windows


class DayStream(MethodParams):
    """A report over whole days: windows of ``window_days`` days, or one day per request for a report of
    totals (``one_day_per_request``: each row gets the day it covers as ``date``). A child of ``sites``
    (``per_site``: fed the sites' ids) asks every site for each window (several in flight, rows in the
    sites' order), its rows getting ``site_id`` where the API leaves it out.

    Windows never overlap (a day is ``00:00:00`` to ``23:59:59``), so nothing needs deduplicating; the
    bookmark is the last day read, moved once the day's (or window's) rows of every site are written.
    """

    replication_key = "date"
    is_sorted = True  # bookmarks move at window ends (see bookmarks.py)
    one_day_per_request: ClassVar[bool] = False
    per_site: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.per_site:
            cls.fed = ids_of("id")  # the ids of the sites its parent reads

    def __init__(self, tap: Tap, run: RunContext) -> None:
        super().__init__(tap, run)
        self.bookmarks = BookmarkKeeper(
            self.replication_key, lambda: self.scope_state, self.settings, self.account.zone, self.account.from_api,
            run.write_state, lambda: self.selected, date_moment)

    @override
    def compare_start_date(self, value: str, start_date_value: str) -> str:
        return max(value[:10], start_date_value[:10])

    @override
    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        start = self.resume_point() or self.settings.start_date
        end = self.settings.end_date
        sites: list[Any] = list((context or {}).get(IDS) or []) if self.per_site else [None]
        workers = self.account.throttle.parallelism(self.settings.max_parallel_requests) if len(sites) > 1 else 1
        windows = day_windows(start, end, 1 if self.one_day_per_request else self.settings.window_days)
        for done, (first, last) in enumerate(windows):
            self.run.progress.at_window(done, len(windows))
            if workers <= 1:
                for site in sites:
                    yield from self.dated(site, first, self.read_days(site, first, last, end))
            else:  # several sites in flight (their pages one by one), rows in the sites' order

                def rows(site: Any, first: dt.date = first, last: dt.date = last) -> list[dict[str, Any]]:
                    return list(self.dated(site, first, self.read_days(site, first, last, end, parallel=False)))

                for batch in in_order(rows, sites, workers):
                    yield from batch
            self.finish_days(last)

    def dated(self, site: Any, first: dt.date, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The rows with the columns the tap adds: the day (one day per request) and the site asked for."""
        for row in rows:
            if self.one_day_per_request:
                row["date"] = first.isoformat()
            if site is not None and "site_id" in self.added:
                row["site_id"] = site
            yield row

    def read_days(self, site: Any, first: dt.date, last: dt.date, end: dt.datetime,
                  parallel: bool = True) -> Iterator[dict[str, Any]]:
        """Every row of ``site`` from ``first`` to ``last``; halved when the API refuses the range or it
        holds more rows than offset paging reaches."""
        till = min(dt.datetime.combine(last, dt.time(23, 59, 59)), end)  # today: up to now
        params = {**self.base_params(), "date_from": f"{first} 00:00:00", "date_till": f"{till:%Y-%m-%d %H:%M:%S}"}
        if site is not None:
            params["site_id"] = site
        pages = self.pages(params, parallel=parallel)
        try:
            head = next(pages)
        except SplitWindow:
            if first == last:
                raise TapError(f"{self.api_method} refuses even a one-day range as too long "
                               "(date_interval_limit_reached)") from None
            head = None
        if head is not None and (head.total <= reachable_rows(self.settings.page_size) or first == last):
            for page in itertools.chain([head], pages):
                yield from page.take()
            return
        pages.close()
        middle = first + (last - first) // 2
        yield from self.read_days(site, first, middle, end, parallel)
        yield from self.read_days(site, middle + DAY, last, end, parallel)

    def finish_days(self, last: dt.date) -> None:
        """A day window is written: the bookmark moves to its last day."""
        # The range is read even where it held no row: the bookmark moves on regardless, so that a
        # report with nothing in it is not read again from the start on every run.
        assert self.bookmarks is not None
        day = last.isoformat()
        if self.bookmarks.candidate is None or self.bookmarks.candidate < day:
            self.bookmarks.candidate = day
        self.bookmarks.commit(None)
