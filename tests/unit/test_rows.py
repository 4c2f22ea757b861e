"""A page's records, decoded as they are read (shapes.Rows): by index or in order, the same records; the
nulls a page needed reported once, when it is read to its end."""

from __future__ import annotations

import logging

import pytest

from tap_comagic.shapes import RecordDecoder
from tests.tap_harness import page_data

SCHEMA = {"properties": {"id": {"type": ["integer"]}, "talk": {"type": ["integer", "null"]},
                         "name": {"type": ["string", "null"]}}}
PAGE = page_data(b'[{"id": 1, "talk": 5, "name": "a"}, {"id": 2, "talk": "n/a", "extra": 1},'
                 b' [3], {"id": 3, "talk": "7", "name": null}]')


def decoder() -> RecordDecoder:
    return RecordDecoder("calls", SCHEMA, ["id", "talk", "name"], logging.getLogger("test-rows"))


def test_by_index_and_in_order_the_page_gives_the_same_records(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="test-rows"):
        rows = decoder()(PAGE)
    assert [m for m in caplog.messages if "not JSON objects" in m] == [
        "calls: 1 record(s) in a page are not JSON objects; left out"]
    expected = [{"id": 1, "talk": 5, "name": "a"}, {"id": 2, "talk": None}, {"id": 3, "talk": 7, "name": None}]
    assert len(rows) == 3
    assert [rows[i] for i in range(3)] == expected
    assert (rows[-1], rows[0:2]) == (expected[-1], expected[:2])
    assert list(reversed(rows)) == expected[::-1]
    assert list(rows) == expected


def test_a_pages_nulls_are_reported_once_when_it_is_read_to_its_end(caplog: pytest.LogCaptureFixture) -> None:
    rows = decoder()(PAGE)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="test-rows"):
        assert rows[1]["talk"] is None  # reading by index (a page's edges) reports nothing
        for row in rows:  # nor a look at a page's first rows (the exactly-once pager's ties)
            if row["id"] == 2:
                assert row["talk"] is None
                break
        assert caplog.messages == []
        assert list(rows)[1]["talk"] is None
    assert caplog.messages == ["calls: 1 value(s) of field `talk` in a page have no faithful form in its "
                               "declared type; emitted as null"]


def test_an_answer_without_a_list_of_records_has_none() -> None:
    assert list(decoder()({"id": 1})) == []
    assert list(decoder()(None)) == []
