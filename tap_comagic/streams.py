"""One class per CoMagic report: its method, keys, replication key and quirks, nothing else.

A report's whole definition is its class here plus ``schemas/<stream>.json``.  The
machinery they share (windows, pages, state, parent-child batches) is in
:class:`ReportStream` and :mod:`tap_comagic.pagination`.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import logging
import math
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from tap_comagic.client import CoMagicStream
from tap_comagic.errors import CoMagicError, SplitWindow, TapError
from tap_comagic.pagination import MAX_PAGE_SIZE, BoundaryDedup, Page, Window, in_order, plan, reachable_rows
from tap_comagic.timezones import API_FORMAT, AscendingFolds, api_second, instant
from tap_comagic.timezones import resume_point as wall_time_to_resume

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_comagic.tap import TapCoMagic


# In a stream's state while a run has not finished it: the end of its last complete window.
RESUME_KEY = "resume_from"


# reads a query again in narrower pieces: (its total, the keys emitted, the seconds a page boundary cut
# if the query is sorted on the replication key, the tie_field values of the rows at those seconds)
Reread = Callable[[int, dict[Any, int], list[str] | None, set[Any]], Iterator[dict[str, Any]]]


def _fmt(moment: dt.datetime) -> str:
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

    def __init__(self, tap: TapCoMagic) -> None:
        super().__init__(tap)
        self._bookmark_candidate: str | None = None
        self._datetime_paths = _datetime_paths(self.schema) + list(self.local_time_fields)
        self._known: frozenset[str] | None = None  # the selected fields, once the catalog is applied
        self._folds: AscendingFolds | None = None
        # Kept across read_range calls: a child reads its parent's windows one context at a time.
        self._dedup = BoundaryDedup(tuple(self.primary_keys), self.replication_key or "")
        self._batch: list[Any] = []
        self._batched: set[Any] = set()
        self._start: dt.datetime | None = None
        self.finished = False  # every window of this run is done
        keys = tuple(self.primary_keys)
        self._key: Callable[[dict[str, Any]], Any] = (
            (lambda r: r.get(keys[0])) if len(keys) == 1 else (lambda r: tuple([r.get(k) for k in keys])))
        self._whole_rows = not self.unique_key or not keys  # no key (api_requests) or one rows may share
        if self._whole_rows:
            self._key = msgspec.json.encode  # the whole row tells two rows apart, if anything does

    # ---- what one window asks for --------------------------------------------------

    def window_params(self, window: Window, till: dt.datetime) -> dict[str, Any]:
        params: dict[str, Any] = {"date_from": _fmt(window.start), "date_till": _fmt(till)}
        if self.sort_field and self.sort_field in self.sortable:
            params["sort"] = [{"field": self.sort_field, "order": "asc"}]
        user_filter = self.tap.filters.get(self.name)
        if user_filter:
            params["filter"] = user_filter
        return params

    def filtered(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with the stream's `filters` entry, for the reports read by id or by month."""
        user_filter = self.tap.filters.get(self.name)
        return {**params, "filter": user_filter} if user_filter else params


    @property
    def _sorted_on_rk(self) -> bool:
        return bool(self.sort_field) and self.sort_field == self.replication_key and self.sort_field in self.sortable

    @property
    def requested_fields(self) -> list[str]:
        fields = super().requested_fields
        # the ids handed to the children are asked for even when the user deselected them (not emitted)
        if self.child_ids is not None and self.fed_children() and self.child_ids[0] not in fields:
            return [*fields, self.child_ids[0]]
        return fields

    # ---- where a run starts --------------------------------------------------------

    def fed_children(self) -> list[ReportStream]:
        return [c for c in self.child_streams if isinstance(c, ReportStream) and c.selected]

    def resume_point(self) -> dt.datetime | None:
        """Where this stream's reading starts in this run (None: not selected): where the last run stopped
        if it did not finish, else the bookmark less the look-back, else `start_date`. Fixed at first use,
        so that the bookmarks this run writes do not move it."""
        if not self.selected:
            return None
        if self._start is None:
            state = self.get_context_state(None)
            start = self.tap.start_date
            stopped_at = self._parse(state.get(RESUME_KEY))
            bookmark = self._parse(state.get("replication_key_value"))
            if stopped_at is not None:
                # the stopped run already re-read the look-back: spending the next day's budget on it
                # again would keep a small budget from ever catching up
                start = max(start, stopped_at)
            elif bookmark is not None:
                start = max(start, bookmark - dt.timedelta(days=self.tap.lookback_days))
            self._start = min(start, self.tap.end_date)
        return self._start

    def _parse(self, value: Any) -> dt.datetime | None:
        """A state value as naive account-local wall time (before both occurrences of a repeated hour)."""
        if not value:
            return None
        try:
            return wall_time_to_resume(self._moment(str(value)), self.tap.zone)
        except ValueError:
            return None

    def bounds(self, context: Context | None) -> tuple[dt.datetime, dt.datetime]:
        """This stream's range, widened back to where its selected children resume."""
        starts = [s for s in (self.resume_point(), *(c.resume_point() for c in self.fed_children()))
                  if s is not None]
        return min(starts, default=self.tap.start_date), self.tap.end_date

    def compare_start_date(self, value: str, start_date_value: str) -> str:
        return max(value, start_date_value, key=self._moment)

    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        start, end = self.bounds(context)
        own = self.resume_point()
        if self.children_take_windows and (own is None or own > start):
            # the children's windows before this stream's own start need no request of this report
            for window in plan(start, own or end, self.tap.window_days):
                self.finish_window(window)
            start = own or end
        if start < end:
            yield from self.read_range(start, end, context, emit_from=None if own is None else _fmt(own))
        self.finish_run()

    def read_range(self, start: dt.datetime, end: dt.datetime, context: Context | None,
                   emit_from: str | None = "") -> Iterator[dict[str, Any]]:
        """The records of ``[start, end]``, window by window. ``emit_from``: records older than this
        "YYYY-MM-DD hh:mm:ss" are read only for the children's ids (None: none is emitted)."""
        rk = self.replication_key or ""
        last_second = _fmt(end)
        dedup = self._dedup
        collect = self._collector()
        todo = list(reversed(plan(start, end, self.tap.window_days)))
        while todo:
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
            if first.total > reachable_rows(self.tap.page_size) and window.splittable:
                pages.close()
                self.log("%s: %d rows in %s..%s, more than offset paging reaches; splitting the window",
                         self.name, first.total, window.start, window.end, level=logging.INFO)
                todo.extend(reversed(window.halves()))
                continue
            dedup.start_window(_fmt(window.start), _fmt(window.end))
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
            gc.unfreeze()  # see client.decode_records

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
        if first.exact_total and first.total <= self.tap.page_size:
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
        return max(2, math.ceil(total / max(1, self.tap.page_size * 3 // 4)))

    def _window_pieces(self, piece: Any, total: int) -> tuple[dict[str, Any], list[Any]]:
        window: Window = piece
        smaller = window.pieces(self._pieces_for(total)) if total and window.splittable else []
        return self.window_params(window, window.end), smaller

    def _reread(self, pieces: list[Any], describe: Callable[[Any, int], tuple[dict[str, Any], list[Any]]],
                seen: dict[Any, int], context: Context | None) -> Iterator[dict[str, Any]]:
        """Each piece in one page; a piece holding more is read again as ``describe``'s smaller pieces, or,
        when it has none, in one page of up to the API's largest limit."""
        size = self.tap.page_size
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
            self.window_finished_for_children(window)
        if self.tap.daily_limit_spent is not None:
            raise self.tap.daily_limit_spent  # a child stopped inside this window: it is not done
        self.commit_bookmark(window.end)

    def window_finished_for_children(self, window: Window) -> None:
        """Parents hand their children a batch (a window, the window's ids) here, once per window."""
        if self.child_ids is None:
            return
        ids = list(self._batch)
        self._batch.clear()
        if ids:
            self._sync_children({self.child_ids[1]: ids, "window_end": _fmt(window.end)})
        else:  # nothing to read: the children are done with this window too
            for child in self.fed_children():
                child.commit_bookmark(window.end)

    def finish_run(self) -> None:
        """Every window is done: the next run starts from the bookmarks less the look-back again, unless
        this run stops later for the daily limit (see hold_finished)."""
        done = False
        for stream in (self, *self.fed_children()):
            stream.finished = True
            if stream.get_context_state(None).pop(RESUME_KEY, None) is not None:
                done = True
        if done:
            self._write_state_message()

    def hold_finished(self) -> None:
        """The run stops for the daily limit: a stream it finished resumes at this run's end, so that the
        next day's budget goes to the streams not finished rather than to this one's look-back again."""
        if self.finished and self.selected:
            self.get_context_state(None)[RESUME_KEY] = self.tap.from_api(_fmt(self.tap.end_date))

    def read_queries(self, queries: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Several queries, each with its pages: a bounded number in flight hides the latency, and
        the output keeps the queries' order."""
        if len(queries) == 1:
            yield from self.query_rows(queries[0])
            return

        def rows(params: dict[str, Any]) -> list[dict[str, Any]]:
            return list(self.query_rows(params, parallel=False))

        workers = self.tap.throttle.parallelism(self.tap.max_parallel_requests)
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

    def generate_child_contexts(self, record: dict[str, Any], context: Context | None) -> Iterator[Context | None]:
        # Never one child sync per parent record (N+1): see window_finished_for_children.
        return iter(())

    # ---- state: the bookmark moves once a window is complete -------------------------

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
        state = self.get_context_state(None)
        moved = False
        current = state.get("replication_key_value")
        if candidate is not None and (current is None or self._moment(candidate) > self._moment(str(current))):
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = candidate
            moved = True
        own = self.resume_point()
        if window_end is not None and own is not None and window_end > own:
            state[RESUME_KEY] = self.tap.from_api(_fmt(window_end))
            moved = True
        if moved:
            self._write_state_message()

    def _moment(self, value: str) -> dt.datetime:
        # the instant, not the wall time: "02:50+02:00" is before "02:10+01:00" on the autumn night
        return instant(value, self.tap.zone)

    # ---- records ----------------------------------------------------------------------

    def _ascending_folds(self) -> AscendingFolds:
        """The repeated autumn hour told apart on the field the report is read in ascending order of
        (sorted by it, window after window); no field when the report is read in another order."""
        ascending = self.sort_field is not None and self.sort_field in self.sortable
        return AscendingFolds(self.tap.from_api, self.sort_field if ascending else None)

    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        convert = self.tap.from_api
        folds = self._folds
        if folds is None:
            folds = self._folds = self._ascending_folds()
        for path in self._datetime_paths:
            if len(path) == 1:
                key = path[0]
                if key in row:
                    row[key] = folds(row[key]) if key == folds.field else convert(row[key])
            else:
                parent, key = path
                items = row.get(parent)
                if isinstance(items, list):
                    for item in items:
                        if isinstance(item, dict) and key in item:
                            item[key] = convert(item[key])
                elif isinstance(items, dict) and key in items:
                    items[key] = convert(items[key])
        known = self._known
        if known is None:
            known = self._known = frozenset(super().requested_fields)  # the selected ones
        if not known.issuperset(row):
            for key in [k for k in row if k not in known]:
                del row[key]  # not asked for (a field the live API added, say): keep the catalog's promise
        return row


def _datetime_paths(schema: dict[str, Any]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for name, prop in schema["properties"].items():
        if prop.get("format") == "date-time":
            paths.append((name,))
        children = (prop.get("items") or prop).get("properties") or {}
        paths.extend((name, sub) for sub, sp in children.items() if sp.get("format") == "date-time")
    return paths


# ---- the reports ----------------------------------------------------------------------

class CommunicationsStream(ReportStream):
    name = "communications"
    api_method = "get.communications_report"
    primary_keys = ("id", "communication_type")  # ids are unique per communication type
    replication_key = "date_time"
    sort_field = "date_time"


class CallsStream(ReportStream):
    name = "calls"
    api_method = "get.calls_report"
    primary_keys = ("id",)
    replication_key = "start_time"
    sort_field = "start_time"

    children_take_windows = True

    def window_finished_for_children(self, window: Window) -> None:
        # call_legs is date-windowed itself: one child context per calls window, not per call.
        self._sync_children({"date_from": _fmt(window.start), "date_till": _fmt(window.end)})


class GoalsStream(ReportStream):
    name = "goals"
    api_method = "get.goals_report"
    primary_keys = ("id",)
    replication_key = "date_time"


class ChatsStream(ReportStream):
    name = "chats"
    api_method = "get.chats_report"
    primary_keys = ("id",)
    replication_key = "date_time"
    sort_field = "date_time"

    child_ids = ("id", "chat_ids")  # chat_messages: the window's chat ids, 1000 per request


class OfflineMessagesStream(ReportStream):
    name = "offline_messages"
    api_method = "get.offline_messages_report"
    primary_keys = ("id",)
    replication_key = "date_time"


class VisitorSessionsStream(ReportStream):
    name = "visitor_sessions"
    api_method = "get.visitor_sessions_report"
    primary_keys = ("id",)
    replication_key = "date_time"

    local_time_fields = (("hits", "hit_time"),)
    child_ids = ("visitor_id", "visitor_ids")
    child_ids_once_per_run = True  # each visitor once per run


class FinancialCallLegsStream(ReportStream):
    name = "financial_call_legs"
    api_method = "get.financial_call_legs_report"
    primary_keys = ("call_session_id", "leg_id")  # the report has no id
    replication_key = "start_time"
    sort_field = "start_time"


class CallLegsStream(ReportStream):
    name = "call_legs"
    api_method = "get.call_legs_report"
    parent_stream_type = CallsStream
    state_partitioning_keys: ClassVar[list[str]] = []  # one bookmark, not one per window
    primary_keys = ("id",)
    replication_key = "start_time"
    sort_field = "start_time"

    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        assert context is not None
        start = dt.datetime.fromisoformat(context["date_from"])
        end = dt.datetime.fromisoformat(context["date_till"])
        own = self.resume_point()
        self._bookmark_candidate = None
        if own is not None and end > own:  # before its own resume point this stream has read already
            yield from self.read_range(max(start, own), end, context)


class ChatMessagesStream(ReportStream):
    name = "chat_messages"
    api_method = "get.chat_messages_report"
    parent_stream_type = ChatsStream
    state_partitioning_keys: ClassVar[list[str]] = []
    # Two messages of one chat may share chat, second, sender and text (two files sent at once): only the id
    # tells them apart. An account that refuses `id` gets a stand-in (see stand_in_ids).
    primary_keys = ("id",)
    replication_key = "date_time"
    child_ids_key = "chat_ids"
    unique_key = False  # an account that refuses `id` gets the stand-in after paging: pages compare whole rows
    tie_field = "chat_id"  # rows of one chat: a query of that chat alone reads them in one page

    def __init__(self, tap: TapCoMagic) -> None:
        super().__init__(tap)
        self._one_chat_per_request = False

    @property
    def requested_fields(self) -> list[str]:
        fields = super().requested_fields
        if "id" in self._dropped_fields and "chat_id" not in fields:
            fields.append("chat_id")  # the stand-in id is made from it (left out again if deselected)
        return fields

    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        stand_in = row.get("id")  # a key: kept even when the account refused the field (see stand_in_ids)
        processed = super().post_process(row, context)
        if processed is not None and stand_in is not None:
            processed["id"] = stand_in
        return processed

    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        yield from self.read_batch(context, self.read_chats)

    def read_chats(self, chat_ids: list[int]) -> Iterator[dict[str, Any]]:
        without_id: list[dict[str, Any]] = []
        for row in self.messages(chat_ids):
            if row.get("id") is None:
                without_id.append(row)
            else:
                yield row
        yield from stand_in_ids(without_id)

    def messages(self, chat_ids: list[int]) -> Iterator[dict[str, Any]]:
        if not self._one_chat_per_request:
            size = self.tap.id_batch
            sort = [{"field": "date_time", "order": "asc"}] if "date_time" in self.sortable else None
            batches = [self.filtered({"chat_ids": chat_ids[i:i + size], **({"sort": sort} if sort else {})})
                       for i in range(0, len(chat_ids), size)]
            try:
                yield from self.read_queries(batches)
            except CoMagicError as exc:
                # `chat_ids` is newer than the spec: a server that refuses it (by naming it, or by
                # missing the spec's `chat_id`) is read one chat per request instead
                refused = exc.mnemonic in ("unexpected_parameters", "required_parameter_missed",
                                           "invalid_parameter_value", "data_type_error")
                if not refused or exc.field not in ("chat_ids", "chat_id", None):
                    raise
                self._one_chat_per_request = True
                self.log("get.chat_messages_report refuses `chat_ids`: reading one chat per request",
                         level=logging.WARNING)
            else:
                return
        yield from self.read_queries([self.filtered({"chat_id": chat_id}) for chat_id in chat_ids])

    def _narrower(self, piece: Any, total: int) -> tuple[dict[str, Any], list[Any]]:
        params: dict[str, Any] = piece
        ids = params.get("chat_ids") or []
        parts = min(len(ids), self._pieces_for(total)) if total else 1
        if parts < 2:
            return params, []
        return params, [{**params, "chat_ids": ids[i * len(ids) // parts:(i + 1) * len(ids) // parts]}
                        for i in range(parts)]

    def _tied_query(self, params: dict[str, Any], tied: set[Any]) -> dict[str, Any] | None:
        ids = sorted(i for i in tied if i is not None)
        return {**params, "chat_ids": ids} if ids and "chat_ids" in params else None


def stand_in_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages without an id (an account that refuses it, or leaves it empty) get a stand-in, since the key
    is `id` (declared before any answer): -(chat_id * 2^20 + n), n the message's place among its chat's id-less
    messages ordered by time, then by content. Every message of a chat comes in the same batch, so a chat read
    again gets the same numbers while it is unchanged, whatever order its pages came in; messages alike in
    every field are interchangeable, so which of them gets which number does not matter."""
    rows.sort(key=lambda r: (r.get("chat_id") or 0, api_second(r.get("date_time")) or "", msgspec.json.encode(r)))
    places: dict[Any, int] = {}
    for row in rows:
        chat = row.get("chat_id")
        if chat is not None:
            n = places[chat] = places.get(chat, -1) + 1
            row["id"] = -((int(chat) << 20) + n)
    return rows


class VisitorsStream(ReportStream):
    name = "visitors"
    api_method = "get.visitors_report"
    parent_stream_type = VisitorSessionsStream
    state_partitioning_keys: ClassVar[list[str]] = []
    primary_keys = ("id",)
    replication_key = "last_visit"
    selected_by_default = False  # deferred in the spec
    child_ids_key = "visitor_ids"

    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        yield from self.read_batch(
            context, lambda ids: self.read_queries([self.filtered({"visitor_id": v}) for v in ids]))


class FinancialSummaryStream(ReportStream):
    name = "financial_summary"
    api_method = "get.financial_summary_report"
    primary_keys = ("date",)
    replication_key = "date"

    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        # One request per month (the method takes year + month, not dates).
        start, end = self.bounds(context)
        year, month = start.year, start.month
        first_day, last_day = start.date().isoformat(), end.date().isoformat()
        while (year, month) <= (end.year, end.month):
            for record in self.query_rows(self.filtered({"year": year, "month": month})):
                day = str(record.get("date") or "")[:10]
                if first_day <= day <= last_day:
                    yield record
            self.commit_bookmark(None)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)

    def _moment(self, value: str) -> dt.datetime:
        return dt.datetime.fromisoformat(value[:10])

    def compare_start_date(self, value: str, start_date_value: str) -> str:
        return max(value[:10], start_date_value[:10])


class V3ReportStream(ReportStream):
    """v3 reports (spec: not implemented yet): ``customer_id``, ``field``, dates in ``filter``."""

    selected_by_default = False
    sends_user_id = False  # v3 methods know customer_id instead

    def fields_param(self) -> str | None:
        return "field"

    def window_params(self, window: Window, till: dt.datetime) -> dict[str, Any]:
        dates = [{"field": "date_from", "operator": "eq", "value": _fmt(window.start)},
                 {"field": "date_till", "operator": "eq", "value": _fmt(till)}]
        user_filter = self.tap.filters.get(self.name)
        params: dict[str, Any] = {
            "filter": {"filters": [*dates, user_filter] if user_filter else dates, "condition": "and"}}
        if self.tap.customer_id is not None:
            params["customer_id"] = self.tap.customer_id
        return params



class SalesStream(V3ReportStream):
    name = "sales"
    api_method = "get.sales_report"
    primary_keys = ("id",)
    replication_key = "date_time"


class ApiRequestsStream(V3ReportStream):
    name = "api_requests"
    api_method = "get.api_requests_report"
    # No field identifies a row: `request_id` is the caller's JSON-RPC id (often a constant, sometimes a
    # string), and two calls of one method can share a second and an address. A key made of them would
    # make targets merge distinct requests; none is declared, so targets append (see README).
    primary_keys = ()
    replication_key = "date_time"

    def __init__(self, tap: TapCoMagic) -> None:
        super().__init__(tap)
        # a row returned again at a shared window boundary is known by all of its fields
        self._dedup = BoundaryDedup(tuple(self.schema["properties"]), self.replication_key or "")


REPORT_STREAMS: list[type[ReportStream]] = [
    CommunicationsStream, CallsStream, CallLegsStream, GoalsStream, ChatsStream, ChatMessagesStream,
    OfflineMessagesStream, VisitorSessionsStream, VisitorsStream, FinancialSummaryStream,
    FinancialCallLegsStream, SalesStream, ApiRequestsStream,
]
