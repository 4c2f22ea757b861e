"""Account time: the API speaks naive "YYYY-MM-DD hh:mm:ss" in the account's zone.

Settings become naive account wall time (:func:`as_account_time`) and windows are asked in it;
returned values become RFC 3339 with an explicit offset, so that the SDK, which compares bookmarks as
strings and reads naive values as UTC, never guesses: in UTC by default (:class:`ToUtc`, which every
target stores as the right instant), or in the zone's own offset (:class:`FromApi`), as the
`datetime_output` setting chooses (:func:`date_time_output`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

API_FORMAT = "%Y-%m-%d %H:%M:%S"


def as_account_time(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Naive account-local wall time: aware values are converted, naive ones taken as local."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(zone).replace(tzinfo=None)


def _suffix(delta: dt.timedelta | None) -> str:
    minutes = int((delta or dt.timedelta(0)).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


class FromApi:
    """Turn API date-times into RFC 3339 with the account's offset.

    The offset is looked up once per local hour, which keeps the per-value cost to a dictionary hit
    and a string concatenation. An hour in which the offset changes or the wall clock repeats (the
    autumn hour of daylight saving time) is not cached: its values are converted one by one, exactly.
    A repeated wall time is ambiguous: by itself it gets the first occurrence's offset (``fold=0``);
    a caller that knows better (the report is in ascending order of it, see
    :class:`AscendingFolds`) asks for the second (``fold=1``). ``repeated`` holds the repeated hours
    met so far ("YYYY-MM-DD hh").
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._offsets: dict[str, str] = {}
        self.repeated: set[str] = set()

    def offset(self, value: str, fold: int = 0) -> str:
        """The offset of a "YYYY-MM-DD hh:mm:ss" local time (at least its hour)."""
        hour_key = value[:13]
        suffix = self._offsets.get(hour_key)
        if suffix is not None:
            return suffix
        start = dt.datetime.fromisoformat(hour_key + ":00:00").replace(tzinfo=self.zone)
        ends = (start, start.replace(minute=59, second=59))
        offsets = {m.replace(fold=f).utcoffset() for m in ends for f in (0, 1)}
        if len(offsets) == 1:
            suffix = self._offsets[hour_key] = _suffix(offsets.pop())
            return suffix
        if any(m.utcoffset() != m.replace(fold=1).utcoffset() for m in ends):
            self.repeated.add(hour_key)
        moment = dt.datetime.fromisoformat(f"{value[:10]} {value[11:19]}" if len(value) >= 19 else hour_key + ":00:00")
        return _suffix(moment.replace(tzinfo=self.zone, fold=fold).utcoffset())

    def __call__(self, value: str | None, fold: int = 0) -> str | None:
        # "YYYY-MM-DD hh:mm:ss" -> "YYYY-MM-DDThh:mm:ss+03:00"; a "T" or fractions of a second are
        # kept; a value that already has a zone, a bare date or anything else passes unchanged
        if value is None or len(value) < 19 or value[10] not in " T":
            return value
        if len(value) > 19 and (value[-1] in "Zz" or "+" in value[19:] or "-" in value[19:]):
            return value
        return f"{value[:10]}T{value[11:]}{self.offset(value, fold)}"


class AscendingFolds:
    """Which occurrence of a repeated wall time a value is, for values read in ascending order of time.

    A report sorted by instant lists the first occurrence of the repeated hour, then the second: its
    wall times step back once. From that step on, values in that hour are the second occurrence. A
    report sorted by the wall-time string never steps back; its values keep the first occurrence's
    offset, one of the two valid ones (README: what stays ambiguous).
    """

    def __init__(self, from_api: FromApi, field: str | None) -> None:
        self.from_api = from_api
        self.field = field  # the field read in ascending order, if any
        self._hour = ""
        self._latest = ""
        self._second = False

    def __call__(self, value: str | None) -> str | None:
        converted = self.from_api(value)
        if value is None or value[:13] not in self.from_api.repeated:
            return converted
        local = api_second(value)
        if value[:13] != self._hour:
            self._hour, self._latest, self._second = value[:13], local, False
        elif not self._second and local < self._latest:
            self._second = True
        else:
            self._latest = max(self._latest, local)
        return self.from_api(value, fold=1) if self._second else converted


def instant(value: str, zone: ZoneInfo) -> dt.datetime:
    """An RFC 3339 value (or a naive account-local one) as an aware UTC moment, for comparing."""
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.timezone.utc)


def resume_point(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Naive account-local wall time to resume from: before both occurrences when it is a repeated one,
    so that however the API reads an ambiguous ``date_from`` nothing after the moment is skipped."""
    local = moment.astimezone(zone) if moment.tzinfo is not None else moment.replace(tzinfo=zone)
    shift = (local.replace(fold=0).utcoffset() or dt.timedelta(0)) - (local.replace(fold=1).utcoffset()
                                                                      or dt.timedelta(0))
    return (local - max(shift, dt.timedelta(0))).replace(tzinfo=None, fold=0)


def api_second(value: Any) -> Any:
    """An API date-time cut to "YYYY-MM-DD hh:mm:ss", however the server punctuates it, for comparing."""
    if isinstance(value, str) and len(value) > 19 and value[10] in " T":
        return f"{value[:10]} {value[11:19]}"
    if isinstance(value, str) and len(value) == 19 and value[10] == "T":
        return f"{value[:10]} {value[11:]}"
    return value


# ---- how date-times leave the tap (`datetime_output`) ----------------------------------------------------

UTC_OUTPUT, OFFSET_OUTPUT = "utc", "account_offset"
DATETIME_OUTPUTS = (UTC_OUTPUT, OFFSET_OUTPUT)


class ToUtc(FromApi):
    """Turn API date-times into RFC 3339 in UTC ("YYYY-MM-DDThh:mm:ss+00:00"): the instants
    :class:`FromApi` gives, written so that a target that drops the offset (a ``timestamp without time
    zone`` column loaded by COPY, say) still stores the right one.

    An hour with one whole-hour offset is cached as its UTC hour ("YYYY-MM-DDThh"), so a value costs a
    dictionary hit and a concatenation. Any other value (the repeated and the skipped hour, an offset
    with minutes, a value that already carries an offset) is converted by itself, with ``fold`` as
    :class:`FromApi` takes it.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        super().__init__(zone)
        self._utc_hours: dict[str, str] = {}

    def __call__(self, value: str | None, fold: int = 0) -> str | None:
        if value is None or len(value) < 19 or value[10] not in " T":
            return value
        if len(value) > 19 and (value[-1] in "Zz" or "+" in value[19:] or "-" in value[19:]):
            return instant(value, self.zone).isoformat()  # its own offset says which instant
        hour = self._utc_hours.get(value[:13])
        if hour is not None:
            return f"{hour}{value[13:]}+00:00"
        suffix = self.offset(value, fold)  # also notes a repeated hour, for AscendingFolds
        local = dt.datetime.fromisoformat(f"{value[:10]}T{value[11:19]}{suffix}")
        utc = f"{local.astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M:%S}"
        if suffix.endswith(":00") and self._steady(value[:13]):
            self._utc_hours[value[:13]] = utc[:13]
        return f"{utc}{value[19:]}+00:00"

    def _steady(self, hour_key: str) -> bool:
        """Whether every second of the local hour has the same offset (and so one UTC hour)."""
        start = dt.datetime.fromisoformat(hour_key + ":00:00").replace(tzinfo=self.zone)
        ends = (start, start.replace(minute=59, second=59))
        return len({m.replace(fold=f).utcoffset() for m in ends for f in (0, 1)}) == 1


def date_time_output(zone: ZoneInfo, output: str = UTC_OUTPUT) -> FromApi:
    """The conversion of the API's date-times a run uses, chosen once by `datetime_output`: UTC, which every
    target stores as the right instant, or the account's offset (what the tap wrote before)."""
    return FromApi(zone) if output == OFFSET_OUTPUT else ToUtc(zone)
