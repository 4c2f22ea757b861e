"""Windows and pages, without a server."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest
import requests

from tap_comagic.pagination import Page, ReportPaginator, Window, plan, read_pages

T0 = dt.datetime(2026, 1, 1)


def test_windows_are_contiguous_bounded_and_cover_the_range():
    end = T0 + dt.timedelta(days=200, hours=5, seconds=7)
    windows = plan(T0, end, 30)
    assert windows[0].start == T0
    assert windows[-1].end == end
    for a, b in itertools.pairwise(windows):
        assert a.end == b.start  # shared boundary second: no gap under either reading of date_till
    assert all(w.end - w.start <= dt.timedelta(days=30) for w in windows)
    assert len(windows) == 7


def test_empty_range_has_no_window():
    assert plan(T0, T0, 30) == []


def test_halves_share_their_middle_and_cover_the_window():
    w = Window(T0, T0 + dt.timedelta(days=3, seconds=1))
    a, b = w.halves()
    assert (a.start, b.end) == (w.start, w.end)
    assert a.end == b.start
    assert a.start < a.end < b.end
    assert not Window(T0, T0 + dt.timedelta(seconds=1)).splittable


def _response(total: int) -> requests.Response:
    r = requests.Response()
    r.__dict__["total"] = total
    return r


def _fetcher(total: int, size: int, calls: list[int], lock: threading.Lock):
    def fetch(offset: int) -> Page:
        with lock:
            calls.append(offset)
        rows = [{"n": i} for i in range(offset, min(offset + size, total))]
        return Page(rows, total, _response(total))
    return fetch


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize(("total", "size", "pages"), [(0, 10, 1), (10, 10, 1), (11, 10, 2), (95, 10, 10)])
def test_pages_stop_on_total_items_and_come_in_order(workers, total, size, pages):
    calls: list[int] = []
    paginator = ReportPaginator(size, lambda r: r.__dict__["total"])
    got = list(read_pages(_fetcher(total, size, calls, threading.Lock()), paginator, lambda: workers))
    assert len(calls) == pages
    assert sorted(calls) == list(range(0, max(total, 1), size))[:pages]
    assert [row["n"] for page in got for row in page.take()] == list(range(total))
