"""End to end through Meltano: the tap against an in-process simulator, into PostgreSQL, DuckDB and CSV.

Every expectation comes from the simulator's ground truth (``Sandbox.truth``), never from the tap's output.
One Meltano project (a copy of meltano.yml whose tap is this checkout, see conftest.py) is installed once; each
test starts its own simulator and loads into its own schema, file or folder, with its own state id.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from tap_comagic.registry import STREAMS
from tap_comagic.sandbox import Sandbox, SandboxConfig
from tests.e2e_fixtures import ROOT, pg_dsn, run_meltano

pytestmark = pytest.mark.slow

ZONE = ZoneInfo("Europe/Moscow")  # the simulated account's time zone (SandboxConfig default)
UTC = dt.timezone.utc
START, DAYS = "2026-01-01", 21
END = "2026-01-21T23:59:59"  # the last second of the simulated data
# Late and changed records go into the last two days: inside the 3-day look-back of the second run.
RECENT_FROM, RECENT_TILL = "2026-01-20 00:00:00", "2026-01-21 23:59:59"
BY_NAME = {s.name: s for s in STREAMS}
DEFAULT_STREAMS = sorted(s.name for s in STREAMS if getattr(s, "selected_by_default", True))
NAIVE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
AWARE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


# ---- the project and the simulator -------------------------------------------------------------------

@pytest.fixture
def sim() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(seed=7, start=START, days=DAYS)) as sandbox:
        yield sandbox


def tap_env(sim: Sandbox, **extra: str) -> dict[str, str]:
    """Settings of the tap (environment `dev`: a real account, here the simulator) and a unique state id."""
    env = {
        "TAP_COMAGIC_API_URL": sim.url,
        "TAP_COMAGIC_ACCESS_TOKEN": sim.api_key,
        "TAP_COMAGIC_SANDBOX": "false",
        "TAP_COMAGIC_START_DATE": START,
        "TAP_COMAGIC_END_DATE": END,
        "TAP_COMAGIC_LOOKBACK_DAYS": "3",
        "TAP_COMAGIC_MAX_RETRIES": "2",
        "MELTANO_RUN_STATE_ID_SUFFIX": uuid.uuid4().hex[:12],
    }
    env.update(extra)
    return env


def pg_env(schema: str) -> dict[str, str]:
    url = pg_dsn().replace("postgresql://", "postgresql+psycopg://", 1)
    return {"TARGET_POSTGRES_SQLALCHEMY_URL": url, "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema}


# ---- ground truth ------------------------------------------------------------------------------------

def truth(sim: Sandbox, stream: str, customer_id: int | None = None, start: str = START,
          end: str = END) -> list[dict[str, Any]]:
    """What the stream should hold for [start, end] (a date and a date-time, in the account's time): the
    simulator's records, all fields; ``customer_id``: of that client of an agency simulator."""
    method = BY_NAME[stream].api_method
    till = end.replace("T", " ")
    of = {"customer_id": customer_id}
    if stream == "chat_messages":
        chat_ids = [c["id"] for c in sim.truth("get.chats_report", f"{start} 00:00:00", till, **of)]
        return sim.truth(method, chat_ids=chat_ids, **of) if chat_ids else []
    if stream == "financial_summary":
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end[:10])
        months = sorted({(first + dt.timedelta(days=i)).timetuple()[:2] for i in range((last - first).days + 1)})
        rows = [r for y, m in months for r in sim.truth(method, year=y, month=m, **of)]
        return [r for r in rows if start <= str(r["date"])[:10] <= end[:10]]
    if stream == "statuses":  # the deleted ones too, which get.statuses gives only when asked
        return sim.truth(method, **of) + sim.truth(method, is_deleted=True, **of)
    return sim.truth(method, f"{start} 00:00:00", till, **of)


def norm(value: Any, *, from_truth: bool = False) -> Any:
    """One comparable form for a value from the truth or from a database: instants in UTC, numbers as
    numbers, dates as ISO strings, JSON as Python."""
    if isinstance(value, dict):
        return {k: norm(v, from_truth=from_truth) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [norm(v, from_truth=from_truth) for v in value]
    if isinstance(value, str):
        if from_truth and NAIVE.match(value):
            return dt.datetime.fromisoformat(value).replace(tzinfo=ZONE).astimezone(UTC)
        if not from_truth and AWARE.match(value):
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        return value
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


# Known tap bugs, by (stream, field): the field differs from the truth only as described. compare() checks
# that it differs in exactly that way and nothing else, and the test ends as xfail naming the bug.
KNOWN_TAP_BUGS: dict[tuple[str, str], str] = {
    # Fixed in c1927b2, kept as an example of the form:
    # ("visitor_sessions", "hits"): "tap bug: visitor_sessions.hits[].hit_time emitted as naive account time",
}


def compare(stream: str, expected: list[dict[str, Any]], loaded: list[dict[str, Any]]) -> list[str]:
    """The loaded table equals the truth by primary key: same keys, no duplicates, same field values.

    Returns the known tap bugs (KNOWN_TAP_BUGS) seen, after checking that each is the only difference."""
    keys = tuple(BY_NAME[stream].primary_keys)
    fields = sorted({f for r in expected for f in r})
    missing = [f for f in fields if loaded and f not in loaded[0]]
    assert not missing, f"{stream}: columns missing from the loaded table: {missing}"

    def key(row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(json.dumps(row[k], default=str, sort_keys=True) for k in keys)

    want: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in (norm(r, from_truth=True) for r in expected):
        # two records under one key would be one row in the table: the key itself would lose a record
        assert key(row) not in want, f"{stream}: the truth has two rows with key {key(row)}"
        want[key(row)] = row
    got_rows = [{f: norm(r.get(f)) for f in fields} for r in loaded]
    counts = Counter(key(r) for r in got_rows)
    duplicates = [k for k, n in counts.items() if n > 1]
    assert not duplicates, f"{stream}: {len(duplicates)} primary keys loaded more than once, e.g. {duplicates[:3]}"
    got = {key(r): r for r in got_rows}
    assert sorted(set(want) - set(got))[:5] == [], f"{stream}: {len(set(want) - set(got))} rows missing"
    assert sorted(set(got) - set(want))[:5] == [], f"{stream}: {len(set(got) - set(want))} rows not in the truth"
    diffs = [(k, f, want[k].get(f), got[k].get(f)) for k in want for f in fields if want[k].get(f) != got[k].get(f)]
    known = [d for d in diffs if (stream, d[1]) in KNOWN_TAP_BUGS]
    diffs = [d for d in diffs if (stream, d[1]) not in KNOWN_TAP_BUGS]
    assert diffs[:5] == [], f"{stream}: {len(diffs)} field values differ (key, field, truth, loaded)"
    if known:
        raw = {key(norm(r, from_truth=True)): r for r in expected}
        # The known bug leaves the nested local times as the API sends them; everything else must match.
        wrong = [(k, f) for k, f, _, loaded_value in known if norm(raw[k][f]) != loaded_value]
        assert wrong[:5] == [], f"{stream}: known-bug fields differ beyond the known bug"
    return sorted({KNOWN_TAP_BUGS[(stream, d[1])] for d in known})


# ---- reading the targets -----------------------------------------------------------------------------

def pg_tables(schema: str) -> dict[str, list[dict[str, Any]]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(pg_dsn(), row_factory=dict_row) as con:
        names = [r["table_name"] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))]
        return {n: con.execute(f'SELECT * FROM "{schema}"."{n}"').fetchall() for n in names}


def pg_column_types(schema: str, table: str, kind: str = "data_type") -> dict[str, str]:
    import psycopg

    assert kind in ("data_type", "udt_name")
    with psycopg.connect(pg_dsn()) as con:
        rows = con.execute(f"SELECT column_name, {kind} FROM information_schema.columns "
                           "WHERE table_schema = %s AND table_name = %s", (schema, table)).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def duckdb_tables(path: Path, schema: str) -> dict[str, list[dict[str, Any]]]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema]).fetchall()]
        result = {}
        for name in names:
            cursor = con.execute(f'SELECT * FROM "{schema}"."{name}"')
            columns = [d[0] for d in cursor.description or []]
            fetched = cursor.fetchall()  # before the next execute(), which reuses the connection's result
            types = {r[0]: str(r[1]) for r in con.execute(f'DESCRIBE "{schema}"."{name}"').fetchall()}
            rows = []
            for values in fetched:
                row = dict(zip(columns, values, strict=True))
                for column, kind in types.items():
                    if kind == "JSON" and isinstance(row[column], str):
                        row[column] = json.loads(row[column])
                rows.append(row)
            result[name] = rows
        return result


def check_all(sim: Sandbox, tables: dict[str, list[dict[str, Any]]], streams: list[str]) -> set[str]:
    """Every stream's table equals the truth; returns the known tap bugs met (see KNOWN_TAP_BUGS)."""
    assert sorted(t for t in tables if t in BY_NAME) == streams
    bugs: set[str] = set()
    for stream in streams:
        expected = truth(sim, stream)
        assert expected, f"the simulator holds no {stream}: the test would prove nothing"
        bugs.update(compare(stream, expected, tables[stream]))
    return bugs


def end_with_known_bugs(bugs: set[str]) -> None:
    """Everything else passed: report the known bugs and limits as an expected failure (passes once fixed)."""
    if bugs:
        pytest.xfail("; ".join(sorted(bugs)))


def mutate(sim: Sandbox) -> None:
    """Records that arrive late and old records that change, all inside the next run's look-back."""
    for report in ("calls", "chats", "goals", "offline_messages", "visitor_sessions"):
        assert sim.add_late_records(3, report=report, date_from=RECENT_FROM, date_till=RECENT_TILL)
    assert len(sim.change_old_records(12, date_from=RECENT_FROM, date_till=RECENT_TILL)) == 12


# ---- the tests ---------------------------------------------------------------------------------------

def test_postgres_full_then_incremental(project: Path, sim: Sandbox) -> None:
    schema = f"e2e_pg_{uuid.uuid4().hex[:8]}"
    env = {**tap_env(sim), **pg_env(schema)}
    run_meltano(project, "--environment=dev", "run", "tap-comagic", "target-postgres", env=env)
    bugs = check_all(sim, pg_tables(schema), DEFAULT_STREAMS)

    types = pg_column_types(schema, "calls")
    assert types["id"] == "bigint"
    # target-postgres 0.8.1 maps format date-time to `timestamp` (no time zone): with use_copy off it stores
    # the instant in UTC, which compare() checked above for every row. timestamptz where a target offers it.
    assert types["start_time"] in ("timestamp without time zone", "timestamp with time zone")
    # Nested arrays: target-postgres makes an array of objects jsonb[] and an array of strings text[]
    # (their values were compared above).
    udt = pg_column_types(schema, "calls", "udt_name")
    assert udt["tags"] in ("jsonb", "_jsonb")
    assert udt["call_records"] in ("jsonb", "_text")
    assert pg_column_types(schema, "chat_messages")["chat_id"] == "bigint"

    mutate(sim)
    run_meltano(project, "--environment=dev", "run", "tap-comagic", "target-postgres", env=env)
    bugs |= check_all(sim, pg_tables(schema), DEFAULT_STREAMS)
    end_with_known_bugs(bugs)


def test_duckdb_full_then_incremental(project: Path, sim: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "loaded.duckdb"
    env = {**tap_env(sim), "TARGET_DUCKDB_FILEPATH": str(path), "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": "e2e"}
    run_meltano(project, "--environment=dev", "run", "tap-comagic", "target-duckdb", env=env)
    bugs = check_all(sim, duckdb_tables(path, "e2e"), DEFAULT_STREAMS)

    mutate(sim)
    run_meltano(project, "--environment=dev", "run", "tap-comagic", "target-duckdb", env=env)
    bugs |= check_all(sim, duckdb_tables(path, "e2e"), DEFAULT_STREAMS)
    check_joins_and_readme_query(sim, path, "e2e")
    end_with_known_bugs(bugs)


# report table, its id column (a JSON path into an array column for nested ids), reference table, its column
JOINS = [
    ("calls", "site_id", "sites", "id"), ("calls", "campaign_id", "campaigns", "id"),
    ("calls", "scenario_id", "scenarios", "id"), ("calls", "last_answered_employee_id", "employees", "id"),
    ("calls", "virtual_phone_number", "virtual_numbers", "virtual_phone_number"),
    ("calls", "employees:$[*].employee_id", "employees", "id"), ("calls", "tags:$[*].tag_id", "tags", "id"),
    ("call_legs", "employee_id", "employees", "id"), ("call_legs", "scenario_id", "scenarios", "id"),
    ("chats", "employee_id", "employees", "id"), ("chat_messages", "employee_id", "employees", "id"),
    ("offline_messages", "employee_id", "employees", "id"), ("goals", "campaign_id", "campaigns", "id"),
    ("communications", "tags:$[*].tag_employee_id", "employees", "id"),
]


def check_joins_and_readme_query(sim: Sandbox, path: Path, schema: str) -> None:
    """In the loaded database: every id of a report is a row of its reference table, and the README's first
    query gives the calls and total duration per day, site and campaign of the simulator's truth."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        for table, column, ref, ref_column in JOINS:
            if ":" in column:
                array, json_path = column.split(":")
                ids = (f"SELECT unnest(from_json(json_extract({array}, '{json_path}'), '[\"BIGINT\"]')) AS x "
                       f"FROM {schema}.{table}")
            else:
                ids = f"SELECT {column} AS x FROM {schema}.{table}"
            used, orphans = con.execute(
                f"SELECT count(x), count(x) FILTER (WHERE x NOT IN (SELECT {ref_column} FROM {schema}.{ref})) "
                f"FROM ({ids})").fetchone() or (0, 0)
            assert used > 0, f"{table}.{column}: no id to join"
            assert orphans == 0, f"{table}.{column}: {orphans} ids not in {ref}.{ref_column}"
        doc = (ROOT / "docs" / "analytics.md").read_text(encoding="utf-8")
        query = doc.split("<!-- demo-query:start -->", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
        got = con.execute(query.replace("comagic.", f"{schema}.")).fetchall()
    campaigns = {c["id"]: c["name"] for c in truth(sim, "campaigns")}
    sites = {s["id"]: s["name"] for s in truth(sim, "sites")}
    totals: dict[tuple[str, str, str], list[int]] = {}
    for call in truth(sim, "calls"):  # start_time: account-local "YYYY-MM-DD hh:mm:ss"
        entry = totals.setdefault((call["start_time"][:10], sites[call["site_id"]], campaigns[call["campaign_id"]]),
                                  [0, 0])
        entry[0] += 1
        entry[1] += call["total_duration"]
    assert [(str(day), site, campaign, int(n), int(seconds)) for day, site, campaign, n, seconds in got] == [
        (*k, *totals[k]) for k in sorted(totals)]


def test_elt_with_state_id_into_postgres(project: Path, sim: Sandbox) -> None:
    schema = f"e2e_elt_{uuid.uuid4().hex[:8]}"
    state_id = f"e2e-elt-{uuid.uuid4().hex[:8]}"
    streams = ["calls", "call_legs", "goals"]
    env = {**tap_env(sim), **pg_env(schema), "TAP_COMAGIC__SELECT": json.dumps([f"{s}.*" for s in streams])}
    run_meltano(project, "--environment=dev", "elt", "tap-comagic", "target-postgres", "--state-id", state_id,
                env=env)
    assert check_all(sim, pg_tables(schema), sorted(streams)) == set()
    state = json.loads(run_meltano(project, "--environment=dev", "state", "get", state_id, env=env).stdout)
    bookmarks = state["singer_state"]["bookmarks"]
    assert {"calls", "goals"} <= set(bookmarks)
    # one account: one partition per stream, named by the account's app_id (get.account)
    (app_id,) = {r["app_id"] for r in truth(sim, "account")}
    (calls,) = bookmarks["calls"]["partitions"]
    assert calls["context"] == {"customer_id": app_id}
    last_call = max(r["start_time"] for r in truth(sim, "calls"))
    bookmark = dt.datetime.fromisoformat(calls["replication_key_value"])
    assert bookmark == dt.datetime.fromisoformat(last_call).replace(tzinfo=ZONE)


def test_csv_file_target(project: Path, sim: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    streams = ["calls", "chats", "financial_summary", "offline_messages"]
    env = {**tap_env(sim), "TARGET_CSV_OUTPUT_PATH": str(out),
           "TAP_COMAGIC__SELECT": json.dumps([f"{s}.*" for s in streams])}
    run_meltano(project, "--environment=dev", "run", "tap-comagic", "target-csv", env=env)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.csv" for s in streams)
    for stream in streams:
        with (out / f"{stream}.csv").open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        keys = tuple(BY_NAME[stream].primary_keys)
        expected = truth(sim, stream)
        assert sorted(tuple(str(r[k]) for k in keys) for r in rows) == sorted(
            tuple(str(r[k]) for k in keys) for r in expected)


def test_stream_map_hashes_a_phone_and_keeps_one_site(project: Path, sim: Sandbox) -> None:
    import hashlib

    calls = truth(sim, "calls")
    site = Counter(c["site_id"] for c in calls).most_common(1)[0][0]
    assert len({c["site_id"] for c in calls}) > 1, "one site only: the filter would prove nothing"
    maps = {"calls": {"__filter__": f"site_id == {site}",
                      "contact_phone_number": "md5(contact_phone_number) if contact_phone_number else None"}}
    schema = f"e2e_map_{uuid.uuid4().hex[:8]}"
    env = {**tap_env(sim), **pg_env(schema), "TAP_COMAGIC__SELECT": json.dumps(["calls.*"]),
           "TAP_COMAGIC_STREAM_MAPS": json.dumps(maps)}
    run_meltano(project, "--environment=dev", "run", "tap-comagic", "target-postgres", env=env)
    expected = []
    for call in calls:
        if call["site_id"] != site:
            continue
        phone = call["contact_phone_number"]
        expected.append({**call, "contact_phone_number": hashlib.md5(phone.encode()).hexdigest() if phone else None})
    assert expected
    assert len(expected) < len(calls)
    assert compare("calls", expected, pg_tables(schema)["calls"]) == []


def test_meltano_yml_copy_is_the_repository_project(project: Path) -> None:
    copied = yaml.safe_load((project / "meltano.yml").read_text(encoding="utf-8"))
    original = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    copied["plugins"]["extractors"][0]["pip_url"] = original["plugins"]["extractors"][0]["pip_url"]
    assert copied == original


def test_the_quick_start_demo_job_loads_every_default_stream(project: Path) -> None:
    """The README's first command after `meltano install`: `meltano run demo` in the default environment (the
    tap starts its simulator) into output/demo.duckdb, then its row counts, which fail on an empty table."""
    import subprocess

    (project / "output").mkdir(exist_ok=True)
    run_meltano(project, "run", "demo")
    path = project / "output" / "demo.duckdb"
    python = project / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "python"
    counts = subprocess.run([str(python), "-m", "tools.demo_counts", str(path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=False)
    assert counts.returncode == 0, counts.stdout[-2000:] + counts.stderr[-2000:]
    loaded = {line.split()[0].split(".", 1)[1] for line in counts.stdout.splitlines() if line.strip()}
    assert set(DEFAULT_STREAMS) <= loaded, sorted(set(DEFAULT_STREAMS) - loaded)
