"""The record shaper on decoded rows: account-local date-times get their offset at any depth, the repeated
autumn hour is told apart on the field read in ascending order, only the kept fields stay."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from tap_comagic.context import ACCOUNT_COLUMN
from tap_comagic.shaper import RecordShaper, datetime_paths
from tap_comagic.timezones import FromApi

BERLIN = ZoneInfo("Europe/Berlin")
SCHEMA = {
    "id": {"type": ["integer"]},
    "start_time": {"type": ["string", "null"], "format": "date-time"},
    "note": {"type": ["string", "null"]},
    "tags": {"type": ["array", "null"], "items": {"type": ["object"], "properties": {
        "tag_change_time": {"type": ["string", "null"], "format": "date-time"}}}},
    "communications": {"type": ["array", "null"], "items": {"type": ["object"], "properties": {
        "tags": {"type": ["array", "null"], "items": {"type": ["object"], "properties": {
            "tag_change_time": {"type": ["string", "null"], "format": "date-time"}}}}}}},
}


def shaper(ascending: str | None = "start_time", keep: tuple[str, ...] = tuple(SCHEMA)) -> RecordShaper:
    return RecordShaper(datetime_paths(SCHEMA), FromApi(BERLIN), ascending, frozenset(keep), 42)


def test_the_schemas_date_times_are_found_at_any_depth() -> None:
    assert datetime_paths(SCHEMA) == [("start_time",), ("tags", "tag_change_time"),
                                      ("communications", "tags", "tag_change_time")]


def test_date_times_get_the_accounts_offset_at_any_depth_and_the_account_column_is_added() -> None:
    row = shaper()({"id": 1, "start_time": "2026-07-01 10:00:00", "note": "2026-07-01 10:00:00",
                    "tags": [{"tag_change_time": "2026-01-05 08:00:00"}, {}],
                    "communications": [{"tags": [{"tag_change_time": "2026-07-02 09:00:00"}]}, {"tags": None}]})
    assert row == {"id": 1, "start_time": "2026-07-01T10:00:00+02:00", "note": "2026-07-01 10:00:00",
                   "tags": [{"tag_change_time": "2026-01-05T08:00:00+01:00"}, {}],
                   "communications": [{"tags": [{"tag_change_time": "2026-07-02T09:00:00+02:00"}]}, {"tags": None}],
                   ACCOUNT_COLUMN: 42}


def test_the_repeated_hour_read_in_ascending_order_steps_to_the_second_offset_once_its_wall_time_steps_back() -> None:
    shape = shaper()
    times = ["2026-10-25 02:30:00", "2026-10-25 02:10:00", "2026-10-25 02:40:00"]
    assert [shape({"start_time": t})["start_time"] for t in times] == [
        "2026-10-25T02:30:00+02:00", "2026-10-25T02:10:00+01:00", "2026-10-25T02:40:00+01:00"]


def test_a_report_in_another_order_keeps_the_first_offset_of_the_repeated_hour() -> None:
    shape = shaper(ascending=None)
    times = ["2026-10-25 02:30:00", "2026-10-25 02:10:00"]
    assert [shape({"start_time": t})["start_time"] for t in times] == [
        "2026-10-25T02:30:00+02:00", "2026-10-25T02:10:00+02:00"]


def test_fields_not_kept_are_dropped() -> None:
    row = shaper(keep=("id",))({"id": 1, "note": "x", "extra": 2})
    assert row == {"id": 1, ACCOUNT_COLUMN: 42}
