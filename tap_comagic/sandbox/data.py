"""The simulated account's data: deterministic from the seed, generated lazily one day at a time.

Every day has a cheap *draw* (the sorted times of every record, the legs of each call, the messages of
each chat) and an expensive *bundle* (every record of every report with all fields). Counting a date
window needs only the draws (kept as compact arrays); serving a page builds the bundles of the days the
page touches. Bundles live in a bounded LRU cache, so a million calls never sit in memory at once.

Ids encode their day: ``id = BASE[kind] + day * STRIDE + index`` (int64, beyond 32 bits), so a record is
found from its id alone. Late records get indexes from ``LATE0`` on; changes to existing records are
kept as patches applied whenever a bundle is (re)built.
"""

from __future__ import annotations

import functools
import json
import random
import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from . import vocab as V
from .catalog import CATALOG
from .config import SandboxConfig
from .reference import reference_of

Record = dict[str, Any]
DAY = 86_400
STRIDE = 10_000_000
LATE0 = 5_000_000
LEG_SLOTS = 4  # leg id = BASE + day * STRIDE * LEG_SLOTS + call index * LEG_SLOTS + leg number
MSG_SLOTS = 32  # message id = BASE + day * STRIDE * MSG_SLOTS + chat index * MSG_SLOTS + message number
SOURCES = ("calls", "chats", "goals", "offline_messages", "visitor_sessions", "api_requests")
COMM_TYPE = {"calls": "call", "chats": "chat", "goals": "goal", "offline_messages": "offline_message"}
TYPE_SOURCE = {v: k for k, v in COMM_TYPE.items()}
TYPE_RANK = {"call": 0, "chat": 1, "goal": 2, "offline_message": 3}
_KINDS = ("calls", "call_legs", "chats", "goals", "offline_messages", "visitor_sessions", "api_requests",
          "comm:call", "comm:chat", "comm:goal", "comm:offline_message", "sales", "visitors", "persons",
          "contacts", "users", "chat_messages")
BASE: dict[str, int] = {k: (i + 1) * 100_000_000_000 for i, k in enumerate(_KINDS)}
# Reports whose date-window count comes from the draws alone.
TIMED = ("calls", "call_legs", "financial_call_legs", "communications", "goals", "chats", "chat_messages",
         "offline_messages", "visitor_sessions", "api_requests")
SALE_LOOKBACK_DAYS = 15  # a sale happens at most this many days after its communication
EQ_UTM = ("eq_utm_source", "eq_utm_medium", "eq_utm_term", "eq_utm_content", "eq_utm_campaign", "eq_utm_referrer",
          "eq_utm_expid")
TRAFFIC_KEYS = ("source_id", "source_name", "source_new", "channel_new", "channel_code")
NO_SESSION_EQ = ("(direct)", "(none)", None, None, None, None, None)
# calls' scenario_operations, shared by every call of a scenario (records are only ever encoded)
@functools.cache
def scenario_operations(sid: int) -> list[Record]:
    return [{"name": step, "id": sid * 10 + i} for i, step in enumerate(V.SCENARIO_STEPS)]
HMS = tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY))


def field_names(report: str) -> tuple[str, ...]:
    return CATALOG[f"get.{report}_report"].field_names


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Draw:
    """The cheap part of a day: which records exist and when (seconds of the day)."""

    items: dict[str, list[tuple[int, int]]]  # source -> [(sec, index)] sorted
    legs: dict[int, list[int]]  # call index -> its legs' seconds
    msgs: dict[int, list[int]]  # chat index -> its messages' seconds
    base_count: dict[str, int]

    def times(self) -> dict[str, array[int]]:
        out = {src: array("i", (s for s, _ in self.items[src])) for src in SOURCES}
        legs = array("i", sorted(s for lst in self.legs.values() for s in lst))
        out["call_legs"] = legs
        out["financial_call_legs"] = legs
        out["chat_messages"] = array("i", sorted(s for lst in self.msgs.values() for s in lst))
        comm = [s for src in COMM_TYPE for s, _ in self.items[src]]
        out["communications"] = array("i", sorted(comm))
        return out


@dataclass
class Bundle:
    """Every record of one day, per report, in the report's canonical order (date field, then key)."""

    day: int
    records: dict[str, list[Record]]
    enc: dict[tuple[str, tuple[str, ...]], list[bytes | None]] = field(default_factory=dict)
    size: int = 0

    def encoded_range(self, report: str, names: tuple[str, ...], start: int, stop: int) -> list[bytes]:
        key = (report, names)
        cache = self.enc.get(key)
        if cache is None:
            cache = self.enc[key] = [None] * len(self.records[report])
        part = cache[start:stop]
        if None in part:
            recs = self.records[report]
            for i in range(start, stop):
                if cache[i] is None:
                    rec = recs[i]
                    cache[i] = dumps({n: rec[n] for n in names})
            part = cache[start:stop]
        return part  # type: ignore[return-value]  # no None left

    def encoded(self, report: str, names: tuple[str, ...], index: int) -> bytes:
        key = (report, names)
        cache = self.enc.get(key)
        if cache is None:
            cache = self.enc[key] = [None] * len(self.records[report])
        b = cache[index]
        if b is None:
            rec = self.records[report][index]
            b = cache[index] = dumps({n: rec[n] for n in names})
        return b


class World:
    """The account's data. Thread-safe: every public method takes the world's lock."""

    def __init__(self, config: SandboxConfig, bundle_budget: int = 400_000) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.start = date.fromisoformat(config.start)
        self.start_ord = self.start.toordinal()
        if not 1 <= config.days <= 999:
            raise ValueError("days must be within 1..999")
        self.per_day = {
            "calls": config.calls_per_day, "chats": config.chats_per_day, "goals": config.goals_per_day,
            "offline_messages": config.offline_messages_per_day,
            "visitor_sessions": config.visitor_sessions_per_day, "api_requests": config.api_requests_per_day,
        }
        self.tz = ZoneInfo(config.timezone)
        self.ref = reference_of(config.seed)  # the ids the reports draw: sites, campaigns, employees...
        self._gaps: dict[int, tuple[int, int] | None] = {}
        self.visitor_pool = max(20, config.visitor_sessions_per_day * config.days // 3)
        self.late: dict[tuple[str, int], list[int]] = {}
        self.patches: dict[tuple[str, int], Record] = {}
        self._times: OrderedDict[int, dict[str, array[int]]] = OrderedDict()
        self._bundles: OrderedDict[int, Bundle] = OrderedDict()
        self._bundle_budget = bundle_budget
        self._bundle_size = 0
        self._daystr: dict[int, str] = {}
        self._visitor_index: dict[int, dict[str, list[Any]]] | None = None
        self.mutations = 0

    # ---- time helpers -------------------------------------------------------------------------------
    def day_str(self, day: int) -> str:
        s = self._daystr.get(day)
        if s is None:
            s = self._daystr[day] = date.fromordinal(self.start_ord + day).isoformat()
        return s

    def fmt(self, day: int, sec: int) -> str:
        if not 0 <= sec < DAY:
            day, sec = day + sec // DAY, sec % DAY
        return f"{self.day_str(day)} {HMS[sec]}"

    def to_abs(self, dt: datetime) -> int:
        """Seconds since the first day's midnight (account-local, naive)."""
        return (dt.toordinal() - self.start_ord) * DAY + dt.hour * 3600 + dt.minute * 60 + dt.second

    def abs_of(self, text: str) -> int:
        return self.to_abs(datetime.strptime(text, "%Y-%m-%d %H:%M:%S"))

    @property
    def end_abs(self) -> int:
        return self.config.days * DAY

    def gap(self, day: int) -> tuple[int, int] | None:
        """The local seconds [start, end) that do not exist on this day (a DST spring-forward), if any."""
        if day in self._gaps:
            return self._gaps[day]
        d = date.fromordinal(self.start_ord + day)
        midnight = datetime(d.year, d.month, d.day)
        a = midnight.replace(tzinfo=self.tz).utcoffset()
        b = (midnight + timedelta(seconds=DAY - 1)).replace(tzinfo=self.tz).utcoffset()
        found: tuple[int, int] | None = None
        if a is not None and b is not None and b > a:
            for q in range(DAY // 900):
                naive = midnight + timedelta(seconds=q * 900)
                back = naive.replace(tzinfo=self.tz).astimezone(timezone.utc).astimezone(self.tz)
                if back.replace(tzinfo=None) != naive:
                    found = (q * 900, q * 900 + int((b - a).total_seconds()))
                    break
        self._gaps[day] = found
        return found

    def fix(self, day: int, sec: int) -> int:
        """Move a local time that falls in a DST gap to just after it (the real API never shows one)."""
        g = self.gap(day)
        if g is not None and g[0] <= sec < g[1]:
            return min(DAY - 1, sec + (g[1] - g[0]))
        return sec

    # ---- draws ----------------------------------------------------------------------------------------
    def draw(self, day: int) -> Draw:
        seed = self.config.seed
        items: dict[str, list[tuple[int, int]]] = {}
        legs: dict[int, list[int]] = {}
        msgs: dict[int, list[int]] = {}
        for src in SOURCES:
            n = self.per_day[src]
            rng = random.Random(f"{seed}:{src}:{day}")
            rr = rng.randrange
            secs = sorted([rr(DAY) for _ in range(n)])
            if n >= 1:
                secs[0] = 0  # a record at the very first second of the day
            if n >= 4:
                secs[-1] = DAY - 1
            if n >= 8:
                secs[2] = secs[3] = secs[1]  # three records sharing one second
            if self.gap(day) is not None:
                secs = [self.fix(day, x) for x in secs]
            lst = list(zip(secs, range(n), strict=False))
            late = self.late.get((src, day), [])
            lst.extend((s, LATE0 + j) for j, s in enumerate(late))
            lst.sort()
            items[src] = lst
            if src == "calls":
                x = random.Random(f"{seed}:calls:{day}:legs")
                for i in range(n):
                    legs[i] = self._leg_secs(x, secs[i])
                for j, s in enumerate(late):
                    legs[LATE0 + j] = self._leg_secs(random.Random(f"{seed}:calls:{day}:legs:{j}"), s)
            elif src == "chats":
                x = random.Random(f"{seed}:chats:{day}:msgs")
                for i in range(n):
                    msgs[i] = self._msg_secs(x, secs[i])
                    if i % 3 == 1:  # a twin: a second message of the chat in the same second
                        mid = len(msgs[i]) // 2
                        msgs[i].insert(mid, msgs[i][mid])
                for j, s in enumerate(late):
                    msgs[LATE0 + j] = self._msg_secs(random.Random(f"{seed}:chats:{day}:msgs:{j}"), s)
        if self.gap(day) is not None:
            legs = {k: [self.fix(day, x) for x in v] for k, v in legs.items()}
            msgs = {k: sorted(self.fix(day, x) for x in v) for k, v in msgs.items()}
        return Draw(items=items, legs=legs, msgs=msgs, base_count=dict(self.per_day))

    @staticmethod
    def _leg_secs(rng: random.Random, sec: int) -> list[int]:
        r = rng.random()
        n = 1 if r < 0.55 else 2 if r < 0.9 else 3
        out = [sec]
        for _ in range(n - 1):
            out.append(min(DAY - 1, out[-1] + rng.randint(4, 150)))
        return out

    @staticmethod
    def _msg_secs(rng: random.Random, sec: int) -> list[int]:
        n = rng.randint(1, 12)
        out = [sec]
        for _ in range(n - 1):
            out.append(min(DAY - 1, out[-1] + rng.randint(2, 120)))
        return out

    def times(self, day: int) -> dict[str, array[int]]:
        with self.lock:
            t = self._times.get(day)
            if t is None:
                t = self._times[day] = self.draw(day).times()
                while len(self._times) > 4000:
                    self._times.popitem(last=False)
            else:
                self._times.move_to_end(day)
            return t

    # ---- bundles --------------------------------------------------------------------------------------
    def bundle(self, day: int) -> Bundle:
        with self.lock:
            b = self._bundles.get(day)
            if b is not None:
                self._bundles.move_to_end(day)
                return b
            b = _Builder(self, day).build()
            self._bundles[day] = b
            self._bundle_size += b.size
            while self._bundle_size > self._bundle_budget and len(self._bundles) > 1:
                _, old = self._bundles.popitem(last=False)
                self._bundle_size -= old.size
            return b

    def invalidate(self, days: Iterable[int]) -> None:
        with self.lock:
            for d in set(days):
                old = self._bundles.pop(d, None)
                if old is not None:
                    self._bundle_size -= old.size
                self._times.pop(d, None)
            self._visitor_index = None
            self.mutations += 1

    def day_of_id(self, kind: str, ident: int) -> tuple[int, int] | None:
        off = ident - BASE[kind]
        stride = STRIDE * LEG_SLOTS if kind == "call_legs" else STRIDE
        if off < 0:
            return None
        day, idx = divmod(off, stride)
        if day >= self.config.days:
            return None
        return day, idx

    def find(self, src: str, ident: int) -> tuple[Bundle, Record] | None:
        loc = self.day_of_id(src, ident)
        if loc is None:
            return None
        b = self.bundle(loc[0])
        for rec in b.records[src]:
            if rec["id"] == ident:
                return b, rec
        return None

    # ---- visitors ---------------------------------------------------------------------------------
    def visitor_index(self) -> dict[int, dict[str, list[Any]]]:
        with self.lock:
            if self._visitor_index is None:
                idx: dict[int, dict[str, list[Any]]] = {}
                for day in range(self.config.days):
                    b = self.bundle(day)
                    for s in b.records["visitor_sessions"]:
                        idx.setdefault(s["visitor_id"], {"sessions": [], "comms": []})["sessions"].append(s)
                    for c in b.records["communications"]:
                        if c["visitor_id"] is not None:
                            entry = idx.setdefault(c["visitor_id"], {"sessions": [], "comms": []})
                            entry["comms"].append(c)
                self._visitor_index = idx
            return self._visitor_index

    def visitor_record(self, visitor_id: int) -> Record | None:
        entry = self.visitor_index().get(visitor_id)
        if entry is None or not entry["sessions"]:
            return None
        k = visitor_id - BASE["visitors"]
        st = visitor_static(self.config.seed, k)
        sessions = entry["sessions"]
        first, last = sessions[0], sessions[-1]
        campaigns: dict[int, str] = {}
        for s in sessions:
            campaigns.setdefault(s["campaign_id"], s["campaign_name"])
        rec: Record = {
            "id": visitor_id, "first_visit": first["date_time"], "last_visit": last["date_time"],
            "full_name": st["name"], "emails": [st["email"]] if st["email"] else [],
            "phone_numbers": [st["phone"]] if st["phone"] else [], "company": st["company"],
            "person_id": st["person_id"], "device": st["device"], "visits_count": len(sessions),
            "comment": st["comment"], "visitor_first_campaign_id": first["campaign_id"],
            "visitor_first_campaign_name": first["campaign_name"],
            "last_search_query": last["search_query"], "first_search_query": first["search_query"],
            "first_entrance_page": first["entrance_page"], "last_entrance_page": last["entrance_page"],
            "last_session_id": last["id"],
            "communications": [
                {"communication_id": c["id"], "communication_date_time": c["date_time"],
                 "communication_type": c["communication_type"]} for c in entry["comms"]
            ],
            "custom_properties": [dict(p) for p in first["visitor_custom_properties"]],
            "site_id": first["site_id"], "site_domain_name": first["site_domain_name"],
            "site_duration": sum(s["duration"] for s in sessions),
            "campaigns": [{"campaign_id": c, "campaign_name": n} for c, n in campaigns.items()],
            "sessions": [{"session_id": s["id"]} for s in sessions],
        }
        return {n: rec[n] for n in field_names("visitors")}

    # ---- mutations ----------------------------------------------------------------------------------
    def add_late(self, src: str, day: int, sec: int) -> int:
        with self.lock:
            lst = self.late.setdefault((src, day), [])
            lst.append(self.fix(day, sec))
            ident = BASE[src] + day * STRIDE + LATE0 + len(lst) - 1
            self.invalidate(range(day, min(day + SALE_LOOKBACK_DAYS + 1, self.config.days)))
            return ident

    def patch(self, src: str, ident: int, changes: Record) -> None:
        with self.lock:
            self.patches.setdefault((src, ident), {}).update(changes)
            loc = self.day_of_id(src, ident)
            if loc is not None:
                self.invalidate(range(loc[0], min(loc[0] + SALE_LOOKBACK_DAYS + 1, self.config.days)))


_VISITOR_CACHE: OrderedDict[tuple[int, int], Record] = OrderedDict()
_VISITOR_LOCK = threading.Lock()


def visitor_static(seed: int, k: int) -> Record:
    """Attributes of visitor number k that do not change between sessions."""
    key = (seed, k)
    with _VISITOR_LOCK:
        hit = _VISITOR_CACHE.get(key)
        if hit is not None:
            return hit
    rng = random.Random(f"{seed}:visitor:{k}")
    female = rng.random() < 0.5
    family = rng.choice(V.LAST)
    last = family[int(female)]
    first = rng.choice(V.FEMALE_FIRST if female else V.MALE_FIRST)
    known = rng.random() < 0.6
    city = rng.choice(V.CITIES)
    st: Record = {
        "visitor_id": BASE["visitors"] + k,
        "person_id": BASE["persons"] + k if known else None,
        "name": f"{first} {last}" if known else None,
        "phone": f"79{rng.randrange(10**9):09d}" if known or rng.random() < 0.5 else None,
        "email": (f"{V.TRANSLIT[family[0]]}.{k}@{rng.choice(('mail.ru', 'yandex.ru', 'gmail.com'))}"
                  if known and rng.random() < 0.7 else None),
        "company": rng.choice(V.COMPANIES) if known else None,
        "comment": "Постоянный клиент" if known and rng.random() < 0.2 else None,
        "city": city,
        "device": rng.choice(("desktop", "desktop", "mobile", "mobile", "tablet", "other")),
        "ip": f"{rng.randint(5, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randint(1, 254)}",
        "browser": rng.choice(V.BROWSERS), "os": rng.choice(V.OSES), "provider": rng.choice(V.PROVIDERS),
        "screen": rng.choice(V.SCREENS), "language": rng.choice(V.LANGUAGES),
        "ua": f"{rng.randrange(10**9, 10**10)}.{rng.randrange(10**9, 10**10)}",
        "first_campaign": rng.choice(reference_of(seed).CAMPAIGNS),
        "custom": [{"property_name": n, "property_value": v} for n, v in V.CUSTOM_PROPERTIES
                   if known and rng.random() < 0.3],
        "visits_base": rng.randint(1, 6),
        "ym": f"{rng.randrange(10**9, 10**10)}{rng.randrange(10**9, 10**10)}",
    }
    with _VISITOR_LOCK:
        _VISITOR_CACHE[key] = st
        while len(_VISITOR_CACHE) > 50_000:
            _VISITOR_CACHE.popitem(last=False)
    return st


class _Builder:
    """Builds one day's bundle from its draw."""

    def __init__(self, world: World, day: int) -> None:
        self.w = world
        self.day = day
        self.seed = world.config.seed
        self.ref = world.ref
        self.d = world.draw(day)
        # lost incoming calls built so far today, (second, number), the ones an outgoing call may call back
        self.lost_today: list[tuple[int, str]] = []
        self.outgoing_today = 0

    def rng(self, src: str, idx: int, base: random.Random) -> random.Random:
        if idx < LATE0:
            return base
        return random.Random(f"{self.seed}:{src}:{self.day}:full:late:{idx - LATE0}")

    def at(self, sec: int) -> str:
        return self.w.fmt(self.day, sec)

    def build(self) -> Bundle:
        day = self.day
        recs: dict[str, list[Record]] = {}
        # sessions first: communications take their marketing attributes from them
        sess: dict[int, Record] = {}
        base = random.Random(f"{self.seed}:visitor_sessions:{day}:full")
        for sec, idx in self._base_first("visitor_sessions"):
            sess[idx] = self.session(self.rng("visitor_sessions", idx, base), sec, idx)
        self.base_sessions = [(sess[i]["_sec"], sess[i]) for i in sorted(sess) if i < LATE0]
        self.base_session_secs = [s for s, _ in self.base_sessions]
        by_src: dict[str, dict[int, Record]] = {}
        legs: list[Record] = []
        fin: list[Record] = []
        messages: list[Record] = []
        for src in ("calls", "chats", "goals", "offline_messages", "api_requests"):
            base = random.Random(f"{self.seed}:{src}:{day}:full")
            out: dict[int, Record] = {}
            for sec, idx in self._base_first(src):
                r = self.rng(src, idx, base)
                ident = BASE[src] + day * STRIDE + idx
                if src == "calls":
                    rec, lg, fl = self.call(r, sec, idx, ident)
                    legs.extend(lg)
                    fin.extend(fl)
                elif src == "chats":
                    rec, ms = self.chat(r, sec, idx, ident)
                    messages.extend(ms)
                elif src == "goals":
                    rec = self.goal(r, sec, ident)
                elif src == "offline_messages":
                    rec = self.offline(r, sec, ident)
                else:
                    rec = self.api_request(r, sec, ident)
                patch = self.w.patches.get((src, ident))
                if patch:
                    rec.update(patch)
                out[idx] = rec
            by_src[src] = out
        for src in ("calls", "chats", "goals", "offline_messages", "api_requests"):
            recs[src] = [by_src[src][idx] for _, idx in self.d.items[src]]
        # communications: the union of the four kinds, in (date_time, type, id) order
        comms: list[tuple[int, int, int, Record]] = []
        for src, ctype in COMM_TYPE.items():
            for (sec, _), rec in zip(self.d.items[src], recs[src], strict=False):
                comms.append((sec, TYPE_RANK[ctype], rec["communication_id"], self.communication(rec, ctype)))
        comms.sort(key=lambda t: t[:3])
        recs["communications"] = [c for *_, c in comms]
        # sessions list the communications linked to them
        links: dict[int, list[Record]] = {}
        for c in recs["communications"]:
            if c["visitor_session_id"] is not None:
                links.setdefault(c["visitor_session_id"], []).append(
                    {"communication_type": c["communication_type"], "communication_id": c["id"],
                     "communication_date_time": c["date_time"]})
        for s in sess.values():
            s["communications"] = links.get(s["id"], [])
        recs["visitor_sessions"] = [sess[idx] for _, idx in self.d.items["visitor_sessions"]]
        legs.sort(key=lambda r: (r["start_time"], r["id"]))
        fin.sort(key=lambda r: (r["start_time"], r["leg_id"]))
        messages.sort(key=lambda r: (r["date_time"], r["chat_id"], r["_n"]))
        for m in messages:
            del m["_n"]
        recs["call_legs"] = legs
        recs["financial_call_legs"] = fin
        recs["chat_messages"] = messages
        recs["sales"] = self.sales(recs["communications"], by_src)
        recs["financial_summary"] = [self.summary(fin)]
        out_recs = {k: [self.project(k, r) for r in v] for k, v in recs.items()}
        return Bundle(day=day, records=out_recs, size=sum(len(v) for v in out_recs.values()))

    def _base_first(self, src: str) -> list[tuple[int, int]]:
        return sorted(self.d.items[src], key=lambda t: t[1])

    @staticmethod
    def project(report: str, rec: Record) -> Record:
        return {n: rec[n] for n in field_names(report)}

    # ---- marketing attributes ---------------------------------------------------------------------
    def pick_session(self, rng: random.Random, sec: int, share: float) -> Record | None:
        k = bisect_right(self.base_session_secs, sec)
        if k == 0 or rng.random() >= share:
            return None
        return self.base_sessions[rng.randrange(max(0, k - 40), k)][1]

    def attribution(self, rng: random.Random, s: Record | None) -> Record:
        keys = ("ua_client_id", "search_query", "search_engine", "referrer_domain", "referrer", "entrance_page",
                "gclid", "yclid", "ymclid", "ef_id", "channel", "site_id", "site_domain_name", "campaign_id",
                "campaign_name", "visitor_id", "visitor_type", "visitor_city", "visitor_region",
                "visitor_country", "visitor_device", "utm_source", "utm_medium", "utm_term", "utm_content",
                "utm_campaign", "openstat_ad", "openstat_campaign", "openstat_service", "openstat_source")
        if s is not None:
            a = {k: s[k] for k in keys}
            a["visitor_custom_properties"] = [dict(p) for p in s["visitor_custom_properties"]]
            a["segments"] = [dict(p) for p in s["segments"]]
            a["visitor_session_id"] = s["id"]
            a["person_id"] = s["_person_id"]
            a["visits_count"] = s["_visits"]
            a["visitor_first_campaign_id"] = s["_first_campaign"][0]
            a["visitor_first_campaign_name"] = s["_first_campaign"][1]
            a["visit_other_campaign"] = rng.random() < 0.1
            a["ym_client_id"] = s["ym_client_id"]
            a["communication_page_url"] = s["exit_page"]
            a.update(zip(EQ_UTM, s["_eq"], strict=True))
            a.update(zip(TRAFFIC_KEYS, s["_traffic"], strict=True))
            return a
        a = dict.fromkeys(keys)
        a.update(dict.fromkeys(("visitor_session_id", "person_id", "visits_count", "visitor_first_campaign_id",
                                "visitor_first_campaign_name")))
        site = rng.choice(self.ref.SITES)
        a.update(site_id=site[0], site_domain_name=site[1], campaign_id=self.ref.OFFLINE_CAMPAIGN[0],
                 campaign_name=self.ref.OFFLINE_CAMPAIGN[1], visit_other_campaign=False, visitor_custom_properties=[],
                 segments=[], channel="direct", ym_client_id=None, communication_page_url=None)
        a.update(zip(EQ_UTM, NO_SESSION_EQ, strict=True))
        a.update(zip(TRAFFIC_KEYS, V.TRAFFIC["offline"], strict=True))
        return a

    def tags(self, rng: random.Random, sec: int) -> list[Record]:
        if rng.random() >= 0.3:
            return []
        out = []
        for tag_id, tag_name in rng.sample(self.ref.TAGS, rng.randint(1, 2)):
            manual = rng.random() < 0.6
            emp = rng.choice(self.ref.EMPLOYEES)
            out.append({
                "tag_id": tag_id, "tag_name": tag_name, "tag_type": "manual" if manual else "auto",
                "tag_change_time": self.at(sec + rng.randint(30, 7200)),
                "tag_user_id": BASE["users"] + emp[0] % 1000 if manual else None,
                "tag_user_login": emp[3] if manual else None,
                "tag_employee_id": emp[0] if manual else None,
                "tag_employee_full_name": emp[1] if manual else None,
            })
        return out

    def sale(self, rng: random.Random, sec: int) -> tuple[str | None, float | None]:
        if rng.random() >= 0.12:
            return None, None
        return (self.at(sec + rng.randint(600, SALE_LOOKBACK_DAYS * DAY - 600)),
                round(rng.uniform(490, 185_000), 2))

    @staticmethod
    def attributes(rng: random.Random) -> list[str]:
        return sorted(rng.sample(V.ATTRIBUTES, rng.randint(0, 2)))

    def common(self, rng: random.Random, sec: int, ident: int, src: str, share: float) -> Record:
        s = self.pick_session(rng, sec, share)
        rec = self.attribution(rng, s)
        sale_date, sale_cost = self.sale(rng, sec)
        rec.update(
            id=ident, communication_id=BASE["comm:" + COMM_TYPE[src]] + (ident - BASE[src]),
            communication_type=COMM_TYPE[src], communication_number=rng.randint(1, 9),
            sale_date=sale_date, sale_cost=sale_cost, tags=self.tags(rng, sec),
            attributes=self.attributes(rng), _sec=sec, _src=src,
        )
        return rec

    # ---- record kinds ------------------------------------------------------------------------------
    def session(self, rng: random.Random, sec: int, idx: int) -> Record:
        k = int(self.w.visitor_pool * rng.random() ** 2)
        st = visitor_static(self.seed, k)
        camp = rng.choice(self.ref.CAMPAIGNS)
        site = rng.choice(self.ref.SITES)
        paid = camp[5] in ("advert", "display")
        q = rng.choice(V.SEARCH_QUERIES) if camp[5] in ("advert", "organic") else None
        ref = rng.choice(V.REFERRERS) if camp[5] != "direct" else None
        hits = []
        t = sec
        for _ in range(rng.randint(1, 6)):
            d = rng.randint(5, 400)
            hits.append({"hit_time": self.at(t), "hit_duration": str(d),
                         "hit_url": f"https://{site[1]}{rng.choice(V.PAGES)}"})
            t += d
        city = st["city"]
        visits = st["visits_base"] + rng.randint(0, 3)
        ident = BASE["visitor_sessions"] + self.day * STRIDE + idx
        rec: Record = {
            "date_time": self.at(sec), "id": BASE["visitor_sessions"] + self.day * STRIDE + idx,
            "ua_client_id": st["ua"],
            "gclid": f"Cj0KCQ{rng.getrandbits(96):024x}" if camp[3] == "google" else None,
            "yclid": str(rng.randrange(10**17, 10**18)) if camp[3] == "yandex" else None,
            "ef_id": None,
            "ymclid": str(rng.randrange(10**15, 10**16)) if camp[3] == "yandex" and rng.random() < 0.3 else None,
            "referrer_domain": ref, "referrer": f"https://{ref}/" if ref else None,
            "search_engine": rng.choice(V.SEARCH_ENGINES) if q else None, "search_query": q,
            "entrance_page": hits[0]["hit_url"], "exit_page": hits[-1]["hit_url"],
            "duration": t - sec, "channel": camp[5], "engine": camp[2],
            "campaign_id": camp[0], "campaign_name": camp[1], "site_id": site[0], "site_domain_name": site[1],
            "visitor_id": st["visitor_id"], "visitor_device": st["device"], "visitor_country": city[2],
            "visitor_city": city[0], "visitor_region": city[1], "visitor_ip_address": st["ip"],
            "visitor_type": "Вернувшийся" if visits > 1 else "Новый",
            "visitor_browser_name": st["browser"][0], "visitor_browser_version": st["browser"][1],
            "visitor_os_name": st["os"][0], "visitor_os_version": st["os"][1],
            "visitor_provider": st["provider"], "visitor_screen": st["screen"],
            "visitor_language": st["language"],
            "visitor_custom_properties": [dict(p) for p in st["custom"]],
            "utm_source": camp[3], "utm_medium": camp[4],
            "utm_term": rng.choice(V.UTM_TERMS) if paid else None,
            "utm_content": f"ad_{rng.randint(1, 40)}" if paid else None,
            "utm_campaign": rng.choice(V.UTM_CAMPAIGNS) if camp[3] else None,
            "openstat_ad": None, "openstat_campaign": None, "openstat_service": None,
            "openstat_source": None, "hits_count": len(hits), "hits": hits,
            "segments": [{"segment_name": n, "segment_id": i} for i, n in V.SEGMENTS if rng.random() < 0.25],
            "communications": [],
            "_sec": sec, "_person_id": st["person_id"], "_visits": visits,
            "_first_campaign": st["first_campaign"][:2],
        }
        # the public docs' fields: derived from the values above, no draws (the others stay as they were)
        traffic = V.TRAFFIC[camp[5]]
        term, content, utm_campaign = rec["utm_term"], rec["utm_content"], rec["utm_campaign"]
        ad = self.campaign_data(camp, ident, term, city) if paid else None
        rec.update({
            "ym_client_id": st["ym"], "integrated_campaign_data": ad,
            "cm_id": f"{camp[0]}_{ad['banner_id']}_{ad['keyword_id']}" if ad and camp[3] == "yandex" else None,
            "source_id": traffic[0], "source_name": traffic[1], "source_new": traffic[2],
            "channel_new": traffic[3], "channel_code": traffic[4],
            # what CoMagic settles the traffic as when it carries no UTM tags (communications' eq_utm_*)
            "_eq": (camp[3] or ref or "(direct)", camp[4] or ("organic" if q else "referral" if ref else "(none)"),
                    term or q, content, utm_campaign or camp[1], ref,
                    f"{camp[0] % 10_000}-{idx % 3}" if camp[3] == "google" and idx % 4 == 0 else None),
            "_traffic": traffic,
        })
        return rec

    @staticmethod
    def campaign_data(camp: tuple[Any, ...], ident: int, keyword: str | None, city: tuple[str, str, str]) -> Record:
        """``integrated_campaign_data`` of a session from a paid campaign (the ad system's own ids)."""
        banner = 40_000_000 + ident % 997
        group = 5_000_000 + ident % 37
        yandex = camp[3] == "yandex"
        return {
            "adv_system": camp[2], "ext_campaign_id": str(camp[0] - 5_000_000_000), "ext_campaign_name": camp[1],
            "keyword_id": str(30_000_000_000 + ident % 7919), "keyword": keyword, "banner_id": banner,
            "banner_name": f"Объявление {banner % 1000}", "group_id": group, "group_name": f"Группа {group % 100}",
            "auditory_id": 7_000 + ident % 5 if ident % 5 else None,
            "auditory_name": f"Аудитория {ident % 5}" if ident % 5 else None,
            "placement_name": "yandex.ru" if camp[5] == "advert" and yandex else "dzen.ru" if yandex else None,
            "yandex_placement_type": ("search" if camp[5] == "advert" else "network") if yandex else None,
            "campaign_type": "text" if camp[5] == "advert" else "display",
            "device_type": ("desktop", "mobile", "tablet")[ident % 3], "position_type": ("premium", "other")[ident % 2],
            "yandex_region_id": 213 if yandex else None, "yandex_region_name": city[0] if yandex else None,
            "yandex_region_type": "city" if yandex else None,
        }

    def call(self, rng: random.Random, sec: int, idx: int,
             ident: int) -> tuple[Record, list[Record], list[Record]]:
        rec = self.common(rng, sec, ident, "calls", 0.7)
        out = rng.random() < 0.15
        direction = "out" if out else "in"
        source = rng.choice(("callout", "sip", "callapi")) if out else rng.choice(
            ("va", "call_tracking", "dynamic_call_tracking", "dynamic_call_tracking", "sitephone", "callback"))
        st = visitor_static(self.seed, rec["visitor_id"] - BASE["visitors"]) if rec["visitor_id"] else None
        client = (st["phone"] if st and st["phone"] else None) or f"79{rng.randrange(10**9):09d}"
        vnum = rng.choice(self.ref.VIRTUAL_NUMBERS)
        scen = rng.choice(self.ref.SCENARIOS)
        leg_secs = self.d.legs[idx]
        lost = not out and rng.random() < 0.15
        if idx < LATE0:  # late records never change the day's earlier ones
            client = self.callback_number(sec, client, out=out, lost=lost, own=st is None)
        wait = rng.randint(2, 35)
        talk = 0 if lost else rng.randint(12, 900)
        legs: list[Record] = []
        fin: list[Record] = []
        employees: list[Record] = []
        known_contact = st is not None and st["person_id"] is not None and rng.random() < 0.7
        contact_id = BASE["contacts"] + (rec["visitor_id"] - BASE["visitors"]) if known_contact else None
        contact_name = st["name"] if known_contact and st else None
        call_records = [] if lost else [f"{rng.getrandbits(128):032x}"]
        for k, lsec in enumerate(leg_secs):
            emp = rng.choice(self.ref.EMPLOYEES)
            operator = k > 0 or out or len(leg_secs) == 1
            last = k == len(leg_secs) - 1
            talked = operator and last and not lost
            answered = operator and (talked or rng.random() < 0.3)
            dur = talk if talked else rng.randint(0, 40)
            leg_id = BASE["call_legs"] + self.day * STRIDE * LEG_SLOTS + idx * LEG_SLOTS + k
            failed = operator and not answered
            cause = V.RELEASE_CAUSES[0] if not failed else rng.choice(V.RELEASE_CAUSES[1:])
            calling, called = (emp[2], client) if out else (client, emp[2] if operator else vnum)
            legs.append({
                "id": leg_id, "call_session_id": ident,
                "call_records": list(call_records) if talked else [],
                "start_time": self.at(lsec), "connect_time": self.at(lsec + wait) if answered else None,
                "duration": dur, "total_duration": dur + wait, "virtual_phone_number": vnum,
                "calling_phone_number": calling, "called_phone_number": called, "direction": direction,
                "is_transfered": k > 0 and k < len(leg_secs) - 1, "is_operator": operator,
                "employee_id": emp[0] if operator else None,
                "employee_full_name": emp[1] if operator else None,
                "employee_phone_number": emp[2] if operator else None,
                "employee_rating": round(rng.uniform(3.0, 5.0), 1) if talked and rng.random() < 0.4 else None,
                "scenario_id": scen[0], "scenario_name": scen[1], "is_coach": False,
                "release_cause_code": cause[0], "release_cause_description": cause[1], "is_failed": failed,
                "is_talked": talked, "contact_id": contact_id, "contact_full_name": contact_name,
                "contact_phone_number": client,
            })
            finish = V.LEG_FINISH[0 if talked else 3 if not last else 2 if cause[0] == 17 else 1]
            step = min(k + 1 if operator else 1, len(V.SCENARIO_STEPS) - 1)
            group = V.GROUPS[ident % 2] if operator else (None, None)
            legs[-1].update(finish_reason=finish[0], finish_reason_description=finish[1],
                            action_id=scen[0] * 10 + step, action_name=V.SCENARIO_STEPS[step],
                            group_id=group[0], group_name=group[1])
            if operator:
                employees.append({"employee_id": emp[0], "employee_full_name": emp[1], "is_answered": answered,
                                  "is_talked": talked})
            charge_min = (dur + 59) // 60 if (out or operator) and dur else 0
            dtype = rng.choice(("mobile", "local", "national", "mobile"))
            cpm = {"mobile": 1.95, "local": 1.2, "national": 2.5, "international": 14.0}[dtype]
            total = round(charge_min * cpm, 2)
            bonus = round(total * 0.1, 2) if rng.random() < 0.1 else 0.0
            fin.append({
                "start_time": self.at(lsec), "direction": direction, "source": source, "call_session_id": ident,
                "leg_id": leg_id, "calling_phone_number": calling, "called_phone_number": called,
                "duration": dur, "chargeable_duration": charge_min * 60, "direction_type": dtype,
                "cost_per_minute": cpm, "total_charge": total, "bonuses_charge": bonus,
            })
        answered_emps = [e for e in employees if e["is_answered"]]
        talked_emps = [e for e in employees if e["is_talked"]]

        def emp_field(lst: list[Record], pos: int, key: str) -> Any:
            return lst[pos][key] if lst else None

        total_wait = wait * len(leg_secs)
        total_duration = (leg_secs[-1] - sec) + wait + talk
        api = source == "callapi"
        rec.update({
            "start_time": self.at(sec), "finish_time": self.at(sec + total_duration),
            "finish_reason": "success_finish" if not lost or rng.random() < 0.7 else "no_active_scenario",
            "direction": direction, "source": source, "is_lost": lost,
            "wait_duration": wait, "total_wait_duration": total_wait, "talk_duration": talk,
            "clean_talk_duration": max(0, talk - rng.randint(0, 8)) if talk else 0,
            "total_duration": total_duration, "postprocess_duration": rng.randint(0, 90) if talk else 0,
            "call_records": call_records,
            "voice_mail_records": [f"{rng.getrandbits(128):032x}"] if lost and rng.random() < 0.3 else [],
            "virtual_phone_number": vnum, "is_transfer": len(leg_secs) > 2, "employees": employees,
            "last_answered_employee_id": emp_field(answered_emps, -1, "employee_id"),
            "last_answered_employee_full_name": emp_field(answered_emps, -1, "employee_full_name"),
            "first_answered_employee_id": emp_field(answered_emps, 0, "employee_id"),
            "first_answered_employee_full_name": emp_field(answered_emps, 0, "employee_full_name"),
            "last_talked_employee_id": emp_field(talked_emps, -1, "employee_id"),
            "last_talked_employee_full_name": emp_field(talked_emps, -1, "employee_full_name"),
            "first_talked_employee_id": emp_field(talked_emps, 0, "employee_id"),
            "first_talked_employee_full_name": emp_field(talked_emps, 0, "employee_full_name"),
            "scenario_name": scen[1], "scenario_id": scen[0],
            "call_api_request_id": BASE["api_requests"] + self.day * STRIDE + LATE0 - 1 - idx if api else None,
            "call_api_external_id": f"crm-{rng.randrange(10**6):06d}" if api else None,
            "contact_id": contact_id, "contact_full_name": contact_name, "contact_phone_number": client,
        })
        # the public docs' fields: derived, no draws
        region = V.CPN_REGIONS[int(client[-3:]) % len(V.CPN_REGIONS)]
        operators = [leg for leg in legs if leg["is_operator"]]
        rec.update({
            "cpn_region_id": region[0], "cpn_region_name": region[1], "cpn_country_name": region[2],
            "cpn_country_id": region[3],
            "lost_call_processing_duration": 300 + ident % 3300 if lost and ident % 3 else None,
            "auto_call_campaign_name": "Обзвон: подтверждение замера" if source == "callout" else None,
            "last_answered_employee_rating": legs[-1]["employee_rating"],
            "operator_phone_number": operators[-1]["employee_phone_number"] if operators else None,
            "scenario_operations": scenario_operations(scen[0]),
            "ext_id": rec["call_api_external_id"],
            "properties": f'{{"crm_deal_id": {ident % 100_000}}}' if api else None,
        })
        return rec, legs, fin

    def callback_number(self, sec: int, client: str, *, out: bool, lost: bool, own: bool) -> str:
        """The number a call of the day (built in time order) dials or comes from, so that lost calls get
        called back: some the same day (within 24 hours), some two days later, most never.

        The first lost incoming call of a day with no visitor comes from the day's *recall number*, which the
        first outgoing call with no visitor two days later dials; the day's next outgoing calls with no
        visitor each call back the earliest lost incoming call of the day before them not yet called back.
        A number, never a draw: every other field keeps its value. ``own``: the call has no visitor (whose
        own phone number it would otherwise carry)."""
        if not out:
            if lost and own and not any(number == self.recall_number(self.day) for _, number in self.lost_today):
                client = self.recall_number(self.day)
            if lost:
                self.lost_today.append((sec, client))
            return client
        if not own:
            return client
        self.outgoing_today += 1
        if self.outgoing_today == 1:
            return self.recall_number(self.day - 2) if self.day >= 2 else client
        recall = self.recall_number(self.day)
        for k, (lost_sec, number) in enumerate(self.lost_today):
            if lost_sec < sec and number != recall:
                del self.lost_today[k]
                return number
        return client

    def recall_number(self, day: int) -> str:
        return f"79{random.Random(f'{self.seed}:recall:{day}').randrange(10**9):09d}"

    def chat(self, rng: random.Random, sec: int, idx: int, ident: int) -> tuple[Record, list[Record]]:
        rec = self.common(rng, sec, ident, "chats", 0.95)
        msecs = self.d.msgs[idx]
        r = rng.random()
        status = "succeed" if r < 0.75 else "lost" if r < 0.95 else "refused"
        initiator = rng.choice(("Посетитель", "Посетитель", "Оператор", "Автоприглашение"))
        emp = rng.choice(self.ref.EMPLOYEES)
        has_emp = status == "succeed"
        msgs: list[Record] = []
        emp_count = 0
        channel = V.CHAT_CHANNELS[ident % len(V.CHAT_CHANNELS)]
        group_chat = channel[1] == "telegram" and ident % 7 == 0
        visitor = rec["visitor_id"]
        for n, ms in enumerate(msecs):
            if n and ms == msecs[n - 1]:  # a twin: the same sender again in the same second
                msgs.append(self.twin(msgs[-1], idx, n))
                emp_count += msgs[-1]["source"] == "Оператор"
                continue
            if n == 0 and initiator == "Автоприглашение":
                source, text = "Автоприглашение", rng.choice(V.AUTO_INVITE_TEXTS)
            elif (n % 2 == 1) == (initiator == "Посетитель") and has_emp:
                source, text = "Оператор", rng.choice(V.CHAT_OPERATOR_TEXTS)
            else:
                source, text = "Посетитель", rng.choice(V.CHAT_VISITOR_TEXTS)
            by_emp = source == "Оператор"
            emp_count += by_emp
            msgs.append({"id": BASE["chat_messages"] + (self.day * STRIDE + idx) * MSG_SLOTS + n,
                         "chat_id": ident, "date_time": self.at(ms), "text": text, "source": source,
                         "employee_id": emp[0] if by_emp else None,
                         "employee_full_name": emp[1] if by_emp else None, "_n": n,
                         "is_group_chat": group_chat, "visitor_id": visitor, "resource": None})
        rec.update({
            "status": status, "initiator": initiator, "date_time": self.at(sec),
            "duration": msecs[-1] - sec + rng.randint(5, 120),
            "answer_time": rng.randint(3, 60) if has_emp else None, "messages_count": len(msgs),
            "is_transfer": has_emp and rng.random() < 0.05, "release_cause": rng.choice(V.CHAT_RELEASE),
            "employee_id": emp[0] if has_emp else None, "employee_full_name": emp[1] if has_emp else None,
            "employee_raiting": round(rng.uniform(1, 5), 1) if has_emp and rng.random() < 0.3 else None,
            "employee_messages_count": emp_count,
        })
        st = visitor_static(self.seed, visitor - BASE["visitors"]) if visitor else None
        messenger = channel[1] != "site"
        rec.update({
            "chat_ad_url": rec["communication_page_url"], "chat_channel_id": channel[0],
            "chat_channel_type": channel[1], "chat_channel_name": channel[2], "is_group_chat": group_chat,
            "chat_user_id": str(ident % 10**9) if messenger else None,
            "chat_username": f"user{ident % 10**6}" if messenger else None,
            "visitor_ids": [visitor] if visitor else [],
            "visitor_phone_number": st["phone"] if st else None,
            "visitor_profile_url": f"https://vk.com/id{ident % 10**8}" if channel[1] == "vk" else None,
            "ext_id": f"{channel[1]}-{ident % 10**8}" if messenger else None,
        })
        return rec, msgs

    def twin(self, first: Record, idx: int, n: int) -> Record:
        """A second message of the same sender in the same second: two files with no text (the first message
        becomes a file too), or the same text sent twice."""
        second = dict(first, id=first["id"] + 1, _n=n)
        if idx % 2 and first["source"] == "Посетитель":
            for k, msg in enumerate((first, second)):
                name, kind, mime, size = V.CHAT_FILES[(idx + k) % len(V.CHAT_FILES)]
                msg["text"] = None
                msg["resource"] = {"size": size, "type": kind, "file_url": f"https://files.comagic.ru/chat/"
                                   f"{msg['id']}/{name}", "file_name": name, "mime_type": mime}
        return second

    def goal(self, rng: random.Random, sec: int, ident: int) -> Record:
        rec = self.common(rng, sec, ident, "goals", 1.0)
        name = rng.choice(V.GOAL_NAMES)
        kind = V.GOAL_NAMES.index(name)
        rec.update(date_time=self.at(sec), name=name, type=V.GOAL_TYPES[kind], ext_id=str(31_337_000 + kind),
                   source=V.GOAL_SOURCES[ident % len(V.GOAL_SOURCES)])
        return rec

    def offline(self, rng: random.Random, sec: int, ident: int) -> Record:
        rec = self.common(rng, sec, ident, "offline_messages", 0.9)
        st = visitor_static(self.seed, rec["visitor_id"] - BASE["visitors"]) if rec["visitor_id"] else None
        r = rng.random()
        status = "processed" if r < 0.6 else "processing" if r < 0.8 else "not_processed"
        emp = rng.choice(self.ref.EMPLOYEES)
        group = rng.choice(self.ref.GROUPS)
        done = status != "not_processed"
        rec.update({
            "date_time": self.at(sec), "text": rng.choice(V.OFFLINE_TEXTS), "status": status,
            "process_time": self.at(sec + rng.randint(60, 6 * 3600)) if done else None,
            "form_type": rng.choice(("Стандартная", "Пользовательская")),
            "group_id": group[0], "group_name": group[1],
            "employee_id": emp[0] if done else None, "employee_full_name": emp[1] if done else None,
            "employee_answer_message": rng.choice(V.EMPLOYEE_ANSWERS) if status == "processed" else None,
            "employee_comment": "Клиент просил звонить после 18:00" if done and rng.random() < 0.2 else None,
            "visitor_phone_number": (st["phone"] if st else None) or f"79{rng.randrange(10**9):09d}",
            "visitor_email": st["email"] if st else None,
            "visitor_name": (st["name"] if st else None) or rng.choice(V.FEMALE_FIRST + V.MALE_FIRST),
        })
        rec.update({
            "is_agree_to_process_personal_data": ident % 10 != 0, "is_agree_to_mailing": ident % 3 == 0,
            "form_name": V.FORM_NAMES[rec["form_type"]], "ext_id": f"lead-{ident % 10**6}" if ident % 4 == 0 else None,
            "properties": f'{{"Город": "{rec["visitor_city"]}"}}' if rec["visitor_city"] else None,
        })
        return rec

    def api_request(self, rng: random.Random, sec: int, ident: int) -> Record:
        method, typ, mtype, comp = rng.choice(V.API_METHODS)
        ok = rng.random() < 0.9
        call_api = typ == "call_api"
        session = BASE["calls"] + self.day * STRIDE + rng.randrange(max(1, self.w.per_day["calls"]))
        req_id = rng.randrange(1, 10**6)
        ext = f"crm-{rng.randrange(10**6):06d}" if call_api else None
        raw = json.dumps({"jsonrpc": "2.0", "id": req_id, "method": method,
                          "params": {"access_token": "***"}}, ensure_ascii=False)
        return {
            "id": ident, "date_time": self.at(sec), "request_id": req_id, "type": typ, "component": comp,
            "ip_address": rng.choice(V.API_IPS), "method": method, "method_type": mtype,
            "result": "success" if ok else "error", "error_code": None if ok else "-32602",
            "error_mnemocode": None if ok else "invalid_parameter_value",
            "call_session_id": str(session) if call_api and ok else None, "external_id": ext, "raw": raw,
            "execution_time": rng.randint(8, 2500),
        }

    def communication(self, src_rec: Record, ctype: str) -> Record:
        rec = dict(src_rec)
        rec["id"] = src_rec["communication_id"]
        rec["communication_type"] = ctype
        rec["date_time"] = src_rec["start_time"] if ctype == "call" else src_rec["date_time"]
        return rec

    def sales(self, comms: Sequence[Record], by_src: dict[str, dict[int, Record]]) -> list[Record]:
        out = []
        for c in comms:
            if c["sale_date"] is None or c["sale_cost"] is None:
                continue
            st = visitor_static(self.seed, c["visitor_id"] - BASE["visitors"]) if c["visitor_id"] else None
            comm_day = c["date_time"][:10]
            sale_day = c["sale_date"][:10]
            days = (date.fromisoformat(sale_day) - date.fromisoformat(comm_day)).days
            rank = TYPE_RANK[c["communication_type"]]
            out.append({
                "id": BASE["sales"] + rank * 20_000_000_000 + (c["id"] - BASE["comm:" + c["communication_type"]]),
                "date_time": c["sale_date"], "days_before_sale": days,
                "communication_number": c["communication_number"], "transaction_value": c["sale_cost"],
                "comment": "Оплата по счёту" if c["sale_cost"] > 50_000 else None,
                "ua_client_id": c["ua_client_id"],
                "tag": [{"tag_id": t["tag_id"], "tag_name": t["tag_name"]} for t in c["tags"]],
                "site": {"site_id": c["site_id"], "site_domain_name": c["site_domain_name"]},
                "campaign": {"campaign_id": c["campaign_id"], "campaign_name": c["campaign_name"]},
                "visitor": {
                    "visitor_id": c["visitor_id"], "visitor_name": st["name"] if st else None,
                    "visitor_phone_number": st["phone"] if st else None,
                    "visitor_email": st["email"] if st else None, "person_id": c["person_id"],
                    "visitor_type": c["visitor_type"], "visitor_session_id": c["visitor_session_id"],
                    "visits_count": c["visits_count"], "visitor_first_campaign_id": c["visitor_first_campaign_id"],
                    "visitor_first_campaign_name": c["visitor_first_campaign_name"],
                    "visitor_city": c["visitor_city"], "visitor_region": c["visitor_region"],
                    "visitor_country": c["visitor_country"],
                },
                "communication": {"communication_id": c["id"], "communication_type": c["communication_type"],
                                  "communication_date_time": c["date_time"]},
            })
        return out

    def summary(self, fin: list[Record]) -> Record:
        rng = random.Random(f"{self.seed}:financial_summary:{self.day}")
        telecom = round(sum(f["total_charge"] for f in fin), 2)
        bonuses = round(sum(f["bonuses_charge"] for f in fin), 2)
        d = date.fromordinal(self.w.start_ord + self.day)
        fee = 4990.0 if d.day == 1 else 0.0
        extra = round(rng.choice((0.0, 0.0, 150.0, 320.5)), 2)
        one_off = 1500.0 if rng.random() < 0.03 else 0.0
        changes = round(-rng.uniform(0, 200), 2) if rng.random() < 0.05 else 0.0
        return {"date": d.isoformat(), "total_charge": round(fee + telecom + extra + one_off + changes, 2),
                "bonuses_charge": bonuses, "subscriber_fee": fee, "telecom_services": telecom,
                "additional_services": extra, "one_off_services": one_off, "changes": changes}
