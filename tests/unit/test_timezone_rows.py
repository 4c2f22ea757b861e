"""A record's date-times converted in place (FromApi.row_converter, the per-record fast path): the instants
zoneinfo gives, across the changes of offset (the repeated autumn hour, the skipped spring hour), and the same
values as converting each field by itself."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tap_comagic.timezones import AscendingFolds, FromApi

UTC = dt.timezone.utc
PATHS = [("start_time",), ("finish_time",), ("tags", "tag_change_time")]

# (zone, a UTC moment a little before a change of offset): autumn (a wall hour repeats), spring (one is skipped)
EDGES = [
    ("Europe/Moscow", dt.datetime(2010, 10, 30, 21, 30, tzinfo=UTC)),  # 03:00 MSD -> 02:00 MSK
    ("Europe/Moscow", dt.datetime(2010, 3, 27, 22, 30, tzinfo=UTC)),  # 02:00 MSK -> 03:00 MSD
    ("America/New_York", dt.datetime(2026, 11, 1, 4, 30, tzinfo=UTC)),  # 02:00 EDT -> 01:00 EST
    ("America/New_York", dt.datetime(2026, 3, 8, 6, 30, tzinfo=UTC)),  # 02:00 EST -> 03:00 EDT
]


def wall(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def ascending(zone: ZoneInfo, start: dt.datetime, hours: int = 3, step: int = 397) -> list[tuple[str, str]]:
    """(API value, RFC 3339 as zoneinfo has it) for instants in ascending order from ``start``."""
    out = []
    moment = start
    while moment < start + dt.timedelta(hours=hours):
        local = moment.astimezone(zone)
        out.append((wall(local), local.isoformat()))
        moment += dt.timedelta(seconds=step)
    return out


@pytest.mark.parametrize(("zone_name", "start"), EDGES)
def test_rows_read_in_ascending_order_get_the_instants_zoneinfo_gives(zone_name: str, start: dt.datetime) -> None:
    zone = ZoneInfo(zone_name)
    from_api = FromApi(zone)
    convert = from_api.row_converter(PATHS, AscendingFolds(from_api, "start_time"))
    moments = ascending(zone, start)
    for value, expected in moments:
        row: dict[str, Any] = {"start_time": value, "other": value}
        convert(row)
        assert row == {"start_time": expected, "other": value}
    offsets = {expected[-6:] for _, expected in moments}
    assert len(offsets) == 2, "the range does not cross the change of offset: nothing tested"


@pytest.mark.parametrize(("zone_name", "start"), EDGES)
def test_each_field_gets_what_converting_it_alone_gives(zone_name: str, start: dt.datetime) -> None:
    """Every wall time around the change, the skipped ones included (no instant has them, a server may still
    send them), in a top-level field, a nested list and a nested object; and values that are not API
    date-times pass unchanged."""
    zone = ZoneInfo(zone_name)
    fast = FromApi(zone)
    convert = fast.row_converter(PATHS)
    alone = FromApi(zone)
    local = start.astimezone(zone).replace(tzinfo=None, minute=0, second=0)
    values: list[Any] = [wall(local + dt.timedelta(minutes=m)) for m in range(0, 180, 7)]
    values += [None, "2026-01-01", "2026-01-01T10:00:00+03:00", "2026-01-01 10:00:00.5", "garbage value here!"]
    for value in values * 2:  # the second time round, every hour's offset is cached
        rows: list[dict[str, Any]] = [{"finish_time": value, "tags": [{"tag_change_time": value}, "x"]},
                                      {"finish_time": value, "tags": {"tag_change_time": value}}, {"tags": None}]
        for row in rows:
            convert(row)
        want = alone(value)
        assert rows[0] == {"finish_time": want, "tags": [{"tag_change_time": want}, "x"]}
        assert rows[1] == {"finish_time": want, "tags": {"tag_change_time": want}}
        assert rows[2] == {"tags": None}


def test_a_skipped_spring_hour_is_not_taken_for_one_offset() -> None:
    """Moscow, 2010-03-28: 02:00-02:59 never happened; the hour around it is not given one cached offset,
    so 01:59:59 and 03:00:00 keep their own (+03:00 and +04:00)."""
    from_api = FromApi(ZoneInfo("Europe/Moscow"))
    convert = from_api.row_converter(PATHS)
    rows = [{"finish_time": v} for v in ("2010-03-28 01:59:59", "2010-03-28 03:00:00", "2010-03-28 01:00:00")]
    for row in rows:
        convert(row)
    assert [r["finish_time"] for r in rows] == [
        "2010-03-28T01:59:59+03:00", "2010-03-28T03:00:00+04:00", "2010-03-28T01:00:00+03:00"]
