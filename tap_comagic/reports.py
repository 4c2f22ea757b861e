"""The streams' bases, so that a stream's declaration (streams.py) says only what differs:
:class:`ReportStream` (a report read over date windows, each row once, bookmarked at window ends) and
:class:`V3ReportStream` (the v3 reports' parameters); beside them, not below,
:class:`~tap_comagic.tables.ReferenceStream` (a whole table per run) and
:class:`~tap_comagic.tables.DayStream` (whole days, per site).

A window is read by :class:`~tap_comagic.exactly_once.ExactPager`; its records move the stream's
:class:`~tap_comagic.bookmarks.BookmarkKeeper` and feed its children (:mod:`tap_comagic.children`) once
the window is complete."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from typing_extensions import override

from tap_comagic.base import ApiStream
from tap_comagic.bookmarks import RESUME_KEY, BookmarkKeeper, date_moment, fmt
from tap_comagic.children import IDS, window_of
from tap_comagic.errors import SplitWindow, TapError
from tap_comagic.exactly_once import BoundaryDedup, ExactPager, IdsNarrowing, Narrowing, WindowNarrowing, row_key
from tap_comagic.pagination import Window, in_order, plan, reachable_rows
from tap_comagic.tables import DayStream, MethodParams, ReferenceStream
from tap_comagic.timezones import api_second

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_comagic.context import RunContext

__all__ = ["RESUME_KEY", "DateKeyed", "DayStream", "MethodParams", "ReferenceStream", "ReportStream",
           "V3ReportStream", "fmt"]


class ReportStream(ApiStream):
    """A report read over date windows, incrementally on its own date field."""

    # Bookmarks move only at window ends, to the newest value of the finished window, so
    # they are resumable whatever order the report returns rows in.
    is_sorted = True
    unique_key: ClassVar[bool] = True  # False: rows may share the whole primary key (paged by whole row)
    tie_field: ClassVar[str | None] = None  # narrows a query (not a window) to the rows of a cut second
    ids_param: ClassVar[str | None] = None  # a query of ids: the list parameter it is narrowed on

    def __init__(self, tap: Tap, run: RunContext) -> None:
        super().__init__(tap, run)
        self.bookmarks = BookmarkKeeper(
            self.replication_key, lambda: self.scope_state, self.settings, self.account.zone, self.account.from_api,
            run.write_state, lambda: self.selected, self.bookmark_moment())
        self._key, self._whole_rows = row_key(self.row_keys, self.unique_key)
        # Kept across read_range calls: a child reads its parent's windows one context at a time.
        self._dedup = BoundaryDedup(self._key)

    def bookmark_moment(self) -> Callable[[str], dt.datetime] | None:
        """How a bookmark value compares (None: as an instant, RFC 3339 in the account's zone)."""
        return None

    def pager(self, context: Context | None = None) -> ExactPager:
        """Reads one query of this report each row once."""
        return ExactPager(lambda params, offset, limit: self.fetch_page(params, offset, limit, context),
                          self._key, whole_rows=self._whole_rows, page_size=self.settings.page_size,
                          time_field=self.replication_key or "", tie_field=self.tie_field, name=self.name,
                          method=self.api_method, logger=self.logger)

    # ---- what one window asks for --------------------------------------------------

    def window_params(self, window: Window, till: dt.datetime) -> dict[str, Any]:
        """The request parameters of one date window (dates, sort, the user's filter)."""
        params: dict[str, Any] = {"date_from": fmt(window.start), "date_till": fmt(till)}
        if self.sort_field and self.sort_field in self.sortable:
            params["sort"] = [{"field": self.sort_field, "order": "asc"}]
        return self.filtered(params)

    @property
    def _sorted_on_rk(self) -> bool:
        return bool(self.sort_field) and self.sort_field == self.replication_key and self.sort_field in self.sortable

    # ---- where a run starts --------------------------------------------------------

    def bounds(self, context: Context | None) -> tuple[dt.datetime, dt.datetime]:
        """This stream's range, widened back to where its selected children resume."""
        own = self.resume_point()
        starts = [*([own] if own is not None else []), *self.feed.starts()]
        return min(starts, default=self.settings.start_date), self.settings.end_date

    @override
    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        start, end = self.bounds(context)
        own = self.resume_point()
        if self.feed.takes_windows() and (own is None or own > start):
            # the windowed children's windows before this stream's own start need no request of this report
            for window in plan(start, own or end, self.settings.window_days):
                self.finish_window(window)
            start = own or end
        if start < end:
            yield from self.read_range(start, end, context, emit_from=None if own is None else fmt(own))
        self.finish_run()

    def read_range(self, start: dt.datetime, end: dt.datetime, context: Context | None,
                   emit_from: str | None = "") -> Iterator[dict[str, Any]]:
        """The records of ``[start, end]``, window by window. ``emit_from``: records older than this
        "YYYY-MM-DD hh:mm:ss" are read only for the children's ids (None: none is emitted)."""
        rk = self.replication_key or ""
        last_second = fmt(end)
        dedup = self._dedup
        collect = self.feed.collector()
        todo = list(reversed(plan(start, end, self.settings.window_days)))
        progress, done = self.run.progress, 0
        while todo:
            progress.at_window(done, done + len(todo))
            window = todo.pop()
            rows = self.window_rows(window, end, context)
            if rows is None:
                todo.extend(reversed(window.halves()))
                continue
            dedup.start_window(fmt(window.start), fmt(window.end))
            for record in rows:
                value = api_second(record.get(rk))
                if value is not None and value > last_second:
                    continue
                if dedup.is_repeat(record, value):
                    continue
                if collect is not None:
                    collect(record)
                if emit_from is not None and (value is None or value >= emit_from):
                    yield record
            self.finish_window(window)
            done += 1

    def window_rows(self, window: Window, end: dt.datetime, context: Context | None
                    ) -> Iterator[dict[str, Any]] | None:
        """The rows of one window, each once (None: the window must be read in halves: the API refuses it
        as too long, or it holds more rows than offset paging reaches)."""
        # The last window asks one second more, so that an exclusive date_till still
        # returns the records of the final second; later ones are dropped by the caller.
        till = window.end + dt.timedelta(seconds=1) if window.end == end else window.end
        pages = self.pages(self.window_params(window, till), context)
        try:
            first = next(pages)
        except SplitWindow:
            if not window.splittable:
                raise TapError(f"{self.api_method} refuses even a one-second window as too long "
                               "(date_interval_limit_reached)") from None
            return None
        if first.total > reachable_rows(self.settings.page_size) and window.splittable:
            pages.close()
            self.log("%s: %d rows in %s..%s, more than offset paging reaches; splitting the window",
                     self.name, first.total, window.start, window.end, level=logging.INFO)
            return None
        narrowing = WindowNarrowing(Window(window.start, till), lambda w: self.window_params(w, w.end),
                                    self.settings.page_size)
        return self.pager(context).rows(first, pages, narrowing, ordered=self._sorted_on_rk)

    # ---- queries that are not windows (ids, a month) ---------------------------------

    def query_rows(self, params: dict[str, Any], parallel: bool = True) -> Iterator[dict[str, Any]]:
        """The rows of one query that is not a date window (ids, a month), each once."""
        pages = self.pages(params, parallel=parallel)
        first = next(pages)
        sort = params.get("sort") or [{}]
        ordered = sort[0].get("field") == self.replication_key and self.tie_field is not None
        narrowing = (IdsNarrowing(params, self.ids_param, self.settings.page_size) if self.ids_param
                     else Narrowing(params))
        yield from self.pager().rows(first, pages, narrowing, ordered=ordered)

    def read_queries(self, queries: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Several queries, each with its pages: a bounded number in flight hides the latency, and
        the output keeps the queries' order."""
        if len(queries) == 1:
            yield from self.query_rows(queries[0])
            return

        def rows(params: dict[str, Any]) -> list[dict[str, Any]]:
            return list(self.query_rows(params, parallel=False))

        workers = self.account.throttle.parallelism(self.settings.max_parallel_requests)
        for batch in in_order(rows, queries, workers):
            yield from batch

    def read_batch(self, context: Context | None, queries: Callable[[list[Any]], Iterator[dict[str, Any]]]
                   ) -> Iterator[dict[str, Any]]:
        """A child's batch of its parent's ids (the context), unless this stream had read that window."""
        assert context is not None
        end = window_of(context).end
        own = self.resume_point()
        keeper = self.bookmarks
        assert keeper is not None
        keeper.candidate = None
        if own is not None and end > own:
            yield from queries(list(context[IDS]))
        keeper.commit(end)

    # ---- windows done ------------------------------------------------------------------

    def finish_window(self, window: Window) -> None:
        """All records of the window are written: feed the children, then advance the bookmark
        (in that order, so that a run stopped or killed while the children read resumes with this window)."""
        self.feed.window_done(window)  # a child that ends the run raises StopRun through here
        self.commit_bookmark(window.end)

    def finish_run(self) -> None:
        """Every window is done: the next run starts from the bookmarks less the look-back again, unless
        this run stops later for the daily limit (see hold_finished)."""
        assert self.bookmarks is not None
        changed = [self.bookmarks.finish(), self.feed.finish()]
        if any(changed):
            self.run.write_state()

    @property
    def finished(self) -> bool:
        """Every window of this run is done."""
        return self.bookmarks is not None and self.bookmarks.finished


class DateKeyed(ReportStream):
    """A report bookmarked on a date ("YYYY-MM-DD", no time or zone): dates compare as dates."""

    @override
    def bookmark_moment(self) -> Callable[[str], dt.datetime] | None:
        return date_moment

    @override
    def compare_start_date(self, value: str, start_date_value: str) -> str:
        return max(value[:10], start_date_value[:10])


class V3ReportStream(ReportStream):
    """v3 reports (spec: not implemented yet): ``customer_id``, ``field``, dates in ``filter``."""

    selected_by_default = False
    sends_user_id = False  # v3 methods know customer_id instead

    @override
    def fields_param(self) -> str | None:
        return "field"

    @override
    def window_params(self, window: Window, till: dt.datetime) -> dict[str, Any]:
        dates = [{"field": "date_from", "operator": "eq", "value": fmt(window.start)},
                 {"field": "date_till", "operator": "eq", "value": fmt(till)}]
        params: dict[str, Any] = {"filter": self.bounded_filter(dates)}
        if self.account.v3_customer_id is not None:
            params["customer_id"] = self.account.v3_customer_id
        return params
