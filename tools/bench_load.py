"""Load benchmark: the same calls through each load path of the Meltano project, side by side in one run
(a script, not a test).

``python -m tools.bench_load --pg-dsn postgresql://user@127.0.0.1:5432/db [--calls 100000] [--project DIR]``

Starts the bundled simulator with ``--calls`` calls (10,000 a day), makes and installs a Meltano project
like the repository's (or reuses ``--project``), then, one after another, each from an empty schema or file
and with no state (``--full-refresh``), times ``meltano run tap-comagic LOADER`` from start to exit:

- INSERT: target-postgres as the `dev` environment has it (``use_copy: false``), RECORD messages;
- COPY: target-postgres-copy, RECORD messages;
- prod: the `prod` environment (the tap's BATCH files, gzipped JSON Lines, loaded by COPY);
- DuckDB: target-duckdb (the quick start's loader);
- the tap alone: ``meltano invoke tap-comagic`` to /dev/null.

Each run's peak memory is the high-water RSS (``VmHWM``) of its tap and its loader processes, sampled
from ``/proc`` while it runs. After each PostgreSQL load the whole ``calls`` table (every column but the
target's ``_sdc_`` ones, ordered by id) is hashed and compared with the INSERT load's; DuckDB's
(id, start_time) pairs with INSERT's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tap_comagic.sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parents[1]
START = "2026-01-01"
PER_DAY = 10_000
MELTANO = str(Path(sys.executable).with_name("meltano"))


@dataclass
class Result:
    name: str
    seconds: float
    rows: int | None = None
    digest: str | None = None
    pairs: str | None = None
    first: str | None = None
    peaks: dict[str, int] | None = None  # role ("tap", "loader") -> peak RSS in MB


class PeakMemory(threading.Thread):
    """The peak RSS of each role's processes under ``root`` (Linux ``/proc``), sampled until stopped. A
    process is the tap or the loader by its first two arguments (its interpreter and script, both under the
    plugin's own virtualenv); Meltano's own process names both plugins later in its arguments."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peaks: dict[str, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            for pid in descendants(self.root):
                role, kb = role_and_peak(pid)
                if role:
                    self.peaks[role] = max(self.peaks.get(role, 0), kb // 1024)


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def role_and_peak(pid: int) -> tuple[str, int]:
    try:
        head = b" ".join(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2]).decode(errors="replace")
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "", 0
    role = "tap" if "tap-comagic" in head else "loader" if "target-" in head else ""
    kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return role, kb


def make_project(path: Path) -> Path:
    text = (ROOT / "meltano.yml").read_text(encoding="utf-8").replace("pip_url: -e .\n", f"pip_url: -e {ROOT}\n")
    path.mkdir(parents=True, exist_ok=True)
    (path / "meltano.yml").write_text(text, encoding="utf-8")
    subprocess.run([MELTANO, "install"], cwd=path, env=base_env(), check=True, capture_output=True)
    return path


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_COMAGIC_", "TARGET_", "MELTANO_"))}
    env.update({"MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false", "MELTANO_DISABLE_TRACKING": "true", "NO_COLOR": "1"})
    return env


def timed(project: Path, args: list[str], env: dict[str, str], log: Path) -> tuple[float, dict[str, int]]:
    """Seconds from start to exit of ``meltano ARGS``, and the peak RSS (MB) of its tap and loader."""
    with log.open("w") as out:
        began = time.perf_counter()
        # `meltano invoke` writes the tap's messages to stdout: to /dev/null, its log to the file
        stdout = subprocess.DEVNULL if "invoke" in args else out
        process = subprocess.Popen([MELTANO, *args], cwd=project, env={**base_env(), **env}, stdout=stdout,
                                   stderr=out, stdin=subprocess.DEVNULL)
        sampler = PeakMemory(process.pid)
        sampler.start()
        code = process.wait()
        seconds = time.perf_counter() - began
        sampler.done.set()
        sampler.join()
    if code != 0:
        raise SystemExit(f"meltano {' '.join(args)} failed: see {log}")
    return seconds, sampler.peaks


def pg_fingerprint(dsn: str, schema: str) -> tuple[int, str, str, str]:
    """Rows, a hash of every row (but _sdc_ columns), a hash of (id, start_time) and the first start_time."""
    import psycopg

    with psycopg.connect(dsn) as con:
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'calls' "
            "ORDER BY column_name", (schema,)) if not r[0].startswith("_sdc_")]
        listed = ", ".join(f'"{c}"' for c in columns)
        rows = con.execute(f'SELECT {listed} FROM "{schema}".calls ORDER BY id').fetchall()
    whole, pairs = hashlib.sha256(), hashlib.sha256()
    at = columns.index("start_time")
    for row in rows:
        whole.update(repr(row).encode())
        pairs.update(f"{row[columns.index('id')]}|{row[at].isoformat()}\n".encode())
    first = min(r[at] for r in rows).isoformat(sep=" ") if rows else ""
    return len(rows), whole.hexdigest()[:12], pairs.hexdigest()[:12], first


def duckdb_pairs(path: Path, schema: str) -> tuple[int, str, str]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        kind = con.execute("SELECT data_type FROM information_schema.columns WHERE table_schema = ? "
                           "AND table_name = 'calls' AND column_name = 'start_time'", [schema]).fetchone()
        rows = con.execute(f'SELECT id, start_time FROM "{schema}".calls ORDER BY id').fetchall()
    pairs = hashlib.sha256()
    for id_, start in rows:
        if getattr(start, "tzinfo", None) is not None:  # TIMESTAMPTZ: as a UTC wall clock, like PostgreSQL's
            start = start.astimezone(dt.timezone.utc).replace(tzinfo=None)
        pairs.update(f"{id_}|{start.isoformat()}\n".encode())
    first = min(r[1] for r in rows)
    return len(rows), pairs.hexdigest()[:12], f"{first} ({kind[0] if kind else '?'})"


def machine() -> str:
    load = os.getloadavg()
    return (f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-dsn", required=True, help="a PostgreSQL URL whose database the loads may fill")
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--project", type=Path, help="an installed copy of the project (default: make one)")
    parser.add_argument("--skip", default="", help="comma-separated setups to leave out: insert,copy,prod,duckdb,tap")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    print(f"# bench_load: {args.calls:,} calls; {machine()}; {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
          flush=True)
    days = max(1, args.calls // PER_DAY)
    project = args.project or make_project(work / "project")
    url = args.pg_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    results: list[Result] = []
    with Sandbox(SandboxConfig(seed=1, start=START, days=days, calls_per_day=args.calls // days)) as sim:
        end = (dt.date.fromisoformat(START) + dt.timedelta(days=days - 1)).isoformat() + "T23:59:59"
        tap = {"TAP_COMAGIC_API_URL": sim.url, "TAP_COMAGIC_ACCESS_TOKEN": sim.api_key, "TAP_COMAGIC_SANDBOX": "false",
               "TAP_COMAGIC_START_DATE": START, "TAP_COMAGIC_END_DATE": end, "TAP_COMAGIC__SELECT": '["calls.*"]'}
        # a first run warms the simulator's pages, so that no setup pays for their making
        timed(project, ["--environment=dev", "invoke", "tap-comagic"], tap, work / "warm.log")

        def pg(name: str, environment: str, loader: str, extra: dict[str, Any] | None = None) -> None:
            schema = f"bench_{name}_{uuid.uuid4().hex[:6]}"
            env = {**tap, "TARGET_POSTGRES_SQLALCHEMY_URL": url, "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
                   "TARGET_POSTGRES_COPY_SQLALCHEMY_URL": url, "TARGET_POSTGRES_COPY_DEFAULT_TARGET_SCHEMA": schema,
                   **(extra or {})}
            seconds, peaks = timed(project, [f"--environment={environment}", "run", "--full-refresh", "tap-comagic",
                                             loader], env, work / f"{name}.log")
            rows, digest, pairs, first = pg_fingerprint(args.pg_dsn, schema)
            results.append(Result(name, seconds, rows, digest, pairs, first, peaks))
            print(f"{name}: {seconds:.1f} s, {rows} rows", flush=True)

        if "insert" not in skip:
            pg("insert", "dev", "target-postgres")
        if "copy" not in skip:
            pg("copy", "dev", "target-postgres-copy")
        if "prod" not in skip:
            pg("prod", "prod", "target-postgres")
            files = list((project / "output" / "batches").glob("comagic-*"))
            print(f"prod: {len(files)} batch files left under output/batches", flush=True)
            for f in files:
                f.unlink()
        if "duckdb" not in skip:
            path = work / "loaded.duckdb"  # not named like its schema: DuckDB would find two "bench"
            seconds, peaks = timed(project, ["--environment=dev", "run", "--full-refresh", "tap-comagic",
                                             "target-duckdb"], {**tap, "TARGET_DUCKDB_FILEPATH": str(path),
                                                                "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": "bench"},
                                   work / "duckdb.log")
            rows, pairs, first = duckdb_pairs(path, "bench")
            results.append(Result("duckdb", seconds, rows, None, pairs, first, peaks))
            print(f"duckdb: {seconds:.1f} s, {rows} rows", flush=True)
        if "tap" not in skip:
            seconds, peaks = timed(project, ["--environment=dev", "invoke", "tap-comagic"], tap, work / "tap.log")
            results.append(Result("tap alone (meltano invoke, to /dev/null)", seconds, peaks=peaks))
    report(results, args.calls)
    return 0


def report(results: list[Result], calls: int) -> None:
    base = next((r for r in results if r.name == "insert"), None)
    print(f"\n| setup ({calls:,} calls) | seconds | x INSERT's time | rows | same rows as INSERT "
          "| same instants as INSERT | first start_time stored | peak RSS tap / loader (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        ratio = f"{r.seconds / base.seconds:.2f}" if base else ""
        same = "" if r.digest is None or base is None else ("yes" if r.digest == base.digest else "NO")
        instants = "" if r.pairs is None or base is None else ("yes" if r.pairs == base.pairs else "NO")
        print(f"| {r.name} | {r.seconds:.1f} | {ratio} | {r.rows if r.rows is not None else ''} "
              f"| {same} | {instants} | {r.first or ''} | {peaks_of(r)} |")
    print(f"\n{machine()}")


def peaks_of(result: Result) -> str:
    peaks = result.peaks or {}
    return " / ".join(str(peaks[role]) if role in peaks else "-" for role in ("tap", "loader"))


if __name__ == "__main__":
    raise SystemExit(main())
