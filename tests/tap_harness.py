"""The shared harness of the tap's tests: the one simulated world a test starts (``small_world``), the one
runner of the tap (``run_tap``: the tap in this process, as an embedder runs it), and the truth its output is
compared with. A test that is about the command line itself (exit codes, a SIGKILL) runs ``tap_command``."""

from __future__ import annotations

import copy
import datetime as dt
import faulthandler
import gzip
import io
import json
import logging
import os
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.logging import ConsoleFormatter

from tap_comagic.sandbox import Sandbox, SandboxConfig

MOSCOW = ZoneInfo("Europe/Moscow")
TAP_LOGGER = "tap-comagic"

# stream -> (API method, primary key, replication key); written from the documented keys (docs/data-model.md),
# not from the tap's stream classes, so that a test comparing with them can fail
REPORTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "communications": ("get.communications_report", ("id", "communication_type"), "date_time"),
    "calls": ("get.calls_report", ("id",), "start_time"),
    "call_legs": ("get.call_legs_report", ("id",), "start_time"),
    "goals": ("get.goals_report", ("id",), "date_time"),
    "chats": ("get.chats_report", ("id",), "date_time"),
    "offline_messages": ("get.offline_messages_report", ("id",), "date_time"),
    "visitor_sessions": ("get.visitor_sessions_report", ("id",), "date_time"),
    "financial_call_legs": ("get.financial_call_legs_report", ("call_session_id", "leg_id"), "start_time"),
}
# the child and deferred reports: (API method, primary key)
OTHER_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "chat_messages": ("get.chat_messages_report", ("id",)),
    "visitors": ("get.visitors_report", ("id",)),
    "financial_summary": ("get.financial_summary_report", ("date",)),
    "sales": ("get.sales_report", ("id",)),
    "api_requests": ("get.api_requests_report", ()),  # no field identifies a row: targets append
}
# the reference tables, read whole: (API method, primary key); from the documented keys too
REFERENCE: dict[str, tuple[str, tuple[str, ...]]] = {
    "account": ("get.account", ("app_id",)),
    "sites": ("get.sites", ("id",)),
    "site_blocks": ("get.site_blocks", ("id",)),
    "campaigns": ("get.campaigns", ("id",)),
    "virtual_numbers": ("get.virtual_numbers", ("id",)),
    "employees": ("get.employees", ("id",)),
    "employee_groups": ("get.group_employees", ("id",)),
    "tags": ("get.tags", ("id",)),
    "statuses": ("get.statuses", ("id",)),
    "scenarios": ("get.scenarios", ("id",)),
    "sources": ("get.sources", ("id",)),
    "source_channels": ("get.sources_channels", ("id",)),
    "source_groups": ("get.sources_groups", ("id",)),
    "events": ("get.events", ("id",)),
    "employee_positions": ("get.employee_positions", ("id",)),
    "schedules": ("get.schedules", ("id",)),
    "offline_message_user_fields": ("get.offline_message_user_fields", ("ext_id",)),
    "deal_user_fields": ("get.deal_user_fields", ("ext_id",)),
    "lead_user_fields": ("get.lead_user_fields", ("ext_id",)),
    "chat_channels": ("get.chat_channels", ("id",)),
    "sales_funnels": ("get.sales_funnel", ("ext_id",)),
    "lead_funnel_stages": ("get.lead_funnel_stages", ("id",)),
}
# read by day or incrementally on a time: (API method, primary key, replication key); from the issue too
DATED: dict[str, tuple[str, tuple[str, ...], str]] = {
    "source_costs": ("get.source_costs", ("date", "source_id", "site_key"), "date"),
    "deals_history": ("get.deals_history", ("ext_id", "stage_ext_id", "modified_stage_date_time"),
                      "modified_stage_date_time"),
}


def method_and_key(stream: str) -> tuple[str, tuple[str, ...]]:
    """A stream's API method and primary key (less customer_id), from the tables above."""
    if stream in REPORTS:
        method, key, _ = REPORTS[stream]
        return method, key
    if stream in DATED:
        method, key, _ = DATED[stream]
        return method, key
    return {**OTHER_KEYS, **REFERENCE}[stream]


START = "2026-01-01"
DAYS = 4
END = "2026-01-04 23:59:59"  # the last second of data in small_world()


def small_world(**overrides: Any) -> SandboxConfig:
    """The world a test starts (``with Sandbox(small_world()) as sim``): a few days of a small account, so a run
    takes a second or two yet spans many windows and pages. Override what the test is about."""
    base: dict[str, Any] = {"seed": 11, "start": START, "days": DAYS, "calls_per_day": 12, "chats_per_day": 4,
                            "goals_per_day": 5, "offline_messages_per_day": 2, "visitor_sessions_per_day": 6,
                            "api_requests_per_day": 2}
    base.update(overrides)
    return SandboxConfig(**base)


def window_config(sim: Sandbox, end: str, **extra: Any) -> dict[str, Any]:
    """A tap config for ``sim`` from START to ``end``, in two-day windows with no look-back."""
    return {"api_url": sim.url, "access_token": sim.api_key, "start_date": START, "end_date": end,
            "window_days": 2, "lookback_days": 0, "retry_backoff_seconds": 0.01, **extra}


def requests_of(sim: Sandbox, method: str) -> list[dict[str, Any]]:
    """The parameters of the calls of ``method`` the simulator answered."""
    return [r.params for r in sim.log if r.method == method and r.outcome == "ok"]


def days(first: int, last: int) -> list[str]:
    """January 2026's days ``first`` to ``last``, as the API writes dates."""
    return [f"2026-01-{d:02d}" for d in range(first, last + 1)]


@dataclass
class Run:
    records: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key_properties of the SCHEMA messages
    states: list[dict[str, Any]] = field(default_factory=list)
    accounts: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))  # stream -> customer_id
    owners: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # each record's customer_id
    stderr: str = ""  # the log lines, formatted as the command line writes them, and anything else on stderr
    stdout: str = ""
    returncode: int = 0
    slept: float = 0.0  # seconds the throttle waited on the simulator's clock (``run_tap(clock=sim)``)
    logged: list[logging.LogRecord] = field(default_factory=list)  # the WARNING (and worse) records

    @property
    def warnings(self) -> list[str]:
        """The tap's own WARNING (and worse) messages."""
        return [r.getMessage() for r in self.logged if r.levelno >= logging.WARNING
                and (r.name == TAP_LOGGER or r.name.startswith(TAP_LOGGER + "."))]

    @property
    def state(self) -> dict[str, Any]:
        return self.states[-1] if self.states else {}

    def of(self, stream: str, customer_id: int) -> list[dict[str, Any]]:
        """The records of ``stream`` that name account ``customer_id``."""
        return [r for r, owner in zip(self.records[stream], self.owners[stream], strict=True) if owner == customer_id]



def tap_command(folder: str, config: dict[str, Any], state: dict[str, Any] | None = None,
                catalog: dict[str, Any] | None = None) -> list[str]:
    """The `tap-comagic` command line, its input files written into ``folder``: for the tests whose subject is
    the command itself (its exit code and output on bad input, a SIGKILL)."""
    cmd = [sys.executable, "-m", "tap_comagic"]
    for name, content in (("config", config), ("state", state), ("catalog", catalog)):
        if content is not None:
            path = Path(folder) / f"{name}.json"
            path.write_text(json.dumps(content))
            cmd += [f"--{name}", str(path)]
    return cmd


class _Output(io.TextIOBase):
    """The tap's stdout: each Singer message read into a Run as it is written (``.buffer`` takes the bytes
    the SDK's msgspec writer sends)."""

    def __init__(self, run: Run, on_line: Callable[[int], None] | None) -> None:
        super().__init__()
        self.run, self.on_line = run, on_line
        self.pending = b""
        self.lines: list[str] = []
        self.counted = 0  # RECORD and STATE lines, for ``on_line``

    @property
    def buffer(self) -> _Output:
        return self

    def write(self, data: Any) -> int:
        self.pending += data.encode() if isinstance(data, str) else bytes(data)
        *complete, self.pending = self.pending.split(b"\n")
        for raw in complete:
            line = raw.decode()
            self.lines.append(line)
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            read_message(self.run, msg)
            if msg.get("type") in ("RECORD", "STATE"):
                self.counted += 1
                if self.on_line is not None:
                    self.on_line(self.counted)
        return len(data)

    def flush(self) -> None:
        pass


class _Kept(logging.Handler):
    """Keeps the WARNING (and worse) records of a run, for ``Run.warnings``."""

    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@contextmanager
def _captured(run: Run, out: _Output, level: str) -> Iterator[io.StringIO]:
    """stdout into ``out``; stderr and every log line (as the command line formats them) into the yielded
    buffer; the root logger at ``level`` meanwhile."""
    err = io.StringIO()
    console = logging.StreamHandler(err)
    console.setFormatter(ConsoleFormatter())
    kept = _Kept(run.logged)
    root = logging.getLogger()
    # pytest's own handlers step aside meanwhile: the run's lines are in Run.stderr (tests print it when
    # they fail), and pytest would otherwise keep a second copy of every INFO line of every run
    saved = (sys.stdout, sys.stderr, root.level, root.handlers[:])
    root.handlers[:] = [console, kept]
    root.setLevel(level)
    sys.stdout, sys.stderr = out, err
    try:
        yield err
    finally:
        sys.stdout, sys.stderr = saved[0], saved[1]
        root.setLevel(saved[2])
        root.handlers[:] = saved[3]


@contextmanager
def _environment(env: dict[str, str] | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _on_simulated_clock(sim: Sandbox | None, run: Run) -> Iterator[None]:
    """Throttles made meanwhile wait on ``sim.clock``: waiting for a limit moves that clock, not time, so
    limits measured in minutes and days cost no real seconds. The tap makes its throttles when it is built
    (the token's) and from them (each account's), so building the tap inside this is enough."""
    if sim is None:
        yield
        return
    from tap_comagic import limits

    def sleep(seconds: float) -> None:
        run.slept += seconds
        sim.clock.advance(seconds)

    with mock.patch.object(limits, "time", SimpleNamespace(sleep=sleep, monotonic=sim.clock.now)):
        yield


def run_tap(config: dict[str, Any], *, state: dict[str, Any] | None = None,
            catalog: dict[str, Any] | None = None, clock: Sandbox | None = None,
            on_line: Callable[[int], None] | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> Run:
    """Run the tap in this process as its command line would (``sync_all``), and read what it wrote.

    ``clock``: the throttle runs on that simulator's clock. ``on_line(n)`` is called after the n-th RECORD or
    STATE line (e.g. to expire sessions mid-run). ``env``: variables set meanwhile; the log level comes from
    ``TAP_COMAGIC_LOGLEVEL`` or ``LOGLEVEL`` there, as on the command line. ``timeout``: a run still going
    then ends the test session with every thread's traceback (a hung run would otherwise hang it).
    """
    from tap_comagic.tap import TapCoMagic

    run = Run()
    out = _Output(run, on_line)
    level = (env or {}).get("TAP_COMAGIC_LOGLEVEL") or (env or {}).get("LOGLEVEL") or "INFO"
    faulthandler.dump_traceback_later(timeout, exit=True)
    try:
        with _environment(env), _captured(run, out, level.upper()) as err:
            logger = logging.getLogger(TAP_LOGGER)
            tap = None
            try:
                with _on_simulated_clock(clock, run):
                    tap = TapCoMagic(config=copy.deepcopy(config), catalog=copy.deepcopy(catalog) if catalog else None,
                                     state=copy.deepcopy(state) if state else None, validate_config=True)
                tap.sync_all()
            except SystemExit as exc:
                run.returncode = exc.code if isinstance(exc.code, int) else 1
            except ConfigValidationError as exc:  # as the SDK's command line reports it
                for error in exc.errors:
                    logger.error("%s", error)
                logger.error("Config validation failed")
                run.returncode = 1
            except Exception as exc:  # as the SDK's command line reports it: the message and the traceback
                logger.error("%s", exc.args[0] if exc.args else type(exc).__name__, exc_info=exc)
                run.returncode = 1
            finally:
                if tap is not None:
                    tap.close()
        run.stderr = err.getvalue()
    finally:
        faulthandler.cancel_dump_traceback_later()
    run.stdout = "\n".join(out.lines) + ("\n" if out.lines else "")
    return run


def account_of(msg: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A RECORD message's `customer_id` (which every record must carry, an integer) and its record without it."""
    record: dict[str, Any] = msg["record"]
    account = record.pop("customer_id", None)
    assert type(account) is int, (msg["stream"], "customer_id", account)
    return account, record


def read_message(run: Run, msg: dict[str, Any]) -> None:
    """One Singer message into ``run``. Every record must name its account (`customer_id`, an integer)
    and every key must start with it: checked here for every test, then set aside (``run.accounts``), so
    that the tests compare the API's rows with the simulator's."""
    if msg.get("type") == "RECORD":
        account, record = account_of(msg)
        run.accounts[msg["stream"]][account] += 1
        run.owners[msg["stream"]].append(account)
        run.records[msg["stream"]].append(record)
    elif msg.get("type") == "SCHEMA":
        run.schemas[msg["stream"]] = msg["schema"]
        keys = tuple(msg.get("key_properties") or ())
        assert not keys or keys[0] == "customer_id", (msg["stream"], keys)
        assert "customer_id" in msg["schema"]["properties"], msg["stream"]
        run.keys[msg["stream"]] = keys[1:]
    elif msg.get("type") == "STATE":
        run.states.append(msg["value"])


def page_data(page: bytes) -> Any:
    """A page's ``data`` (a JSON array of records) as the client's parse of an answer gives it to a stream's
    record decoder."""
    import msgspec

    from tap_comagic.api import Answer

    answer = msgspec.json.decode(b'{"jsonrpc": "2.0", "result": {"data": ' + page + b"}}", type=Answer)
    assert answer.result is not None
    return answer.result.data


def messages_with_batches(stdout: str) -> Iterator[dict[str, Any]]:
    """A run's messages in order; a BATCH message (JSON Lines, gzipped or not as its encoding says) comes with
    its files' records under ``"records"``, as stored (``customer_id`` included)."""
    for line in stdout.splitlines():
        msg = json.loads(line) if line.startswith("{") else {}
        if msg.get("type") == "BATCH":
            assert msg["encoding"]["format"] == "jsonl"
            gzipped = msg["encoding"]["compression"] == "gzip"
            msg["records"] = []
            for url in msg["manifest"]:
                path = Path(url.removeprefix("file://"))
                assert path.name.endswith(".json.gz" if gzipped else ".json"), path
                with (gzip.open(path, "rt", encoding="utf-8") if gzipped else path.open(encoding="utf-8")) as f:
                    msg["records"].extend(json.loads(x) for x in f)
        yield msg


def bookmarks_of(state: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """stream -> its bookmark, in a state of one account (the tap keeps one partition per account; the
    partition's own dict, so that changing it changes the state)."""
    out: dict[str, dict[str, Any]] = {}
    for stream, bookmark in ((state or {}).get("bookmarks") or {}).items():
        partitions = bookmark.get("partitions")
        if partitions is None:
            out[stream] = bookmark
        else:
            assert len(partitions) == 1, (stream, partitions)
            out[stream] = partitions[0]
    return out


def local_to_rfc3339(value: Any, zone: ZoneInfo = MOSCOW, utc: bool = True) -> Any:
    """The simulator's naive account time (Moscow unless ``zone``) as the RFC 3339 string the tap promises:
    in UTC ("+00:00", `datetime_output` utc, the default), or with the account's offset (``utc=False``)."""
    if isinstance(value, str) and len(value) == 19 and value[10] == " ":
        moment = dt.datetime.fromisoformat(value).replace(tzinfo=zone)
        return moment.astimezone(dt.timezone.utc).isoformat() if utc else moment.isoformat()
    return value


def as_emitted(record: dict[str, Any], schema: dict[str, Any] | None = None, zone: ZoneInfo = MOSCOW,
               utc: bool = True) -> dict[str, Any]:
    """A truth record in the shape the tap should emit: every account-local date-time, nested ones
    too, as RFC 3339 in UTC, or with the account's offset (``utc=False``); ``schema`` is accepted for
    symmetry, not needed."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return local_to_rfc3339(value, zone, utc)

    out: dict[str, Any] = walk(record)
    return out


def schema_type(schema: dict[str, Any], *path: str) -> list[str]:
    """The JSON types of the property at ``path`` (through objects and arrays of objects) of a stream's schema."""
    node = schema["properties"]
    for step in path[:-1]:
        node = node[step].get("items", node[step])["properties"]
    types: list[str] = node[path[-1]]["type"]
    return types


def names_number(text: str, number: int) -> bool:
    """Whether ``text`` holds ``number`` as a number of its own: not as digits inside a timestamp, a
    duration, a longer id or a JSON value ("...27.995004Z", "0.5004", '"pid":5004' do not name 5004)."""
    return re.search(rf"(?<![\w.:]){number}(?![\w.])", text) is not None


def multiset(records: list[dict[str, Any]]) -> Counter[str]:
    """Records as a multiset: two identical records count twice (a dict keyed on anything would fold them)."""
    return Counter(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in records)


def by_key(records: list[dict[str, Any]], key: tuple[str, ...]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r.get(k) for k in key): r for r in records}


def keys_of(records: list[dict[str, Any]], key: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return [tuple(r.get(k) for k in key) for r in records]


def discover(config: dict[str, Any]) -> dict[str, Any]:
    """The tap's catalog for ``config`` (what `tap-comagic --discover` writes)."""
    from tap_comagic.tap import TapCoMagic

    catalog: dict[str, Any] = json.loads(json.dumps(TapCoMagic(config=copy.deepcopy(config)).catalog_dict))
    return catalog


def select(catalog: dict[str, Any], streams: set[str], deselect_fields: dict[str, set[str]] | None = None
           ) -> dict[str, Any]:
    """Select exactly these streams (all their fields, less any deselected ones)."""
    for entry in catalog["streams"]:
        chosen = entry["tap_stream_id"] in streams
        dropped = (deselect_fields or {}).get(entry["tap_stream_id"], set())
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = chosen
            elif md["breadcrumb"][-1] in dropped:
                md["metadata"]["selected"] = False
            else:
                md["metadata"]["selected"] = chosen
    return catalog
