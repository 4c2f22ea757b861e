"""The machinery every stream shares, so that a stream's declaration (streams.py) says only what
differs: :class:`ReportStream` (date windows, verified pages, window-end bookmarks, child batches),
:class:`V3ReportStream` (the v3 reports' parameters), and for the reference tables and summaries
:class:`ReferenceStream` (a whole table per run) and :class:`DayStream` (whole days, per site)."""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import logging
import math
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from singer_sdk.exceptions import AbortedSyncFailedException, AbortedSyncPausedException
from typing_extensions import override

from tap_comagic.client import CoMagicStream, answer_of
from tap_comagic.context import ACCOUNT_COLUMN
from tap_comagic.errors import SplitWindow, TapError
from tap_comagic.pagination import MAX_PAGE_SIZE, BoundaryDedup, Page, Window, in_order, plan, reachable_rows
from tap_comagic.timezones import API_FORMAT, AscendingFolds, api_second, instant
from tap_comagic.timezones import resume_point as wall_time_to_resume

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_comagic.context import RunContext


# In a stream's state while a run has not finished it: the end of its last complete window.
RESUME_KEY = "resume_from"


# reads a query again in narrower pieces: (its total, the keys emitted, the seconds a page boundary cut
# if the query is sorted on the replication key, the tie_field values of the rows at those seconds)
Reread = Callable[[int, dict[Any, int], list[str] | None, set[Any]], Iterator[dict[str, Any]]]


def fmt(moment: dt.datetime) -> str:
    """A date-time as the API writes it, "YYYY-MM-DD hh:mm:ss"."""
    return moment.strftime(API_FORMAT)


class ReportStream(CoMagicStream):
    """A report read over date windows, incrementally on its own date field."""

    # Bookmarks move only at window ends, to the newest value of the finished window, so
    # they are resumable whatever order the report returns rows in.
    is_sorted = True
    sort_field: ClassVar[str | None] = None  # the report sorts on its date field (else: server order)
    # declared plain strings that hold account-local date-times: given the offset too, but kept
    # strings, so that a value of another shape still loads
    local_time_fields: ClassVar[tuple[tuple[str, ...], ...]] = ()
    # (record field, child context key): the ids a window hands its child stream, in batches
    child_ids: ClassVar[tuple[str, str] | None] = None
    child_ids_once_per_run: ClassVar[bool] = False
    child_ids_key: ClassVar[str | None] = None  # a child fed ids: the context key that holds them
    # a parent whose children need none of its rows (call_legs take calls' windows, not their ids)
    children_take_windows: ClassVar[bool] = False
    unique_key: ClassVar[bool] = True  # False: rows may share the whole primary key (paged by whole row)
    tie_field: ClassVar[str | None] = None  # narrows a query (not a window) to the rows of a cut second

    def __init__(self, tap: Tap, run: RunContext) -> None:
        super().__init__(tap, run)
        self._bookmark_candidate: str | None = None
        self._datetime_paths = _datetime_paths(self.schema) + list(self.local_time_fields)
        self._known: frozenset[str] | None = None  # the selected fields, once the catalog is applied
        self._customer_id = run.account.customer_id  # one account per stream instance (see TapCoMagic.streams)
        self._folds: AscendingFolds | None = None
        self._convert_datetimes: Callable[[dict[str, Any]], None] | None = None  # made at the first record
        self._batch: list[Any] = []
        self._batched: set[Any] = set()
        self._start: dt.datetime | None = None
        self.finished = False  # every window of this run is done
        keys = self.row_keys
        self._key: Callable[[dict[str, Any]], Any] = (
            (lambda r: r.get(keys[0])) if len(keys) == 1 else (lambda r: tuple([r.get(k) for k in keys])))
        self._whole_rows = not self.unique_key or not keys  # no key (api_requests) or one rows may share
        if self._whole_rows:
            self._key = msgspec.json.encode  # the whole row tells two rows apart, if anything does
        # Kept across read_range calls: a child reads its parent's windows one context at a time.
        self._dedup = BoundaryDedup(self._key)

    # ---- what one window asks for --------------------------------------------------

    def window_params(self, window: Window, till: dt.datetime) -> dict[str, Any]:
        """The request parameters of one date window (dates, sort, the user's filter)."""
        params: dict[str, Any] = {"date_from": fmt(window.start), "date_till": fmt(till)}
        if self.sort_field and self.sort_field in self.sortable:
            params["sort"] = [{"field": self.sort_field, "order": "asc"}]
        return self.filtered(params)

    def filtered(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with the stream's `filters` entry."""
        user_filter = self.settings.filters.get(self.name)
        return {**params, "filter": user_filter} if user_filter else params

    @property
    def _sorted_on_rk(self) -> bool:
        return bool(self.sort_field) and self.sort_field == self.replication_key and self.sort_field in self.sortable

    @property
    @override
    def requested_fields(self) -> list[str]:
        fields = super().requested_fields
        # the ids handed to the children are asked for even when the user deselected them (not emitted)
        if self.child_ids is not None and self.fed_children() and self.child_ids[0] not in fields:
            return [*fields, self.child_ids[0]]
        return fields

    # ---- where a run starts --------------------------------------------------------

    def fed_children(self) -> list[ReportStream]:
        """The selected child streams this stream hands windows or ids."""
        return [c for c in self.child_streams if isinstance(c, ReportStream) and c.selected]

    def resume_point(self) -> dt.datetime | None:
        """Where this stream's reading starts in this run (None: not selected): where the last run stopped
        if it did not finish, else the bookmark less the look-back, else `start_date`. Fixed at first use,
        so that the bookmarks this run writes do not move it."""
        if not self.selected:
            return None
        if self._start is None:
            state = self.scope_state
            start = self.settings.start_date
            stopped_at = self._parse(state.get(RESUME_KEY))
            bookmark = self._parse(state.get("replication_key_value"))
            if stopped_at is not None:
                # the stopped run already re-read the look-back: spending the next day's budget on it
                # again would keep a small budget from ever catching up
                start = max(start, stopped_at)
            elif bookmark is not None:
                start = max(start, bookmark - dt.timedelta(days=self.settings.lookback_days))
            self._start = min(start, self.settings.end_date)
        return self._start

    def _parse(self, value: Any) -> dt.datetime | None:
        """A state value as naive account-local wall time (before both occurrences of a repeated hour)."""
        if not value:
            return None
        try:
            return wall_time_to_resume(self._moment(str(value)), self.account.zone)
        except ValueError:
            return None

    def bounds(self, context: Context | None) -> tuple[dt.datetime, dt.datetime]:
        """This stream's range, widened back to where its selected children resume."""
        starts = [s for s in (self.resume_point(), *(c.resume_point() for c in self.fed_children()))
                  if s is not None]
        return min(starts, default=self.settings.start_date), self.settings.end_date

    @override
    def compare_start_date(self, value: str, start_date_value: str) -> str:
        return max(value, start_date_value, key=self._moment)

    @override
    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        start, end = self.bounds(context)
        own = self.resume_point()
        if self.children_take_windows and (own is None or own > start):
            # the children's windows before this stream's own start need no request of this report
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
        collect = self._collector()
        todo = list(reversed(plan(start, end, self.settings.window_days)))
        progress, done = self.run.progress, 0
        while todo:
            progress.at_window(done, done + len(todo))
            window = todo.pop()
            # The last window asks one second more, so that an exclusive date_till still
            # returns the records of the final second; later ones are dropped below.
            till = window.end + dt.timedelta(seconds=1) if window.end == end else window.end
            pages = self.pages(self.window_params(window, till), context)
            try:
                first = next(pages)
            except SplitWindow:
                if not window.splittable:
                    raise TapError(f"{self.api_method} refuses even a one-second window as too long "
                                   "(date_interval_limit_reached)") from None
                todo.extend(reversed(window.halves()))
                continue
            if first.total > reachable_rows(self.settings.page_size) and window.splittable:
                pages.close()
                self.log("%s: %d rows in %s..%s, more than offset paging reaches; splitting the window",
                         self.name, first.total, window.start, window.end, level=logging.INFO)
                todo.extend(reversed(window.halves()))
                continue
            dedup.start_window(fmt(window.start), fmt(window.end))
            reread = self._window_reread(Window(window.start, till), context)
            for record in self.exact_rows(first, pages, reread, ordered=self._sorted_on_rk):
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
            gc.unfreeze()  # see shapes.RecordDecoder

    def _collector(self) -> Callable[[dict[str, Any]], None] | None:
        if self.child_ids is None or not self.fed_children():
            return None
        field, batch, batched, once = self.child_ids[0], self._batch, self._batched, self.child_ids_once_per_run

        def collect(record: dict[str, Any]) -> None:
            value = record.get(field)
            if value is not None and not (once and value in batched):
                batch.append(value)
                if once:
                    batched.add(value)

        return collect

    # ---- pages in a total order --------------------------------------------------------

    def exact_rows(self, first: Page, pages: Generator[Page, None, None], reread: Reread,
                   ordered: bool) -> Iterator[dict[str, Any]]:
        """The rows of one query, each once, even when the server orders tied rows differently on each
        request (offset pages of such an order skip some rows and repeat others).

        One page is one consistent answer. Over several pages, repeats are dropped by primary key, and when
        fewer distinct keys arrived than the query holds, ``reread`` reads it again in narrower pieces,
        yielding only the rows not seen yet. With a stable order nothing more is asked. ``ordered``: the
        query is sorted on the replication key, so rows can be missing only where a page boundary cuts
        rows of one second (handed to ``reread``); else a repeat shows the order is not stable, and the
        remaining pages are not worth reading.
        """
        if first.exact_total and first.total <= self.settings.page_size:
            yield from first.take()
            return
        key, rk = self._key, self.replication_key or ""
        seen: dict[Any, int] = {}  # key -> rows of that key emitted
        expected = count = 0
        ties: list[str] = []  # the seconds a page boundary cuts
        tied: set[Any] = set()  # the tie_field values of the rows at those seconds
        last: str | None = None
        tail: list[Any] = []
        unstable = False
        for page in itertools.chain([first], pages):
            expected = max(expected, page.total) if page.exact_total else page.total
            rows = page.take()
            if ordered and rows:
                edge = api_second(rows[0].get(rk))
                if edge is not None and edge == last:
                    ties.append(edge)
                    tied.update(tail, self._at_second(rows, edge))
                last = api_second(rows[-1].get(rk))
                tail = self._at_second(reversed(rows), last)
            if not self._whole_rows:
                for record in rows:
                    k = key(record)
                    if k not in seen:
                        seen[k] = 1
                        count += 1
                        yield record
                    elif not ordered and page.exact_total:
                        unstable = True
            else:
                for record in self._new_rows(rows, seen):
                    count += 1
                    yield record
            del rows  # before the next page is decoded: one page of records in memory, not two
            if unstable:
                pages.close()
                break
        if count < expected:
            self.log("%s: %d of %d rows arrived: the server ordered them differently between pages; reading "
                     "them again in narrower pieces", self.name, count, expected, level=logging.INFO)
            yield from reread(expected, seen, ties if ordered else None, tied)

    def _at_second(self, rows: Iterable[dict[str, Any]], second: str | None) -> list[Any]:
        """The tie_field values of the first rows (in the order given) whose time is ``second``."""
        if self.tie_field is None:
            return []
        rk, field, out = self.replication_key or "", self.tie_field, []
        for row in rows:
            if api_second(row.get(rk)) != second:
                break
            out.append(row.get(field))
        return out

    def _new_rows(self, rows: list[dict[str, Any]], seen: dict[Any, int]) -> Iterator[dict[str, Any]]:
        """The rows of one page not emitted yet. A key may repeat (chat messages): a page is consistent, so
        a key is emitted again only as often as one page holds it more often than emitted so far."""
        key = self._key
        in_page: dict[Any, int] = {}
        for record in rows:
            k = key(record)
            n = in_page[k] = in_page.get(k, 0) + 1
            if seen.get(k, 0) < n:
                seen[k] = n
                yield record

    def _window_reread(self, span: Window, context: Context | None) -> Reread:
        second = dt.timedelta(seconds=1)

        def reread(total: int, seen: dict[Any, int], ties: list[str] | None, tied: set[Any]
                   ) -> Iterator[dict[str, Any]]:
            if ties:
                # sorted on the date: only the seconds cut by a page boundary can miss rows; each is read
                # alone (with a neighbour second inside the window: date_till may be exclusive)
                moments = (dt.datetime.fromisoformat(t) for t in dict.fromkeys(ties))
                pieces = [Window(t, t + second) if t + second <= span.end else Window(t - second, t)
                          for t in moments]
                yield from self._reread(pieces, self._window_pieces, seen, context)
                if sum(seen.values()) >= total:
                    return
            yield from self._reread(span.pieces(self._pieces_for(total)), self._window_pieces, seen, context)

        return reread

    def _pieces_for(self, total: int) -> int:
        # pieces meant to fill three quarters of a page, so that most are read in one request
        return max(2, math.ceil(total / max(1, self.settings.page_size * 3 // 4)))

    def _window_pieces(self, piece: Any, total: int) -> tuple[dict[str, Any], list[Any]]:
        window: Window = piece
        smaller = window.pieces(self._pieces_for(total)) if total and window.splittable else []
        return self.window_params(window, window.end), smaller

    def _reread(self, pieces: list[Any], describe: Callable[[Any, int], tuple[dict[str, Any], list[Any]]],
                seen: dict[Any, int], context: Context | None) -> Iterator[dict[str, Any]]:
        """Each piece in one page; a piece holding more is read again as ``describe``'s smaller pieces, or,
        when it has none, in one page of up to the API's largest limit."""
        size = self.settings.page_size
        todo = list(reversed(pieces))
        while todo:
            piece = todo.pop()
            params, _ = describe(piece, 0)
            page = self.fetch_page(params, 0, size, context)
            rows = page.take()
            if page.total > len(rows):
                _, smaller = describe(piece, page.total)
                if smaller:
                    todo.extend(reversed(smaller))
                else:
                    page = self.fetch_page(params, 0, MAX_PAGE_SIZE, context)
                    rows = page.take()
                    if page.total > len(rows):
                        raise TapError(f"{self.api_method}: {page.total} rows share one second and the server "
                                       "orders them differently on each request: they cannot be paged exactly")
            yield from self._new_rows(rows, seen)

    def query_rows(self, params: dict[str, Any], parallel: bool = True) -> Iterator[dict[str, Any]]:
        """The rows of one query that is not a date window (ids, a month), each once."""
        pages = self.pages(params, parallel=parallel)
        first = next(pages)
        sort = params.get("sort") or [{}]
        ordered = sort[0].get("field") == self.replication_key and self.tie_field is not None

        def reread(total: int, seen: dict[Any, int], ties: list[str] | None, tied: set[Any]
                   ) -> Iterator[dict[str, Any]]:
            narrow = self._tied_query(params, tied) if ties else None
            if narrow is not None:
                # sorted on the date: only the rows of the seconds a page boundary cut can be missing
                yield from self._reread([narrow], self._narrower, seen, None)
                if sum(seen.values()) >= total:
                    return
            yield from self._reread([params], self._narrower, seen, None)

        yield from self.exact_rows(first, pages, reread, ordered=ordered)

    def _tied_query(self, params: dict[str, Any], tied: set[Any]) -> dict[str, Any] | None:
        """The query narrowed to the tie_field values of the rows a page boundary cut (None: it cannot be)."""
        return None


    def _narrower(self, piece: Any, total: int) -> tuple[dict[str, Any], list[Any]]:
        """A query and the narrower queries that together ask the same (none: it cannot be narrowed)."""
        return piece, []

    # ---- windows done ------------------------------------------------------------------

    def finish_window(self, window: Window) -> None:
        """All records of the window are written: feed the children, then advance the bookmark
        (in that order, so that a run stopped or killed while the children read resumes with this window)."""
        if self.fed_children():
            self.window_finished_for_children(window)  # a child that ends the run raises StopRun through here
        self.commit_bookmark(window.end)

    def sync_children(self, context: Context) -> None:
        """Hand the children one batch (a window, or a window's ids): one child sync per batch, not per record."""
        context = {**context, **self.account.scope}  # the child's state partition: this account
        for child in self.child_streams:
            if child.selected or child.has_selected_descendents:
                began = time.monotonic()
                try:
                    child.sync(context=context)
                except (AbortedSyncFailedException, AbortedSyncPausedException):
                    continue  # a dry run's record limit, as the SDK's own child sync treats it
                finally:
                    self.tally.seconds -= time.monotonic() - began  # the child's time is the child's

    def window_finished_for_children(self, window: Window) -> None:
        """Parents hand their children a batch (a window, the window's ids) here, once per window."""
        if self.child_ids is None:
            return
        ids = list(self._batch)
        self._batch.clear()
        if ids:
            self.sync_children({self.child_ids[1]: ids, "window_end": fmt(window.end)})
        else:  # nothing to read: the children are done with this window too
            for child in self.fed_children():
                child.commit_bookmark(window.end)

    def finish_run(self) -> None:
        """Every window is done: the next run starts from the bookmarks less the look-back again, unless
        this run stops later for the daily limit (see hold_finished)."""
        done = False
        for stream in (self, *self.fed_children()):
            stream.finished = True
            if stream.scope_state.pop(RESUME_KEY, None) is not None:
                done = True
        if done:
            self.run.write_state()

    def hold_finished(self) -> None:
        """The run stops for the daily limit: a stream it finished resumes at this run's end, so that the
        next day's budget goes to the streams not finished rather than to this one's look-back again."""
        if self.finished and self.selected:
            self.scope_state[RESUME_KEY] = self.account.from_api(fmt(self.settings.end_date))

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
        assert self.child_ids_key is not None
        end = dt.datetime.fromisoformat(context["window_end"])
        own = self.resume_point()
        self._bookmark_candidate = None
        if own is not None and end > own:
            yield from queries(list(context[self.child_ids_key]))
        self.commit_bookmark(end)

    @override
    def generate_child_contexts(self, record: dict[str, Any], context: Context | None) -> Iterator[Context | None]:
        # Never one child sync per parent record (N+1): see window_finished_for_children.
        return iter(())

    # ---- state: the bookmark moves once a window is complete -------------------------

    @override
    def _increment_stream_state(self, latest_record: dict[str, Any], *, context: Context | None = None) -> None:
        # The SDK would move the bookmark on every record; ours waits for the window to end so
        # that an interrupted run resumes from the last complete window (see finish_window).
        value = latest_record.get(self.replication_key or "")
        if value is None:
            return
        candidate = self._bookmark_candidate
        # RFC 3339 strings compare as instants only when they carry the same offset
        if candidate is None or (value > candidate if value[-6:] == candidate[-6:]
                                 else self._moment(value) > self._moment(candidate)):
            self._bookmark_candidate = value

    def commit_bookmark(self, window_end: dt.datetime | None) -> None:
        """A window is done: the bookmark takes its newest value, and, until the run ends, the window's
        end is where the next run resumes (however old its records: a window's end is progress)."""
        candidate, self._bookmark_candidate = self._bookmark_candidate, None
        if not self.selected:
            return
        state = self.scope_state
        moved = False
        current = state.get("replication_key_value")
        if candidate is not None and (current is None or self._moment(candidate) > self._moment(str(current))):
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = candidate
            moved = True
        own = self.resume_point()
        if window_end is not None and own is not None and window_end > own:
            state[RESUME_KEY] = self.account.from_api(fmt(window_end))
            moved = True
        if moved:
            self.run.write_state()

    def _moment(self, value: str) -> dt.datetime:
        # the instant, not the wall time: "02:50+02:00" is before "02:10+01:00" on the autumn night
        return instant(value, self.account.zone)

    # ---- records ----------------------------------------------------------------------

    def _ascending_folds(self) -> AscendingFolds:
        """The repeated autumn hour told apart on the field the report is read in ascending order of
        (sorted by it, window after window); no field when the report is read in another order."""
        ascending = self.sort_field is not None and self.sort_field in self.sortable
        return AscendingFolds(self.account.from_api, self.sort_field if ascending else None)

    @override
    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        """Date-times to RFC 3339 with the account's offset, and only the selected fields, per record."""
        convert = self._convert_datetimes
        if convert is None:
            self._folds = self._ascending_folds()
            convert = self._convert_datetimes = self.account.from_api.row_converter(self._datetime_paths, self._folds)
        convert(row)
        known = self._known
        if known is None:
            known = self._known = frozenset(super().requested_fields)  # the selected ones
        if not known.issuperset(row):
            for key in [k for k in row if k not in known]:
                del row[key]  # not asked for (a field the live API added, say): keep the catalog's promise
        row[ACCOUNT_COLUMN] = self._customer_id
        return row


def _datetime_paths(schema: dict[str, Any]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for name, prop in schema["properties"].items():
        if prop.get("format") == "date-time":
            paths.append((name,))
        children = (prop.get("items") or prop).get("properties") or {}
        paths.extend((name, sub) for sub, sp in children.items() if sp.get("format") == "date-time")
    return paths


class DateKeyed(ReportStream):
    """A report bookmarked on a date ("YYYY-MM-DD", no time or zone): dates compare as dates."""

    @override
    def _moment(self, value: str) -> dt.datetime:
        return dt.datetime.fromisoformat(value[:10])

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
        user_filter = self.settings.filters.get(self.name)
        params: dict[str, Any] = {
            "filter": {"filters": [*dates, user_filter] if user_filter else dates, "condition": "and"}}
        if self.account.v3_customer_id is not None:
            params["customer_id"] = self.account.v3_customer_id
        return params


# ---- reference tables and summaries ----------------------------------------------------------------

DAY = dt.timedelta(days=1)


class MethodParams(ReportStream):
    """What the method's docs say it takes decides what is sent (``fields``, paging, ``user_id``)."""

    @cached_property
    def params_taken(self) -> frozenset[str]:
        """The parameters the method's docs list (from the schema's x-comagic block)."""
        return frozenset(self.flags.get("params", ()))

    @cached_property
    def added(self) -> frozenset[str]:
        """Columns the tap adds to the API's rows: never requested, always kept."""
        return frozenset(self.flags.get("added", ()))

    @property
    @override
    def requested_fields(self) -> list[str]:
        return [f for f in super().requested_fields if f not in self.added]

    @override
    def fields_param(self) -> str | None:
        return "fields" if "fields" in self.params_taken and self.requested_fields else None

    def base_params(self) -> dict[str, Any]:
        """The parameters every request of the method gets (the user's filter, where it takes one)."""
        return self.filtered({}) if "filter" in self.params_taken else {}

    @override
    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        if self._known is None:
            self._known = frozenset(self.requested_fields) | self.added
        return super().post_process(row, context)


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
        collect = self._collector()  # the ids its children are fed (sites -> the per-site summaries)
        for row in self.table(context):
            if collect is not None:
                collect(row)
            yield row
        if self.fed_children():
            self.window_finished_for_children(Window(self.settings.start_date, self.settings.end_date))

    def table(self, context: Context | None) -> Iterator[dict[str, Any]]:
        """Every row of the table: in pages, twice for a method that hides deleted items, or in one answer."""
        if self.DELETED_FLAG in self.params_taken:
            yield from self.with_deleted(context)
        elif "limit" in self.params_taken:
            for page in self.pages(self.base_params(), context):
                yield from page.take()
        else:  # get.account: no paging, no fields; one object or a list of one
            result = answer_of(self.call(self.base_params(), context)).result
            data = msgspec.json.decode(result.data) if result is not None else None
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


class DayStream(MethodParams, DateKeyed):
    """A report over whole days: windows of ``window_days`` days, or one day per request for a report of
    totals (``one_day_per_request``: each row gets the day it covers as ``date``). A child of ``sites``
    (``per_site``) asks every site for each window (several in flight, rows in the sites' order), its
    rows getting ``site_id`` where the API leaves it out.

    Windows never overlap (a day is ``00:00:00`` to ``23:59:59``), so nothing needs deduplicating; the
    bookmark is the last day read, moved once the day's (or window's) rows of every site are written.
    """

    replication_key = "date"
    one_day_per_request: ClassVar[bool] = False
    per_site: ClassVar[bool] = False

    @override
    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        start, end = self.bounds(context)
        sites: list[Any] = list((context or {}).get("site_ids") or []) if self.per_site else [None]
        workers = self.account.throttle.parallelism(self.settings.max_parallel_requests) if len(sites) > 1 else 1
        windows = self.day_windows(start, end)
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

    def day_windows(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.date, dt.date]]:
        """The days from ``start`` to ``end`` in whole-day windows; ``end`` at midnight adds no day."""
        first = start.date()
        last = end.date() if end.time() != dt.time(0) or end.date() == first else end.date() - DAY
        step = 1 if self.one_day_per_request else self.settings.window_days
        windows = []
        while first <= last:
            till = min(first + (step - 1) * DAY, last)
            windows.append((first, till))
            first = till + DAY
        return windows

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
        day = last.isoformat()
        if self._bookmark_candidate is None or self._bookmark_candidate < day:
            self._bookmark_candidate = day
        self.commit_bookmark(None)

