"""Account time: the API speaks naive "YYYY-MM-DD hh:mm:ss" in the account's zone.

One pair of functions crosses that border: :func:`to_api` for request parameters and
:class:`FromApi` for returned values (RFC 3339 with the zone's offset, so that the SDK,
which compares bookmarks as strings and reads naive values as UTC, never guesses).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

API_FORMAT = "%Y-%m-%d %H:%M:%S"


def to_api(moment: dt.datetime, zone: ZoneInfo) -> str:
    """Account-local wall time of an aware moment, or a naive one taken as account-local."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(zone)
    return moment.strftime(API_FORMAT)


def parse_api(value: str) -> dt.datetime:
    """A naive account-local datetime from the API's format (or an ISO date)."""
    return dt.datetime.fromisoformat(value)


def as_account_time(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Naive account-local wall time: aware values are converted, naive ones taken as local."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(zone).replace(tzinfo=None)


class FromApi:
    """Turn API date-times into RFC 3339 with the account's offset.

    The offset is looked up once per local hour (zones change offset on hour boundaries),
    which keeps the per-value cost to a dictionary hit and a string concatenation.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._offsets: dict[str, str] = {}

    def offset(self, hour_key: str) -> str:
        suffix = self._offsets.get(hour_key)
        if suffix is None:
            local = dt.datetime.fromisoformat(hour_key + ":00:00").replace(tzinfo=self.zone)
            delta = local.utcoffset() or dt.timedelta(0)
            minutes = int(delta.total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            suffix = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
            self._offsets[hour_key] = suffix
        return suffix

    def __call__(self, value: str | None) -> str | None:
        # "YYYY-MM-DD hh:mm:ss" -> "YYYY-MM-DDThh:mm:ss+03:00"; a "T" or fractions of a second are
        # kept; a value that already has a zone, a bare date or anything else passes unchanged
        if value is None or len(value) < 19 or value[10] not in " T":
            return value
        if len(value) > 19 and (value[-1] in "Zz" or "+" in value[19:] or "-" in value[19:]):
            return value
        return f"{value[:10]}T{value[11:]}{self.offset(value[:13])}"


def api_second(value: Any) -> Any:
    """An API date-time cut to "YYYY-MM-DD hh:mm:ss", however the server punctuates it, for comparing."""
    if isinstance(value, str) and len(value) > 19 and value[10] in " T":
        return f"{value[:10]} {value[11:19]}"
    if isinstance(value, str) and len(value) == 19 and value[10] == "T":
        return f"{value[:10]} {value[11:]}"
    return value
