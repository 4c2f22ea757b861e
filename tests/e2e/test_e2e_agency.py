"""Agency mode end to end through Meltano: one agent token, several client accounts, one table per stream.

Every expectation comes from the simulator's ground truth per client (``Sandbox.truth(..., customer_id=)``),
never from the tap's output. The range is ten days, so that each run takes seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tap_comagic.sandbox import Sandbox, agency_demo
from tap_comagic.sandbox.reference import CALL_CENTER_METHODS, CALL_TRACKING_3_METHODS
from tests.e2e.test_e2e_meltano import BY_NAME, DEFAULT_STREAMS, compare, duckdb_tables, norm, truth
from tests.e2e_fixtures import ROOT, make_project, run_meltano, run_meltano_together
from tests.tap_harness import as_emitted, method_and_key, names_number

pytestmark = pytest.mark.slow

START, DAYS = "2026-01-01", 10
END = "2026-01-10T23:59:59"  # in each client's own time zone, as the tap reads `end_date` for each
READABLE = (5001, 5002)  # agency_demo(): the clients the agent may read
UNREACHABLE = 5003  # agency_demo(): answers ip_not_whitelisted to the agent
ARCHIVED = 5004  # agency_demo(): not listed by get.customers
UTC = dt.timezone.utc


def zone_of(sim: Sandbox, customer_id: int) -> ZoneInfo:
    """The client's time zone, as its get.account gives it."""
    (account,) = sim.truth("get.account", customer_id=customer_id)
    return ZoneInfo(account["timezone"])


def keys_of(stream: str, rows: list[dict[str, Any]], *, from_truth: bool = False) -> list[tuple[str, ...]]:
    """The rows' primary keys within one account (the documented key, without customer_id), sorted."""
    return sorted(tuple(str(norm(r[k], from_truth=from_truth)) for k in method_and_key(stream)[1]) for r in rows)


def by_customer(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["customer_id"], []).append(row)
    return out


def refuses(sim: Sandbox, customer_id: int, stream: str) -> bool:
    """The client's account lacks the component of the stream's method (agency_demo: 5002 has no Call
    tracking 3.0), so the tap skips the stream for it."""
    account = sim.agency.customers[customer_id].account
    method = BY_NAME[stream].api_method
    return (method in account.disabled_methods or (not account.call_center and method in CALL_CENTER_METHODS)
            or (not account.call_tracking_3 and method in CALL_TRACKING_3_METHODS))


def check_clients(sim: Sandbox, tables: dict[str, list[dict[str, Any]]], streams: list[str],
                  clients: tuple[int, ...]) -> None:
    """Each stream's one table holds exactly each client's truth (rows and values, its date-times in the
    client's zone) under its customer_id, no other account; none of a client whose account refuses it."""
    for stream in streams:
        loaded = by_customer(tables[stream])
        holding = tuple(c for c in clients if not refuses(sim, c, stream))
        assert sorted(loaded) == sorted(holding), f"{stream}: accounts loaded {sorted(loaded)}, not {holding}"
        for cid in holding:
            expected = truth(sim, stream, customer_id=cid, start=START, end=END)
            assert expected, f"client {cid} holds no {stream}: the test would prove nothing"
            assert keys_of(stream, loaded[cid]) == keys_of(stream, expected, from_truth=True), (
                f"{stream} of customer {cid}: {len(loaded[cid])} rows loaded, {len(expected)} in the truth")
            zone = zone_of(sim, cid)
            assert not compare(stream, [norm(as_emitted(r, zone=zone)) for r in expected], loaded[cid])


def check_calls_in_client_zones(sim: Sandbox, calls: list[dict[str, Any]], clients: tuple[int, ...]) -> None:
    """Each client's start times are instants in that client's own zone (5001 Moscow, 5002 Yekaterinburg)."""
    loaded = by_customer(calls)
    for cid in clients:
        zone = zone_of(sim, cid)
        want = {c["id"]: dt.datetime.fromisoformat(c["start_time"]).replace(tzinfo=zone).astimezone(UTC)
                for c in truth(sim, "calls", customer_id=cid, start=START, end=END)}
        assert {c["id"]: norm(c["start_time"]) for c in loaded[cid]} == want, f"calls of {cid}: start_time"


def primary_key(path: Path, schema: str, table: str) -> list[str]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT constraint_column_names FROM duckdb_constraints() WHERE schema_name = ? "
                           "AND table_name = ? AND constraint_type = 'PRIMARY KEY'", [schema, table]).fetchall()
    assert len(rows) == 1, f"{schema}.{table}: no primary key"
    return list(rows[0][0])


# ---- the agency environment of meltano.yml ------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_agency() -> Sandbox:
    """The agency the tap simulates with `sandbox: true` and `customers` set, for its truth (not started)."""
    return Sandbox(agency_demo())


def test_agency_environment_loads_every_client_into_one_table_per_stream(project: Path, tmp_path: Path,
                                                                         demo_agency: Sandbox) -> None:
    """`meltano --environment=agency run tap-comagic target-duckdb` as meltano.yml defines it (sandbox, every
    client of the agent), over ten days: each stream's table holds clients 5001 and 5002, each equal to its
    own truth (in its own zone) and keyed by (customer_id, ...); 5003 is a warning and a summary line, 5004
    nowhere."""
    sim = demo_agency
    path = tmp_path / "agency.duckdb"
    env = {"TAP_COMAGIC_START_DATE": START, "TAP_COMAGIC_END_DATE": END, "TARGET_DUCKDB_FILEPATH": str(path),
           "MELTANO_RUN_STATE_ID_SUFFIX": uuid.uuid4().hex[:12]}
    result = run_meltano(project, "--environment=agency", "run", "tap-comagic", "target-duckdb", env=env)
    tables = duckdb_tables(path, "comagic")
    # one table per stream, not one per client: the defaults and the costs the analytics marts need
    assert sorted(tables) == sorted([*DEFAULT_STREAMS, "campaign_daily_stat"])
    check_clients(sim, tables, DEFAULT_STREAMS, READABLE)
    check_calls_in_client_zones(sim, tables["calls"], READABLE)
    for stream in ("calls", "chat_messages", "financial_summary", "sites"):
        assert primary_key(path, "comagic", stream) == ["customer_id", *method_and_key(stream)[1]]

    log = result.stdout + result.stderr
    warnings = [line for line in log.splitlines() if "warning" in line and str(UNREACHABLE) in line]
    assert any("ip_not_whitelisted" in line for line in warnings), "no warning names the unreachable client"
    summary = log.split("Summary:", 1)[1] if "Summary:" in log else ""
    assert re.search(rf"\b{UNREACHABLE}\b.*ip_not_whitelisted", summary), "the summary does not list the skip"
    # as a number of its own: the digits also turn up inside timestamps and durations ("...27.995004Z")
    assert not names_number(log, ARCHIVED), "a log line names the archived client"
    check_readme_agency_query(sim, path)
    check_joins(path)


# (table, column, table it names a row of, that table's column): ids the reports and tables hold
JOINS = (("goals", "ext_id", "events", "ext_id"), ("goals", "name", "events", "goal_name"),
         ("chats", "chat_channel_id", "chat_channels", "id"), ("employees", "schedule_id", "schedules", "id"),
         ("calls", "source_id", "sources", "id"), ("sources", "channel_id", "source_channels", "id"),
         ("sources", "group_id", "source_groups", "id"))


def check_joins(path: Path) -> None:
    """In the loaded database, every id of each client names a row of that client's table (the source
    model: of the clients that have it)."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        for table, column, target, key in JOINS:
            joined, missing = con.execute(
                f"SELECT count(t.{key}), count(*) - count(t.{key}) FROM comagic.{table} r "
                f"LEFT JOIN comagic.{target} t ON t.customer_id = r.customer_id AND t.{key} = r.{column} "
                f"WHERE r.{column} IS NOT NULL AND r.customer_id IN (SELECT customer_id FROM comagic.{target})"
            ).fetchone() or (0, 0)
            assert joined > 0, f"{table}.{column} -> {target}.{key}: no id to join, the check would prove nothing"
            assert missing == 0, f"{table}.{column} -> {target}.{key}: {missing} ids name no row"


def check_readme_agency_query(sim: Sandbox, path: Path) -> None:
    """The agency query of docs/agencies.md (calls per client and campaign, joined on customer_id) gives the
    truth."""
    import duckdb

    doc = (ROOT / "docs" / "agencies.md").read_text(encoding="utf-8")
    query = doc.split("<!-- agency-query:start -->", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    with duckdb.connect(str(path), read_only=True) as con:
        got = con.execute(query).fetchall()
    totals: dict[tuple[str, str], list[int]] = {}
    for cid in READABLE:
        (account,) = sim.truth("get.account", customer_id=cid)
        campaigns = {c["id"]: c["name"] for c in truth(sim, "campaigns", customer_id=cid)}
        for call in truth(sim, "calls", customer_id=cid, start=START, end=END):
            entry = totals.setdefault((account["name"], campaigns[call["campaign_id"]]), [0, 0])
            entry[0] += 1
            entry[1] += call["total_duration"]
    assert [(client, campaign, int(n), int(seconds)) for client, campaign, n, seconds in got] == [
        (*k, *totals[k]) for k in sorted(totals)]


# ---- two shards side by side --------------------------------------------------------------------------

@pytest.fixture
def agency() -> Iterator[Sandbox]:
    with Sandbox(agency_demo(start=START, days=DAYS)) as sandbox:
        yield sandbox


SHARD_STREAMS = ["calls", "call_legs", "chats", "chat_messages", "financial_summary", "sites"]


def test_two_shards_side_by_side_keep_separate_correct_states(project: Path, tmp_path: Path,
                                                             agency: Sandbox) -> None:
    """Scaling out (docs/agencies.md): two Meltano jobs, shard A `customers=5001` and shard B
    `customers=5002`, started together with their own `--state-id-suffix` against the same simulated agency
    (one simulator in this process, reached as a real API: its URL and the agent's key). Each shard's stored
    state holds its own client's bookmarks only, at that client's newest record; each loads exactly its client's truth.

    As two workers of an orchestrator would, the shards run from two installations of the project sharing
    one system database (where Meltano keeps the states): concurrent runs of one extractor in ONE project
    directory collide on its catalog file there (meltano/meltano#8763; see docs/agencies.md, Scaling out).
    Each shard loads into a DuckDB file of its own (DuckDB takes one writer at a time; a warehouse takes both)."""
    sim = agency
    worker_b = make_project(tmp_path / "worker-b", "extractor", "tap-comagic")
    run_meltano(worker_b, "install", "loader", "target-duckdb")
    system_db = {"MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'system.db'}"}
    run_meltano(project, "--environment=dev", "state", "list", env=system_db)  # creates it, before two runs race
    run_id = uuid.uuid4().hex[:8]
    shards = {f"shard-a-{run_id}": (5001, project), f"shard-b-{run_id}": (5002, worker_b)}
    jobs = {}
    for suffix, (cid, where) in shards.items():
        env = {**system_db, "TAP_COMAGIC_API_URL": sim.url, "TAP_COMAGIC_ACCESS_TOKEN": sim.config.agent_api_keys[0],
               "TAP_COMAGIC_SANDBOX": "false", "TAP_COMAGIC_CUSTOMERS": str(cid),
               "TAP_COMAGIC_START_DATE": START, "TAP_COMAGIC_END_DATE": END,
               "TAP_COMAGIC__SELECT": json.dumps([f"{s}.*" for s in SHARD_STREAMS]),
               "TARGET_DUCKDB_FILEPATH": str(tmp_path / f"{suffix}.duckdb")}
        jobs[suffix] = (where, ["--environment=dev", "run", f"--state-id-suffix={suffix}", "tap-comagic",
                                "target-duckdb"], env)
    run_meltano_together(jobs, tmp_path / "logs")

    # both shards asked the simulator for their own client, and nothing else of the agency
    assert {r.customer_id for r in sim.log if r.customer_id is not None} == {5001, 5002}
    listed = run_meltano(project, "--environment=dev", "state", "list", env=system_db).stdout.split()
    for suffix, (cid, _) in shards.items():
        state_id = f"dev:tap-comagic-to-target-duckdb:{suffix}"
        assert state_id in listed
        stored = json.loads(run_meltano(project, "--environment=dev", "state", "get", state_id, env=system_db).stdout)
        check_shard_state(sim, stored["singer_state"], cid)
        tables = duckdb_tables(tmp_path / f"{suffix}.duckdb", "comagic")
        assert sorted(tables) == sorted(SHARD_STREAMS)
        check_clients(sim, tables, SHARD_STREAMS, (cid,))


def check_shard_state(sim: Sandbox, state: dict[str, Any], cid: int) -> None:
    """The state of a shard reading client ``cid``: one partition per stream, its client's, with the bookmark
    at the client's newest record of the range (an instant in the client's zone)."""
    bookmarks = state["bookmarks"]
    assert set(SHARD_STREAMS) <= set(bookmarks)
    partitions: dict[str, dict[str, Any]] = {}
    for stream, bookmark in bookmarks.items():
        contexts = [p["context"] for p in bookmark["partitions"]]
        if stream in BY_NAME:
            assert contexts == [{"customer_id": cid}], f"{stream}: partitions {contexts} in the state of {cid}"
            partitions[stream] = bookmark["partitions"][0]
        else:  # the agent's own lists (get.customers, get.customer_users): no client's
            assert all(c.get("customer_id") is None for c in contexts), f"{stream}: partitions {contexts}"
    zone = zone_of(sim, cid)
    for stream, field in (("calls", "start_time"), ("chats", "date_time")):
        newest = max(r[field] for r in truth(sim, stream, customer_id=cid, start=START, end=END))
        bookmark = dt.datetime.fromisoformat(partitions[stream]["replication_key_value"])
        assert bookmark == dt.datetime.fromisoformat(newest).replace(tzinfo=zone), f"{stream} bookmark of {cid}"
        assert bookmark.utcoffset() == dt.timedelta(0), f"{stream} bookmark of {cid}: not UTC (datetime_output)"
    newest_day = max(str(r["date"]) for r in truth(sim, "financial_summary", customer_id=cid, start=START, end=END))
    assert partitions["financial_summary"]["replication_key_value"] == newest_day
