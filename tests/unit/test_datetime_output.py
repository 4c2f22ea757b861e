"""`datetime_output`: API wall times written in UTC (ToUtc) name the instants the account's zone gives them,
cached hours and the daylight-saving nights alike; the account_offset form stays what it was."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from tap_comagic.timezones import AscendingFolds, FromApi, ToUtc, date_time_output

UTC = dt.timezone.utc


def reference(value: str, zone: str, fold: int = 0) -> str:
    """The value's instant in UTC, straight from zoneinfo, one value at a time."""
    return dt.datetime.fromisoformat(value).replace(tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC).isoformat()


def every_quarter_hour(day: str) -> list[str]:
    start = dt.datetime.fromisoformat(day + " 00:00:00")
    return [(start + dt.timedelta(minutes=15 * i, seconds=7)).strftime("%Y-%m-%d %H:%M:%S") for i in range(96)]


@pytest.mark.parametrize("zone", ["Europe/Moscow", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
                                  "Asia/Kathmandu", "America/St_Johns", "Australia/Lord_Howe"])
@pytest.mark.parametrize("day", ["2026-01-15", "2026-03-08", "2026-03-29", "2026-04-05", "2026-10-04",
                                 "2026-10-25", "2026-11-01"])
def test_utc_output_is_the_instant_of_each_wall_time(zone, day):
    convert = ToUtc(ZoneInfo(zone))
    values = every_quarter_hour(day)
    for value in itertools.chain(values, values):  # the second pass reads the cached hours
        assert convert(value) == reference(value, zone), value
        assert convert(value, fold=1) == reference(value, zone, fold=1), value


def test_the_repeated_autumn_hour_read_in_ascending_order_gets_both_instants():
    zone = "Europe/Berlin"
    folds = AscendingFolds(ToUtc(ZoneInfo(zone)), "start_time")
    night = ["2026-10-25 02:10:00", "2026-10-25 02:50:00", "2026-10-25 02:05:00", "2026-10-25 02:40:00"]
    assert [folds(v) for v in night] == [reference(night[0], zone), reference(night[1], zone),
                                         reference(night[2], zone, 1), reference(night[3], zone, 1)]


def test_fractions_t_separator_and_values_with_a_zone():
    convert = ToUtc(ZoneInfo("Europe/Moscow"))
    assert convert("2026-01-05 10:00:00.250") == "2026-01-05T07:00:00.250+00:00"
    assert convert("2026-01-05T10:00:00") == "2026-01-05T07:00:00+00:00"
    assert convert("2026-01-05T10:00:00+05:00") == "2026-01-05T05:00:00+00:00"
    assert convert("2026-01-05T10:00:00Z") == "2026-01-05T10:00:00+00:00"
    for untouched in (None, "2026-01-05", "", "soon"):
        assert convert(untouched) == untouched


def test_the_setting_chooses_the_conversion_once():
    zone = ZoneInfo("Europe/Moscow")
    assert type(date_time_output(zone)) is ToUtc
    assert type(date_time_output(zone, "utc")) is ToUtc
    assert type(date_time_output(zone, "account_offset")) is FromApi
    assert date_time_output(zone, "account_offset")("2026-01-05 10:00:00") == "2026-01-05T10:00:00+03:00"
