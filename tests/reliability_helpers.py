"""Shared by the reliability, resume, bad-input and secrets tests: the tap's configuration for a world, its
catalog, the truth of a world, log lines, a run that can be killed, and the fault profiles."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from tap_comagic.sandbox import Sandbox
from tests.tap_harness import (
    END,
    REPORTS,
    START,
    Run,
    as_emitted,
    discover,
    read_message,
    run_tap,
    select,
    small_world,
    tap_command,
)

# Streams whose truth a test can ask the simulator for directly (date-windowed) or through their parent.
WINDOWED = ("calls", "call_legs", "communications", "goals", "chats", "offline_messages", "visitor_sessions",
            "financial_call_legs")
CHAT_MESSAGES_KEY = ("id",)
KEYS: dict[str, tuple[str, ...]] = {**{s: REPORTS[s][1] for s in WINDOWED}, "chat_messages": CHAT_MESSAGES_KEY}
RK: dict[str, str] = {**{s: REPORTS[s][2] for s in WINDOWED}, "chat_messages": "date_time"}
DEFAULT_STREAMS = frozenset({"calls", "call_legs", "chats", "chat_messages", "goals"})
RETRY_LINE = re.compile(r"\| WARNING .*: retry \d+ in ")


def tap_config(sim: Sandbox, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"api_url": sim.url, "access_token": sim.api_key, "start_date": START, "end_date": END,
                           "window_days": 1, "page_size": 10, "lookback_days": 1, "retry_backoff_seconds": 0.01,
                           "max_parallel_requests": 2}
    cfg.update(extra)
    return {k: v for k, v in cfg.items() if v is not None}


@lru_cache(maxsize=1)
def _discovered() -> str:
    cfg = {"api_url": "http://127.0.0.1:9/v2.0", "access_token": "discover-only", "start_date": START}
    return json.dumps(discover(cfg))


def catalog(streams: frozenset[str] | set[str] = DEFAULT_STREAMS) -> dict[str, Any]:
    """The tap's own catalog (discovered once per session) with exactly ``streams`` selected."""
    return select(json.loads(_discovered()), set(streams))


# ---- ground truth -------------------------------------------------------------------------------------

def _schema(stream: str) -> dict[str, Any]:
    text = (Path(__file__).parent.parent / "tap_comagic" / "schemas" / f"{stream}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def truth(sim: Sandbox, streams: set[str] | frozenset[str], date_from: str = START + " 00:00:00",
          date_till: str = END) -> dict[str, list[dict[str, Any]]]:
    """stream -> the records as the tap must emit them, from ``sim.truth`` alone."""
    out: dict[str, list[dict[str, Any]]] = {}
    for stream in streams:
        schema = _schema(stream)
        if stream == "chat_messages":
            chats = sim.truth(REPORTS["chats"][0], date_from, date_till)
            rows = sim.truth("get.chat_messages_report", chat_ids=[c["id"] for c in chats]) if chats else []
        else:
            rows = sim.truth(REPORTS[stream][0], date_from, date_till)
        out[stream] = [as_emitted(r, schema) for r in rows]
    return out


@dataclass
class Comparison:
    records: int = 0
    lost: int = 0
    duplicates: int = 0
    wrong: int = 0
    extra: int = 0
    detail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.wrong == 0 and self.extra == 0


def compare(emitted: dict[str, list[dict[str, Any]]], expected: dict[str, list[dict[str, Any]]]) -> Comparison:
    """De-duplicated by primary key, does the output equal the truth? Counts what differs.

    A duplicate is a key emitted more often than the truth holds it. The truth's keys are unique (a key that
    merged two records would hide one of them here, as in an upserting target).
    """
    cmp = Comparison()
    for stream, want_rows in expected.items():
        key = KEYS[stream]
        rows = emitted.get(stream, [])
        counts = Counter(tuple(r.get(k) for k in key) for r in rows)
        want_counts = Counter(tuple(r.get(k) for k in key) for r in want_rows)
        got = {tuple(r.get(k) for k in key): r for r in rows}
        want = {tuple(r.get(k) for k in key): r for r in want_rows}
        assert len(want) == len(want_rows), f"{stream}: the key {key} merges records of the truth"
        cmp.records += len(rows)
        cmp.duplicates += sum(max(0, n - want_counts[k]) for k, n in counts.items())
        lost = [k for k in want if k not in got]
        extra = [k for k in got if k not in want]
        wrong = [k for k in want if k in got and got[k] != want[k]]
        cmp.lost += len(lost)
        cmp.extra += len(extra)
        cmp.wrong += len(wrong)
        if lost or extra or wrong:
            cmp.detail.append(f"{stream}: lost {lost[:3]}, extra {extra[:3]}, wrong {wrong[:3]}")
    return cmp


# ---- stderr -------------------------------------------------------------------------------------------

def log_lines(stderr: str, level: str) -> list[str]:
    return [line for line in stderr.splitlines() if f"| {level} " in line]


def retry_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if RETRY_LINE.search(line)]


def error_lines(stderr: str) -> list[str]:
    """ERROR/CRITICAL lines, less the SDK's generic ones that come with ours ("Config validation failed",
    backoff's "Giving up ... after n tries")."""
    lines = log_lines(stderr, "ERROR") + log_lines(stderr, "CRITICAL")
    return [line for line in lines if not line.endswith("Config validation failed") and "Giving up " not in line]


# ---- a run that can be killed -------------------------------------------------------------------------

@dataclass
class Killed(Run):
    """A Run read until the kill: only what a target would have read before it."""

    lines_read: int = 0  # RECORD and STATE lines
    finished: bool = False  # the tap ended before the kill
    kinds: list[str] = field(default_factory=list)  # per line read: "STATE" or the RECORD's stream

    @property
    def last_state(self) -> dict[str, Any] | None:
        return self.states[-1] if self.states else None


def run_until(config: dict[str, Any], *, kill_after: int, state: dict[str, Any] | None = None,
              catalog: dict[str, Any] | None = None, timeout: float = 120) -> Killed:
    """Run the tap's command and read its RECORD/STATE lines; after ``kill_after`` of them, SIGKILL it (a
    subprocess: the kill is the subject). Only what was read before the kill counts, as for a target that
    stops reading then."""
    out = Killed()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = tap_command(tmp, config, state, catalog)
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
            assert proc.stdout is not None
            # a watchdog, not a check between lines: a tap that hangs writes no line that would run a check
            expired = threading.Event()

            def expire() -> None:
                expired.set()
                proc.kill()

            watchdog = threading.Timer(timeout, expire)
            watchdog.start()
            try:
                read_lines(proc.stdout, out, kill_after, kill=proc.kill)
            finally:
                watchdog.cancel()
            if expired.is_set():
                raise TimeoutError(f"the tap ran past its {timeout} s (killed after {out.lines_read} lines)")
            proc.wait(timeout=30)
    return out


def read_lines(stdout: IO[str], out: Killed, kill_after: int, kill: Callable[[], None]) -> None:
    """run_until's reading: each RECORD/STATE line into ``out``; ``kill()`` after ``kill_after`` of them."""
    for line in stdout:
        msg = json.loads(line)
        read_message(out, msg)
        if msg.get("type") not in ("RECORD", "STATE"):
            continue
        out.kinds.append(msg["stream"] if msg["type"] == "RECORD" else "STATE")
        out.lines_read += 1
        if out.lines_read >= kill_after:
            kill()
            return
    out.finished = True


def non_ok(sim: Sandbox, method_prefix: str = "get.") -> Counter[str]:
    return Counter(e.outcome for e in sim.log if e.outcome != "ok" and (e.method or "get.").startswith(method_prefix))


# ---- fault profiles: shared by the fault-injection suite and tools/fault_table.py ----------------------

FAULT_KINDS: dict[str, dict[str, Any]] = {
    "http_error": {"http_error": 0.10},
    "drop": {"drop": 0.05},
    "slow": {"slow": 0.03, "slow_seconds": 2.0},
    "truncated": {"truncated": 0.05},
    "internal_error": {"internal_error": 0.05},
    "limit_burst": {"limit_burst": 0.03, "limit_reset_seconds": 0.3},
    "token_expiry": {"token_expiry": 0.08},
    "mixed": {"http_error": 0.10, "drop": 0.02, "slow": 0.01, "slow_seconds": 2.0, "truncated": 0.02,
              "internal_error": 0.02, "limit_burst": 0.01, "limit_reset_seconds": 0.3, "token_expiry": 0.03},
}
SESSION_KINDS = frozenset({"token_expiry", "mixed"})  # token expiry needs login.user sessions


@dataclass
class FaultRun:
    kind: str
    seed: int
    returncode: int
    injected: int
    retried: int
    non_ok: int
    comparison: Comparison
    stderr: str


def fault_run(kind: str, seed: int, streams: frozenset[str] = DEFAULT_STREAMS) -> FaultRun:
    """One seeded run of the tap against a simulator injecting the ``kind`` profile, checked against truth."""
    from tap_comagic.sandbox import DEFAULT_LOGIN, DEFAULT_PASSWORD, Faults

    faults = Faults(seed=seed, **FAULT_KINDS[kind])
    with Sandbox(small_world(seed=seed), faults=faults) as sim:
        extra: dict[str, Any] = {"request_timeout": 1, "max_retries": 10}
        if kind in SESSION_KINDS:
            extra.update(access_token=None, login=DEFAULT_LOGIN, password=DEFAULT_PASSWORD)
        run = run_tap(tap_config(sim, **extra), catalog=catalog(streams), timeout=300)
        cmp = compare(run.records, truth(sim, streams))
        return FaultRun(kind=kind, seed=seed, returncode=run.returncode, injected=sum(sim.injected.values()),
                        retried=len(retry_lines(run.stderr)),
                        non_ok=sum(1 for e in sim.log if e.outcome != "ok"), comparison=cmp, stderr=run.stderr)
