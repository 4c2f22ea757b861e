"""The account's reference tables and its summary reports, one short class each.

Reference tables (sites, campaigns, employees...) are small: each is read whole on every run, one
request per page of ``page_size`` rows (the docs give them no change time to read incrementally).
Summary reports are read over whole days: ``campaign_daily_stat`` in windows of ``window_days``, and
the reports that return totals over the requested range (``ct_summary``, ``ct_ac_summary``,
``employee_stat``) one day per request, each row dated with the day it covers. Methods that take one
``site_id`` per request are children of ``sites``: they receive the run's site ids as one batch.

The schemas (``schemas/<stream>.json``) are derived from the public docs by ``tools/publicdocs.py``;
their ``x-comagic`` block also lists the parameters each method takes and the columns the tap adds.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from tap_comagic.client import answer_of
from tap_comagic.errors import SplitWindow, TapError
from tap_comagic.pagination import Window, in_order, reachable_rows
from tap_comagic.streams import ReportStream

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

DAY = dt.timedelta(days=1)


class MethodParams(ReportStream):
    """What the method's docs say it takes decides what is sent (``fields``, paging, ``user_id``)."""

    # declared string in the docs' table, a number in their example: kept strings whichever comes
    str_fields: ClassVar[tuple[str, ...]] = ()

    @cached_property
    def params_taken(self) -> frozenset[str]:
        return frozenset(self.flags.get("params", ()))

    @cached_property
    def added(self) -> frozenset[str]:
        """Columns the tap adds to the API's rows: never requested, always kept."""
        return frozenset(self.flags.get("added", ()))

    @property
    def requested_fields(self) -> list[str]:
        return [f for f in super().requested_fields if f not in self.added]

    def fields_param(self) -> str | None:
        return "fields" if "fields" in self.params_taken and self.requested_fields else None

    def base_params(self) -> dict[str, Any]:
        user_filter = self.tap.filters.get(self.name)
        return {"filter": user_filter} if user_filter and "filter" in self.params_taken else {}

    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        if self._known is None:
            self._known = frozenset(self.requested_fields) | self.added
        for key in self.str_fields:
            value = row.get(key)
            if value is not None and not isinstance(value, str):
                row[key] = str(value)
        return super().post_process(row, context)


class ReferenceStream(MethodParams):
    """A whole table on every run: no replication key; offset pages where the method takes them.

    Selected by default: together about ten requests a run, whatever the account's history or sites.
    """

    replication_key = None
    is_sorted = False
    # A method whose docs offer this flag (get.statuses, false by default) leaves deleted items out
    # unless asked, while old reports keep their ids: it is read a second time with the flag set.
    DELETED_FLAG: ClassVar[str] = "is_deleted"

    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        collect = self._collector()  # the ids its children are fed (sites -> the per-site summaries)
        for row in self.table(context):
            if collect is not None:
                collect(row)
            yield row
        if self.fed_children():
            self.window_finished_for_children(Window(self.tap.start_date, self.tap.end_date))

    def table(self, context: Context | None) -> Iterator[dict[str, Any]]:
        if self.DELETED_FLAG in self.params_taken:
            yield from self.with_deleted(context)
        elif "limit" in self.params_taken:
            for page in self.pages(self.base_params(), context):
                yield from page.take()
        else:  # get.account: no paging, no fields; one object or a list of one
            result = answer_of(self.call(self.base_params(), context)).result
            data = msgspec.json.decode(result.data) if result is not None else None
            yield from [data] if isinstance(data, dict) else data or []

    def with_deleted(self, context: Context | None) -> Iterator[dict[str, Any]]:
        """The items of the default read, then those only a read with the flag set gives, each id once.

        The docs leave open whether the flag set gives the deleted items only or every item; either
        way an item only the second read gives is deleted, one the first gives is not: the flag's field
        says so where the answer leaves it out.
        """
        flag, key = self.DELETED_FLAG, self.primary_keys[0]
        seen: set[Any] = set()
        for deleted in (False, True):
            params = {**self.base_params(), flag: True} if deleted else self.base_params()
            for page in self.pages(params, context):
                for row in page.take():
                    if row.get(key) in seen:
                        continue
                    seen.add(row.get(key))
                    if row.get(flag) is None:
                        row[flag] = deleted
                    yield row


class DayStream(MethodParams):
    """A report over whole days: windows of ``window_days`` days, or one day per request for a report of
    totals (``one_day_per_request``: each row gets the day it covers as ``date``). A child of ``sites``
    (``per_site``) asks every site for each window (several in flight, rows in the sites' order), its
    rows getting ``site_id`` where the API leaves it out.

    Windows never overlap (a day is ``00:00:00`` to ``23:59:59``), so nothing needs deduplicating; the
    bookmark is the last day read, moved once the day's (or window's) rows of every site are written.
    """

    replication_key = "date"
    state_partitioning_keys: ClassVar[list[str]] = []  # one bookmark, whichever sites are read
    one_day_per_request: ClassVar[bool] = False
    per_site: ClassVar[bool] = False

    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        start, end = self.bounds(context)
        sites: list[Any] = list((context or {}).get("site_ids") or []) if self.per_site else [None]
        workers = self.tap.throttle.parallelism(self.tap.max_parallel_requests) if len(sites) > 1 else 1
        for first, last in self.day_windows(start, end):
            if workers <= 1:
                for site in sites:
                    yield from self.dated(site, first, self.read_days(site, first, last, end))
            else:  # several sites in flight (their pages one by one), rows in the sites' order

                def rows(site: Any, first: dt.date = first, last: dt.date = last) -> list[dict[str, Any]]:
                    return list(self.dated(site, first, self.read_days(site, first, last, end, parallel=False)))

                for batch in in_order(rows, sites, workers):
                    yield from batch
            self.finish_days(last)

    def dated(self, site: Any, first: dt.date, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The rows with the columns the tap adds: the day (one day per request) and the site asked for."""
        for row in rows:
            if self.one_day_per_request:
                row["date"] = first.isoformat()
            if site is not None and "site_id" in self.added:
                row["site_id"] = site
            yield row

    def day_windows(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.date, dt.date]]:
        """The days from ``start`` to ``end`` in whole-day windows; ``end`` at midnight adds no day."""
        first = start.date()
        last = end.date() if end.time() != dt.time(0) or end.date() == first else end.date() - DAY
        step = 1 if self.one_day_per_request else self.tap.window_days
        windows = []
        while first <= last:
            till = min(first + (step - 1) * DAY, last)
            windows.append((first, till))
            first = till + DAY
        return windows

    def read_days(self, site: Any, first: dt.date, last: dt.date, end: dt.datetime,
                  parallel: bool = True) -> Iterator[dict[str, Any]]:
        """Every row of ``site`` from ``first`` to ``last``; halved when the API refuses the range or it
        holds more rows than offset paging reaches."""
        till = min(dt.datetime.combine(last, dt.time(23, 59, 59)), end)  # today: up to now
        params = {**self.base_params(), "date_from": f"{first} 00:00:00", "date_till": f"{till:%Y-%m-%d %H:%M:%S}"}
        if site is not None:
            params["site_id"] = site
        pages = self.pages(params, parallel=parallel)
        try:
            head = next(pages)
        except SplitWindow:
            if first == last:
                raise TapError(f"{self.api_method} refuses even a one-day range as too long "
                               "(date_interval_limit_reached)") from None
            head = None
        if head is not None and (head.total <= reachable_rows(self.tap.page_size) or first == last):
            for page in itertools.chain([head], pages):
                yield from page.take()
            return
        pages.close()
        middle = first + (last - first) // 2
        yield from self.read_days(site, first, middle, end, parallel)
        yield from self.read_days(site, middle + DAY, last, end, parallel)

    def finish_days(self, last: dt.date) -> None:
        # The range is read even where it held no row: the bookmark moves on regardless, so that a
        # report with nothing in it is not read again from the start on every run.
        day = last.isoformat()
        if self._bookmark_candidate is None or self._bookmark_candidate < day:
            self._bookmark_candidate = day
        self.commit_bookmark(None)

    def _moment(self, value: str) -> dt.datetime:
        return dt.datetime.fromisoformat(value[:10])

    def compare_start_date(self, value: str, start_date_value: str) -> str:
        return max(value[:10], start_date_value[:10])


# ---- reference tables -------------------------------------------------------------------------------

class AccountStream(ReferenceStream):
    name = "account"
    api_method = "get.account"
    primary_keys = ("app_id",)
    sends_user_id = False  # a client's own method: agents have none


class SitesStream(ReferenceStream):
    name = "sites"
    api_method = "get.sites"
    primary_keys = ("id",)
    child_ids = ("id", "site_ids")  # the reports that take one site_id per request


class SiteBlocksStream(ReferenceStream):
    name = "site_blocks"
    api_method = "get.site_blocks"
    primary_keys = ("id",)


class CampaignsStream(ReferenceStream):
    name = "campaigns"
    api_method = "get.campaigns"
    primary_keys = ("id",)


class VirtualNumbersStream(ReferenceStream):
    name = "virtual_numbers"
    api_method = "get.virtual_numbers"
    primary_keys = ("id",)


class EmployeesStream(ReferenceStream):
    name = "employees"
    api_method = "get.employees"
    primary_keys = ("id",)


class EmployeeGroupsStream(ReferenceStream):
    name = "employee_groups"
    api_method = "get.group_employees"
    primary_keys = ("id",)


class TagsStream(ReferenceStream):
    name = "tags"
    api_method = "get.tags"
    primary_keys = ("id",)


class StatusesStream(ReferenceStream):
    name = "statuses"
    api_method = "get.statuses"
    primary_keys = ("id",)


class ScenariosStream(ReferenceStream):
    name = "scenarios"
    api_method = "get.scenarios"
    primary_keys = ("id",)


# ---- summary reports --------------------------------------------------------------------------------

class CampaignDailyStatStream(DayStream):
    name = "campaign_daily_stat"
    api_method = "get.campaign_daily_stat"
    parent_stream_type = SitesStream
    per_site = True
    # The report has no id: a row is a day of one campaign of one site, down to the ad group, keyword
    # and ad the docs give. Those are null for a campaign outside ad systems, and a key may hold no null
    # (targets make it NOT NULL): ``ad_key`` joins them, "" for a null, e.g. "1734|kw-88|" or "||".
    primary_keys = ("date", "site_id", "campaign_id", "ad_key")
    AD_IDS = ("banner_group_id", "keyword_id", "current_banner_id")
    str_fields = ("campaign_ext_id", "banner_group_id", "keyword_id")

    @property
    def requested_fields(self) -> list[str]:
        fields = super().requested_fields
        return fields + [k for k in self.AD_IDS if k not in fields]  # ad_key needs them, selected or not

    @cached_property
    def _deselected_ad_ids(self) -> list[str]:
        return [k for k in self.AD_IDS if not self.mask.get(("properties", k), False)]
    selected_by_default = False  # one request per site per window since start_date on its first run

    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        row["ad_key"] = "|".join("" if row.get(k) is None else str(row[k]) for k in self.AD_IDS)
        cost = row.get("cost_sum")
        if isinstance(cost, str):  # declared string in the docs, money everywhere else
            try:
                row["cost_sum"] = float(cost)
            except ValueError:
                row["cost_sum"] = None
        # two levels down, deeper than the shared conversion of date-times goes
        convert = self.tap.from_api
        for communication in row.get("communications") or ():
            for tag in communication.get("tags") or ():
                if "tag_change_time" in tag:
                    tag["tag_change_time"] = convert(tag["tag_change_time"])
        out = super().post_process(row, context)
        for key in self._deselected_ad_ids:
            row.pop(key, None)
        return out


class CtSummaryStream(DayStream):
    name = "ct_summary"
    api_method = "get.ct_summary_report"
    primary_keys = ("date", "site_id")
    str_fields = ("site_domain",)
    one_day_per_request = True
    selected_by_default = False  # one request per day


class CtAcSummaryStream(DayStream):
    name = "ct_ac_summary"
    api_method = "get.ct_ac_summary_report"
    parent_stream_type = SitesStream
    primary_keys = ("date", "site_id", "ac_id")
    per_site = True
    one_day_per_request = True
    selected_by_default = False  # one request per site per day


class EmployeeStatStream(DayStream):
    name = "employee_stat"
    api_method = "get.employee_stat"
    primary_keys = ("date", "id")
    one_day_per_request = True
    selected_by_default = False  # one request per day; needs the call-center component


REFERENCE_STREAMS: list[type[ReportStream]] = [
    AccountStream, SitesStream, SiteBlocksStream, CampaignsStream, VirtualNumbersStream, EmployeesStream,
    EmployeeGroupsStream, TagsStream, StatusesStream, ScenariosStream, CampaignDailyStatStream,
    CtSummaryStream, CtAcSummaryStream, EmployeeStatStream,
]
