"""The stream base every CoMagic stream shares: its declaration (schema, keys, state per account), its
requests (sent through the run's :class:`~tap_comagic.api.CoMagicClient`), its pages, and its records'
output."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Generator, Iterable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import requests
import singer_sdk.singerlib as singer
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import RESTStream
from typing_extensions import override

from tap_comagic.api import Answer, answer_of, release, total_items
from tap_comagic.batches import BatchFiles
from tap_comagic.context import ACCOUNT_COLUMN
from tap_comagic.errors import CoMagicError, DailyLimitSpent, DropField, SkipStream, StopRun, TapError
from tap_comagic.pagination import Page, ReportPaginator, read_pages
from tap_comagic.refused import RefusedFields
from tap_comagic.shapes import RecordDecoder, load_schema

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_comagic.context import Account, RunContext

__all__ = ["Answer", "CoMagicStream", "answer_of", "load_schema", "total_items"]


class CoMagicStream(RESTStream[int], BatchFiles):
    """Shared by every stream: its declaration, its requests and pages, its records' output."""

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
        self.refused = RefusedFields(self.api_method, lambda: self.scope_state, self.log)
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

    # ---- one request -----------------------------------------------------------------

    sends_user_id: ClassVar[bool] = True  # agents act for a client with user_id

    def call(self, params: dict[str, Any], context: Context | None = None) -> requests.Response:
        """One method call through the run's client (retries, token, throttle, errors); the answer is
        validated. Where the method takes one, an agent's `user_id` is added."""
        user_id = self.account.user_id
        if self.sends_user_id and user_id is not None:
            params.setdefault("user_id", user_id)
        return self.run.client.call(self.api_method, params, fields=self.requested_fields, stream=self.name,
                                    context=context, sent=self._count_request)

    def _count_request(self) -> None:
        self.run.progress.count_request(self.tally)

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
        return [p for p in chosen if p not in self.refused.dropped and p != ACCOUNT_COLUMN]

    @property
    def _dropped_fields(self) -> set[str]:
        """The fields the account refused (see refused.py)."""
        return self.refused.dropped

    def fetch_page(self, params: dict[str, Any], offset: int, page_size: int,
                   context: Context | None = None) -> Page:
        """One page of a query; the first answers are read one at a time until the account has accepted the fields
        asked for (see refused.py)."""
        return self.refused.first_answers(lambda: self._fetch_page(params, offset, page_size, context),
                                          lambda: self.requested_fields)

    def _fetch_page(self, params: dict[str, Any], offset: int, page_size: int,
                    context: Context | None = None) -> Page:
        while True:
            page_params = {**params, "offset": offset, "limit": page_size}
            field_param = self.fields_param()
            if field_param:
                page_params[field_param] = self.requested_fields
            try:
                response = self.call(page_params, context)
            except DropField as exc:  # a field this account lacks: left out rather than failing the stream
                self.refused.refused(exc.field)
                continue
            page = self.page_of(response, offset, page_size)
            release(response, page.total)
            return page

    def page_of(self, response: requests.Response, offset: int, page_size: int) -> Page:
        """The page an answer holds: its records (split, each decoded when read: see shapes.Rows) and total."""
        answer = answer_of(response)
        rows = answer.records(self.record_decoder)
        total = answer.metadata.get("total_items")
        if total is not None:
            return Page(rows, int(total), response)
        # no total from this server: a full page means there may be more
        return Page(rows, offset + len(rows) + (1 if len(rows) >= page_size else 0), response, exact_total=False)

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
