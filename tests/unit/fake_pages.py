"""A fake report query for the pager's tests: rows in memory, answered page by page in an order the test
chooses per request, with rows that may change between requests. No server, no stream."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator
from typing import Any

import requests

from tap_comagic.exactly_once import ExactPager, Narrowing, WindowNarrowing, row_key
from tap_comagic.pagination import Page, ReportPaginator, Window, read_pages

T0 = dt.datetime(2026, 3, 1, 12, 0, 0)
FMT = "%Y-%m-%d %H:%M:%S"


def at(second: int) -> str:
    return (T0 + dt.timedelta(seconds=second)).strftime(FMT)


def window_params(window: Window) -> dict[str, Any]:
    return {"date_from": window.start.strftime(FMT), "date_till": window.end.strftime(FMT)}


def _response(total: int) -> requests.Response:
    response = requests.Response()
    response.__dict__["total"] = total
    return response


class FakeQuery:
    """Answers ``fetch(params, offset, limit)`` from ``rows``: those of the window (``date_till``
    exclusive) or of the ``chat_ids`` asked, in ``order(rows, request_number)``; ``before(n)`` runs
    before request ``n`` (rows appearing or disappearing between pages)."""

    def __init__(self, rows: list[dict[str, Any]], order: Callable[[list[dict[str, Any]], int], list[dict[str, Any]]],
                 before: Callable[[FakeQuery, int], None] | None = None) -> None:
        self.rows = rows
        self.order = order
        self.before = before
        self.requests: list[tuple[dict[str, Any], int, int]] = []

    def select(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.rows
        if "date_from" in params:
            rows = [r for r in rows if params["date_from"] <= r["t"] < params["date_till"]]
        if "chat_ids" in params:
            rows = [r for r in rows if r["chat"] in params["chat_ids"]]
        return rows

    def fetch(self, params: dict[str, Any], offset: int, limit: int) -> Page:
        if self.before is not None:
            self.before(self, len(self.requests))
        n = len(self.requests)
        self.requests.append((params, offset, limit))
        ordered = self.order(self.select(params), n)
        rows = [dict(r) for r in ordered[offset:offset + limit]]
        return Page(rows, len(ordered), _response(len(ordered)))

    def pages(self, params: dict[str, Any], page_size: int) -> Generator[Page, None, None]:
        paginator = ReportPaginator(page_size, lambda r: r.__dict__["total"])
        return read_pages(lambda offset: self.fetch(params, offset, page_size), paginator, lambda: 1)


def by_time_ties_flipped(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Sorted on time; rows of one second in ascending id order on even requests, descending on odd ones
    (as a database answering LIMIT/OFFSET may)."""
    sign = 1 if n % 2 == 0 else -1
    return sorted(rows, key=lambda r: (r["t"], sign * r["id"]))


def stable(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["t"], r["id"]))


def read_window(query: FakeQuery, span: Window, page_size: int, *, ordered: bool,
                keys: tuple[str, ...] = ("id",), unique: bool = True) -> list[dict[str, Any]]:
    """Every row the pager yields for one window of ``query``."""
    return read(query, WindowNarrowing(span, window_params, page_size), page_size, ordered=ordered, keys=keys,
                unique=unique)


def read(query: FakeQuery, narrowing: Narrowing, page_size: int, *, ordered: bool,
         keys: tuple[str, ...] = ("id",), unique: bool = True, tie_field: str | None = None) -> list[dict[str, Any]]:
    key, whole = row_key(keys, unique)
    pager = ExactPager(query.fetch, key, whole_rows=whole, page_size=page_size, time_field="t", tie_field=tie_field,
                       name="fake", method="get.fake_report")
    pages = query.pages(narrowing.query, page_size)
    first = next(pages)
    return list(pager.rows(first, pages, narrowing, ordered=ordered))
