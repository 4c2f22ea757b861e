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
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from tap_comagic.client import CoMagicStream
from tap_comagic.errors import CoMagicError, SplitWindow, TapError
from tap_comagic.pagination import BoundaryDedup, Window, in_order, plan, reachable_rows
from tap_comagic.timezones import API_FORMAT, AscendingFolds, api_second, instant, resume_point

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_comagic.tap import TapCoMagic


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

    # ---- windows ----------------------------------------------------------------------

    def bounds(self, context: Context | None) -> tuple[dt.datetime, dt.datetime]:
        start, end = self.tap.start_date, self.tap.end_date
        bookmark = self.get_starting_replication_key_value(context)
        if bookmark:
            resume = resume_point(self._moment(str(bookmark)), self.tap.zone)
            start = max(start, resume - dt.timedelta(days=self.tap.lookback_days))
        return start, end

    def compare_start_date(self, value: str, start_date_value: str) -> str:
        return max(value, start_date_value, key=self._moment)

    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        start, end = self.bounds(context)
        yield from self.read_range(start, end, context)

    def read_range(self, start: dt.datetime, end: dt.datetime,
                   context: Context | None) -> Iterator[dict[str, Any]]:
        rk = self.replication_key or ""
        last_second = _fmt(end)
        dedup = self._dedup
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
            for page in itertools.chain([first], pages):  # pages keep nothing once taken
                for record in page.take():
                    value = api_second(record.get(rk))
                    if value is not None and value > last_second:
                        continue
                    if dedup.is_repeat(record, value):
                        continue
                    yield record
            self.finish_window(window)
            gc.unfreeze()  # see client.decode_records

    def finish_window(self, window: Window) -> None:
        """All records of the window are written: feed the children, then advance the bookmark
        (in that order, so that a run killed while the children read resumes with this window)."""
        if any(child.selected or child.has_selected_descendents for child in self.child_streams):
            self.window_finished_for_children(window)
        self.commit_bookmark(None)

    def window_finished_for_children(self, window: Window) -> None:
        """Parents hand their children a batch (a window, the window's ids) here, once per window."""
        if self.child_ids is None:
            return
        ids, self._batch = self._batch, []
        if ids:
            self._sync_children({self.child_ids[1]: ids})

    def read_queries(self, queries: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Several queries, each with its pages: a bounded number in flight hides the latency, and
        the output keeps the queries' order."""
        if len(queries) == 1:
            for page in self.pages(queries[0]):
                yield from page.take()
            return

        def rows(params: dict[str, Any]) -> list[dict[str, Any]]:
            return [row for page in self.pages(params, parallel=False) for row in page.take()]

        workers = self.tap.throttle.parallelism(self.tap.max_parallel_requests)
        for batch in in_order(rows, queries, workers):
            yield from batch

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

    def commit_bookmark(self, context: Context | None) -> None:
        candidate, self._bookmark_candidate = self._bookmark_candidate, None
        if candidate is None or not self.selected:
            return
        state = self.get_context_state(context)
        current = state.get("replication_key_value")
        if current is None or self._moment(candidate) > self._moment(str(current)):
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = candidate
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
        if self.child_ids is not None and self.has_selected_descendents:
            value = row.get(self.child_ids[0])
            if value is not None and not (self.child_ids_once_per_run and value in self._batched):
                self._batch.append(value)
                if self.child_ids_once_per_run:
                    self._batched.add(value)
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
            known = self._known = frozenset(self.requested_fields)
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

    def window_finished_for_children(self, window: Window) -> None:
        # call_legs is date-windowed itself: one child context per calls window, not per call.
        self._sync_children({"date_from": _fmt(window.start), "date_till": _fmt(window.end)})

    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        if self.selected:
            yield from super().read(context)
            return
        # Only call_legs is wanted: its windows need no calls requests at all.
        start, end = self.bounds(context)
        for window in plan(start, end, self.tap.window_days):
            self.finish_window(window)


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
        yield from self.read_range(start, end, context)

    def finish_window(self, window: Window) -> None:
        self.commit_bookmark(None)


class ChatMessagesStream(ReportStream):
    name = "chat_messages"
    api_method = "get.chat_messages_report"
    parent_stream_type = ChatsStream
    state_partitioning_keys: ClassVar[list[str]] = []
    # Two messages of one chat may share chat, second, sender and text (two files sent at once): only the id
    # tells them apart. An account that refuses `id` gets a stand-in (see post_process).
    primary_keys = ("id",)
    replication_key = "date_time"

    def __init__(self, tap: TapCoMagic) -> None:
        super().__init__(tap)
        self._one_chat_per_request = False
        self._positions: dict[Any, int] = {}  # chat id -> messages of it seen so far in this context
        self._emit_chat_id: bool | None = None

    @property
    def requested_fields(self) -> list[str]:
        fields = super().requested_fields
        if "id" in self._dropped_fields and "chat_id" not in fields:
            fields.append("chat_id")  # the stand-in id is made from it
        return fields

    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        processed = super().post_process(row, context)
        if processed is None or processed.get("id") is not None:
            return processed
        # No id (the account refuses it, or leaves it empty): the key stays `id` (declared before any answer),
        # filled with the message's place in its chat, -(chat_id * 2^20 + n), n counting the chat's id-less
        # messages in date_time order. Every message of a chat comes in one query, so n is the same in every
        # run while the chat is unchanged.
        chat = processed.get("chat_id")
        if chat is None:
            return processed
        n = self._positions.get(chat, 0)
        self._positions[chat] = n + 1
        processed["id"] = -((int(chat) << 20) + n)
        if "id" in self._dropped_fields:  # chat_id was asked for to make the stand-in
            if self._emit_chat_id is None:
                self._emit_chat_id = not self.selected or bool(self.mask.get(("properties", "chat_id"), False))
            if not self._emit_chat_id:
                del processed["chat_id"]
        return processed

    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        assert context is not None
        self._positions = {}
        chat_ids: list[int] = list(context["chat_ids"])
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
                self._positions = {}
                self.log("get.chat_messages_report refuses `chat_ids`: reading one chat per request",
                         level=logging.WARNING)
            else:
                self.commit_bookmark(None)
                return
        yield from self.read_queries([self.filtered({"chat_id": chat_id}) for chat_id in chat_ids])
        self.commit_bookmark(None)


class VisitorsStream(ReportStream):
    name = "visitors"
    api_method = "get.visitors_report"
    parent_stream_type = VisitorSessionsStream
    state_partitioning_keys: ClassVar[list[str]] = []
    primary_keys = ("id",)
    replication_key = "last_visit"
    selected_by_default = False  # deferred in the spec

    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        assert context is not None
        yield from self.read_queries([self.filtered({"visitor_id": v}) for v in context["visitor_ids"]])
        self.commit_bookmark(None)


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
            for page in self.pages(self.filtered({"year": year, "month": month})):
                for record in page.take():
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
