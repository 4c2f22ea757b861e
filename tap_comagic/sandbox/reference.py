"""The account's reference data and summary reports, deterministic from the seed.

:func:`reference_of` gives the account's sites, campaigns, employees, groups, tags, statuses, scenarios
and virtual numbers; the reports of ``data.py`` draw their ids from it, so that every id a report holds
is found in its reference table. :func:`rows` answers the reference methods (whole tables) and the
summary reports, which are computed from the reports' own records over the requested range:

- ``get.campaign_daily_stat`` (one ``site_id``): a row per day and campaign with any visit or
  communication on that site; counts, session ids and communications from the reports; ad costs, shows
  and clicks drawn per day for campaigns of an ad system (zero on the days a campaign is paused).
- ``get.ct_summary_report``: a row per site, totals over the range: calls, calls without a session.
- ``get.ct_ac_summary_report`` (one ``site_id``): a row per campaign, totals over the range.
- ``get.employee_stat``: a row per employee, seconds in each status summed over the days the range
  touches (``status_stats`` keyed by status id, or by mnemonic with ``only_default_statuses_in_stats``).

The source model, goal definitions, positions, schedules, custom fields, chat channels, funnels and deals
are in :mod:`.attribution` (served through :func:`rows` too).

A field the generator gives no meaning gets a deterministic value of its type (see :func:`_fill`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from . import attribution as A
from . import vocab as V
from .catalog import CATALOG, FieldSpec

Record = dict[str, Any]
METHODS = ("get.account", "get.sites", "get.site_blocks", "get.campaigns", "get.virtual_numbers",
           "get.employees", "get.group_employees", "get.tags", "get.statuses", "get.scenarios",
           "get.campaign_daily_stat", "get.ct_summary_report", "get.ct_ac_summary_report", "get.employee_stat",
           *A.METHODS)
SUMMARIES = ("get.campaign_daily_stat", "get.ct_summary_report", "get.ct_ac_summary_report", "get.employee_stat",
             "get.source_costs")
CALL_CENTER_METHODS = frozenset({"get.employee_stat"})  # answered method_component_disabled without the component
# the source model: only for accounts on Call tracking 3.0 (method_component_disabled for the others)
CALL_TRACKING_3_METHODS = frozenset({"get.sources", "get.sources_channels", "get.sources_groups", "get.source_costs"})
STATUSES = ((1, "available", "Доступен"), (2, "break", "Перерыв"), (3, "away", "Нет на месте"),
            (4, "do_not_disturb", "Не беспокоить"), (5, "not_at_work", "Нет на работе"))
# Statuses deleted in the middle of the data period: employee_stat names them on the days before only,
# get.statuses lists them only when asked with is_deleted=true.
DELETED_STATUSES = ((6, "break", "Обед"), (7, "not_at_workplace", "Совещание"))
ACCOUNT_NAMES = ("ООО «Окна Москвы»", "ООО «Цветы и доставка»", "ООО «СтройМаркет»")


@dataclass(frozen=True)
class Reference:
    """Ids and names the reports draw from (same tuple shapes as ``vocab``), plus the tables' extras."""

    SITES: tuple[tuple[int, str], ...]
    CAMPAIGNS: tuple[tuple[int, str, str, str | None, str | None, str], ...]
    OFFLINE_CAMPAIGN: tuple[int, str]
    TAGS: tuple[tuple[int, str], ...]
    SCENARIOS: tuple[tuple[int, str], ...]
    GROUPS: tuple[tuple[int, str], ...]
    VIRTUAL_NUMBERS: tuple[str, ...]
    EMPLOYEES: tuple[tuple[int, str, str, str], ...]  # id, full name, phone, login
    seed: int


@lru_cache(maxsize=16)
def reference_of(seed: int) -> Reference:
    rng = random.Random(f"{seed}:reference")

    def ids(base: int, n: int) -> list[int]:
        start = base + rng.randrange(1, 9000) * 100
        return [start + i for i in range(n)]

    sites = tuple(zip(ids(3_412_000_000, len(V.SITES)), (d for _, d in V.SITES), strict=True))
    campaign_ids = ids(5_301_000_000, len(V.CAMPAIGNS) + 1)
    campaigns = tuple((i, *c[1:]) for i, c in zip(campaign_ids, V.CAMPAIGNS, strict=False))
    tags = tuple(zip(ids(1_701_000, len(V.TAGS)), (n for _, n in V.TAGS), strict=True))
    scenarios = tuple(zip(ids(6_110_000, len(V.SCENARIOS)), (n for _, n in V.SCENARIOS), strict=True))
    groups = tuple(zip(ids(7_220_000, len(V.GROUPS)), (n for _, n in V.GROUPS), strict=True))
    numbers = tuple(f"{n[:4]}{rng.randrange(10**7):07d}" for n in V.VIRTUAL_NUMBERS)  # Moscow, 8-800, SPb
    employees = tuple(
        (ident,
         f"{V.LAST[i % len(V.LAST)][i % 2]} {(V.MALE_FIRST, V.FEMALE_FIRST)[i % 2][i]} "
         f"{V.PATRONYMIC[i % len(V.PATRONYMIC)][i % 2]}",
         f"7916{rng.randrange(10**7):07d}",
         f"{V.TRANSLIT[V.LAST[i % len(V.LAST)][0]]}{i}")
        for i, ident in enumerate(ids(3_900_000_000, 12)))
    return Reference(SITES=sites, CAMPAIGNS=campaigns, OFFLINE_CAMPAIGN=(campaign_ids[-1], V.OFFLINE_CAMPAIGN[1]),
                     TAGS=tags, SCENARIOS=scenarios, GROUPS=groups, VIRTUAL_NUMBERS=numbers,
                     EMPLOYEES=employees, seed=seed)


# ---- values for the fields the generator gives no meaning ---------------------------------------------

def _fill(fields: tuple[FieldSpec, ...], known: Record, rng: random.Random) -> Record:
    """Every field of the method: the known values, and a value of its type for the rest."""
    out: Record = {}
    for f in fields:
        out[f.name] = known[f.name] if f.name in known else _value(f, rng)
    return out


def _value(f: FieldSpec, rng: random.Random) -> Any:
    if f.type == "array":
        if f.children:
            return [_fill(f.children, {}, rng) for _ in range(rng.randint(0, 2))]
        return []
    if f.type == "object":
        return _fill(f.children, {}, rng) if f.children else {}
    if f.type == "integer":
        return rng.randint(1, 90)
    if f.type == "number":
        return round(rng.uniform(1, 100), 2)
    if f.type == "boolean":
        return rng.random() < 0.5
    if f.type == "date-time":
        return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(8, 19):02d}:00:00"
    if f.type == "date":
        return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return None  # free text the simulator has nothing sensible for


def _table(method: str, seed: int, known_rows: list[Record]) -> list[Record]:
    fields = CATALOG[method].fields
    return [_fill(fields, known, random.Random(f"{seed}:{method}:{n}")) for n, known in enumerate(known_rows)]


# ---- reference tables ---------------------------------------------------------------------------------

def _account(ref: Reference, app_id: int, timezone: str, name: str | None) -> list[Record]:
    return [{"app_id": app_id, "name": name or ACCOUNT_NAMES[ref.seed % len(ACCOUNT_NAMES)], "timezone": timezone}]


def _sites(ref: Reference) -> list[Record]:
    return [{"id": sid, "domain_name": domain, "name": domain, "default_phone_number": ref.VIRTUAL_NUMBERS[0],
             "default_scenario": {"scenario_id": ref.SCENARIOS[0][0], "scenario_name": ref.SCENARIOS[0][1]},
             "site_blocks": [{"site_block_id": sid * 10, "site_block_name": "Основной блок"}],
             "parent_id": None, "child_customer_id": None}
            for sid, domain in ref.SITES]


def _site_blocks(ref: Reference) -> list[Record]:
    return [{"id": sid * 10, "name": "Основной блок", "site_id": sid, "site_domain_name": domain}
            for sid, domain in ref.SITES]


def _campaign_site(ref: Reference, n: int) -> tuple[int, str]:
    return ref.SITES[n % len(ref.SITES)]


def _campaigns(ref: Reference) -> list[Record]:
    out = []
    every = [*ref.CAMPAIGNS, (*ref.OFFLINE_CAMPAIGN, "", None, None, "offline")]
    for n, (cid, name, engine, source, _medium, channel) in enumerate(every):
        site = _campaign_site(ref, n)
        integrated = channel in ("advert", "display")
        conditions = [] if integrated else [{"conditions": [
            {"type": "include", "campaign_parameter": "utm_source", "operator": "=", "value": source or "direct"}]}]
        out.append({"id": cid, "name": name, "status": "active", "type": "integrated" if integrated else "basic",
                    "engine": engine if integrated else None, "site_id": site[0], "site_domain_name": site[1],
                    "campaign_conditions": None if integrated else {"group_conditions": conditions},
                    "site_blocks": [{"site_block_id": site[0] * 10, "site_block_name": "Основной блок",
                                     "phone_number_type": "va", "phone_number": ref.VIRTUAL_NUMBERS[n % 5]}]})
    return out


def _virtual_numbers(ref: Reference) -> list[Record]:
    return [{"id": 8_800_000 + n, "virtual_phone_number": number, "status": "active", "name": f"Номер {n + 1}",
             "scenarios": [{"scenario_id": ref.SCENARIOS[n % len(ref.SCENARIOS)][0],
                            "scenario_name": ref.SCENARIOS[n % len(ref.SCENARIOS)][1], "is_active": True}]}
            for n, number in enumerate(ref.VIRTUAL_NUMBERS)]


def _employee_groups(ref: Reference, eid: int) -> list[Record]:
    n = [e[0] for e in ref.EMPLOYEES].index(eid)
    gid, gname = ref.GROUPS[n % len(ref.GROUPS)]
    return [{"group_id": gid, "group_name": gname}]


def _employees(ref: Reference) -> list[Record]:
    out = []
    operator = CATALOG["get.employees"].by_name["operator"].children
    for n, (eid, full, phone, login) in enumerate(ref.EMPLOYEES):
        last, first, patronymic = full.split(" ")
        position, schedule = A.position_of(n), A.schedule_of(n)  # rows of get.employee_positions, get.schedules
        out.append({"id": eid, "login": login, "first_name": first, "last_name": last, "patronymic": patronymic,
                    "full_name": full, "status": "available", "status_id": STATUSES[0][0],
                    "groups": _employee_groups(ref, eid), "schedule_id": schedule[0], "schedule_name": schedule[1],
                    "operator": _fill(operator, {"operator_display_name": first, "operator_login": login,
                                                 "operator_position_id": position[0],
                                                 "operator_position_name": position[1],
                                                 "operator_sites": [{"site_id": ref.SITES[0][0],
                                                                     "site_domain_name": ref.SITES[0][1]}]},
                                      random.Random(f"{ref.seed}:operator:{eid}")),
                    "phone_numbers": [{"phone_number": phone, "status": "active"}]})
    return out


def _groups(ref: Reference) -> list[Record]:
    out = []
    for gid, name in ref.GROUPS:
        members = [e for e in ref.EMPLOYEES if _employee_groups(ref, e[0])[0]["group_id"] == gid]
        out.append({"id": gid, "name": name,
                    "members": [{"employee_id": e[0], "employee_full_name": e[1]} for e in members],
                    "phone_numbers": [{"employee_id": e[0], "employee_full_name": e[1], "employee_phone_number": e[2],
                                       "available": True} for e in members]})
    return out


def _tags(ref: Reference) -> list[Record]:
    return [{"id": tid, "name": name, "is_system": False} for tid, name in ref.TAGS]


def _statuses(is_deleted: bool, flag_gives_all: bool) -> list[Record]:
    """The current statuses; with ``is_deleted`` the deleted ones, or every status (``flag_gives_all``)."""
    chosen = [(s, True) for s in DELETED_STATUSES] if is_deleted else []
    if flag_gives_all or not is_deleted:
        chosen = [(s, False) for s in STATUSES] + chosen
    return [{"id": sid, "mnemonic": mnemonic, "name": name, "is_deleted": gone}
            for (sid, mnemonic, name), gone in chosen]


def _scenarios(ref: Reference) -> list[Record]:
    return [{"id": sid, "name": name,
             "virtual_phone_numbers": [v for n, v in enumerate(ref.VIRTUAL_NUMBERS) if n % len(ref.SCENARIOS) == k],
             "sites": [], "campaigns": []}
            for k, (sid, name) in enumerate(ref.SCENARIOS)]


# ---- summaries ----------------------------------------------------------------------------------------

def _days(world: Any, date_from: str, date_till: str) -> range:
    lo, hi = world.abs_of(date_from), world.abs_of(date_till)
    return range(max(0, lo // 86_400), min(world.config.days - 1, hi // 86_400) + 1)


def _in(value: str, date_from: str, date_till: str) -> bool:
    return date_from <= value <= date_till


COMM_SOURCES = (("calls", "call", "start_time"), ("chats", "chat", "date_time"), ("goals", "goal", "date_time"),
                ("offline_messages", "offline_message", "date_time"))


def _entry(stats: dict[tuple[int, int | None], Record], ref: Reference, cid: int, name: str,
           ident: int) -> Record:
    """The row of this campaign, and of the keyword (one of two) a record of a campaign of an ad system
    came by."""
    key = (cid, ident % 2 if _integrated(ref, cid) else None)
    return stats.setdefault(key, {"campaign_id": cid, "campaign_name": name, "visits_count": 0, "session_ids": [],
                                  "communications": [], "calls_count": 0, "chats_count": 0, "goals_count": 0,
                                  "offline_messages_count": 0})


AD_FIELDS = ("banner_group_id", "banner_group_name", "keyword_id", "keyword", "banner_id", "banner_name",
             "current_banner_id", "current_banner_name")


def _ad(cid: int, slot: int) -> Record:
    """The ad group, keyword and ad of one of a campaign's two keywords."""
    group = str(cid % 10**4)
    keyword = V.UTM_TERMS[(cid + slot) % len(V.UTM_TERMS)]
    banner = (cid % 10**6) * 10 + slot
    return {"banner_group_id": group, "banner_group_name": f"Группа {group}", "keyword_id": f"{group}-{slot}",
            "keyword": keyword, "banner_id": banner, "banner_name": f"Объявление {banner}",
            "current_banner_id": banner, "current_banner_name": f"Объявление {banner}"}


def _integrated(ref: Reference, cid: int) -> bool:
    return any(c[0] == cid and c[5] in ("advert", "display") for c in ref.CAMPAIGNS)


def _paused(day: int, cid: int) -> bool:
    """A day an ad campaign did not run (one in four, a different one for each campaign): its visits still
    come (saved links, returning visitors), but it shows no ad and costs nothing."""
    return (day + cid) % 4 == 0


def _campaign_daily_stat(ref: Reference, world: Any, site_id: int, date_from: str, date_till: str) -> list[Record]:
    names = {c[0]: c for c in ref.CAMPAIGNS}
    domain = dict(ref.SITES).get(site_id)
    rows: list[Record] = []
    for day in _days(world, date_from, date_till):
        bundle = world.bundle(day)
        stats: dict[tuple[int, int | None], Record] = {}
        for s in bundle.records["visitor_sessions"]:
            if s["site_id"] == site_id and _in(s["date_time"], date_from, date_till):
                e = _entry(stats, ref, s["campaign_id"], s["campaign_name"], s["id"])
                e["visits_count"] += 1
                e["session_ids"].append(s["id"])
        for report, ctype, date_field in COMM_SOURCES:
            for r in bundle.records[report]:
                if r["site_id"] == site_id and _in(r[date_field], date_from, date_till):
                    e = _entry(stats, ref, r["campaign_id"], r["campaign_name"], r["id"])
                    e[f"{report}_count"] += 1
                    e["communications"].append({"communication_type": ctype,
                                                "communication_id": r["communication_id"],
                                                "attributes": list(r["attributes"]),
                                                "tags": [dict(t) for t in r["tags"]]})
        day_str = world.day_str(day)
        for (cid, slot) in sorted(stats, key=lambda k: (k[0], k[1] or 0)):
            rng = random.Random(f"{ref.seed}:campaign_daily_stat:{day}:{site_id}:{cid}:{slot}")
            camp = names.get(cid)
            integrated = slot is not None
            shows = rng.randint(200, 5000) if integrated else None
            clicks = rng.randint(5, 200) if integrated else None
            known = {**stats[(cid, slot)], "date": day_str, "site_id": site_id, "site_domain_name": domain,
                     "engine": camp[2] if integrated and camp else None,
                     "campaign_ext_id": str(cid % 10**7) if integrated else None,
                     "campaign_ext_name": camp[1] if integrated and camp else None,
                     **(_ad(cid, slot) if slot is not None else dict.fromkeys(AD_FIELDS)), "old_banner_ids": [],
                     "cost_sum": round(rng.uniform(300, 9000), 2) if integrated else None,
                     "shows_count": shows, "clicks_count": clicks, "currency": "RUB" if integrated else None,
                     "daily_budget": 10000.0 if integrated else None, "weekly_budget": None,
                     "source_id": None, "source_name": None}
            if integrated and _paused(day, cid):  # after the draws, so that the other fields keep their values
                known.update(cost_sum=0.0, shows_count=0, clicks_count=0)
            rows.append(_fill(CATALOG["get.campaign_daily_stat"].fields, known, rng))
    return rows


def _calls(world: Any, date_from: str, date_till: str) -> list[Record]:
    return [c for day in _days(world, date_from, date_till) for c in world.bundle(day).records["calls"]
            if _in(c["start_time"], date_from, date_till)]


def _ct_summary(ref: Reference, world: Any, date_from: str, date_till: str) -> list[Record]:
    calls = _calls(world, date_from, date_till)
    rows = []
    for sid, domain in ref.SITES:
        mine = [c for c in calls if c["site_id"] == sid]
        with_session = sum(1 for c in mine if c["visitor_session_id"] is not None)
        rows.append({"site_id": sid, "site_domain": domain, "reserve_numbers_count": 1,
                     "active_numbers_count": len(ref.VIRTUAL_NUMBERS), "calls_count": len(mine),
                     "non_session_calls_count": len(mine) - with_session,
                     "dt_ratio": round(100.0 * with_session / len(mine), 2) if mine else 0.0})
    return rows


def _ct_ac_summary(ref: Reference, world: Any, site_id: int, date_from: str, date_till: str) -> list[Record]:
    calls = [c for c in _calls(world, date_from, date_till) if c["site_id"] == site_id]
    rows = []
    for cid, name, *_, channel in ref.CAMPAIGNS:
        mine = [c for c in calls if c["campaign_id"] == cid]
        with_session = sum(1 for c in mine if c["visitor_session_id"] is not None)
        rows.append({"ac_id": cid, "ac_name": name, "is_reserve_pool": False, "is_dynamic": channel != "direct",
                     "is_static": channel == "direct", "active_numbers_count": 1, "calls_count": len(mine),
                     "non_session_calls_count": len(mine) - with_session,
                     "dt_ratio": round(100.0 * with_session / len(mine), 2) if mine else 0.0})
    return rows


def _employee_stat(ref: Reference, world: Any, date_from: str, date_till: str, by_mnemonic: bool) -> list[Record]:
    first = datetime.strptime(date_from[:10], "%Y-%m-%d").date()
    last = datetime.strptime(date_till[:10], "%Y-%m-%d").date()
    rows = []
    for eid, full, _, _ in ref.EMPLOYEES:
        seconds: dict[str, int] = {}
        day: date = first
        while day <= last:
            rng = random.Random(f"{ref.seed}:employee_stat:{eid}:{day}")
            before_deletion = day.toordinal() - world.start_ord < world.config.days // 2
            for sid, mnemonic, _ in STATUSES + (DELETED_STATUSES if before_deletion else ()):
                key = mnemonic if by_mnemonic else str(sid)
                seconds[key] = seconds.get(key, 0) + rng.randrange(0, 4 * 3600)
            day += timedelta(days=1)
        last_name, first_name, patronymic = full.split(" ")
        rows.append({"id": eid, "first_name": first_name, "last_name": last_name, "patronymic": patronymic,
                     "full_name": full, "status_stats": seconds, "groups": _employee_groups(ref, eid)})
    return rows


def rows(method: str, world: Any, params: dict[str, Any], date_from: str | None, date_till: str | None) -> list[Record]:
    """Every row the method returns for these parameters (before filter, sort and paging)."""
    ref = reference_of(world.config.seed)
    seed = ref.seed
    if method == "get.account":
        return _account(ref, world.config.app_id, world.config.timezone, world.config.account_name)
    tables: dict[str, Callable[[], list[Record]]] = {
        "get.sites": lambda: _sites(ref), "get.site_blocks": lambda: _site_blocks(ref),
        "get.campaigns": lambda: _campaigns(ref), "get.virtual_numbers": lambda: _virtual_numbers(ref),
        "get.employees": lambda: _employees(ref), "get.group_employees": lambda: _groups(ref),
        "get.tags": lambda: _tags(ref), "get.scenarios": lambda: _scenarios(ref),
        "get.statuses": lambda: _statuses(bool(params.get("is_deleted")), world.config.deleted_flag_gives_all),
        **A.tables(ref, world)}
    if method in tables:
        return _table(method, seed, tables[method]())
    assert date_from is not None
    assert date_till is not None
    if method == "get.source_costs":  # the docs: the time of date_from/date_till is ignored
        return _table(method, seed, A.source_costs(ref, _days(world, f"{date_from[:10]} 00:00:00",
                                                              f"{date_till[:10]} 23:59:59")))
    if method == "get.campaign_daily_stat":
        return _campaign_daily_stat(ref, world, params["site_id"], date_from, date_till)
    if method == "get.ct_summary_report":
        found = _ct_summary(ref, world, date_from, date_till)
    elif method == "get.ct_ac_summary_report":
        found = _ct_ac_summary(ref, world, params["site_id"], date_from, date_till)
    else:
        found = _employee_stat(ref, world, date_from, date_till, bool(params.get("only_default_statuses_in_stats")))
    return _table(method, seed, found)
