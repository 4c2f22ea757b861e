"""The CoMagic JSON-RPC client as a singer-sdk stream base.

One request: a JSON-RPC 2.0 envelope POSTed to ``api_url``; the token is put in by the
auth hook (:mod:`tap_comagic.auth`) on every attempt; the throttle (:mod:`tap_comagic.limits`)
reserves a point first; the answer is decoded once and its ``error`` object, which comes
with HTTP 200, is turned into an action in ``validate_response`` so that the SDK's retry
loop sees it (:mod:`tap_comagic.errors`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
import requests
import singer_sdk.singerlib as singer
from singer_sdk import metrics
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import RESTStream
from typing_extensions import override

from tap_comagic.auth import used_token
from tap_comagic.batches import BatchFiles
from tap_comagic.context import ACCOUNT_COLUMN
from tap_comagic.errors import (
    CoMagicError,
    DailyLimitSpent,
    DropField,
    RateLimited,
    RetryAfter,
    SkipStream,
    StopRun,
    TapError,
    TokenExpired,
    raise_for_error,
)
from tap_comagic.pagination import Page, ReportPaginator, read_pages
from tap_comagic.shapes import RecordDecoder, load_schema

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_comagic.context import Account, RunContext

_request_ids = itertools.count(1)
_BODY = "_comagic_body"
_TOTAL = "_comagic_total"
# In the stream's bookmark: field -> when the account last refused it (UTC). Such a field is not asked for
# again until ASK_AGAIN_AFTER has passed, so that an account that gains it gets it.
REFUSED_FIELDS = "refused_fields"
ASK_AGAIN_AFTER = dt.timedelta(days=30)


class _Result(msgspec.Struct):
    data: msgspec.Raw = msgspec.Raw(b"null")  # the records stay JSON until a consumer takes them
    metadata: dict[str, Any] | None = None
    meta_data: dict[str, Any] | None = None  # v3 methods (the spec's example) say so


class Answer(msgspec.Struct):
    """A decoded answer: the envelope, errors and metadata at once, the records only when taken."""

    result: _Result | None = None
    error: dict[str, Any] | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        """The answer's metadata (v2 `metadata` or v3 `meta_data`), empty if none."""
        if self.result is None:
            return {}
        meta = self.result.metadata if self.result.metadata is not None else self.result.meta_data
        return meta or {}

    def records(self, decode: Callable[[msgspec.Raw | None], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The records, decoded by ``decode`` (a stream's :class:`~tap_comagic.shapes.RecordDecoder`: never
        untyped, so that no record can contradict its schema)."""
        return decode(self.result.data if self.result is not None else None)


def answer_of(response: requests.Response) -> Answer:
    """The answer, parsed once per response however many times it is asked for.

    The envelope is read in the thread that fetched the page (errors must reach the retry loop);
    the records are decoded by whoever consumes the page, so queued pages stay compact bytes.
    """
    cached = response.__dict__.get(_BODY)
    if cached is None:
        try:
            cached = _ANSWER.decode(response.content)
        except msgspec.DecodeError as exc:  # truncated or not JSON (ValidationError is a DecodeError)
            raise RetryAfter(f"malformed JSON from the API ({str(exc)[:200]})") from None
        response.__dict__[_BODY] = cached
    answer: Answer = cached
    return answer


_ANSWER = msgspec.json.Decoder(Answer)


def release(response: requests.Response, total: int) -> None:
    """Let go of a page's raw bytes and parsed envelope once its page is made (memory stays flat)."""
    response.__dict__[_TOTAL] = total
    response.__dict__.pop(_BODY, None)
    response._content = b""


def total_items(response: requests.Response) -> int:
    """The page's total as fetch_page settled it (see CoMagicStream.fetch_page)."""
    return int(response.__dict__[_TOTAL])


class CoMagicStream(RESTStream[int], BatchFiles):
    """Shared by every report: envelope, errors, retries, limits, one JSON parse per page."""

    api_method: ClassVar[str]
    path = ""
    # The tap guarantees the types itself (fields requested = schema properties, values held to their
    # declared types while decoding: shapes.py), so the SDK's per-record conformance pass is not needed.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    # Every stream's state is kept per account (see context.Account.scope): a client added later starts
    # at `start_date`, one removed leaves the others' bookmarks alone.
    state_partitioning_keys: ClassVar[list[str]] = [ACCOUNT_COLUMN]

    def __init__(self, tap: Tap, run: RunContext) -> None:
        schema, flags = self.declared_schema()
        self.flags = flags
        # Every record names its account, and every key starts with it, so that one table holds many
        # accounts. The API's rows lack it: it is never asked for, and added in post_process.
        schema["properties"] = {ACCOUNT_COLUMN: {"type": ["integer"]}, **schema["properties"]}
        super().__init__(tap, schema=schema, http_method="POST")
        declared = self.declared_keys()
        self.row_keys = declared  # what tells the API's rows apart within one account
        self.primary_keys = (ACCOUNT_COLUMN, *declared) if declared else ()
        self.run = run
        self.settings = run.settings
        self.tally = run.progress.tally(run.account.customer_id, self.name)
        self._dropped_fields: set[str] = set()
        self._fields_settled = False  # an answer has accepted the fields asked for
        self._fields_recalled = False  # the state's refused fields are applied
        self._fields_lock = threading.Lock()
        self.skipped = False  # the account lacks this report (see get_records)

    @classmethod
    def declared_keys(cls) -> tuple[str, ...]:
        """The key the stream declares, within one account (a class declaring none has the SDK's property)."""
        keys = cls.primary_keys
        return tuple(keys) if isinstance(keys, (tuple, list)) else ()

    @classmethod
    def declared_schema(cls) -> tuple[dict[str, Any], dict[str, Any]]:
        """The stream's schema and spec flags (``schemas/<name>.json``)."""
        return load_schema(cls.__dict__["name"])

    @property
    def account(self) -> Account:
        """The account this stream reads (see context.Account)."""
        return self.run.account

    @property
    @override
    def partitions(self) -> list[dict[str, Any]]:
        # one partition: the account this instance reads (the tap makes one set of streams per account)
        return [self.account.scope]

    @property
    def scope_state(self) -> dict[str, Any]:
        """This stream's state for the account it reads."""
        return self.get_context_state(self.account.scope)

    @property
    @override
    def url_base(self) -> str:
        return self.run.api_url

    @property
    @override
    def http_headers(self) -> dict[str, Any]:
        return {"Content-Type": "application/json; charset=UTF-8", "User-Agent": self.user_agent}

    @property
    @override
    def user_agent(self) -> str:
        return self.run.user_agent

    @property
    @override
    def timeout(self) -> int:
        return self.settings.request_timeout

    @property
    @override
    def authenticator(self) -> requests.auth.AuthBase:
        return self.run.auth

    # ---- one request -----------------------------------------------------------------

    sends_user_id: ClassVar[bool] = True  # agents act for a client with user_id

    def envelope(self, params: dict[str, Any]) -> bytes:
        """The JSON-RPC request for ``params``, with the agent's `user_id` where the method takes one."""
        user_id = self.account.user_id
        if self.sends_user_id and user_id is not None:
            params.setdefault("user_id", user_id)
        return msgspec.json.encode(
            {"jsonrpc": "2.0", "id": next(_request_ids), "method": self.api_method, "params": params})

    def call(self, params: dict[str, Any], context: Context | None = None) -> requests.Response:
        """POST one method call through the SDK's retry loop; the answer is validated."""
        prepared = self.build_prepared_request(
            method="POST", url=self.get_url(context), data=self.envelope(params), headers=self.http_headers)
        response: requests.Response = self.request_decorator(self.send)(prepared, context)
        return response

    @override
    def request_decorator(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """The SDK's retry loop around ``func``, each attempt first taking a point from the throttle."""

        def throttled(*args: Any, **kwargs: Any) -> Any:
            self.account.throttle.before_request()  # read at each attempt: the tests swap the throttle
            return func(*args, **kwargs)

        return super().request_decorator(throttled)

    def send(self, prepared: requests.PreparedRequest, context: Context | None) -> requests.Response:
        """One attempt, as the SDK's own request loop makes it (auth, timeout, duration metric, validation)."""
        request = self.authenticator(prepared)
        response = self.requests_session.send(request, timeout=self.timeout, allow_redirects=self.allow_redirects)
        self.run.progress.count_request(self.tally)
        tags: dict[str, Any] = {
            metrics.Tag.STREAM: self.name, metrics.Tag.ENDPOINT: self.path,
            metrics.Tag.HTTP_STATUS_CODE: response.status_code,
            metrics.Tag.STATUS: metrics.Status.SUCCEEDED if response.status_code < 400 else metrics.Status.FAILED}
        if context:
            tags[metrics.Tag.CONTEXT] = context
        metrics.log(self.metrics_logger, metrics.Point(
            "timer", metric=metrics.Metric.HTTP_REQUEST_DURATION, value=response.elapsed.total_seconds(), tags=tags))
        self.validate_response(response)
        return response

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Turn an answer's JSON-RPC error (sent with HTTP 200) or a bad status into the action the table says; note
        the limits it reports."""
        status = response.status_code
        if status >= 500 or status == 429:
            raise RetryAfter(f"{self.api_method}: HTTP {status} from the API")
        # a 4xx that is not a JSON-RPC error means a wrong address rather than a passing fault
        wrong_address = TapError(f"{self.api_method}: HTTP {status} from {self.run.api_url}: check `api_url`")
        try:
            answer = answer_of(response)
        except RetryAfter:
            if status >= 400:
                raise wrong_address from None
            raise
        if answer.error:
            self.act_on_error(answer.error, response)
        if status >= 400:
            raise wrong_address
        if answer.result is None:
            raise RetryAfter(f"{self.api_method}: an answer with neither result nor error")
        self.account.throttle.observe(answer.metadata.get("limits"))

    def act_on_error(self, error: dict[str, Any], response: requests.Response) -> None:
        """Raise what errors.py's table says for this error, after the auth or limits bookkeeping."""
        try:
            raise_for_error(self.api_method, error, self.requested_fields)
        except TokenExpired as exc:
            if not self.run.auth.renew(used_token(response.request)):
                raise TapError(f"{exc}; the API key in `access_token` has expired or is invalid: create a new "
                               "key in the CoMagic UI") from None
            raise
        except RateLimited as exc:
            # Some servers say when the limit resets in the error itself; else the last answer did.
            data = error.get("data") or {}
            throttle = self.account.throttle
            throttle.observe(data.get("limits") or (data.get("metadata") or {}).get("limits"))
            exc.pause = throttle.on_limit_exceeded()
            exc.wait = 0.0  # the throttle holds the retry back; jitter must not shorten that
            raise

    @override
    def response_error_message(self, response: requests.Response) -> str:
        # The SDK's default quotes the body and URL; ours carry nothing secret, but keep it short.
        return f"{self.api_method}: HTTP {response.status_code}"

    # ---- retries ---------------------------------------------------------------------

    @override
    def backoff_max_tries(self) -> int:
        return self.settings.max_retries + 1

    @override
    def backoff_wait_generator(self) -> Generator[float, None, None]:
        """Exponential waits from `retry_backoff_seconds`, unless the error says how long to wait."""
        base = self.settings.retry_backoff_seconds

        def waits() -> Generator[float, Any, None]:
            attempt = 0
            exception = yield 0.0  # primed by backoff; later sends are the exceptions raised
            while True:
                attempt += 1
                wait = getattr(exception, "wait", None)
                if wait is None:
                    wait = min(base * 2**attempt, 120.0)
                exception = yield wait

        return waits()

    @override
    def backoff_jitter(self, value: float) -> float:
        """Half to all of the wait, so that parallel requests do not retry in step."""
        return value * (0.5 + random.random() / 2)

    @override
    def backoff_handler(self, details: Any) -> None:
        """One WARNING per retry, naming the method and the cause."""
        exc = details.get("exception")
        wait = exc.pause if isinstance(exc, RateLimited) else details.get("wait") or 0.0
        self.log("%s: retry %d in %.1f s after %s", self.api_method, details.get("tries", 0), wait,
                 exc if isinstance(exc, RetriableAPIError) else type(exc).__name__, level=logging.WARNING)

    # ---- pages -----------------------------------------------------------------------

    @cached_property
    def sortable(self) -> frozenset[str]:
        """The fields the method can sort on (from the spec)."""
        return frozenset(self.flags.get("sortable", ()))

    @property
    def requested_fields(self) -> list[str]:
        """The catalog's selected properties: what ``fields`` asks for (never the default set)."""
        properties = self.schema["properties"]
        if self.selected:
            chosen = [p for p in properties if self.mask.get(("properties", p), False)]
        else:  # synced only to feed a child stream: ask for the keys alone
            chosen = [p for p in properties if p in self.row_keys or p == self.replication_key]
        return [p for p in chosen if p not in self._dropped_fields and p != ACCOUNT_COLUMN]

    def fetch_page(self, params: dict[str, Any], offset: int, page_size: int,
                   context: Context | None = None) -> Page:
        """One page of a query; the first answers are read one at a time until the account has accepted the fields
        asked for."""
        if self._fields_settled:
            return self._fetch_page(params, offset, page_size, context)
        # Until an answer accepts the fields asked for, one request at a time: a field the account refuses
        # then costs one request per run, however many queries would run in parallel.
        with self._fields_lock:
            if self._fields_settled:
                return self._fetch_page(params, offset, page_size, context)
            if not self._fields_recalled:
                self._fields_recalled = True
                self._recall_refused_fields()
            page = self._fetch_page(params, offset, page_size, context)
            self._fields_settled = True
            memory = self.scope_state.get(REFUSED_FIELDS)
            if isinstance(memory, dict):
                for name in set(memory) & set(self.requested_fields):  # asked again and accepted
                    del memory[name]
                if not memory:
                    del self.scope_state[REFUSED_FIELDS]
            return page

    def _recall_refused_fields(self) -> None:
        memory = self.scope_state.get(REFUSED_FIELDS)
        if not isinstance(memory, dict):
            return  # not ours (the state was edited): every field is asked for, and the answer remembered
        now = dt.datetime.now(dt.timezone.utc)
        recent = []
        for name, when in memory.items():
            try:
                at = dt.datetime.fromisoformat(str(when))
            except ValueError:
                continue  # unreadable: ask again
            if now - (at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)) < ASK_AGAIN_AFTER:
                recent.append(name)
        if recent:
            self._dropped_fields.update(recent)
            self.log("%s: not asking for %s, refused by the account in the last %d days (see the state's "
                     "`%s`)", self.api_method, ", ".join(sorted(recent)), ASK_AGAIN_AFTER.days, REFUSED_FIELDS)

    def _remember_refused_field(self, name: str) -> None:
        memory = self.scope_state.get(REFUSED_FIELDS)
        if not isinstance(memory, dict):
            memory = self.scope_state[REFUSED_FIELDS] = {}
        memory[name] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

    def _fetch_page(self, params: dict[str, Any], offset: int, page_size: int,
                    context: Context | None = None) -> Page:
        while True:
            page_params = {**params, "offset": offset, "limit": page_size}
            field_param = self.fields_param()
            if field_param:
                page_params[field_param] = self.requested_fields
            try:
                response = self.call(page_params, context)
            except DropField as exc:
                # A field this account lacks: leave it out rather than fail the stream, and remember it
                self._dropped_fields.add(exc.field)
                self._remember_refused_field(exc.field)
                self.log("%s: the account does not know field '%s'; it is left out (asked again after %d days)",
                         self.api_method, exc.field, ASK_AGAIN_AFTER.days, level=logging.WARNING)
                continue
            answer = answer_of(response)
            total = answer.metadata.get("total_items")
            if total is not None:
                page = Page(partial(answer.records, self.record_decoder), int(total), response)
            else:  # no total from this server: a full page means there may be more
                rows = answer.records(self.record_decoder)
                total = offset + len(rows) + (1 if len(rows) >= page_size else 0)
                page = Page(rows.copy, total, response, exact_total=False)
            release(response, page.total)
            return page

    @property
    def record_decoder(self) -> RecordDecoder:
        """Decodes a page into the fields asked for, each in its declared type (see shapes.py)."""
        decoder = self.__dict__.get("_record_decoder")
        if decoder is None:  # built at the first page, once the catalog's selection is known
            decoder = self.__dict__["_record_decoder"] = RecordDecoder(
                self.name, self.schema, self.requested_fields, self.logger)
        return decoder

    def fields_param(self) -> str | None:
        """The parameter that lists the fields asked for (None: the method takes no such list)."""
        return "fields"

    def pages(self, params: dict[str, Any], context: Context | None = None,
              parallel: bool = True) -> Generator[Page, None, None]:
        """The pages of one query, several in flight (``parallel``), in offset order."""
        page_size = self.settings.page_size
        paginator = ReportPaginator(page_size, total_items)
        workers = self.settings.max_parallel_requests if parallel else 1
        throttle = self.account.throttle
        yield from read_pages(lambda offset: self.fetch_page(params, offset, page_size, context),
                              paginator, lambda: throttle.parallelism(workers))

    @override
    def _generate_record_messages(self, record: dict[str, Any]) -> Generator[singer.RecordMessage, None, None]:
        # The SDK pops deselected fields from every record and runs its conformance pass. Our records
        # hold only the selected fields (requested so; anything else is dropped in post_process) with the
        # schema's types, so both passes, a third of the per-record cost, have nothing to do.
        self.tally.records += 1
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield singer.RecordMessage(stream=stream_map.stream_alias, record=mapped, version=self._stream_version,
                                           time_extracted=dt.datetime.now(dt.timezone.utc))

    @override
    def counted(self, record: dict[str, Any]) -> None:
        self.tally.records += 1

    # The SDK's own request loop (request_records) is not used: windows, pages and batches go through
    # pages()/read_pages(). These two abstract methods still answer correctly for anyone who calls them.
    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        yield from answer_of(response).records(self.record_decoder)

    @override
    def get_new_paginator(self) -> ReportPaginator:
        return ReportPaginator(self.settings.page_size, total_items)

    # ---- the stream's life -----------------------------------------------------------

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """The stream's records (see ``read``); what ends the run leaves as :class:`StopRun`."""
        if self.skipped:
            return
        if self.parent_stream_type is None:
            self.run.progress.at_stream(self.name)
        began = time.monotonic()
        try:
            yield from self.read(context)
        except SkipStream as exc:
            # once per run: a child stream is asked again at every parent window
            self.skipped = True
            self.tally.skipped = str(exc)
            self.log("Skipping stream '%s'%s: %s", self.name, self.of_account, exc, level=logging.WARNING)
        except (DailyLimitSpent, TapError, CoMagicError) as exc:
            raise StopRun(exc, self.name) from None
        except (RetriableAPIError, requests.RequestException) as exc:
            retries = self.settings.max_retries
            raise StopRun(TapError(f"{self.api_method}: {exc} (gave up after {retries} retries: raise "
                                   "`max_retries` or run again later)"), self.name) from None
        finally:
            self.tally.seconds += time.monotonic() - began

    @property
    def of_account(self) -> str:
        """The words ' of customer N' where a run reads several accounts, for messages naming the stream."""
        return f" of customer {self.account.customer_id}" if self.settings.customers else ""

    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        """The stream's records in this run (its declaration says how: windows, ids, months, days)."""
        raise NotImplementedError
