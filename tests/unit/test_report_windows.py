"""A report stream's windows fed fake pages (no server): a window holding more rows than offset paging
reaches is split before any of it is emitted, and every row comes once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from typing import Any

from tap_comagic.pagination import OFFSET_CAP, Page
from tap_comagic.tap import TapCoMagic
from tests.unit.fake_pages import FMT, T0, _response

DAYS = 2
ROWS = 120_000  # more than offset paging reaches in one query (100,000 + a page of 10,000)
SPAN = DAYS * 86_400


def second_of(i: int) -> int:
    return i * SPAN // ROWS


def first_at(second: float) -> int:
    """The first row at or after ``second`` (rows are spread evenly, sorted on time)."""
    return max(0, min(ROWS, -(-int(second) * ROWS // SPAN)))


class Evenly:
    """``ROWS`` communications spread evenly over two days, answered as the API would, in time order."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, int]] = []

    def fetch_page(self, params: dict[str, Any], offset: int, page_size: int, context: Any = None) -> Page:
        start = (dt.datetime.strptime(params["date_from"], FMT) - T0).total_seconds()
        till = (dt.datetime.strptime(params["date_till"], FMT) - T0).total_seconds()
        lo, hi = first_at(start), first_at(till)  # date_till exclusive
        self.asked.append((params["date_from"], params["date_till"], offset))

        rows = [{"id": i, "date_time": (T0 + dt.timedelta(seconds=second_of(i))).strftime(FMT)}
                for i in range(lo + offset, min(hi, lo + offset + page_size))]
        return Page(rows, hi - lo, _response(hi - lo))

    def pages(self, params: dict[str, Any], context: Any = None, parallel: bool = True
              ) -> Generator[Page, None, None]:
        first = self.fetch_page(params, 0, 10_000)
        yield first
        for offset in range(10_000, first.total, 10_000):
            yield self.fetch_page(params, offset, 10_000)


def test_a_window_past_the_offset_cap_is_halved_before_any_row_is_emitted_and_each_row_comes_once() -> None:
    end = T0 + dt.timedelta(days=DAYS)
    # a closed loopback port: a request that is not the fake's fails at once
    tap = TapCoMagic(config={"access_token": "k", "api_url": "http://127.0.0.1:9/v2.0", "max_retries": 0,
                             "start_date": T0.isoformat(), "end_date": end.isoformat(), "timezone": "UTC",
                             "page_size": 10_000}, state={})
    report: Any = tap.streams["communications"]  # sorted on time, no child stream
    server = Evenly()
    report.fetch_page, report.pages = server.fetch_page, server.pages
    seen = [r["id"] for r in report.read_range(T0, end, None)]
    assert len(seen) == ROWS
    assert set(seen) == set(range(ROWS))
    whole, *rest = server.asked
    assert whole[2] == 0
    assert all(a[:2] != whole[:2] for a in rest)  # only the first page of the whole window was asked
    halves = sorted({a[:2] for a in rest})
    assert [h[0] for h in halves] == [T0.strftime(FMT), (T0 + dt.timedelta(days=1)).strftime(FMT)]
    assert max(offset for _, _, offset in server.asked) < OFFSET_CAP
