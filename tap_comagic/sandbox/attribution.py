"""The account's source model, goal definitions, positions, schedules, custom fields, chat channels and deals.

Every id the reports and the other reference tables hold is a row here: the reports' ``source_id`` (from
``vocab.TRAFFIC``) in ``get.sources``, their channel and group in ``get.sources_channels`` and
``get.sources_groups``; a goal's ``ext_id`` and name in ``get.events``; an employee's position and schedule
in ``get.employee_positions`` and ``get.schedules``; a chat's ``chat_channel_id`` in ``get.chat_channels``.

- ``get.source_costs``: costs entered by hand for the sources outside ad systems, on some days, per site
  (one source for no site); the answer is the total per source and site over the requested dates.
- ``get.deals_history``: a deal for every fourth call with a communication, moving through the stages of
  one of two ``get.sales_funnel`` funnels over the following days (one row per stage entered; a skipped
  stage is generated at the time of the move). Only the moves inside the data period are history yet.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import vocab as V

if TYPE_CHECKING:
    from .data import World
    from .reference import Reference

Record = dict[str, Any]
DAY = 86_400
METHODS = ("get.sources", "get.sources_channels", "get.sources_groups", "get.source_costs", "get.events",
           "get.employee_positions", "get.schedules", "get.offline_message_user_fields", "get.deal_user_fields",
           "get.lead_user_fields", "get.chat_channels", "get.sales_funnel", "get.lead_funnel_stages",
           "get.deals_history")


def tables(ref: Reference, world: World) -> dict[str, Callable[[], list[Record]]]:
    """The rows of each whole-table method of this module (``get.source_costs`` takes dates: not here)."""
    fields = {m: (lambda m=m: user_fields(m)) for m in USER_FIELDS}
    return {"get.sources": sources, "get.sources_channels": source_channels, "get.sources_groups": source_groups,
            "get.events": lambda: events(ref), "get.employee_positions": employee_positions,
            "get.schedules": schedules, **fields, "get.chat_channels": lambda: chat_channels(ref),
            "get.sales_funnel": sales_funnels, "get.lead_funnel_stages": lead_funnel_stages,
            "get.deals_history": lambda: deals_history(world)}

# ---- the source model -----------------------------------------------------------------------------------

# Sources whose costs are entered by hand (no ad system reports them): offline, email, affiliate, social.
COSTED = ("offline", "email", "affiliate", "social")
CHANNEL_BASE, GROUP_BASE = 9_200_000, 9_300_000


def _channels() -> list[tuple[int, str, str]]:
    """(id, name, mnemonic) of each channel the traffic sources belong to, in first-seen order."""
    seen: dict[str, str] = {}
    for _sid, _name, _new, channel_name, code in V.TRAFFIC.values():
        seen.setdefault(code, channel_name)
    return [(CHANNEL_BASE + n + 1, name, code) for n, (code, name) in enumerate(seen.items())]


def sources() -> list[Record]:
    channel_of = {code: (cid, name) for cid, name, code in _channels()}
    out = []
    for n, (kind, (sid, name, new, _channel_name, code)) in enumerate(V.TRAFFIC.items()):
        cid, cname = channel_of[code]
        out.append({"id": sid, "name": name, "description": None, "group_id": GROUP_BASE + n + 1,
                    "group_name": name, "channel_id": cid, "channel_name": cname, "channel_mnemonic": code,
                    "filter": None, "priority": n + 1, "is_custom": kind in COSTED, "state": "active",
                    "icon_mnemonic": new, "static_parameters": [{"parameter": "utm_source", "value": new}]})
    return out


def source_channels() -> list[Record]:
    first_source: dict[str, int] = {}
    for sid, _name, _new, _cn, code in V.TRAFFIC.values():
        first_source.setdefault(code, sid)
    return [{"id": cid, "name": name, "mnemonic": code, "is_custom": False, "state": "active",
             "default_source_id": first_source[code]} for cid, name, code in _channels()]


def source_groups() -> list[Record]:
    return [{"id": s["group_id"], "name": s["group_name"], "channel_id": s["channel_id"],
             "channel_name": s["channel_name"], "channel_mnemonic": s["channel_mnemonic"],
             "is_custom": s["is_custom"], "state": "active"} for s in sources()]


def _cost_cells(ref: Reference) -> list[tuple[str, int, str, int | None, str | None]]:
    """(kind, source id, source name, site id, site domain) of each cost line; social has no site."""
    cells = []
    for n, kind in enumerate(COSTED):
        sid, name, *_ = V.TRAFFIC[kind]
        site = None if kind == "social" else ref.SITES[n % len(ref.SITES)]
        cells.append((kind, sid, name, site[0] if site else None, site[1] if site else None))
    return cells


def source_costs(ref: Reference, days: range) -> list[Record]:
    """The cost of each source and site summed over ``days`` (day numbers of the data period)."""
    totals: dict[tuple[int, int | None], float] = {}
    names: dict[tuple[int, int | None], tuple[str, str | None]] = {}
    for day in days:
        for kind, sid, name, site, domain in _cost_cells(ref):
            rng = random.Random(f"{ref.seed}:source_costs:{kind}:{day}")
            if rng.random() < 0.5:
                continue  # nothing entered that day
            key = (sid, site)
            totals[key] = round(totals.get(key, 0.0) + round(rng.uniform(500, 20_000), 2), 2)
            names[key] = (name, domain)
    return [{"source_id": sid, "source_name": names[(sid, site)][0], "site_id": site,
             "site_domain_name": names[(sid, site)][1], "child_customer_id": None, "cost": cost}
            for (sid, site), cost in sorted(totals.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))]


# ---- goal definitions, positions, schedules, custom fields, chat channels --------------------------------

def events(ref: Reference) -> list[Record]:
    """A goal definition for each goal the goals report holds (same ext_id and name), and a system event."""
    out = []
    for kind, name in enumerate(V.GOAL_NAMES):
        ppc = kind % 2 == 0
        site_id, domain = ref.SITES[kind % len(ref.SITES)]
        ext_id = str(31_337_000 + kind)
        out.append({"id": 7_400_001 + kind, "name": name, "description": None, "site_id": site_id,
                    "site_domain_name": domain, "type": "ppc_goal" if ppc else "track_event",
                    "category": None if ppc else "form", "action": None if ppc else V.GOAL_TYPES[kind],
                    "label": None, "value": None, "url": None, "segment_id": None, "is_goal": True,
                    "goal_name": name, "engine": "yandex.metrika" if ppc else None, "ext_id": ext_id,
                    "is_active": True, "ym_goal_id": ext_id if ppc else None})
    out.append({"id": 7_400_000, "name": "Звонок", "description": "Системное событие", "site_id": None,
                "site_domain_name": None, "type": "comagic", "is_goal": False, "goal_name": None, "engine": None,
                "ext_id": None, "is_active": True, "segment_id": None})
    return out


POSITIONS = ((5_510_001, "Менеджер по продажам"), (5_510_002, "Старший менеджер"), (5_510_003, "Руководитель отдела"))
SCHEDULES: tuple[tuple[int, str, Record, list[Record]], ...] = (
    (6_620_001, "Пятидневка 9–18", {"type": "days_of_week", "days": [1, 2, 3, 4, 5]},
     [{"time_from": "09:00", "time_till": "18:00"}]),
    (6_620_002, "Два через два", {"type": "cycle", "days": [2, 2]}, [{"time_from": "10:00", "time_till": "22:00"}]),
)


def position_of(n: int) -> tuple[int, str]:
    """The position of the n-th employee."""
    return POSITIONS[n % len(POSITIONS)]


def schedule_of(n: int) -> tuple[int, str]:
    """The schedule of the n-th employee."""
    sid, name, *_ = SCHEDULES[n % len(SCHEDULES)]
    return sid, name


def employee_positions() -> list[Record]:
    return [{"id": pid, "name": name} for pid, name in POSITIONS]


def schedules() -> list[Record]:
    return [{"id": sid, "name": name, "schedules": [{"activity_days": days, "activity_time": times,
                                                     "activity_date_from": "2025-01-01", "activity_date_till": None}]}
            for sid, name, days, times in SCHEDULES]


USER_FIELDS = {
    "get.offline_message_user_fields": (("Статус заявки", "string"), ("Сумма заказа", "numeric")),
    "get.deal_user_fields": (("Тип клиента", "string"), ("Площадь остекления", "numeric"), ("Дата замера", "date")),
    "get.lead_user_fields": (("Откуда узнали", "string"),),
}


def user_fields(method: str) -> list[Record]:
    prefix = method.removeprefix("get.").removesuffix("_user_fields")
    return [{"ext_id": f"{prefix}_field_{n + 1}", "name": name, "data_type": kind}
            for n, (name, kind) in enumerate(USER_FIELDS[method])]


CHANNEL_TYPES = {"site": "comagic", "vk": "vkontakte_groups"}  # the chats report's words -> get.chat_channels'


def chat_channels(ref: Reference) -> list[Record]:
    out: dict[int, Record] = {}
    for cid, kind, name in V.CHAT_CHANNELS:
        if cid in out:
            continue
        group = ref.GROUPS[len(out) % len(ref.GROUPS)]
        employee = ref.EMPLOYEES[len(out)] if kind != "site" else None
        out[cid] = {"id": cid, "name": name, "type": CHANNEL_TYPES.get(kind, kind), "status": "active",
                    "group_id": group[0], "group_name": group[1], "employee_id": employee[0] if employee else None,
                    "employee_full_name": employee[1] if employee else None,
                    "channel_external_id": None if kind == "site" else name.split(" ", 1)[1]}
    return list(out.values())


# ---- funnels and deals ----------------------------------------------------------------------------------

# (ext_id, name, stages: (stage ext_id, name, status)); the stages in order, the last two closing the deal
FUNNELS = (
    ("funnel-windows", "Продажа окон", (("w-new", "Новая заявка", "in_process"), ("w-measure", "Замер", "in_process"),
                                        ("w-offer", "Коммерческое предложение", "in_process"),
                                        ("w-won", "Договор подписан", "success"), ("w-lost", "Отказ", "failed"))),
    ("funnel-flowers", "Доставка цветов", (("f-new", "Новый заказ", "in_process"),
                                           ("f-paid", "Оплачен", "in_process"),
                                           ("f-done", "Доставлен", "success"), ("f-lost", "Отменён", "failed"))),
)
LEAD_STAGES = (("new", "Новый лид", "in_process"), ("qualified", "Квалифицирован", "in_process"),
               ("converted", "Сделка создана", "success"), ("junk", "Нецелевой", "failed"))


def sales_funnels() -> list[Record]:
    return [{"ext_id": ext, "name": name,
             "stages": [{"stage_ext_id": s, "stage_name": n, "stage_status": st, "stage_order": i + 1}
                        for i, (s, n, st) in enumerate(stages)]} for ext, name, stages in FUNNELS]


def lead_funnel_stages() -> list[Record]:
    return [{"id": 4_400_001 + i, "component": "lead", "ext_id": f"lead-{ext}", "name": name, "type": kind,
             "order": i + 1} for i, (ext, name, kind) in enumerate(LEAD_STAGES)]


_DEALS: weakref.WeakKeyDictionary[World, tuple[int, list[Record]]] = weakref.WeakKeyDictionary()


def deals_history(world: World) -> list[Record]:
    """Every stage entered by the deals of the account's calls, up to the end of the data period."""
    cached = _DEALS.get(world)
    if cached is not None and cached[0] == world.mutations:
        return cached[1]
    rows: list[Record] = []
    for day in range(world.config.days):
        for call in world.bundle(day).records["calls"]:
            if call.get("communication_id") is not None and call["id"] % 4 == 0:
                rows.extend(_deal(world, call))
    _DEALS[world] = (world.mutations, rows)
    return rows


def _deal(world: World, call: Record) -> list[Record]:
    """The stages one deal entered: the in-process stages in order (now and then one skipped, generated at
    the time of the move), then, for most deals, the won or the lost stage."""
    rng = random.Random(f"{world.config.seed}:deal:{call['id']}")
    ext, _name, stages = FUNNELS[call["id"] // 4 % len(FUNNELS)]  # every fourth call has a deal
    open_stages = [s for s in stages if s[2] == "in_process"]
    closing = [s for s in stages if s[2] != "in_process"]
    at = world.abs_of(call["start_time"]) + rng.randint(600, 4 * 3600)
    created = at
    path: list[tuple[tuple[str, str, str], int, bool]] = []
    for n, stage in enumerate(open_stages):
        if n and rng.random() < 0.2:  # skipped: generated when the deal moves on
            path.append((stage, -1, True))
            continue
        at += rng.randint(3600, 3 * DAY) if n else 0
        path.append((stage, at, False))
    if rng.random() < 0.8:
        at += rng.randint(3600, 3 * DAY)
        path.append((closing[0] if rng.random() < 0.6 else closing[1], at, False))
    times = [t for _, t, _ in path]
    for i in range(len(path) - 1, -1, -1):  # a skipped stage takes the time of the next move
        if times[i] < 0:
            times[i] = times[i + 1] if i + 1 < len(times) else times[i - 1]
    end = world.end_abs
    revenue = round(rng.uniform(5_000, 150_000), 2)
    employee = call.get("last_answered_employee_id")
    rows = []
    for (stage, _, generated), t in zip(path, times, strict=True):
        if t >= end:
            break
        rows.append({"ext_id": f"deal-{call['communication_id']}", "name": f"Сделка по звонку {call['id']}",
                     "created_date_time": _at(world, created),
                     # a row is the deal as it entered the stage: closed when the stage closes it
                     "closed_date_time": _at(world, t) if stage[2] != "in_process" else None,
                     "modified_stage_date_time": _at(world, t), "contact_ext_ids": [f"contact-{call['id'] % 997}"],
                     "tag_ext_ids": [], "main_contact_ext_id": f"contact-{call['id'] % 997}",
                     "employee_ext_id": None if employee is None else str(employee),
                     "revenue": revenue if stage[2] != "failed" else 0.0, "sales_funnel_ext_id": ext,
                     "stage_ext_id": stage[0], "comments": None, "source": "calls", "is_generated": generated,
                     "communication_id": call["communication_id"], "communication_type": "call"})
    return rows


def _at(world: World, t: int | None) -> str | None:
    if t is None:
        return None
    day, sec = divmod(t, DAY)
    return world.fmt(day, world.fix(day, sec))
