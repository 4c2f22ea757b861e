"""Every stream of the tap, one short class each: its name, method, keys, replication key and quirks.

A stream's whole definition is its class here plus ``schemas/<stream>.json`` (derived from the spec and
the public docs). Their bases are in :mod:`tap_comagic.reports` (windowed reports) and
:mod:`tap_comagic.tables` (whole tables, day summaries); a child stream declares how its parent feeds it
(``fed``, see :mod:`tap_comagic.children`); :mod:`tap_comagic.registry` lists them in catalog order.
Reference tables (sites, campaigns, employees...) are small and read whole on every run; summary reports
are read over whole days, ``ct_summary``, ``ct_ac_summary`` and ``employee_stat`` one day per request;
methods that take one ``site_id`` per request are children of ``sites``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec
from typing_extensions import override

from tap_comagic.base import ApiStream
from tap_comagic.bookmarks import fmt
from tap_comagic.children import WINDOWS, ids_of, window_of
from tap_comagic.errors import CoMagicError, SkipStream
from tap_comagic.pagination import Window
from tap_comagic.reports import DateKeyed, DayStream, ReferenceStream, ReportStream, V3ReportStream
from tap_comagic.timezones import api_second

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_comagic.context import RunContext


# ---- the reports ----------------------------------------------------------------------

class CommunicationsStream(ReportStream):
    name = "communications"
    api_method = "get.communications_report"
    primary_keys = ("id", "communication_type")  # ids are unique per communication type
    replication_key = "date_time"
    sort_field = "date_time"


class CallsStream(ReportStream):
    name = "calls"
    api_method = "get.calls_report"
    primary_keys = ("id",)
    replication_key = "start_time"
    sort_field = "start_time"


class GoalsStream(ReportStream):
    name = "goals"
    api_method = "get.goals_report"
    primary_keys = ("id",)
    replication_key = "date_time"


class ChatsStream(ReportStream):
    name = "chats"
    api_method = "get.chats_report"
    primary_keys = ("id",)
    replication_key = "date_time"
    sort_field = "date_time"


class OfflineMessagesStream(ReportStream):
    name = "offline_messages"
    api_method = "get.offline_messages_report"
    primary_keys = ("id",)
    replication_key = "date_time"


class VisitorSessionsStream(ReportStream):
    name = "visitor_sessions"
    api_method = "get.visitor_sessions_report"
    primary_keys = ("id",)
    replication_key = "date_time"

    local_time_fields = (("hits", "hit_time"),)


class FinancialCallLegsStream(ReportStream):
    name = "financial_call_legs"
    api_method = "get.financial_call_legs_report"
    primary_keys = ("call_session_id", "leg_id")  # the report has no id
    replication_key = "start_time"
    sort_field = "start_time"


class CallLegsStream(ReportStream):
    name = "call_legs"
    api_method = "get.call_legs_report"
    parent_stream_type = CallsStream
    fed = WINDOWS  # date-windowed itself: one child context per calls window, not per call
    primary_keys = ("id",)
    replication_key = "start_time"
    sort_field = "start_time"

    @override
    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        assert context is not None
        assert self.bookmarks is not None
        window = window_of(context)
        own = self.resume_point()
        self.bookmarks.candidate = None
        if own is not None and window.end > own:  # before its own resume point this stream has read already
            yield from self.read_range(max(window.start, own), window.end, context)


class ChatMessagesStream(ReportStream):
    name = "chat_messages"
    api_method = "get.chat_messages_report"
    parent_stream_type = ChatsStream
    fed = ids_of("id")  # the window's chat ids, `id_batch` per request
    # Two messages of one chat may share chat, second, sender and text (two files sent at once): only the id
    # tells them apart. An account that refuses `id` gets a stand-in (see stand_in_ids).
    primary_keys = ("id",)
    replication_key = "date_time"
    unique_key = False  # an account that refuses `id` gets the stand-in after paging: pages compare whole rows
    tie_field = "chat_id"  # rows of one chat: a query of those chats alone reads them in one page
    ids_param = "chat_ids"

    def __init__(self, tap: Tap, run: RunContext) -> None:
        super().__init__(tap, run)
        self._one_chat_per_request = False

    @property
    @override
    def requested_fields(self) -> list[str]:
        fields = super().requested_fields
        if "id" in self._dropped_fields and "chat_id" not in fields:
            fields.append("chat_id")  # the stand-in id is made from it (left out again if deselected)
        return fields

    @override
    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        stand_in = row.get("id")  # a key: kept even when the account refused the field (see stand_in_ids)
        processed = super().post_process(row, context)
        if processed is not None and stand_in is not None:
            processed["id"] = stand_in
        return processed

    @override
    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        yield from self.read_batch(context, self.read_chats)

    def read_chats(self, chat_ids: list[int]) -> Iterator[dict[str, Any]]:
        """The messages of these chats; those without an id get their stand-in once all are read."""
        without_id: list[dict[str, Any]] = []
        for row in self.messages(chat_ids):
            if row.get("id") is None:
                without_id.append(row)
            else:
                yield row
        yield from stand_in_ids(without_id)

    def messages(self, chat_ids: list[int]) -> Iterator[dict[str, Any]]:
        """Many chats per request, or one per request where `chat_ids` is refused."""
        if not self._one_chat_per_request:
            size = self.settings.id_batch
            sort = [{"field": "date_time", "order": "asc"}] if "date_time" in self.sortable else None
            batches = [self.filtered({"chat_ids": chat_ids[i:i + size], **({"sort": sort} if sort else {})})
                       for i in range(0, len(chat_ids), size)]
            try:
                yield from self.read_queries(batches)
            except CoMagicError as exc:
                # `chat_ids` is newer than the spec: a server that refuses it (by naming it, or by
                # missing the spec's `chat_id`) is read one chat per request instead
                refused = exc.mnemonic in ("unexpected_parameters", "required_parameter_missed",
                                           "invalid_parameter_value", "data_type_error")
                if not refused or exc.field not in ("chat_ids", "chat_id", None):
                    raise
                self._one_chat_per_request = True
                self.log("get.chat_messages_report refuses `chat_ids`: reading one chat per request",
                         level=logging.WARNING)
            else:
                return
        yield from self.read_queries([self.filtered({"chat_id": chat_id}) for chat_id in chat_ids])


def stand_in_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages without an id (an account that refuses it, or leaves it empty) get a stand-in, since the key
    is `id` (declared before any answer): -(chat_id * 2^20 + n), n the message's place among its chat's id-less
    messages ordered by time, then by content. Every message of a chat comes in the same batch, so a chat read
    again gets the same numbers while it is unchanged, whatever order its pages came in; messages alike in
    every field are interchangeable, so which of them gets which number does not matter."""
    rows.sort(key=lambda r: (r.get("chat_id") or 0, api_second(r.get("date_time")) or "", msgspec.json.encode(r)))
    places: dict[Any, int] = {}
    for row in rows:
        chat = row.get("chat_id")
        if chat is not None:
            n = places[chat] = places.get(chat, -1) + 1
            row["id"] = -((int(chat) << 20) + n)
    return rows


class VisitorsStream(ReportStream):
    name = "visitors"
    api_method = "get.visitors_report"
    parent_stream_type = VisitorSessionsStream
    fed = ids_of("visitor_id", once_per_run=True)  # each visitor once per run
    primary_keys = ("id",)
    replication_key = "last_visit"
    selected_by_default = False  # deferred in the spec

    @override
    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        yield from self.read_batch(
            context, lambda ids: self.read_queries([self.filtered({"visitor_id": v}) for v in ids]))


class FinancialSummaryStream(DateKeyed):
    name = "financial_summary"
    api_method = "get.financial_summary_report"
    primary_keys = ("date",)
    replication_key = "date"

    @override
    def read(self, context: Context | None) -> Iterator[dict[str, Any]]:
        # One request per month (the method takes year + month, not dates).
        start, end = self.bounds(context)
        year, month = start.year, start.month
        first_day, last_day = start.date().isoformat(), end.date().isoformat()
        while (year, month) <= (end.year, end.month):
            for record in self.query_rows(self.filtered({"year": year, "month": month})):
                day = str(record.get("date") or "")[:10]
                if first_day <= day <= last_day:
                    yield record
            self.commit_bookmark(None)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


class SalesStream(V3ReportStream):
    name = "sales"
    api_method = "get.sales_report"
    primary_keys = ("id",)
    replication_key = "date_time"


class ApiRequestsStream(V3ReportStream):
    name = "api_requests"
    api_method = "get.api_requests_report"
    # No field identifies a row: `request_id` is the caller's JSON-RPC id (often a constant, sometimes a
    # string), and two calls of one method can share a second and an address. A key made of them would
    # make targets merge distinct requests; none is declared, so targets append (see README).
    primary_keys = ()
    replication_key = "date_time"


REPORT_STREAMS: list[type[ApiStream]] = [
    CommunicationsStream, CallsStream, CallLegsStream, GoalsStream, ChatsStream, ChatMessagesStream,
    OfflineMessagesStream, VisitorSessionsStream, VisitorsStream, FinancialSummaryStream,
    FinancialCallLegsStream, SalesStream, ApiRequestsStream,
]


# ---- reference tables -------------------------------------------------------------------------------

class AccountStream(ReferenceStream):
    name = "account"
    api_method = "get.account"
    primary_keys = ("app_id",)

    @override
    def table(self, context: Context | None) -> Iterator[dict[str, Any]]:
        # read when the run looked the account up (see accounts.Accounts.account_of): not asked twice
        if self.account.info is None:
            raise SkipStream("get.account gave no account for this run (see the warning about it)")
        yield dict(self.account.info)


class SitesStream(ReferenceStream):
    name = "sites"
    api_method = "get.sites"
    primary_keys = ("id",)


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

    @property
    @override
    def requested_fields(self) -> list[str]:
        fields = super().requested_fields
        # ad_key needs them, selected or not (those deselected are left out of the records)
        return fields + [k for k in self.AD_IDS if k not in fields]

    selected_by_default = False  # one request per site per window since start_date on its first run

    @override
    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        row["ad_key"] = "|".join("" if row.get(k) is None else str(row[k]) for k in self.AD_IDS)
        return super().post_process(row, context)


class CtSummaryStream(DayStream):
    name = "ct_summary"
    api_method = "get.ct_summary_report"
    primary_keys = ("date", "site_id")
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


REFERENCE_STREAMS: list[type[ApiStream]] = [
    AccountStream, SitesStream, SiteBlocksStream, CampaignsStream, VirtualNumbersStream, EmployeesStream,
    EmployeeGroupsStream, TagsStream, StatusesStream, ScenariosStream, CampaignDailyStatStream,
    CtSummaryStream, CtAcSummaryStream, EmployeeStatStream,
]


# ---- sources, goal definitions, positions, schedules, custom fields, chat channels, deals ---------------
# Small tables read whole (one request each on a typical account), the costs entered for sources one day
# per request, and the deals' stage history read incrementally on the time of each stage change.

class SourcesStream(ReferenceStream):
    name = "sources"
    api_method = "get.sources"  # the source model of Call tracking 3.0: the names of the reports' source_id
    primary_keys = ("id",)


class SourceChannelsStream(ReferenceStream):
    name = "source_channels"
    api_method = "get.sources_channels"
    primary_keys = ("id",)


class SourceGroupsStream(ReferenceStream):
    name = "source_groups"
    api_method = "get.sources_groups"
    primary_keys = ("id",)


class SourceCostsStream(DayStream):
    name = "source_costs"
    api_method = "get.source_costs"
    # The answer is a total per source and site over the range asked: one day per request, `date` added.
    # A cost entered for no site has a null site_id, which a key may not hold: ``site_key`` is the site's
    # id, 0 for none (site ids are positive).
    primary_keys = ("date", "source_id", "site_key")
    one_day_per_request = True
    selected_by_default = False  # one request per day

    @property
    @override
    def requested_fields(self) -> list[str]:
        fields = super().requested_fields
        return fields if "site_id" in fields else [*fields, "site_id"]  # site_key needs it, selected or not

    @override
    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        site = row.get("site_id")
        row["site_key"] = 0 if site is None else site
        if not self.mask.get(("properties", "site_id"), False):
            row.pop("site_id", None)
        return super().post_process(row, context)


class EventsStream(ReferenceStream):
    name = "events"
    api_method = "get.events"  # goal definitions: the goals report's ext_id and name are rows here
    primary_keys = ("id",)


class EmployeePositionsStream(ReferenceStream):
    name = "employee_positions"
    api_method = "get.employee_positions"
    primary_keys = ("id",)


class SchedulesStream(ReferenceStream):
    name = "schedules"
    api_method = "get.schedules"
    primary_keys = ("id",)


class OfflineMessageUserFieldsStream(ReferenceStream):
    name = "offline_message_user_fields"
    api_method = "get.offline_message_user_fields"
    primary_keys = ("ext_id",)  # the docs give these definitions no other id


class DealUserFieldsStream(ReferenceStream):
    name = "deal_user_fields"
    api_method = "get.deal_user_fields"
    primary_keys = ("ext_id",)


class LeadUserFieldsStream(ReferenceStream):
    name = "lead_user_fields"
    api_method = "get.lead_user_fields"
    primary_keys = ("ext_id",)


class ChatChannelsStream(ReferenceStream):
    name = "chat_channels"
    api_method = "get.chat_channels"
    primary_keys = ("id",)


class SalesFunnelsStream(ReferenceStream):
    name = "sales_funnels"
    api_method = "get.sales_funnel"
    primary_keys = ("ext_id",)  # a funnel's stages are an array of its row


class LeadFunnelStagesStream(ReferenceStream):
    name = "lead_funnel_stages"
    api_method = "get.lead_funnel_stages"
    primary_keys = ("id",)


class DealsHistoryStream(ReportStream):
    """Every stage each deal passed through. The method takes no dates: the windows of the shared machinery
    go into its filter on the stage-change time (filterable and sortable in the docs), so a run reads
    the changes since its bookmark less the look-back, never the whole history."""

    name = "deals_history"
    api_method = "get.deals_history"
    # A row is a deal entering a stage at a time: the deal's ext_id, the stage's, and that time (a deal may
    # come back to a stage later; a stage the deal skipped is generated with the time of the move).
    primary_keys = ("ext_id", "stage_ext_id", "modified_stage_date_time")
    replication_key = "modified_stage_date_time"
    sort_field = "modified_stage_date_time"
    selected_by_default = False  # needs the deals component; one request per window_days on its first run

    @override
    def window_params(self, window: Window, till: dt.datetime) -> dict[str, Any]:
        field = self.replication_key or ""
        bounds = [{"field": field, "operator": ">=", "value": fmt(window.start)},
                  {"field": field, "operator": "<=", "value": fmt(till)}]
        params: dict[str, Any] = {"filter": self.bounded_filter(bounds)}
        if field in self.sortable:
            params["sort"] = [{"field": field, "order": "asc"}]
        return params


SOURCE_AND_DEAL_STREAMS: list[type[ApiStream]] = [
    SourcesStream, SourceChannelsStream, SourceGroupsStream, SourceCostsStream, EventsStream,
    EmployeePositionsStream, SchedulesStream, OfflineMessageUserFieldsStream, DealUserFieldsStream,
    LeadUserFieldsStream, ChatChannelsStream, SalesFunnelsStream, LeadFunnelStagesStream, DealsHistoryStream,
]
