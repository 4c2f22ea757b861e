"""The instants every loader stores: the simulator's calls and chats through Meltano into each target the
project names (target-postgres by INSERT, COPY and the tap's BATCH files, pipelinewise-target-postgres,
target-duckdb, target-csv, target-jsonl), read back and compared with the simulator's truth, date-time field
by date-time field, row by row.

The account is in Moscow (+03:00), so a target that drops an offset is 3 hours off and fails here. The
project is installed once per session (conftest.py); each load gets its own schema, file or folder.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tap_comagic.sandbox import Sandbox, SandboxConfig
from tap_comagic.shapes import load_schema
from tests.e2e.test_e2e_meltano import ZONE, duckdb_tables, pg_env, pg_tables, tap_env, truth
from tests.e2e_fixtures import pg_dsn, run_meltano

pytestmark = pytest.mark.slow

UTC = dt.timezone.utc
START, DAYS = "2026-01-01", 3
END = "2026-01-03T23:59:59"
LOADED = ["calls", "chats"]
Tables = dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def sim() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(seed=11, start=START, days=DAYS)) as sandbox:
        yield sandbox


def datetime_fields(stream: str) -> list[str]:
    """The stream's top-level date-time fields, from its schema."""
    properties = load_schema(stream)[0]["properties"]
    return [name for name, p in properties.items() if p.get("format") == "date-time"]


def as_instant(value: Any) -> dt.datetime | None:
    """A stored date-time as an aware UTC instant: naive database values are UTC (what a `timestamp` column
    holds when the load is right), text carries its own offset."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert isinstance(value, dt.datetime), f"not a date-time: {value!r}"
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def truth_instants(sim: Sandbox, stream: str) -> dict[int, dict[str, dt.datetime | None]]:
    """id -> date-time field -> the instant, from the simulator's account-local wall times."""
    out = {}
    for row in truth(sim, stream, start=START, end=END):
        out[row["id"]] = {f: None if row.get(f) is None else
                          dt.datetime.fromisoformat(row[f]).replace(tzinfo=ZONE).astimezone(UTC)
                          for f in datetime_fields(stream)}
    return out


def check_instants(sim: Sandbox, tables: Tables) -> None:
    for stream in LOADED:
        want = truth_instants(sim, stream)
        assert want, f"the simulator holds no {stream}: the test would prove nothing"
        rows = tables[stream]
        got = {int(r["id"]): {f: as_instant(r.get(f)) for f in datetime_fields(stream)} for r in rows}
        assert len(got) == len(rows), f"{stream}: ids loaded twice"
        assert set(got) == set(want), f"{stream}: {len(set(want) ^ set(got))} ids differ"
        diffs = [(i, f, want[i][f], got[i][f]) for i in want for f in want[i] if want[i][f] != got[i][f]]
        assert diffs[:3] == [], f"{stream}: {len(diffs)} instants differ (id, field, truth, stored)"
        assert any(v is not None for r in want.values() for v in r.values())


# ---- the loads ---------------------------------------------------------------------------------------

def pipelinewise_env(schema: str) -> dict[str, str]:
    url = urlparse(pg_dsn())
    return {"TARGET_POSTGRES_PIPELINEWISE_HOST": url.hostname or "127.0.0.1",
            "TARGET_POSTGRES_PIPELINEWISE_PORT": str(url.port or 5432),
            "TARGET_POSTGRES_PIPELINEWISE_USER": url.username or "postgres",
            # the target requires a password; a trust-authenticated server ignores it
            "TARGET_POSTGRES_PIPELINEWISE_PASSWORD": url.password or "unused",
            "TARGET_POSTGRES_PIPELINEWISE_DBNAME": url.path.lstrip("/") or "postgres",
            "TARGET_POSTGRES_PIPELINEWISE_DEFAULT_TARGET_SCHEMA": schema}


def batch_env(folder: Path) -> dict[str, str]:
    """The tap writes BATCH messages: gzipped JSON Lines files under ``folder``."""
    config = {"encoding": {"format": "jsonl", "compression": "gzip"},
              "storage": {"root": folder.as_uri(), "prefix": "batch-"}, "batch_size": 500}
    return {"TAP_COMAGIC_BATCH_CONFIG": json.dumps(config)}


def load(project: Path, sim: Sandbox, loader: str, env: dict[str, str]) -> None:
    env = {**tap_env(sim, TAP_COMAGIC_START_DATE=START, TAP_COMAGIC_END_DATE=END,
                     TAP_COMAGIC__SELECT=json.dumps([f"{s}.*" for s in LOADED])), **env}
    run_meltano(project, "--environment=dev", "run", "tap-comagic", loader, env=env)


def postgres(loader: str, batch: bool = False) -> Callable[[Path, Sandbox, Path], Tables]:
    def run(project: Path, sim: Sandbox, tmp: Path) -> Tables:
        schema = f"e2e_at_{uuid.uuid4().hex[:8]}"
        env = {**pg_env(schema), **(batch_env(tmp / "batches") if batch else {})}
        if loader != "target-postgres":  # an inheriting plugin: its own names for the same settings
            prefix = loader.upper().replace("-", "_")
            env.update({k.replace("TARGET_POSTGRES_", f"{prefix}_"): v for k, v in pg_env(schema).items()})
        load(project, sim, loader, env)
        return pg_tables(schema)
    return run


def pipelinewise(project: Path, sim: Sandbox, tmp: Path) -> Tables:
    schema = f"e2e_pw_{uuid.uuid4().hex[:8]}"
    load(project, sim, "target-postgres-pipelinewise", pipelinewise_env(schema))
    return pg_tables(schema)


def duckdb(project: Path, sim: Sandbox, tmp: Path) -> Tables:
    path = tmp / "loaded.duckdb"
    load(project, sim, "target-duckdb", {"TARGET_DUCKDB_FILEPATH": str(path),
                                         "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": "e2e"})
    return duckdb_tables(path, "e2e")


def csv_files(project: Path, sim: Sandbox, tmp: Path) -> Tables:
    out = tmp / "csv"
    load(project, sim, "target-csv", {"TARGET_CSV_OUTPUT_PATH": str(out)})
    tables = {}
    for stream in LOADED:
        with (out / f"{stream}.csv").open(newline="", encoding="utf-8") as f:
            tables[stream] = list(csv.DictReader(f))
    return tables


def jsonl_files(project: Path, sim: Sandbox, tmp: Path) -> Tables:
    out = tmp / "jsonl"
    out.mkdir()
    load(project, sim, "target-jsonl", {"TARGET_JSONL_DESTINATION_PATH": str(out)})
    return {s: [json.loads(line) for line in (out / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()]
            for s in LOADED}


LOADS: dict[str, Callable[[Path, Sandbox, Path], Tables]] = {
    "postgres-insert": postgres("target-postgres"),
    "postgres-copy": postgres("target-postgres-copy"),
    "postgres-batch-insert": postgres("target-postgres", batch=True),
    "postgres-batch-copy": postgres("target-postgres-copy", batch=True),
    "pipelinewise-postgres": pipelinewise,
    "duckdb": duckdb,
    "csv": csv_files,
    "jsonl": jsonl_files,
}


@pytest.mark.parametrize("name", list(LOADS))
def test_every_target_stores_the_simulators_instants(project: Path, sim: Sandbox, tmp_path: Path, name: str) -> None:
    check_instants(sim, LOADS[name](project, sim, tmp_path))
