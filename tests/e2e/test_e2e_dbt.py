"""The analytics dbt project (transform/) end to end through Meltano: loaded by the tap, built by dbt.

Each mart must equal the issue's definitions computed in Python from the loaded raw tables (tests/e2e/marts.py,
written apart from the models), and the staging instants must be the simulator's truth in UTC with the day in
each account's own zone, whichever form (account offset or UTC) the date-times leave the tap in. The Meltano
project is the session's shared one (its plugins installed once).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from tap_comagic.sandbox import Sandbox, SandboxConfig, agency_demo
from tests.e2e import marts as M
from tests.e2e_fixtures import PG_DSN_ENV, ROOT, executable, meltano_env, pg_dsn, run_meltano

pytestmark = pytest.mark.slow

UTC = dt.timezone.utc
START, DAYS = "2026-01-01", 10
END = "2026-01-10T23:59:59"
# late and changed records, inside the next run's 3-day look-back
RECENT_FROM, RECENT_TILL = "2026-01-09 00:00:00", "2026-01-10 23:59:59"
STREAMS = ["account", "sites", "campaigns", "employees", "calls", "chats", "goals", "offline_messages",
           "campaign_daily_stat"]
DATE_TIME = re.compile(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]\d\d:\d\d)"')


@pytest.fixture
def sim() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(seed=11, start=START, days=DAYS)) as sandbox:
        yield sandbox


# ---- settings of the runs -------------------------------------------------------------------------------

def duckdb_env(path: Path, target: Path, source_schema: str = "comagic") -> dict[str, str]:
    """target-duckdb and dbt-duckdb on one file; dbt's run results under ``target``."""
    return {"TARGET_DUCKDB_FILEPATH": str(path), "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": source_schema,
            "DBT_DUCKDB_PATH": str(path), "DBT_DUCKDB_SOURCE_SCHEMA": source_schema,
            "DBT_DUCKDB_TARGET_PATH": str(target), "MELTANO_RUN_STATE_ID_SUFFIX": uuid.uuid4().hex[:12]}


def postgres_env(source_schema: str, marts_schema: str, target: Path) -> dict[str, str]:
    """target-postgres and dbt-postgres on the test database, each run in schemas of its own."""
    dsn = pg_dsn()
    url = urlsplit(dsn)
    return {"TARGET_POSTGRES_SQLALCHEMY_URL": dsn.replace("postgresql://", "postgresql+psycopg://", 1),
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": source_schema,
            "DBT_POSTGRES_HOST": url.hostname or "localhost", "DBT_POSTGRES_PORT": str(url.port or 5432),
            "DBT_POSTGRES_USER": url.username or "", "DBT_POSTGRES_PASSWORD": url.password or "",
            "DBT_POSTGRES_DBNAME": url.path.lstrip("/") or "postgres", "DBT_POSTGRES_SCHEMA": marts_schema,
            "DBT_POSTGRES_SOURCE_SCHEMA": source_schema, "DBT_POSTGRES_TARGET_PATH": str(target)}


def sim_env(sim: Sandbox) -> dict[str, str]:
    """The tap (environment dev) on the simulator, the streams the marts use."""
    return {"TAP_COMAGIC_API_URL": sim.url, "TAP_COMAGIC_ACCESS_TOKEN": sim.api_key,
            "TAP_COMAGIC_SANDBOX": "false", "TAP_COMAGIC_START_DATE": START, "TAP_COMAGIC_END_DATE": END,
            "TAP_COMAGIC_LOOKBACK_DAYS": "3", "TAP_COMAGIC_MAX_RETRIES": "2",
            "TAP_COMAGIC__SELECT": json.dumps([f"{s}.*" for s in STREAMS]),
            "MELTANO_RUN_STATE_ID_SUFFIX": uuid.uuid4().hex[:12]}


# ---- checks ---------------------------------------------------------------------------------------------

def check_instants(query: M.Query, schema: str, truth: Sandbox, customers: dict[int, int | None],
                   start: str = START, end: str = END) -> None:
    """Staging holds each call's and chat's instant in UTC and its day in the account's zone, as the
    simulator's truth gives them (account-local wall clock). ``customers``: customer_id -> the simulator's
    client id (None: its only account)."""
    for table, method, ident, field, column in (
            ("stg_comagic__calls", "get.calls_report", "call_id", "start_time", "started_at"),
            ("stg_comagic__chats", "get.chats_report", "chat_id", "date_time", "occurred_at")):
        rows = query(f'SELECT customer_id, {ident}, {column}, local_date FROM "{schema}_staging"."{table}"')
        got = {(r["customer_id"], r[ident]): (M.normal(r[column]), r["local_date"]) for r in rows}
        want = {}
        for cid, client in customers.items():
            (account,) = truth.truth("get.account", customer_id=client)
            zone = ZoneInfo(account["timezone"])
            for rec in truth.truth(method, f"{start} 00:00:00", end.replace("T", " "), customer_id=client):
                local = dt.datetime.fromisoformat(rec[field])
                want[(cid, rec["id"])] = (local.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None),
                                          local.date())
        assert got == want, f"{table}: {len(set(got.items()) ^ set(want.items()))} rows differ from the truth"


def check_meaningful(got: dict[str, dict[M.Key, M.Row]]) -> None:
    """The simulator gives every case the marts tell apart, so that the comparisons prove something."""
    lost = got["comagic_lost_calls"].values()
    kinds = Counter("within 24 h" if r["called_back"] else "later" if r["next_outgoing_call_at"] else "never"
                    for r in lost)
    assert min(kinds[k] for k in ("within 24 h", "later", "never")) > 0, kinds
    daily = got["comagic_marketing_daily"].values()
    assert any(r["cost"] and r["communications"] for r in daily), "no day with cost and communications"
    assert any(r["cost"] == 0 and r["communications"] for r in daily), "no day with communications, no cost"
    assert any(r["cost"] and not r["communications"] for r in daily), "no day with cost alone"
    assert any(r["answered_calls"] and r["chats"] for r in got["comagic_operator_daily"].values())


def settled(rows: dict[M.Key, M.Row], before: dt.date) -> dict[M.Key, M.Row]:
    """The rows of the days before ``before``, less the one column a later call may still change: a late
    outgoing call may dial an old lost call's number (its next call after, past the 24 hours)."""
    return {k: {c: v for c, v in r.items() if c != "next_outgoing_call_at"}
            for k, r in rows.items() if r["local_date"] < before}


def check_doc_queries(query: M.Query, marts_schema: str) -> None:
    """The query the README gives for each mart runs on the built marts and answers something."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- mart-queries:start -->", 1)[1].split("<!-- mart-queries:end -->", 1)[0]
    queries = [b.split("```", 1)[0] for b in section.split("```sql\n")[1:]]
    assert {m for m in M.MART_KEYS if any(f"analytics.{m}" in q for q in queries)} == set(M.MART_KEYS)
    for sql in queries:
        assert query(sql.replace("analytics.", f"{marts_schema}.")), sql


def build(project: Path, environment: str, loader: str, utility: str, env: dict[str, str]) -> None:
    run_meltano(project, f"--environment={environment}", "run", "tap-comagic", loader, f"{utility}:build", env=env)


# ---- the tests ------------------------------------------------------------------------------------------

def test_demo_environment_builds_the_marts_and_a_rerun_changes_nothing(project: Path, tmp_path: Path) -> None:
    path, target = tmp_path / "demo.duckdb", tmp_path / "target"
    # the demo as the quick start runs it, over its first two weeks (all four months take minutes)
    env = {**duckdb_env(path, target), "TAP_COMAGIC_END_DATE": "2026-01-14T23:59:59"}
    build(project, "demo", "target-duckdb", "dbt-duckdb", env)
    M.check_run_results(target)
    query = M.duckdb_query(path)
    assert "campaign_daily_stat" in M.tables_of(query, "comagic"), "the demo environment selects the costs"
    first = M.check_marts(query, "comagic", "analytics")
    check_meaningful(first)
    (app_id,) = {r["customer_id"] for r in query('SELECT customer_id FROM comagic.account')}
    check_instants(query, "analytics", Sandbox(), {app_id: None}, end="2026-01-14T23:59:59")
    check_doc_queries(query, "analytics")

    # the next run re-reads the last days (look-back) and rebuilds: the same data gives the same marts
    build(project, "demo", "target-duckdb", "dbt-duckdb", env)
    M.check_run_results(target)
    assert M.same_marts(M.marts(query, "analytics"), first) == []


def test_agency_environment_keeps_each_client_apart_in_its_own_zone(project: Path, tmp_path: Path) -> None:
    path, target = tmp_path / "agency.duckdb", tmp_path / "target"
    end = "2026-01-07T23:59:59"
    build(project, "agency", "target-duckdb", "dbt-duckdb", {**duckdb_env(path, target), "TAP_COMAGIC_END_DATE": end})
    M.check_run_results(target)
    query = M.duckdb_query(path)
    got = M.check_marts(query, "comagic", "analytics")
    clients = {cid: cid for cid in (5001, 5002)}  # agency_demo(): the clients the agent may read
    for mart, rows in got.items():
        assert {key[0] for key in rows} == set(clients), f"{mart}: accounts {sorted({key[0] for key in rows})}"
    check_instants(query, "analytics", Sandbox(agency_demo()), dict(clients), end=end)
    # the zones differ, and days counted in one client's zone for the other would differ: the check bites
    raw = M.raw_tables(query, "comagic")
    zones = {a["customer_id"]: a["timezone"] for a in raw["account"]}
    assert len(set(zones.values())) == 2, zones
    other = ZoneInfo(zones[5001])
    assert any(M.utc(c["start_time"]).replace(tzinfo=UTC).astimezone(other).date()
               != got["comagic_communications"][(5002, "call", c["communication_id"])]["local_date"]
               for c in raw["calls"] if c["customer_id"] == 5002)


def test_postgres_gives_the_marts_duckdb_gives_and_an_incremental_run_keeps_them(
        project: Path, sim: Sandbox, tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex[:8]
    source, marts_schema = f"dbt_src_{run_id}", f"dbt_marts_{run_id}"
    pg = {**sim_env(sim), **postgres_env(source, marts_schema, tmp_path / "pg-target")}
    build(project, "dev", "target-postgres", "dbt-postgres", pg)
    M.check_run_results(tmp_path / "pg-target")
    pg_query = M.postgres_query(pg_dsn())
    before = M.check_marts(pg_query, source, marts_schema)
    check_meaningful(before)
    check_instants(pg_query, marts_schema, sim, {sim.config.app_id: None})
    check_doc_queries(pg_query, marts_schema)

    path = tmp_path / "same.duckdb"
    build(project, "dev", "target-duckdb", "dbt-duckdb", {**sim_env(sim), **duckdb_env(path, tmp_path / "dk")})
    M.check_run_results(tmp_path / "dk")
    duck = M.check_marts(M.duckdb_query(path), "comagic", "analytics")
    assert M.same_marts(duck, before) == []  # the same answers, value by value

    # late records and changed ones inside the look-back: the marts follow the source, the rest stays
    for report in ("calls", "chats", "goals", "offline_messages"):
        assert sim.add_late_records(4, report=report, date_from=RECENT_FROM, date_till=RECENT_TILL)
    assert len(sim.change_old_records(8, date_from=RECENT_FROM, date_till=RECENT_TILL)) == 8
    build(project, "dev", "target-postgres", "dbt-postgres", pg)
    M.check_run_results(tmp_path / "pg-target")
    after = M.check_marts(pg_query, source, marts_schema)
    assert after != before
    check_instants(pg_query, marts_schema, sim, {sim.config.app_id: None})
    untouched = dt.date.fromisoformat(RECENT_FROM[:10]) - dt.timedelta(days=1)  # before any callback could move
    for mart in ("comagic_communications", "comagic_marketing_daily", "comagic_operator_daily",
                 "comagic_lost_calls"):
        assert settled(before[mart], untouched), f"{mart}: no row before {untouched}"
        assert settled(after[mart], untouched) == settled(before[mart], untouched), mart


def invoke(project: Path, *args: str, env: dict[str, str], stdin: Path | None = None,
           stdout: Path | None = None) -> None:
    """``meltano invoke ARGS``, reading and writing files of Singer messages (else its output is the log);
    fails the test with the end of the log on an error."""
    log = Path(f"{stdout or project / 'invoke'}.log")
    with open(stdin or "/dev/null", "rb") as src, open(stdout or log, "wb") as out, log.open("ab") as err:
        code = subprocess.run([executable("meltano"), *args], cwd=project, env=meltano_env(env), stdin=src,
                              stdout=out, stderr=err, timeout=900, check=False).returncode
    if code:
        pytest.fail(f"meltano {' '.join(args)} exited {code}:\n{log.read_text(errors='replace')[-6000:]}")


def in_zone(line: str, zone: dt.tzinfo) -> str:
    """A Singer message with every RFC 3339 date-time rewritten as the same instant in ``zone``: UTC as …Z,
    another zone with its offset (…+03:00), as a tap emitting that form writes it."""
    def convert(match: re.Match[str]) -> str:
        instant = dt.datetime.fromisoformat(match.group(1) + match.group(2).replace("Z", "+00:00")).astimezone(zone)
        text = instant.isoformat(timespec="microseconds" if match.group(1)[19:] else "seconds")
        return '"' + (text.replace("+00:00", "Z") if zone is UTC else text) + '"'
    return DATE_TIME.sub(convert, line)


def test_the_other_date_time_form_gives_the_same_instants_and_marts(project: Path, sim: Sandbox,
                                                                    tmp_path: Path) -> None:
    """The tap's date-times in the form the tap does not emit by default (UTC …Z where it writes the account's
    offset, the account's offset where it writes UTC): the same instants, days and marts, in DuckDB and
    (when the test has one) PostgreSQL."""
    env = {**sim_env(sim), **duckdb_env(tmp_path / "other.duckdb", tmp_path / "dk")}
    emitted, other = tmp_path / "emitted.jsonl", tmp_path / "other.jsonl"
    invoke(project, "--environment=dev", "invoke", "tap-comagic", stdout=emitted, env=env)
    lines = emitted.read_text(encoding="utf-8").splitlines()
    offsets = Counter(m.group(2) for line in lines for m in DATE_TIME.finditer(line))
    assert sum(offsets.values()) > 100, "the tap emitted no date-time to rewrite"
    utc_now = set(offsets) <= {"Z", "+00:00"}
    converted = [in_zone(line, ZoneInfo(sim.config.timezone) if utc_now else UTC) for line in lines]
    assert sum(a != b for a, b in zip(lines, converted, strict=True)) > 100
    other.write_text("".join(f"{line}\n" for line in converted), encoding="utf-8")

    def load_and_build(loader: str, env: dict[str, str], query: M.Query, source: str, marts_schema: str,
                       target: Path) -> dict[str, dict[M.Key, M.Row]]:
        invoke(project, "--environment=dev", "invoke", f"target-{loader}", stdin=other, env=env)
        invoke(project, "--environment=dev", "invoke", f"dbt-{loader}:build", env=env)
        M.check_run_results(target)
        got = M.check_marts(query, source, marts_schema)
        check_instants(query, marts_schema, sim, {sim.config.app_id: None})
        return got

    duck = load_and_build("duckdb", env, M.duckdb_query(tmp_path / "other.duckdb"), "comagic", "analytics",
                          tmp_path / "dk")
    check_meaningful(duck)
    if not os.environ.get(PG_DSN_ENV) and not os.environ.get("CI"):
        pytest.skip(f"DuckDB passed; PostgreSQL not tried: {PG_DSN_ENV} is not set")
    run_id = uuid.uuid4().hex[:8]
    source, marts_schema = f"dbt_other_{run_id}", f"dbt_other_marts_{run_id}"
    pg = {**env, **postgres_env(source, marts_schema, tmp_path / "pg")}
    assert M.same_marts(load_and_build("postgres", pg, M.postgres_query(pg_dsn()), source, marts_schema,
                                       tmp_path / "pg"), duck) == []


def test_in_zone_rewrites_the_instant_not_the_wall_clock() -> None:
    """The converter of the test above: the same instant in the zone asked; text that is no date-time untouched."""
    line = '{"start_time": "2026-01-01T00:00:00+03:00", "t": "2026-01-01T01:02:03.5-05:00", "n": "x+03:00"}'
    out: dict[str, Any] = json.loads(in_zone(line, UTC))
    assert out == {"start_time": "2025-12-31T21:00:00Z", "t": "2026-01-01T06:02:03.500000Z", "n": "x+03:00"}
    back: dict[str, Any] = json.loads(in_zone(json.dumps(out), ZoneInfo("Asia/Yekaterinburg")))
    assert back == {"start_time": "2026-01-01T02:00:00+05:00", "t": "2026-01-01T11:02:03.500000+05:00",
                    "n": "x+03:00"}
