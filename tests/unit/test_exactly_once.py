"""The pager fed fake pages: each row of a query exactly once whatever order the server gives them in, and
with a stable order not one request more."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from tap_comagic.errors import TapError
from tap_comagic.exactly_once import BoundaryDedup, IdsNarrowing, Narrowing, pieces_for
from tap_comagic.pagination import MAX_PAGE_SIZE, Window
from tests.unit.fake_pages import (
    FMT,
    T0,
    FakeQuery,
    at,
    by_time_ties_flipped,
    read,
    read_window,
    stable,
    window_params,
)

SPAN = Window(T0, T0 + dt.timedelta(minutes=1))


def rows_at(seconds: list[int], first_id: int = 1) -> list[dict[str, Any]]:
    """One row per entry, with ids from ``first_id``: ``[0, 0, 5]`` is two rows at second 0, one at 5."""
    return [{"id": first_id + i, "t": at(s), "chat": 100 + s} for i, s in enumerate(seconds)]


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return sorted(r["id"] for r in rows)


def one_second_windows(query: FakeQuery, after: int) -> list[tuple[str, str]]:
    """The windows asked after the first ``after`` requests."""
    return [(p["date_from"], p["date_till"]) for p, _, _ in query.requests[after:]]


def test_a_stable_order_is_read_in_its_pages_and_nothing_more() -> None:
    rows = rows_at([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4])
    query = FakeQuery(rows, stable)
    got = read_window(query, SPAN, page_size=5, ordered=True)
    assert [r["id"] for r in got] == [r["id"] for r in stable(rows, 0)]
    assert [offset for _, offset, _ in query.requests] == [0, 5, 10]


def test_one_page_is_taken_whole_without_counting() -> None:
    rows = rows_at([0, 0, 1])
    query = FakeQuery(rows, by_time_ties_flipped)
    assert ids(read_window(query, SPAN, page_size=5, ordered=True)) == [1, 2, 3]
    assert len(query.requests) == 1


def test_ties_reordered_across_page_boundaries_are_read_again_second_by_second() -> None:
    # four rows at each of three seconds, pages of five: both boundaries cut a second, and the second page
    # lists each second's rows in the other order, so it repeats one row and skips two
    rows = rows_at([0] * 4 + [1] * 4 + [2] * 4)
    query = FakeQuery(rows, by_time_ties_flipped)
    got = read_window(query, SPAN, page_size=5, ordered=True)
    assert Counter(r["id"] for r in got) == Counter(range(1, 13))
    assert [offset for _, offset, _ in query.requests[:3]] == [0, 5, 10]
    # only the cut seconds, each alone, were asked again: not the whole window
    assert one_second_windows(query, 3) == [(at(1), at(2)), (at(2), at(3))]


def test_a_cut_second_at_the_window_end_is_asked_with_the_second_before_it() -> None:
    span = Window(T0, T0 + dt.timedelta(seconds=2))
    rows = rows_at([0] * 3 + [1] * 4)
    query = FakeQuery(rows, by_time_ties_flipped)
    got = read_window(query, span, page_size=2, ordered=True)
    assert Counter(r["id"] for r in got) == Counter(range(1, 8))
    assert all(dt.datetime.strptime(b, FMT) <= span.end for _, b in one_second_windows(query, 0))


def test_an_unsorted_query_stops_paging_at_the_first_repeat_and_reads_the_rest_in_pieces() -> None:
    rows = rows_at(list(range(0, 40, 2)))  # 20 rows, each at its own second

    def rotating(rs: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
        ordered = sorted(rs, key=lambda r: r["id"])  # the server's order moves two rows on at each request
        cut = len(ordered) - 2 * n % max(1, len(ordered))
        return ordered[cut:] + ordered[:cut]

    query = FakeQuery(rows, rotating)
    got = read_window(query, SPAN, page_size=4, ordered=False)
    assert Counter(r["id"] for r in got) == Counter(range(1, 21))
    offsets = [offset for params, offset, _ in query.requests if params == window_params(SPAN)]
    assert offsets == [0, 4]  # the second page repeats two rows: the other three pages are not worth reading


@pytest.mark.parametrize("order", [by_time_ties_flipped, stable])
def test_a_row_appearing_between_pages_is_read_once_and_none_is_lost(order: Any) -> None:
    rows = rows_at([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])

    def appear(query: FakeQuery, n: int) -> None:
        if n == 1:  # before the second page: a new row sorts first, pushing every row one place on
            query.rows.append({"id": 99, "t": at(0), "chat": 100})

    query = FakeQuery(rows, order, before=appear)
    got = read_window(query, SPAN, page_size=4, ordered=True)
    assert Counter(r["id"] for r in got) == Counter([*range(1, 11), 99])


def test_a_row_disappearing_between_pages_costs_no_other_row_and_the_reading_ends() -> None:
    rows = rows_at([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])

    def disappear(query: FakeQuery, n: int) -> None:
        if n == 1:  # before the second page: row 2 is deleted, pulling every later row one place back
            query.rows[:] = [r for r in query.rows if r["id"] != 2]

    query = FakeQuery(rows, stable, before=disappear)
    got = read_window(query, SPAN, page_size=4, ordered=True)
    counted = Counter(r["id"] for r in got)
    assert max(counted.values()) == 1
    assert set(counted) - {2} == set(range(1, 11)) - {2}  # row 5, skipped by the shift, was read again


def test_rows_alike_in_every_field_are_each_kept_once_across_pages() -> None:
    """Without a key (or with one rows may share), a page is consistent: a row is emitted again only as
    often as one page holds it more often than emitted so far."""
    twin = {"t": at(1), "chat": 7}
    rows = [{"n": 1, "t": at(0), "chat": 7}, dict(twin), dict(twin), {"n": 2, "t": at(1), "chat": 7},
            {"n": 3, "t": at(2), "chat": 7}]
    query = FakeQuery(rows, lambda rs, n: rs if n % 2 == 0 else rs[::-1])
    got = read_window(query, SPAN, page_size=2, ordered=False, keys=(), unique=True)
    assert Counter(map(repr, got)) == Counter(map(repr, rows))


def test_a_second_holding_more_than_a_page_in_an_unstable_order_is_read_in_one_larger_page() -> None:
    rows = rows_at([5] * 9)
    query = FakeQuery(rows, by_time_ties_flipped)
    got = read_window(query, SPAN, page_size=4, ordered=False)
    assert ids(got) == list(range(1, 10))
    assert MAX_PAGE_SIZE in [limit for _, _, limit in query.requests]


def test_a_second_holding_more_than_the_largest_page_in_an_unstable_order_is_one_clear_error() -> None:
    rows = rows_at([5] * (MAX_PAGE_SIZE + 3))
    query = FakeQuery(rows, lambda rs, n: rs[::-1] if n % 2 else rs)
    with pytest.raises(TapError, match=r"get\.fake_report: 10003 rows share one second"):
        read_window(query, Window(T0 + dt.timedelta(seconds=5), T0 + dt.timedelta(seconds=6)),
                    page_size=MAX_PAGE_SIZE // 2, ordered=False)


def test_a_query_of_ids_is_read_again_for_the_ids_of_the_cut_second_then_in_smaller_batches() -> None:
    # chats 101..103 with messages at the same seconds: a query of their ids sorted on time
    rows = [{"id": i, "t": at(i % 3), "chat": 101 + i % 3} for i in range(1, 13)]
    query = FakeQuery(rows, by_time_ties_flipped)
    params = {"chat_ids": [101, 102, 103]}
    got = read(query, IdsNarrowing(params, "chat_ids", 5), 5, ordered=True, tie_field="chat")
    assert Counter(r["id"] for r in got) == Counter(range(1, 13))
    # the boundaries cut the seconds of chats 102 and 103: those two chats, then each alone (8 rows > a page)
    assert [p["chat_ids"] for p, _, _ in query.requests[3:]] == [[102, 103], [102], [103]]


def test_ids_are_narrowed_into_parts_that_cover_them_once() -> None:
    narrowing = IdsNarrowing({"chat_ids": list(range(10)), "sort": "x"}, "chat_ids", page_size=4)
    parts = narrowing.smaller(narrowing.query, total=12)
    assert len(parts) == pieces_for(12, 4) == 4
    assert [i for p in parts for i in p["chat_ids"]] == list(range(10))
    assert all(p["sort"] == "x" for p in parts)
    assert narrowing.smaller({"chat_ids": [1]}, total=50) == []  # one id: nothing narrower
    assert narrowing.tied(["2026-01-01 00:00:00"], {3, None, 1}) == [{"chat_ids": [1, 3], "sort": "x"}]
    assert Narrowing({"year": 2026}).tied(["2026-01-01 00:00:00"], {1}) == []  # a month cannot be narrowed


# ---- windows sharing their boundary second ---------------------------------------------------------

def test_dedup_drops_only_repeats_at_the_shared_second():
    d = BoundaryDedup(lambda r: r.get("id"))
    d.start_window("2026-01-01 00:00:00", "2026-01-02 00:00:00")
    first = [{"id": 1, "t": "2026-01-01 10:00:00"}, {"id": 2, "t": "2026-01-02 00:00:00"},
             {"id": 3, "t": "2026-01-02 00:00:00"}]
    assert [d.is_repeat(r, r["t"]) for r in first] == [False, False, False]
    d.start_window("2026-01-02 00:00:00", "2026-01-03 00:00:00")
    second = [{"id": 2, "t": "2026-01-02 00:00:00"}, {"id": 4, "t": "2026-01-02 00:00:00"},
              {"id": 3, "t": "2026-01-02 00:00:01"}]
    assert [d.is_repeat(r, r["t"]) for r in second] == [True, False, False]


def test_dedup_forgets_keys_when_windows_are_not_contiguous():
    d = BoundaryDedup(lambda r: r.get("id"))
    d.start_window("2026-01-01 00:00:00", "2026-01-02 00:00:00")
    assert not d.is_repeat({"id": 1}, "2026-01-02 00:00:00")
    d.start_window("2026-01-05 00:00:00", "2026-01-06 00:00:00")
    assert not d.is_repeat({"id": 1}, "2026-01-02 00:00:00")


def test_dedup_by_whole_row_drops_every_repeated_twin_and_keeps_a_new_row():
    """Keyless reports (api_requests) compare whole rows: twins alike in every field come again together."""
    d = BoundaryDedup(lambda r: tuple(sorted(r.items())))
    edge = "2026-01-02 00:00:00"
    twin = {"t": edge, "method": "get.calls_report"}
    d.start_window("2026-01-01 00:00:00", edge)
    assert [d.is_repeat(dict(twin), edge) for _ in range(2)] == [False, False]
    d.start_window(edge, "2026-01-03 00:00:00")
    again = [dict(twin), dict(twin), {"t": edge, "method": "get.goals_report"}]
    assert [d.is_repeat(r, edge) for r in again] == [True, True, False]
