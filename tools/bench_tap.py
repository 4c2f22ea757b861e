"""Benchmark of tap-comagic against the bundled simulator (a script, not a test).

``python -m tools.bench_tap [--quick] [--write]``

Starts the simulator, runs every measurement of docs/performance.md and prints one table (figure, floor,
PASS/FAIL) with the machine it ran on; ``--write`` also writes the table to ``tools/bench_results.md``.

1. Throughput: ``tap-comagic`` (a subprocess, stdout to /dev/null) syncing ``calls`` (every field,
   page_size 10000) against ``tools/bench_reference.py`` (plain ``requests`` + ``json``) replaying the very
   requests the tap sent and writing the same RECORD lines with the same date-time conversion. Both are
   timed from process start to exit over the same warmed simulator pages.
1b. From memory (``tools/bench_memory.py``): the same pages answered from memory by a loopback server, so
   that only the clients' CPU is timed: the tap at its defaults (page 10,000) against the plain loop and a
   msgspec loop, interleaved rounds (``--repeat``), each client's best and spread and the ratios per round.
2. API economy: requests per stream for a 200-day range against the minimum computed from the
   simulator's truth; call_legs / chat_messages requests against their parents; an incremental run
   with nothing new (the first run's final state) against the windows inside the look-back.
3. Memory: peak RSS (``os.wait4`` of the tap process) syncing 100k and 1M calls.
4. Latency hiding: ``latency=0.05``, chat_messages with max_parallel_requests 8 vs 1, same output.
5. Scale: seconds per 100k calls at 10k, 100k and 1M (wall, and tap CPU net of start-up).
6. Agency mode: an agent with 10 small clients read in one run (``customers: "all"``) against
   one run of each client's own token over the same data: the agent's own calls (get.customers,
   get.customer_users), get.account per client, each client's requests per stream (equal, and at the
   minimum), its records, and the throughput and overhead per client in the tap's own seconds (its
   summary line: without the interpreter and imports each process pays once).
7. Per-record cost in process: post_process, the RECORD message and the bookmark over 12,000 calls.

The big simulator keeps 10,000 calls and 1,000 chats a day; the economy measurement uses a second,
small simulator (default counts over 200 days), since 200 days of 10,000 calls would take an hour to
generate. Latency and the ``chat_ids`` switch are settings the simulator reads per request, so they
are changed in place on the big one.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from tap_comagic.sandbox import CustomerConfig, CustomerUser, LoggedRequest, Sandbox, SandboxConfig
from tests.tap_harness import OTHER_KEYS, REPORTS, discover, select

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "bench_results.md"
TAP = str(Path(sys.executable).parent / "tap-comagic")
START = "2026-01-01"
FMT = "%Y-%m-%d %H:%M:%S"
PER_DAY = 10_000  # calls a day in the big simulator
CHATS_PER_DAY = 1_000
PAGE = 10_000
T0 = time.perf_counter()
# The streams whose requests the economy and agency figures count, in the order of the table: the windowed
# reports, then chat_messages (stream -> API method).
COUNTED: dict[str, str] = {**{stream: method for stream, (method, _, _) in sorted(REPORTS.items())},
                           "chat_messages": OTHER_KEYS["chat_messages"][0]}


def say(text: str) -> None:
    print(f"[{time.perf_counter() - T0:6.0f} s] {text}", file=sys.stderr, flush=True)


def day_end(days: int) -> str:
    """The last second of the first ``days`` days of data."""
    last = dt.datetime.fromisoformat(START) + dt.timedelta(days=days) - dt.timedelta(seconds=1)
    return last.strftime(FMT)


# ---- running the tap ----------------------------------------------------------------------------------

@dataclass
class Proc:
    wall: float
    cpu: float  # user + system seconds of the process
    rss_mb: float  # peak resident set size
    stdout: str = ""  # when captured
    stderr: str = ""  # when captured

    @property
    def summary_seconds(self) -> float:
        """The seconds of the tap's end-of-run summary: from the tap's start-up (after the interpreter and
        the imports) to the end of its sync."""
        found = re.search(r"\stotal\s+[\d,]+\s+[\d,]+\s+([\d.]+)\s*$", self.stderr, re.MULTILINE)
        if found is None:
            raise RuntimeError("no summary line in the tap's log")
        return float(found.group(1))

    def messages(self) -> Iterable[dict[str, Any]]:
        for line in self.stdout.splitlines():
            if line.startswith("{"):
                yield json.loads(line)

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [m["record"] for m in self.messages() if m.get("type") == "RECORD" and m["stream"] == stream]

    @property
    def state(self) -> dict[str, Any]:
        states = [m["value"] for m in self.messages() if m.get("type") == "STATE"]
        return states[-1] if states else {}


# The measured process is started by a small launcher (``python -S``): a process forked straight from
# this one (gigabytes of simulator data) would report this process's size as its peak RSS, since Linux
# carries the high-water mark of the pre-exec memory over ``exec``.
LAUNCHER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - started
use = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as fh:
    json.dump({"code": code, "wall": wall, "cpu": use.ru_utime + use.ru_stime, "rss_kb": use.ru_maxrss}, fh)
"""


def run(cmd: list[str], capture: bool = False) -> Proc:
    """Run a process to its end: wall clock from its start to its exit, its CPU time and peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".json") as report:
        sink: Any = out if capture else subprocess.DEVNULL
        subprocess.run([sys.executable, "-S", "-c", LAUNCHER, report.name, *cmd], stdout=sink, stderr=err,
                       check=False)
        result = json.loads(Path(report.name).read_text() or "{}")
        if result.get("code") != 0:
            err.seek(0)
            tail = err.read().decode("utf-8", "replace")[-3000:]
            raise RuntimeError(f"{' '.join(cmd[:3])} ... exited {result.get('code')}:\n{tail}")
        text = log = ""
        if capture:
            out.seek(0)
            text = out.read().decode("utf-8")
            err.seek(0)
            log = err.read().decode("utf-8", "replace")
    return Proc(result["wall"], result["cpu"], result["rss_kb"] / 1024, text, log)


class Tap:
    """tap-comagic bound to one simulator, its catalog discovered once."""

    def __init__(self, sim: Sandbox, tmp: Path) -> None:
        self.sim = sim
        self.tmp = tmp
        self.catalog = discover(self.config(START, day_end(1)))
        self._n = 0

    def config(self, start: str, end: str, **extra: Any) -> dict[str, Any]:
        return {"api_url": self.sim.url, "access_token": self.sim.api_key, "start_date": start,
                "end_date": end, "page_size": PAGE, "window_days": 10, "lookback_days": 3,
                **extra}

    def _file(self, name: str, content: Any) -> str:
        self._n += 1
        path = self.tmp / f"{self._n}-{name}.json"
        path.write_text(json.dumps(content))
        return str(path)

    def command(self, config: dict[str, Any], streams: set[str], state: dict[str, Any] | None = None) -> list[str]:
        catalog = select(copy.deepcopy(self.catalog), streams)
        cmd = [TAP, "--config", self._file("config", config), "--catalog", self._file("catalog", catalog)]
        if state is not None:
            cmd += ["--state", self._file("state", state)]
        return cmd

    def sync(self, config: dict[str, Any], streams: set[str], *, state: dict[str, Any] | None = None,
             capture: bool = False) -> Proc:
        return run(self.command(config, streams, state), capture=capture)


# ---- the table ------------------------------------------------------------------------------------------

@dataclass
class Table:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, what: str, figure: str, floor: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        self.rows.append((what, figure, floor, verdict))

    def render(self) -> str:
        lines = ["| Measurement | Figure | Floor | Result |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in self.rows]
        return "\n".join(lines)

    @property
    def failed(self) -> list[str]:
        return [a for a, _, _, d in self.rows if d == "FAIL"]


def load_now() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f} rec/s"


# ---- 1. throughput ------------------------------------------------------------------------------------

def throughput(tap: Tap, table: Table, days: int, repeat: int) -> None:
    sim = tap.sim
    n_expected = days * PER_DAY
    cfg1 = tap.config(START, day_end(days), max_parallel_requests=1)
    say(f"throughput: warm pass ({n_expected:,} calls; the simulator generates {days} days)")
    first = len(sim.log)
    warm = tap.sync(cfg1, {"calls"}, capture=True)
    n = len(warm.records("calls"))
    if n != n_expected:
        raise RuntimeError(f"the tap emitted {n} calls, expected {n_expected}")
    sent = [{"method": e.method, "params": e.params} for e in sim.log[first:] if e.method == "get.calls_report"]
    requests_file = tap.tmp / "reference-requests.json"
    requests_file.write_text(json.dumps(sent))
    ref_cmd = [sys.executable, "-m", "tools.bench_reference", "--url", sim.url, "--key", sim.api_key,
               "--requests", str(requests_file), "--stream", "calls"]
    tap1_cmd = tap.command(cfg1, {"calls"})
    tapd_cmd = tap.command(tap.config(START, day_end(days)), {"calls"})
    procs: dict[str, list[Proc]] = {"tap1": [], "ref": [], "tapd": []}
    for i in range(repeat):  # interleaved, so that a busy moment of the machine hits all three alike
        say(f"throughput: timed round {i + 1}/{repeat}")
        procs["tap1"].append(run(tap1_cmd))
        procs["ref"].append(run(ref_cmd))
        procs["tapd"].append(run(tapd_cmd))
    tap1, ref, tapd = (statistics.median(p.wall for p in procs[k]) for k in ("tap1", "ref", "tapd"))
    cpu1, cpur, cpud = (statistics.median(p.cpu for p in procs[k]) for k in ("tap1", "ref", "tapd"))
    how = f"{n:,} calls, all fields, {len(sent)} requests, median of {repeat}"
    table.add(f"1. Throughput, reference loop (requests + json), {how}",
              f"{rate(n, ref)} ({ref:.2f} s wall, {cpur:.2f} s CPU)")
    table.add("1. Throughput, tap, max_parallel_requests 1", f"{rate(n, tap1)} ({tap1:.2f} s wall, {cpu1:.2f} s CPU)")
    table.add("1. Throughput ratio tap / reference (max_parallel_requests 1)",
              f"{ref / tap1:.2f} (CPU: {cpur / cpu1:.2f})", ">= 1.0", ref / tap1 >= 1.0)
    table.add("1. Throughput, tap, default max_parallel_requests (4)",
              f"{rate(n, tapd)} ({tapd:.2f} s wall, {cpud:.2f} s CPU), ratio {ref / tapd:.2f}", ">= 1.0",
              ref / tapd >= 1.0)


# ---- 1b. from memory: the client's own CPU ----------------------------------------------------------

def from_memory(tap: Tap, table: Table, days: int, repeat: int, baseline: str = "") -> None:
    """The tap at its defaults against the plain loops over pages served from memory (tools/bench_memory)."""
    from tools.bench_memory import MemoryServer, Runs, ratios, reference_command, summary

    sim = tap.sim
    n_expected = days * PER_DAY
    with MemoryServer(sim.url) as mem:
        # the tap's defaults but the page size (as the issue measures): windows, parallel requests, ...
        cfg = {"api_url": mem.url, "access_token": sim.api_key, "start_date": START, "end_date": day_end(days),
               "page_size": PAGE}
        say(f"from memory: warm pass ({n_expected:,} calls through the server to the simulator)")
        warm = tap.sync(cfg, {"calls"}, capture=True)
        n = len(warm.records("calls"))
        if n != n_expected:
            raise RuntimeError(f"the tap emitted {n} calls, expected {n_expected}")
        sent = [c for c in mem.calls if c["method"] == "get.calls_report"]
        requests_file = tap.tmp / "memory-requests.json"
        requests_file.write_text(json.dumps(sent))
        commands = {"tap": tap.command(cfg, {"calls"}),
                    "json": reference_command(mem.url, sim.api_key, requests_file, msgspec=False),
                    "msgspec": reference_command(mem.url, sim.api_key, requests_file, msgspec=True)}
        if baseline:  # another checkout of the tap (its package folder's parent), for a before/after
            commands["baseline"] = ["env", f"PYTHONPATH={baseline}", sys.executable, "-m", "tap_comagic",
                                    *commands["tap"][1:]]
        mem.frozen = True
        runs = {name: Runs() for name in commands}
        for i in range(repeat):  # interleaved, so that a busy moment of the machine hits all three alike
            say(f"from memory: timed round {i + 1}/{repeat} (load {load_now()})")
            for name, cmd in commands.items():
                proc = run(cmd)
                runs[name].walls.append(proc.wall)
                runs[name].cpus.append(proc.cpu)
                runs[name].peaks_mb.append(proc.rss_mb)
        if mem.missed:
            raise RuntimeError(f"from memory: {len(mem.missed)} requests were not in memory, e.g. "
                               f"{mem.missed[0][:300]}; in memory e.g. {next(iter(mem.cache))[:300]}")
    how = (f"{n:,} calls, all fields, page {PAGE:,}, {len(sent)} pages ({mem.counts.cached_bytes / 1e6:.0f} MB) "
           f"served from memory, best of {repeat}")
    table.add(f"1b. From memory ({how}): plain loop, requests + json", runs["json"].describe(n))
    table.add("1b. From memory: plain loop, msgspec decode + encode (the ceiling)", runs["msgspec"].describe(n))
    table.add("1b. From memory: tap, defaults", runs["tap"].describe(n))
    if baseline:
        before = runs["baseline"]
        table.add(f"1b. From memory: the tap of {baseline}, defaults", before.describe(n))
        table.add("1b. From memory: this tap / that one, each round (wall; CPU seconds)",
                  f"{summary(ratios(runs['tap'], before))}; {summary(ratios(runs['tap'], before, cpu=True))}")
    plain = ratios(runs["tap"], runs["json"])
    ceiling = ratios(runs["tap"], runs["msgspec"])
    best = runs["json"].best / runs["tap"].best
    table.add("1b. From memory: ratio tap / plain json loop, each round (wall)", summary(plain) +
              f"; of the bests {best:.2f}", ">= 1.5 every round", min(plain) >= 1.5)
    table.add("1b. From memory: share of the msgspec loop, each round (wall)", summary(ceiling) +
              f"; of the bests {runs['msgspec'].best / runs['tap'].best:.2f}", "goal 0.8")
    table.add("1b. From memory: msgspec loop / plain json loop, each round (wall)",
              summary(ratios(runs["msgspec"], runs["json"])))
    plain_cpu = ratios(runs["tap"], runs["json"], cpu=True)
    table.add("1b. From memory: ratio tap / plain json loop, each round (CPU seconds)", summary(plain_cpu),
              ">= 1.5 every round", min(plain_cpu) >= 1.5)
    table.add("1b. From memory: share of the msgspec loop, each round (CPU seconds)",
              summary(ratios(runs["tap"], runs["msgspec"], cpu=True)), "goal 0.8")


# ---- 2. API economy -----------------------------------------------------------------------------------

ECON_DAYS, ECON_WINDOW, ECON_PAGE, LOOKBACK = 200, 30, 500, 3


def windows(start: dt.datetime, end: dt.datetime, days: int) -> list[tuple[str, str]]:
    out, cur, step = [], start, dt.timedelta(days=days)
    while cur < end:
        nxt = min(cur + step, end)
        out.append((cur.strftime(FMT), nxt.strftime(FMT)))
        cur = nxt
    return out


def pages(rows: int) -> int:
    return max(1, math.ceil(rows / ECON_PAGE))


def minimum(sim: Sandbox, stream: str, wins: list[tuple[str, str]], customer_id: int | None = None) -> int:
    """Fewest requests that read ``stream`` over these windows: one per page, at least one per window
    (``customer_id``: in that agency client's data)."""
    if stream == "chat_messages":
        total, previous_ids = 0, set()
        for date_from, date_till in wins:
            chats = sim.truth("get.chats_report", date_from, date_till, customer_id=customer_id)
            ids = [c["id"] for c in chats if c["id"] not in previous_ids or c["date_time"] != date_from]
            previous_ids = {c["id"] for c in chats if c["date_time"] == date_till}
            for i in range(0, len(ids), 1000):  # the tap's chat_ids batch
                batch = ids[i:i + 1000]
                total += pages(len(sim.truth("get.chat_messages_report", customer_id=customer_id, chat_ids=batch)))
        return total
    return sum(pages(len(sim.truth(COUNTED[stream], a, b, customer_id=customer_id))) for a, b in wins)


def economy(tmp: Path, table: Table) -> None:
    say(f"economy: a small simulator, {ECON_DAYS} days, window {ECON_WINDOW} days, page {ECON_PAGE}")
    with Sandbox(SandboxConfig(seed=7, start=START, days=ECON_DAYS)) as sim:
        tap = Tap(sim, tmp)
        end = day_end(ECON_DAYS)
        cfg = {**tap.config(START, end), "window_days": ECON_WINDOW, "page_size": ECON_PAGE,
               "lookback_days": LOOKBACK}
        streams = set(COUNTED)
        first = tap.sync(cfg, streams, capture=True)
        log1 = Counter(e.method for e in sim.log if e.outcome == "ok")
        bad = [e for e in sim.log if e.outcome != "ok"]
        if bad:
            raise RuntimeError(f"economy: {len(bad)} failed requests, e.g. {bad[0]}")
        n1 = len(sim.log)
        say("economy: incremental run with the first run's state")
        tap.sync(cfg, streams, state=first.state)
        log2 = Counter(e.method for e in sim.log[n1:])
        all_wins = windows(dt.datetime.fromisoformat(START), dt.datetime.fromisoformat(end), ECON_WINDOW)
        bookmarks = first.state.get("bookmarks", {})

        def lookback_windows(stream: str) -> list[tuple[str, str]]:
            owner = {"call_legs": "calls", "chat_messages": "chats"}.get(stream, stream)
            bookmark = bookmarks[owner]
            # kept per account (one partition here: the run read one account)
            (bookmark,) = bookmark.get("partitions", [bookmark])
            value = bookmark["replication_key_value"]
            resume = dt.datetime.fromisoformat(value).replace(tzinfo=None) - dt.timedelta(days=LOOKBACK)
            return windows(max(resume, dt.datetime.fromisoformat(START)), dt.datetime.fromisoformat(end),
                           ECON_WINDOW)

        parents = {"call_legs": ("calls", first.records("calls")), "chat_messages": ("chats", first.records("chats"))}
        sum1 = sum2 = min1_total = min2_total = 0
        per_stream: list[str] = []
        ok1 = ok2 = True
        for stream, method in COUNTED.items():
            m1 = minimum(sim, stream, all_wins)
            lb = lookback_windows(stream)
            m2 = minimum(sim, stream, lb)
            sum1, sum2 = sum1 + log1[method], sum2 + log2[method]
            min1_total, min2_total = min1_total + m1, min2_total + m2
            ok1 &= log1[method] <= m1
            ok2 &= log2[method] <= m2
            per_stream.append(f"{stream} {log1[method]}/{m1}")
            if stream in parents:
                parent, recs = parents[stream]
                table.add(f"2. {stream} requests vs parents ({len(recs):,} {parent})",
                          f"{log1[method]} requests for {len(recs):,} {parent}; minimum {m1}",
                          "= minimum (pages + windows), not per parent", log1[method] <= m1)
        table.add(f"2. Requests, {ECON_DAYS}-day range, window {ECON_WINDOW} d, page {ECON_PAGE} "
                  f"(tap/minimum per stream: {', '.join(per_stream)})", f"{sum1} requests; minimum {min1_total}",
                  "<= minimum (pages + windows)", ok1)
        table.add(f"2. Incremental run, nothing new, look-back {LOOKBACK} d "
                  f"({len(lookback_windows('calls'))} window(s) per stream)",
                  f"{sum2} requests; minimum {min2_total}", "<= windows (and their pages) in the look-back", ok2)
        table.add("2. get.account, read once per run for the account's id and time zone (not counted above)",
                  f"{log1['get.account']} in the first run, {log2['get.account']} in the incremental run", "1 per run",
                  log1["get.account"] == log2["get.account"] == 1)


# ---- 3 + 5. memory and scale ---------------------------------------------------------------------------

def memory_and_scale(tap: Tap, table: Table, sizes: list[int]) -> None:
    say("scale: start-up baseline (a 10-second range)")
    base_runs = [tap.sync(tap.config(START + " 00:00:00", START + " 00:00:10"), {"calls"}) for _ in range(3)]
    base_wall = statistics.median(p.wall for p in base_runs)
    base_cpu = statistics.median(p.cpu for p in base_runs)
    table.add("5. Tap start-up + one request (baseline subtracted below)",
              f"{base_wall:.2f} s wall, {base_cpu:.2f} s CPU")
    rss: dict[int, float] = {}
    net_cpu: dict[int, float] = {}
    for size in sizes:
        days = size // PER_DAY
        say(f"scale/memory: {size:,} calls ({days} days)" + (" — the simulator generates most of them"
                                                              if days > 20 else ""))
        proc = tap.sync(tap.config(START, day_end(days)), {"calls"})
        rss[size] = proc.rss_mb
        per = 100_000 / size
        net_cpu[size] = (proc.cpu - base_cpu) * per
        note = " (wall includes the simulator generating days 21-100 as it serves them)" if days > 20 else ""
        table.add(f"5. Scale, {size:,} calls, all fields, default parallelism{note}",
                  f"{proc.wall:.1f} s wall: {proc.wall * per:.2f} s/100k wall, "
                  f"{(proc.wall - base_wall) * per:.2f} s/100k net; tap CPU {net_cpu[size]:.2f} s/100k net")
        if size >= 100_000:
            table.add(f"3. Peak RSS, {size:,} calls, all fields, page 10,000", f"{proc.rss_mb:.0f} MB",
                      "< 400 MB", proc.rss_mb < 400)
    big = [s for s in sizes if s >= 100_000]
    if len(big) >= 2:
        small, large = big[0], big[-1]
        ratio = rss[large] / rss[small]
        table.add(f"3. Peak RSS {large:,} / {small:,}", f"{ratio:.2f}x", "<= 1.2x", ratio <= 1.2)
        spread = max(net_cpu[s] for s in big) / min(net_cpu[s] for s in big)
        table.add("5. Scale: spread of tap CPU s/100k (net) over sizes >= 100k", f"{spread:.2f}x",
                  "<= 1.3x (flat)", spread <= 1.3)


# ---- 4. latency hiding ---------------------------------------------------------------------------------

def latency(tap: Tap, table: Table, days: int, per_chat_hours: int) -> None:
    sim = tap.sim
    cfg = tap.config(START, day_end(days))
    # Untimed, without latency: the simulator encodes each record once per field set on first serve,
    # which must not fall on whichever timed run comes first.
    tap.sync(cfg, {"chat_messages"})
    sim.config.latency = 0.05
    try:
        say(f"latency: chat_messages of {days * CHATS_PER_DAY:,} chats (chat_ids batches), parallel 8 vs 1")
        first = len(sim.log)
        p8 = tap.sync({**cfg, "max_parallel_requests": 8}, {"chat_messages"}, capture=True)
        n_req = sum(1 for e in sim.log[first:] if e.method in ("get.chat_messages_report", "get.chats_report"))
        p1 = tap.sync({**cfg, "max_parallel_requests": 1}, {"chat_messages"}, capture=True)
        same = sorted_records(p8, "chat_messages") == sorted_records(p1, "chat_messages")
        n = len(p8.records("chat_messages"))
        table.add(f"4. Latency 0.05 s, chat_messages of {days * CHATS_PER_DAY:,} chats in chat_ids batches "
                  f"({n:,} messages, {n_req} requests), parallel 8 vs 1",
                  f"{p8.wall:.1f} s vs {p1.wall:.1f} s: {p1.wall / p8.wall:.1f}x; output identical: {same}",
                  ">= 3x, identical", p1.wall / p8.wall >= 3 and same)
        sim.config.chat_ids_supported = False
        end = (dt.datetime.fromisoformat(START) + dt.timedelta(hours=per_chat_hours)).strftime(FMT)
        cfg = tap.config(START, end)
        chats = len(sim.truth("get.chats_report", START + " 00:00:00", end))
        say(f"latency: one chat per request ({chats:,} chats), parallel 8 vs 1")
        p8 = tap.sync({**cfg, "max_parallel_requests": 8}, {"chat_messages"}, capture=True)
        p1 = tap.sync({**cfg, "max_parallel_requests": 1}, {"chat_messages"}, capture=True)
        same = sorted_records(p8, "chat_messages") == sorted_records(p1, "chat_messages")
        table.add(f"4. Latency 0.05 s, chat_messages one chat per request (chat_ids_supported=False), "
                  f"{chats:,} chats ({per_chat_hours} h; 20,000 would take 17 min at parallel 1), parallel 8 vs 1",
                  f"{p8.wall:.1f} s vs {p1.wall:.1f} s: {p1.wall / p8.wall:.1f}x; output identical: {same}",
                  ">= 3x, identical", p1.wall / p8.wall >= 3 and same)
    finally:
        sim.config.latency = 0.0
        sim.config.chat_ids_supported = True


def sorted_records(proc: Proc, stream: str) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in proc.records(stream))


# ---- 6. agency mode ------------------------------------------------------------------------------------

AGENT_KEY = "bench-agent-key"
AGENCY_DAYS, AGENCY_WINDOW = 20, 10  # page: ECON_PAGE, so that the bigger windows take several pages
AGENCY_STREAMS = set(COUNTED) | {"account"}
AGENCY_ZONES = ("Europe/Moscow", "Asia/Yekaterinburg", "Europe/Samara", "Asia/Novosibirsk")


def client_key(cid: int) -> str:
    return f"bench-client-{cid}-key"


def agency_config(clients: int) -> SandboxConfig:
    """An agent with ``clients`` small clients, each with its own data (seed, sizes, time zone) and one user."""
    customers = []
    for i in range(clients):
        cid = 7001 + i
        calls = 20 + 10 * (i % 5)
        account = SandboxConfig(seed=100 + i, start=START, days=AGENCY_DAYS, calls_per_day=calls,
                                chats_per_day=max(1, calls // 4), timezone=AGENCY_ZONES[i % len(AGENCY_ZONES)],
                                api_keys=(client_key(cid),), users={})
        customers.append(CustomerConfig(id=cid, name=f"Client {cid}", account=account,
                                        users=(CustomerUser(id=80_001 + i, login=f"agent_{cid}", name=f"API {cid}"),)))
    # the agent's own (configured) account is never read: one day of little data
    return SandboxConfig(seed=99, start=START, days=1, calls_per_day=1, customers=tuple(customers),
                         agent_api_keys=(AGENT_KEY,))


def requests_by_account(entries: Iterable[LoggedRequest]) -> dict[int | None, Counter[str]]:
    """account (None: the agent's own calls) -> method -> requests."""
    out: dict[int | None, Counter[str]] = {}
    for e in entries:
        if e.outcome != "ok":
            raise RuntimeError(f"agency: a failed request: {e}")
        out.setdefault(e.customer_id, Counter())[str(e.method)] += 1
    return out


def records_by_account(proc: Proc) -> dict[int, Counter[str]]:
    """customer_id -> stream -> records."""
    out: dict[int, Counter[str]] = {}
    for m in proc.messages():
        if m.get("type") == "RECORD":
            out.setdefault(m["record"]["customer_id"], Counter())[m["stream"]] += 1
    return out


def agency(tmp: Path, table: Table, clients: int, repeat: int) -> None:
    """One agent run (`customers: "all"`) against one single-account run per client (the client's own
    token) over the same data: requests per client and stream, records, seconds."""
    say(f"agency: an agent with {clients} clients, {AGENCY_DAYS} days each, window {AGENCY_WINDOW} d, page {ECON_PAGE}")
    with Sandbox(agency_config(clients)) as sim:
        tap = Tap(sim, tmp)
        ids = [c.id for c in sim.config.customers]
        end = day_end(AGENCY_DAYS)
        base = {**tap.config(START, end), "window_days": AGENCY_WINDOW, "page_size": ECON_PAGE}
        agent_cfg = {**base, "access_token": AGENT_KEY, "customers": "all"}

        def single_cfg(cid: int, **extra: Any) -> dict[str, Any]:
            return {**base, "access_token": client_key(cid), **extra}

        def agency_run() -> tuple[Proc, dict[int | None, Counter[str]]]:
            first = len(sim.log)
            proc = tap.sync(agent_cfg, AGENCY_STREAMS, capture=True)
            return proc, requests_by_account(sim.log[first:])

        def single_run(cid: int) -> tuple[Proc, Counter[str]]:
            first = len(sim.log)
            proc = tap.sync(single_cfg(cid), AGENCY_STREAMS, capture=True)
            logged = requests_by_account(sim.log[first:])
            if set(logged) != {cid}:
                raise RuntimeError(f"agency: the run of client {cid}'s own token reached accounts {set(logged)}")
            return proc, logged[cid]

        say("agency: warm pass (the simulator generates and encodes every client's data on first serve)")
        agency_run()
        say("agency: start-up baseline (a client token, a 10-second range)")
        tiny = single_cfg(ids[0], start_date=START + " 00:00:00", end_date=START + " 00:00:10")
        base_runs = [tap.sync(tiny, {"calls"}) for _ in range(3)]
        startup = min(p.wall for p in base_runs)
        startup_cpu = min(p.cpu for p in base_runs)
        walls: dict[str, list[float]] = {"agency": [], "single": []}
        cpus: dict[str, list[float]] = {"agency": [], "single": []}
        inside: dict[str, list[float]] = {"agency": [], "single": []}  # the tap's own summary seconds
        singles: dict[int, tuple[Proc, Counter[str]]] = {}
        half = clients // 2
        for i in range(repeat):  # interleaved, so that a busy moment of the machine hits both alike
            say(f"agency: timed round {i + 1}/{repeat}: {half} single-account runs, the agency run, {clients - half} "
                "single-account runs")
            singles = {cid: single_run(cid) for cid in ids[:half]}
            proc, logged = agency_run()
            singles |= {cid: single_run(cid) for cid in ids[half:]}
            walls["single"].append(sum(p.wall for p, _ in singles.values()))
            cpus["single"].append(sum(p.cpu for p, _ in singles.values()))
            walls["agency"].append(proc.wall)
            cpus["agency"].append(proc.cpu)
            inside["single"].append(sum(p.summary_seconds for p, _ in singles.values()))
            inside["agency"].append(proc.summary_seconds)

        # requests: the agent's own, get.account, and each client's streams against its own run
        own = logged.get(None, Counter())
        listed = [c for c in sim.config.customers if not c.archived]
        want_customers = pages(len(listed))
        want_users = pages(sum(len(c.users) for c in listed))
        others = {m: n for m, n in own.items() if m not in ("get.customers", "get.customer_users")}
        table.add(f"6. Agency, {clients} clients: the agent's own calls (page {ECON_PAGE})",
                  f"get.customers {own['get.customers']}, get.customer_users {own['get.customer_users']}"
                  + (f", other {others}" if others else ""),
                  f"pages of {len(listed)} clients ({want_customers}) and of their users ({want_users})",
                  own["get.customers"] == want_customers and own["get.customer_users"] == want_users and not others)
        accounts = [logged.get(cid, Counter())["get.account"] for cid in ids]
        single_accounts = [singles[cid][1]["get.account"] for cid in ids]
        table.add("6. Agency, get.account per client (agency / single-account run)",
                  f"{min(accounts)}-{max(accounts)} / {min(single_accounts)}-{max(single_accounts)}",
                  "1 per client, as a single-account run", set(accounts) == set(single_accounts) == {1})
        wins = windows(dt.datetime.fromisoformat(START), dt.datetime.fromisoformat(end), AGENCY_WINDOW)
        for stream, method in COUNTED.items():
            mine = [logged.get(cid, Counter())[method] for cid in ids]
            theirs = [singles[cid][1][method] for cid in ids]
            least = [minimum(sim, stream, wins, cid) for cid in ids]
            differ = [f"{cid}: {a} vs {b}" for cid, a, b in zip(ids, mine, theirs, strict=True) if a != b]
            table.add(f"6. Agency, {stream} requests per client (agency vs single-account run; minimum)",
                      f"{' '.join(map(str, mine))} (total {sum(mine)}) vs {sum(theirs)}; minimum {sum(least)}"
                      + (f"; differ: {', '.join(differ)}" if differ else ""),
                      "= single-account run, <= minimum",
                      not differ and all(a <= m for a, m in zip(mine, least, strict=True)))
        recs_a = records_by_account(proc)
        recs_s = {cid: records_by_account(p).get(cid, Counter()) for cid, (p, _) in singles.items()}
        unequal = [cid for cid in ids if recs_a.get(cid, Counter()) != recs_s[cid]]
        records = sum(sum(c.values()) for c in recs_a.values())
        table.add("6. Agency, records per client and stream", f"{records:,} records in all; "
                  + (f"differ for {unequal}" if unequal else "equal to the single-account runs for every client"),
                  "equal", not unequal and set(recs_a) == set(ids))

        # seconds. The tap's own (its summary: from its start-up to the end of the sync, each account's
        # streams made, get.account read) leave out what every process pays once, the interpreter and the
        # imports; wall and CPU of the processes, net of a measured start-up, need 10 start-ups subtracted
        # from the single-account runs, which multiplies that measure's noise by 10.
        in_a, in_s = min(inside["agency"]), min(inside["single"])
        wall_a, wall_s = min(walls["agency"]), min(walls["single"])
        cpu_a, cpu_s = min(cpus["agency"]), min(cpus["single"])
        fastest = f"least of {repeat} rounds: a busy neighbour only ever slows a run down"
        table.add(f"6. Agency, throughput in the tap's own seconds (its summary, start-up to end of sync; {fastest})",
                  f"agency {rate(records, in_a)} ({in_a:.1f} s) vs {clients} single-account runs "
                  f"{rate(records, in_s)} ({in_s:.1f} s): {in_s / in_a:.2f}x",
                  ">= 0.9x (as for a single account)", in_s / in_a >= 0.9)
        rate_a, rate_s = records / (wall_a - startup), records / (wall_s - clients * startup)
        crate_a, crate_s = records / (cpu_a - startup_cpu), records / (cpu_s - clients * startup_cpu)
        table.add(f"6. Agency, throughput of the processes net of a start-up ({startup:.2f} s wall, "
                  f"{startup_cpu:.2f} s CPU, least of 3)",
                  f"agency {rate(records, wall_a - startup)} ({wall_a:.1f} s wall) vs {clients} single-account runs "
                  f"{rate(records, wall_s - clients * startup)} ({wall_s:.1f} s wall): {rate_a / rate_s:.2f}x; "
                  f"per CPU second {crate_a / crate_s:.2f}x")
        # requests from the simulator's log: all of the agency run's against all of the single-account runs'
        extra = sum(c.total() for c in logged.values()) - sum(c.total() for _, c in singles.values())
        table.add("6. Agency, overhead per client beyond its single-account run (requests: the simulator's log; "
                  "the tap's summary gives its seconds to 0.1 s a run)",
                  f"{extra / clients:.2f} requests, of which get.customers {own['get.customers'] / clients:.2f} and "
                  f"get.customer_users {own['get.customer_users'] / clients:.2f} ({own['get.customers']} and "
                  f"{own['get.customer_users']} for {clients} clients); "
                  f"{(in_a - in_s) / clients:+.2f} s in the tap's own seconds; processes net "
                  f"of start-up {(wall_a - (wall_s - (clients - 1) * startup)) / clients:+.2f} s wall, "
                  f"{(cpu_a - (cpu_s - (clients - 1) * startup_cpu)) / clients:+.2f} s CPU")
        state_messages = [m["value"] for m in proc.messages() if m.get("type") == "STATE"]
        one = account_state(state_messages[-1], ids[0])
        t_one, t_all = state_write_ms(one), state_write_ms(state_messages[-1])
        made, decoders = streams_ms(sim, base)
        table.add("6. Agency, where the per-client seconds go (in process, CPU)",
                  f"making an account's streams: {made:.0f} ms (a single-account run does it once, in its start-up; "
                  f"their record decoders, {decoders:.0f} ms, both pay alike); a STATE message: {t_one:.2f} ms with "
                  f"1 client, {t_all:.2f} ms with {clients} ({(t_all - t_one) / (clients - 1):.2f} ms more per client "
                  f"in the state; {len(state_messages)} in this run, one per window and stream)")


def account_state(state: dict[str, Any], cid: int) -> dict[str, Any]:
    """The part of a state that one account's bookmarks make."""
    return {"bookmarks": {stream: {**bookmark, "partitions": [p for p in bookmark.get("partitions", [])
                                                                if p.get("context", {}).get("customer_id") == cid]}
                          for stream, bookmark in state.get("bookmarks", {}).items()}}


def state_write_ms(state: dict[str, Any], rounds: int = 200) -> float:
    """CPU milliseconds the SDK spends on one STATE message of ``state``: it compares the state with the
    last one written, encodes the message and keeps a copy (the tap writes one after every window)."""
    from singer_sdk.contrib.msgspec import MsgSpecWriter
    from singer_sdk.helpers._state import StateWriter
    from singer_sdk.singerlib import Message

    class Encoder(MsgSpecWriter):
        def write_message(self, message: Message) -> None:
            self.format_message(message)

    writer = StateWriter(Encoder())
    state = copy.deepcopy(state)
    partition = next(b["partitions"][0] for b in state["bookmarks"].values() if b.get("partitions"))
    started = time.process_time()
    for i in range(rounds):
        partition["bench_round"] = i  # a changed state, so that every round writes one
        writer.write_state(cast(Any, state))
    return (time.process_time() - started) / rounds * 1000


def streams_ms(sim: Sandbox, config: dict[str, Any], rounds: int = 10) -> tuple[float, float]:
    """CPU milliseconds to make one account's streams (as the tap does for every account it reads), and
    then the record decoders of the selected ones (made at their first page)."""
    from tap_comagic.tap import TapCoMagic

    tap = TapCoMagic(config=config, catalog=select(discover(config), AGENCY_STREAMS), state={})
    catalog = tap.input_catalog
    assert catalog is not None
    made = decoded = 0.0
    for _ in range(rounds):
        started = time.process_time()
        streams = tap.load_streams()
        for stream in streams:
            stream.apply_catalog(catalog)
        between = time.process_time()
        for stream in streams:
            if stream.selected:
                _ = stream.record_decoder  # type: ignore[attr-defined]
        made, decoded = made + between - started, decoded + time.process_time() - between
    return made / rounds * 1000, decoded / rounds * 1000


# ---- 7. per-record cost -------------------------------------------------------------------------------

def per_record(table: Table, n: int = 12_000, rounds: int = 9) -> None:
    """In process: the tap's work on each record once a page is decoded (post_process, the RECORD message,
    the bookmark candidate) over ``n`` calls with every field; the least CPU time of ``rounds``."""
    import requests

    from tap_comagic.client import answer_of
    from tap_comagic.tap import TapCoMagic

    say(f"per-record cost: {n:,} calls in process")
    days = 2
    with Sandbox(SandboxConfig(seed=3, start=START, days=days, calls_per_day=n // days)) as sim:
        config = {"api_url": sim.url, "access_token": sim.api_key, "start_date": START, "end_date": day_end(days)}
        tap = TapCoMagic(config=config, catalog=select(discover(config), {"calls"}), state={})
        stream: Any = tap.streams["calls"]
        rows: list[dict[str, Any]] = []
        for day in range(days):
            date = (dt.datetime.fromisoformat(START) + dt.timedelta(days=day)).strftime("%Y-%m-%d")
            params = {"access_token": sim.api_key, "date_from": f"{date} 00:00:00", "date_till": f"{date} 23:59:59",
                      "limit": PAGE, "fields": stream.requested_fields}
            body = {"jsonrpc": "2.0", "id": day, "method": "get.calls_report", "params": params}
            rows += answer_of(requests.post(sim.url, json=body, timeout=60)).records(stream.record_decoder)
        if len(rows) != n:
            raise RuntimeError(f"per-record cost: {len(rows)} calls, expected {n}")
        best = math.inf
        for _ in range(rounds):
            batch = copy.deepcopy(rows)  # post_process converts in place
            started = time.process_time()  # CPU time: the machine is shared, a busy neighbour moves wall time
            for row in batch:
                out = stream.post_process(row, None)
                for _message in stream._generate_record_messages(out):
                    pass
                stream._increment_stream_state(out, context=None)
            best = min(best, time.process_time() - started)
    table.add(f"7. Per-record cost in process, post_process + RECORD message + bookmark, {n:,} calls, "
              f"all fields, least CPU time of {rounds}", f"{best / n * 1e6:.1f} µs/record")


# ---- main ------------------------------------------------------------------------------------------------

SECTIONS = ("from_memory", "throughput", "latency", "economy", "agency", "per_record", "scale")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark tap-comagic against the simulator.")
    ap.add_argument("--quick", action="store_true", help="skip the 1M-call run, fewer repeats (~5 min)")
    ap.add_argument("--write", action="store_true", help=f"also write the table to {RESULTS.name}")
    ap.add_argument("--baseline", default="", help="from memory: also time the tap found in this folder")
    ap.add_argument("--repeat", type=int, default=0, help="timed rounds of the from-memory view")
    ap.add_argument("--memory-days", type=int, default=10,
                    help="days of calls (10,000 a day) the from-memory view reads (100: 1,000,000 calls)")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"comma-separated sections to run (default all): {', '.join(SECTIONS)}")
    a = ap.parse_args(argv)
    only = set(a.only.split(","))
    if only - set(SECTIONS) or (a.write and only != set(SECTIONS)):
        ap.error(f"--only takes some of {', '.join(SECTIONS)} (and not with --write)")
    table = Table()
    load_start = load_now()
    days = 10 if a.quick else 20  # throughput and latency; the 1M run reads 100
    cfg = SandboxConfig(seed=1, start=START, days=max(days if a.quick else 100, a.memory_days), calls_per_day=PER_DAY,
                        chats_per_day=CHATS_PER_DAY)
    with tempfile.TemporaryDirectory() as tmpdir, Sandbox(cfg) as sim:
        tmp = Path(tmpdir)
        # Keep the first 20 days (200k calls, 20k chats and their children, ~1.3M records) cached so that
        # every timed pass reads warmed pages; the simulator's default keeps about 7 such days.
        sim.world._bundle_budget = 1_500_000
        tap = Tap(sim, tmp)
        if "from_memory" in only:
            from_memory(tap, table, days=a.memory_days, repeat=a.repeat or (3 if a.quick else 5), baseline=a.baseline)
        if "throughput" in only:
            throughput(tap, table, days, repeat=1 if a.quick else 3)
        if "latency" in only:
            latency(tap, table, days, per_chat_hours=3 if a.quick else 12)
        if "economy" in only:
            economy(tmp, table)
        if "agency" in only:
            agency(tmp, table, clients=10, repeat=2 if a.quick else 3)
        if "per_record" in only:
            per_record(table)
        if "scale" in only:
            memory_and_scale(tap, table, [10_000, 100_000] if a.quick else [10_000, 100_000, 1_000_000])
    if a.quick and "scale" in only:
        table.add("3./5. 1,000,000 calls, and the RSS ratio and CPU spread over sizes >= 100k (one such size)",
                  "skipped (--quick)")
    command = ("python -m tools.bench_tap" + (" --quick" if a.quick else "")
               + (f" --only {a.only}" if only != set(SECTIONS) else "")
               + (f" --memory-days {a.memory_days}" if a.memory_days != 10 else ""))
    head = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"], capture_output=True,
                          text=True, check=False).stdout.strip() or "unknown"
    machine = (f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), Python "
               f"{platform.python_version()}, {platform.system()} {platform.release()}; load average at start "
               f"{load_start}, at end {load_now()} (the machine is shared: wall figures move with it)")
    text = (f"Command: `{command}` (tap at `{head}`)  \nMachine: {machine}  \n"
            f"Date: {dt.date.today().isoformat()}, "
            f"total {time.perf_counter() - T0:.0f} s\n\n{table.render()}\n")
    failed = table.failed
    text += f"\nFloors failed: {', '.join(failed) if failed else 'none'}\n"
    print(text)
    if a.write:
        RESULTS.write_text("# tap-comagic benchmark\n\nNumbers from `python -m tools.bench_tap` "
                           "(see docs/performance.md).\n\n" + text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
