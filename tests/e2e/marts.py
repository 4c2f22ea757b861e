"""The analytics marts as the issue defines them, computed in Python straight from the loaded raw tables,
and the readers and comparisons the dbt end-to-end tests use.

Nothing here reads the dbt project: the definitions are written again from the issue's table, so a model
that drifts from them fails the comparison.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
DEFAULT_ZONE = "Europe/Moscow"  # the tap's zone for an account whose get.account gives none
Row = dict[str, Any]
Key = tuple[Any, ...]
Query = Callable[[str], list[Row]]

# report table -> communication type, date field, employee field
REPORTS = {"calls": ("call", "start_time", "last_answered_employee_id"), "chats": ("chat", "date_time", "employee_id"),
           "goals": ("goal", "date_time", None), "offline_messages": ("offline_message", "date_time", "employee_id")}
RAW_COLUMNS = {
    "account": "customer_id, timezone",
    "sites": "customer_id, id, name",
    "campaigns": "customer_id, id, name",
    "employees": "customer_id, id, full_name",
    "calls": "customer_id, id, communication_id, start_time, direction, is_lost, contact_phone_number, site_id, "
             "campaign_id, last_answered_employee_id, talk_duration, wait_duration, sale_cost",
    "chats": "customer_id, id, communication_id, date_time, site_id, campaign_id, employee_id, sale_cost",
    "goals": "customer_id, id, communication_id, date_time, site_id, campaign_id, sale_cost",
    "offline_messages": "customer_id, id, communication_id, date_time, site_id, campaign_id, employee_id, sale_cost",
    "campaign_daily_stat": 'customer_id, "date", site_id, campaign_id, cost_sum',
}
MART_KEYS = {
    "comagic_communications": ("customer_id", "communication_type", "communication_id"),
    "comagic_marketing_daily": ("customer_id", "local_date", "site_id", "campaign_id"),
    "comagic_operator_daily": ("customer_id", "local_date", "employee_id"),
    "comagic_lost_calls": ("customer_id", "call_id"),
}


# ---- reading a database -------------------------------------------------------------------------------

def duckdb_query(path: Path) -> Query:
    """Run a query on a DuckDB file (read-only), rows as dicts."""
    import duckdb

    def run(sql: str) -> list[Row]:
        with duckdb.connect(str(path), read_only=True) as con:
            cursor = con.execute(sql)
            names = [d[0] for d in cursor.description or []]
            return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

    return run


def postgres_query(dsn: str) -> Query:
    """Run a query on PostgreSQL, rows as dicts."""
    import psycopg
    from psycopg.rows import dict_row

    def run(sql: str) -> list[Row]:
        with psycopg.connect(dsn, row_factory=dict_row) as con:
            return list(con.execute(sql).fetchall())

    return run


def tables_of(query: Query, schema: str) -> set[str]:
    return {r["table_name"] for r in query(
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'")}


def raw_tables(query: Query, schema: str) -> dict[str, list[Row]]:
    """The loaded tables the marts are made of (the columns the definitions use); campaign_daily_stat only
    when it was loaded."""
    present = tables_of(query, schema)
    return {t: query(f'SELECT {cols} FROM "{schema}"."{t}"') for t, cols in RAW_COLUMNS.items() if t in present}


def marts(query: Query, schema: str) -> dict[str, dict[Key, Row]]:
    """Each mart's rows by its key; fails on a key met twice."""
    out: dict[str, dict[Key, Row]] = {}
    for mart, key in MART_KEYS.items():
        rows = query(f'SELECT * FROM "{schema}"."{mart}"')
        by_key = {tuple(normal(r[k]) for k in key): {c: normal(v) for c, v in r.items()} for r in rows}
        assert len(by_key) == len(rows), f"{mart}: {len(rows) - len(by_key)} keys more than once"
        out[mart] = by_key
    return out


# ---- values -----------------------------------------------------------------------------------------

def normal(value: Any) -> Any:
    """One form for a value from either database: numbers as int or float, instants naive in UTC."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return value


def utc(value: dt.datetime) -> dt.datetime:
    """A loaded instant, naive in UTC (the loaders store a timestamp without time zone in UTC)."""
    return normal(value)  # type: ignore[no-any-return]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return bool(a == b)


def differences(mart: str, expected: dict[Key, Row], got: dict[Key, Row], limit: int = 5) -> list[str]:
    """What differs between the expected rows and the mart's (keys missing or extra, then values)."""
    out = [f"{mart}: missing {k}" for k in sorted(set(expected) - set(got), key=str)[:limit]]
    out += [f"{mart}: not expected {k}" for k in sorted(set(got) - set(expected), key=str)[:limit]]
    for key in sorted(set(expected) & set(got), key=str):
        for column, want in expected[key].items():
            if column not in got[key]:
                out.append(f"{mart}: no column {column}")
            elif not same(normal(want), got[key][column]):
                out.append(f"{mart} {key} {column}: expected {want!r}, mart has {got[key][column]!r}")
        if len(out) >= limit:
            break
    return out[:limit]


# ---- the definitions ----------------------------------------------------------------------------------

class Accounts:
    """Names and zones per account: the reference tables, by (customer_id, id)."""

    def __init__(self, raw: dict[str, list[Row]]) -> None:
        self.zones = {a["customer_id"]: ZoneInfo(a["timezone"] or DEFAULT_ZONE) for a in raw["account"]}
        self.names = {table: {(r["customer_id"], r["id"]): r[column] for r in raw[table]}
                      for table, column in (("sites", "name"), ("campaigns", "name"), ("employees", "full_name"))}

    def local_date(self, customer_id: int, instant: dt.datetime) -> dt.date:
        zone = self.zones.get(customer_id, ZoneInfo(DEFAULT_ZONE))
        return utc(instant).replace(tzinfo=UTC).astimezone(zone).date()

    def name(self, table: str, customer_id: int, ident: int | None) -> str | None:
        return None if ident is None else self.names[table].get((customer_id, ident))


def communications(raw: dict[str, list[Row]], accounts: Accounts) -> dict[Key, Row]:
    out: dict[Key, Row] = {}
    for table, (kind, date_field, employee_field) in REPORTS.items():
        for r in raw[table]:
            cid = r["customer_id"]
            employee = r[employee_field] if employee_field else None
            out[(cid, kind, r["communication_id"])] = {
                "record_id": r["id"], "occurred_at": utc(r[date_field]),
                "local_date": accounts.local_date(cid, r[date_field]),
                "site_id": r["site_id"], "site_name": accounts.name("sites", cid, r["site_id"]),
                "campaign_id": r["campaign_id"], "campaign_name": accounts.name("campaigns", cid, r["campaign_id"]),
                "employee_id": employee, "employee_name": accounts.name("employees", cid, employee),
                "is_lost": r["is_lost"] if table == "calls" else None, "sale_cost": r["sale_cost"]}
    return out


def marketing_daily(raw: dict[str, list[Row]], accounts: Accounts, comms: dict[Key, Row]) -> dict[Key, Row]:
    counts: dict[Key, Row] = defaultdict(lambda: dict.fromkeys(
        ("calls", "lost_calls", "chats", "goals", "offline_messages", "communications"), 0))
    for (cid, kind, _), c in comms.items():
        row = counts[(cid, c["local_date"], c["site_id"], c["campaign_id"])]
        row[{"call": "calls", "chat": "chats", "goal": "goals", "offline_message": "offline_messages"}[kind]] += 1
        row["lost_calls"] += 1 if kind == "call" and c["is_lost"] else 0
        row["communications"] += 1
    loaded = "campaign_daily_stat" in raw
    costs: dict[Key, float] = defaultdict(float)
    for r in raw.get("campaign_daily_stat", []):
        if r["cost_sum"] is not None:
            costs[(r["customer_id"], dt.date.fromisoformat(str(r["date"])[:10]), r["site_id"], r["campaign_id"])] += \
                float(r["cost_sum"])
    out: dict[Key, Row] = {}
    for key in set(counts) | set(costs):
        cid, _, site, campaign = key
        row = dict(counts[key])
        cost = costs.get(key, 0.0) if loaded else None
        row.update(cost=cost, site_name=accounts.name("sites", cid, site),
                   campaign_name=accounts.name("campaigns", cid, campaign),
                   cost_per_communication=cost / row["communications"] if cost and row["communications"] else None)
        out[key] = row
    return out


def operator_daily(raw: dict[str, list[Row]], accounts: Accounts) -> dict[Key, Row]:
    work: dict[Key, Row] = {}

    def row_of(cid: int, instant: dt.datetime, employee: int) -> Row:
        key = (cid, accounts.local_date(cid, instant), employee)
        return work.setdefault(key, {"answered_calls": 0, "talk_seconds": 0, "waits": [], "chats": 0,
                                     "offline_messages": 0,
                                     "employee_name": accounts.name("employees", cid, employee)})

    for c in raw["calls"]:
        if c["last_answered_employee_id"] is not None:
            row = row_of(c["customer_id"], c["start_time"], c["last_answered_employee_id"])
            row["answered_calls"] += 1
            row["talk_seconds"] += c["talk_duration"] or 0
            row["waits"].append(c["wait_duration"])
    for table in ("chats", "offline_messages"):
        for r in raw[table]:
            if r["employee_id"] is not None:
                row_of(r["customer_id"], r["date_time"], r["employee_id"])[table] += 1
    for row in work.values():
        waits = [w for w in row.pop("waits") if w is not None]
        row["avg_wait_seconds"] = sum(waits) / len(waits) if waits else None
    return work


def lost_calls(raw: dict[str, list[Row]], accounts: Accounts) -> dict[Key, Row]:
    dialled: dict[tuple[int, str], list[dt.datetime]] = defaultdict(list)
    for c in raw["calls"]:
        if c["direction"] == "out" and c["contact_phone_number"] is not None:
            dialled[(c["customer_id"], c["contact_phone_number"])].append(utc(c["start_time"]))
    out: dict[Key, Row] = {}
    for c in raw["calls"]:
        if not (c["is_lost"] and c["direction"] == "in"):
            continue
        start = utc(c["start_time"])
        after = sorted(t for t in dialled.get((c["customer_id"], c["contact_phone_number"]), []) if t > start)
        within = [t for t in after if t <= start + dt.timedelta(hours=24)]
        callback = within[0] if within else None
        out[(c["customer_id"], c["id"])] = {
            "communication_id": c["communication_id"], "occurred_at": start,
            "local_date": accounts.local_date(c["customer_id"], start),
            "contact_phone_number": c["contact_phone_number"], "site_id": c["site_id"],
            "campaign_id": c["campaign_id"], "called_back": callback is not None, "callback_at": callback,
            "minutes_to_callback": int((callback - start).total_seconds() // 60) if callback else None,
            "next_outgoing_call_at": after[0] if after else None}
    return out


def expected_marts(raw: dict[str, list[Row]]) -> dict[str, dict[Key, Row]]:
    """Every mart as the issue defines it, from the raw tables."""
    accounts = Accounts(raw)
    comms = communications(raw, accounts)
    return {"comagic_communications": comms, "comagic_marketing_daily": marketing_daily(raw, accounts, comms),
            "comagic_operator_daily": operator_daily(raw, accounts), "comagic_lost_calls": lost_calls(raw, accounts)}


def same_marts(a: dict[str, dict[Key, Row]], b: dict[str, dict[Key, Row]]) -> list[str]:
    """What differs between two sets of marts (numbers compared to a millionth)."""
    return [d for mart in MART_KEYS for d in differences(mart, a[mart], b[mart])]


def check_marts(query: Query, source_schema: str, marts_schema: str) -> dict[str, dict[Key, Row]]:
    """The marts equal their definitions computed from the loaded tables; returns the marts."""
    expected = expected_marts(raw_tables(query, source_schema))
    got = marts(query, marts_schema)
    diffs = [d for mart in MART_KEYS for d in differences(mart, expected[mart], got[mart])]
    assert diffs == [], "\n".join(diffs)
    return got


def check_run_results(target_path: Path) -> None:
    """dbt built every model and every test passed, none only warned (the simulator's data has no orphan id)."""
    results = json.loads((target_path / "run_results.json").read_text(encoding="utf-8"))["results"]
    tests = [r for r in results if r["unique_id"].startswith("test.")]
    assert len(tests) > 40, f"dbt ran {len(tests)} tests"
    bad = [(r["unique_id"], r["status"]) for r in results if r["status"] not in ("success", "pass")]
    assert bad == [], bad
