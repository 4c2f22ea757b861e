"""Date windows and offset pages: the one paging mechanism every report uses.

A report is read over ``[start, end]`` in account time, cut into windows of at most
``window_days``.  Consecutive windows share their boundary second (``date_till`` of one
is ``date_from`` of the next), so nothing is lost whether the API treats ``date_till``
as inclusive or exclusive; records seen twice at that second are dropped by primary key
(:class:`~tap_comagic.exactly_once.BoundaryDedup`).  Inside a window, offset pages of ``page_size`` rows run until
``total_items``; a window holding more rows than ``offset`` can reach is split in two
before any of it is emitted. Pages are only as exact as the server's order: the pager
checks them against ``total_items`` (:mod:`tap_comagic.exactly_once`).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from singer_sdk.pagination import OffsetPaginator

T = TypeVar("T")
R = TypeVar("R")

OFFSET_CAP = 100_000  # the API refuses a larger offset
MAX_PAGE_SIZE = 10_000  # ... and a larger limit
MAX_WINDOW_DAYS = 90  # date_interval_limit_reached past three months


@dataclass(frozen=True)
class Window:
    """``[start, end]`` in naive account-local time."""

    start: dt.datetime
    end: dt.datetime

    def halves(self) -> tuple[Window, Window]:
        """The window in two, for a window the API refuses or that holds more than offset paging reaches."""
        middle = self.start + dt.timedelta(seconds=(self.end - self.start).total_seconds() // 2)
        return Window(self.start, middle), Window(middle, self.end)

    def pieces(self, n: int) -> list[Window]:
        """``n`` contiguous parts of whole seconds (fewer if the window is shorter), sharing their ends."""
        seconds = int((self.end - self.start).total_seconds())
        n = max(1, min(n, seconds))
        cuts = [self.start + dt.timedelta(seconds=seconds * i // n) for i in range(n + 1)]
        return [Window(a, b) for a, b in itertools.pairwise(cuts)]

    @property
    def splittable(self) -> bool:
        """A window of two seconds or more can be halved into windows of whole seconds."""
        return (self.end - self.start).total_seconds() >= 2


def plan(start: dt.datetime, end: dt.datetime, days: int) -> list[Window]:
    """Contiguous windows from start to end, each at most ``days`` long."""
    windows: list[Window] = []
    step = dt.timedelta(days=days)
    cursor = start
    while cursor < end:
        nxt = min(cursor + step, end)
        windows.append(Window(cursor, nxt))
        cursor = nxt
    return windows


@dataclass
class Page:
    """One page of a query: its total, and its records (each decoded when read: see shapes.Rows)."""

    rows: Sequence[dict[str, Any]]
    total: int
    response: requests.Response
    exact_total: bool = True  # False: the server sent no total_items; read on while pages are full

    def take(self) -> Sequence[dict[str, Any]]:
        """The page's records; the page keeps nothing of them afterwards."""
        rows, self.rows = self.rows, ()
        return rows


class ReportPaginator(OffsetPaginator):
    """Offsets inside one window; finished when the next offset passes ``total_items``."""

    def __init__(self, page_size: int, total_of: Callable[[requests.Response], int]) -> None:
        super().__init__(start_value=0, page_size=page_size)
        self._total_of = total_of

    def has_more(self, response: requests.Response) -> bool:
        """Whether another offset of this query holds rows."""
        return self.current_value + self.page_size < self._total_of(response)

    def offsets_left(self, total: int) -> list[int]:
        """The offsets still to read once ``total`` is known (for fetching them in parallel)."""
        return list(range(self.current_value, total, self.page_size))


def reachable_rows(page_size: int) -> int:
    """The most rows offset paging reaches in one query (the API caps the offset)."""
    return OFFSET_CAP + page_size


def read_pages(
    fetch: Callable[[int], Page],
    paginator: ReportPaginator,
    parallel: Callable[[], int],
) -> Generator[Page, None, None]:
    """Pages of one query in offset order; after the first, up to ``parallel()`` in flight.

    The first page is always read alone: its ``total_items`` tells how many follow and
    whether the window must be split (the caller checks before consuming the next page).
    """
    first = fetch(paginator.current_value)
    yield first
    paginator.advance(first.response)
    if paginator.finished:
        return
    workers = parallel() if first.exact_total else 1
    if workers <= 1:
        while not paginator.finished:
            page = fetch(paginator.current_value)
            yield page
            paginator.advance(page.response)
        return
    yield from in_order(fetch, paginator.offsets_left(first.total), workers)


def in_order(work: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``work`` over ``items`` with at most ``workers`` in flight, results in the items' order.

    A bounded number in flight keeps memory flat however many items there are.
    """
    todo = deque(items)
    if workers <= 1:
        while todo:
            yield work(todo.popleft())
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="comagic") as pool:
        pending: deque[Future[R]] = deque()
        try:
            while todo or pending:
                while todo and len(pending) < workers:
                    pending.append(pool.submit(work, todo.popleft()))
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
