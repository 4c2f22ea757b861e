"""Time zones, the throttle and the mnemonic table, without a server."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tap_comagic.errors import (
    ACTIONS,
    CoMagicError,
    DailyLimitSpent,
    DropField,
    RetryAfter,
    SkipStream,
    SplitWindow,
    TokenExpired,
    raise_for_error,
)
from tap_comagic.limits import Throttle
from tap_comagic.timezones import FromApi, api_second, as_account_time


def test_from_api_adds_the_offset_of_that_local_time():
    berlin = FromApi(ZoneInfo("Europe/Berlin"))
    assert berlin("2026-01-15 10:00:00") == "2026-01-15T10:00:00+01:00"
    assert berlin("2026-07-15 10:00:00") == "2026-07-15T10:00:00+02:00"  # summer time
    moscow = FromApi(ZoneInfo("Europe/Moscow"))
    value = moscow("2026-03-01 00:00:00")
    assert value is not None
    assert dt.datetime.fromisoformat(value) == dt.datetime(2026, 2, 28, 21, tzinfo=dt.timezone.utc)
    assert moscow(None) is None
    assert moscow("2026-03-01") == "2026-03-01"  # a date stays a date


def test_settings_become_account_wall_time():
    moment = dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.timezone.utc)
    assert as_account_time(moment, ZoneInfo("Asia/Yekaterinburg")) == dt.datetime(2026, 1, 1, 5)
    assert as_account_time(dt.datetime(2026, 1, 1, 7), ZoneInfo("Europe/Moscow")) == dt.datetime(2026, 1, 1, 7)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_throttle_waits_for_the_minute_reset_before_spending_the_last_points():
    c = Clock()
    t = Throttle(reserve=1, sleep=c.sleep, clock=lambda: c.now)
    t.before_request()  # nothing known yet: no wait
    t.observe({"minute_remaining": 3, "minute_reset": 40, "day_remaining": 100, "day_reset": 5000})
    t.before_request()
    t.before_request()
    assert c.slept == []
    c.now += 10
    t.before_request()  # one point left = the reserve: wait the rest of the minute
    assert c.slept == [30]


@pytest.mark.parametrize(("announced", "elapsed", "pause"), [
    (None, 0, 60),  # no reset time anywhere: wait out the minute
    ({"minute_remaining": 5, "minute_reset": 10}, 30, 60),  # the reset announced has passed: stale
    ({"minute_remaining": 0, "minute_reset": 0}, 0, 60),  # "resets now", yet refused
    ({"minute_remaining": 5, "minute_reset": 40}, 15, 25),  # a reset still ahead: wait until it
])
def test_limit_exceeded_pauses_every_request_until_the_minute_resets(announced, elapsed, pause):
    c = Clock()
    t = Throttle(reserve=1, sleep=c.sleep, clock=lambda: c.now)
    t.observe(announced)
    c.now += elapsed
    assert t.on_limit_exceeded() == pause
    t.before_request()  # the retry, or any other worker's next request
    t.before_request()
    assert c.slept == [pause]


def test_throttle_ignores_empty_and_unknown_limits_and_caps_parallelism():
    t = Throttle(reserve=1)
    t.observe({})
    t.observe({"hour_limit": 5, "hour_remaining": 1})
    assert t.parallelism(8) == 8
    t.observe({"minute_remaining": 4, "minute_reset": 10})
    assert t.parallelism(8) == 3


def test_spent_day_stops_the_run():
    t = Throttle()
    t.observe({"day_remaining": 0, "day_reset": 3600, "minute_remaining": 10, "minute_reset": 5})
    with pytest.raises(DailyLimitSpent) as info:
        t.before_request()
    assert info.value.reset_seconds is not None
    assert 3500 < info.value.reset_seconds <= 3600


def _error(mnemonic: str, field: str | None = None) -> dict:
    return {"code": -32000, "message": "boom", "data": {"mnemonic": mnemonic, "field": field}}


@pytest.mark.parametrize(("mnemonic", "exception"), [
    ("internal_error", RetryAfter),
    ("limit_exceeded", RetryAfter),
    ("access_token_expired", TokenExpired),
    ("date_interval_limit_reached", SplitWindow),
    ("method_component_disabled", SkipStream),
    ("method_not_found", SkipStream),
    ("forbidden", SkipStream),
    ("ip_not_whitelisted", CoMagicError),
    ("filter_prohibited", CoMagicError),
    ("something_new", CoMagicError),
])
def test_each_mnemonic_gets_its_action(mnemonic, exception):
    with pytest.raises(exception):
        raise_for_error("get.calls_report", _error(mnemonic), ["id"])


def test_unknown_requested_field_is_dropped_but_an_unknown_filter_field_is_fatal():
    with pytest.raises(DropField) as info:
        raise_for_error("get.calls_report", _error("unexpected_parameters", "ua_client_id"), ["id", "ua_client_id"])
    assert info.value.field == "ua_client_id"
    with pytest.raises(CoMagicError) as fatal:
        raise_for_error("get.calls_report", _error("unexpected_parameters", "site"), ["id"])
    assert "site" in str(fatal.value)
    assert "unexpected_parameters" in str(fatal.value)


def test_fatal_messages_name_method_mnemonic_and_what_to_do():
    with pytest.raises(CoMagicError) as info:
        raise_for_error("get.chats_report", _error("ip_not_whitelisted"), [])
    text = str(info.value)
    assert "get.chats_report" in text
    assert "ip_not_whitelisted" in text
    assert "allow-list" in text
    assert "\n" not in text
    assert set(ACTIONS) >= {"limit_exceeded", "internal_error", "method_component_disabled"}


def test_from_api_accepts_iso_punctuation_and_leaves_zoned_values_alone():
    moscow = FromApi(ZoneInfo("Europe/Moscow"))
    assert moscow("2026-01-05T10:00:00") == "2026-01-05T10:00:00+03:00"
    assert moscow("2026-01-05 10:00:00.250") == "2026-01-05T10:00:00.250+03:00"
    assert moscow("2026-01-05T10:00:00+05:00") == "2026-01-05T10:00:00+05:00"
    assert moscow("2026-01-05T07:00:00Z") == "2026-01-05T07:00:00Z"


def test_api_second_compares_any_punctuation_as_the_api_format():
    assert api_second("2026-01-05T10:00:00.999") == "2026-01-05 10:00:00"
    assert api_second("2026-01-05T10:00:00") == "2026-01-05 10:00:00"
    assert api_second("2026-01-05 10:00:00") == "2026-01-05 10:00:00"
    assert api_second(None) is None
