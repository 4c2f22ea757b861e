"""Run tap-comagic as a user would (a subprocess) and compare it with the simulator's truth."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tap_comagic.sandbox import SandboxConfig

MOSCOW = ZoneInfo("Europe/Moscow")

# stream -> (API method, primary key, replication key); written from the issue, not from the tap
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
# the reference tables, read whole: (API method, primary key); from the issue too
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
}


def method_and_key(stream: str) -> tuple[str, tuple[str, ...]]:
    """A stream's API method and primary key (less customer_id), from the tables above."""
    if stream in REPORTS:
        method, key, _ = REPORTS[stream]
        return method, key
    return {**OTHER_KEYS, **REFERENCE}[stream]


def small_config(**overrides: Any) -> SandboxConfig:
    """A simulator of a few days and few records: fast for tests that need a server, not volume."""
    base: dict[str, Any] = {"days": 10, "calls_per_day": 20, "chats_per_day": 6, "goals_per_day": 8,
                            "offline_messages_per_day": 4, "visitor_sessions_per_day": 30,
                            "api_requests_per_day": 5}
    base.update(overrides)
    return SandboxConfig(**base)


@dataclass
class Run:
    records: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key_properties of the SCHEMA messages
    states: list[dict[str, Any]] = field(default_factory=list)
    accounts: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))  # stream -> customer_id
    owners: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # each record's customer_id
    stderr: str = ""
    stdout: str = ""
    returncode: int = 0

    @property
    def state(self) -> dict[str, Any]:
        return self.states[-1] if self.states else {}

    def of(self, stream: str, customer_id: int) -> list[dict[str, Any]]:
        """The records of ``stream`` that name account ``customer_id``."""
        return [r for r, owner in zip(self.records[stream], self.owners[stream], strict=True) if owner == customer_id]


def tap_command(folder: str, config: dict[str, Any], state: dict[str, Any] | None = None,
                catalog: dict[str, Any] | None = None) -> list[str]:
    """The `tap-comagic` command line, its input files written into ``folder``."""
    cmd = [sys.executable, "-m", "tap_comagic"]
    for name, content in (("config", config), ("state", state), ("catalog", catalog)):
        if content is not None:
            path = Path(folder) / f"{name}.json"
            path.write_text(json.dumps(content))
            cmd += [f"--{name}", str(path)]
    return cmd


def run_tap(config: dict[str, Any], *, state: dict[str, Any] | None = None,
            catalog: dict[str, Any] | None = None, args: tuple[str, ...] = (),
            env: dict[str, str] | None = None, timeout: float = 600) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = tap_command(tmp, config, state, catalog)
        proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, check=False)
    run = Run(stderr=proc.stderr, stdout=proc.stdout, returncode=proc.returncode)
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        read_message(run, json.loads(line))
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
    proc = subprocess.run([sys.executable, "-m", "tap_comagic", "--discover", "--config", "/dev/stdin"],
                          input=json.dumps(config), capture_output=True, text=True, check=True, timeout=120)
    catalog: dict[str, Any] = json.loads(proc.stdout)
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
