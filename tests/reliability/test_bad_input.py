"""Bad input: every mistake a user can make in config, state or catalog ends the run with a non-zero
exit and one clear line naming the setting (or field) and the fix; never a traceback, never a secret.

Decisions where the API's documentation leaves the choice:
- An unknown setting is an error (a typo such as ``windows_days`` must not be ignored silently).
- A bookmark without an offset is account time (the tap's own rule for naive dates): a safe fallback.
- A bookmark that is no date at all is an error naming the stream: starting over silently could re-read
  months, and guessing could lose data.
- A catalog selecting a stream or field the tap does not have is an error naming it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tap_comagic.sandbox import Sandbox
from tests.reliability_helpers import catalog, error_lines, small_world

SECRET_KEY = "sk-live-0123456789abcdef"
SECRET_PASSWORD = "pw-Very$ecret-42"


@pytest.fixture(scope="module")
def sim() -> Iterator[Sandbox]:
    with Sandbox(small_world(api_keys=(SECRET_KEY,), users={"analyst": SECRET_PASSWORD})) as sb:
        yield sb


def base(sim: Sandbox) -> dict[str, Any]:
    return {"api_url": sim.url, "access_token": SECRET_KEY, "start_date": "2026-01-01",
            "end_date": "2026-01-02 23:59:59", "window_days": 1, "page_size": 50, "retry_backoff_seconds": 0.01}


@dataclass
class Case:
    name: str
    change: dict[str, Any] = field(default_factory=dict)  # None deletes a key
    names: tuple[str, ...] = ()  # each must appear in the error line
    raw_config: str | None = None  # the config file's text, instead of JSON of the config
    raw_state: str | None = None
    state: dict[str, Any] | None = None
    catalog: dict[str, Any] | None = None
    bug: str | None = None  # a known tap bug: the case is xfail(strict)


def goals_bookmark(value: str) -> dict[str, Any]:
    return {"bookmarks": {"goals": {"replication_key": "date_time", "replication_key_value": value}}}


def catalog_with_field(name: str) -> dict[str, Any]:
    cat = catalog({"goals"})
    for entry in cat["streams"]:
        if entry["tap_stream_id"] == "goals":
            entry["schema"]["properties"][name] = {"type": ["string", "null"]}
            entry["metadata"].append({"breadcrumb": ["properties", name],
                                      "metadata": {"inclusion": "available", "selected": True}})
    return cat


def catalog_with_stream(name: str) -> dict[str, Any]:
    cat = catalog({"goals"})
    extra = json.loads(json.dumps(next(e for e in cat["streams"] if e["tap_stream_id"] == "goals")))
    extra["tap_stream_id"] = extra["stream"] = name
    cat["streams"].append(extra)
    return cat


def catalog_before_accounts(*, key_only: bool = False) -> dict[str, Any]:
    """A catalog saved before records named their account (no customer_id in schema or key), or one whose key
    alone was edited to leave it out (its rows of two accounts would merge as well)."""
    cat = catalog({"goals"})
    for entry in cat["streams"]:
        entry["key_properties"] = [k for k in entry["key_properties"] if k != "customer_id"]
        if not key_only:
            entry["schema"]["properties"].pop("customer_id")
            entry["metadata"] = [m for m in entry["metadata"] if m["breadcrumb"] != ["properties", "customer_id"]]
    return cat


CASES = [
    Case("missing credentials", {"access_token": None}, ("`access_token`", "`login`")),
    Case("both auth modes", {"login": "analyst", "password": SECRET_PASSWORD}, ("`access_token`", "`login`")),
    Case("login without password", {"access_token": None, "login": "analyst"}, ("`password`",)),
    Case("password without login", {"access_token": None, "password": SECRET_PASSWORD}, ("`login`",)),
    Case("malformed start_date", {"start_date": "2026-13-45"}, ("start_date",)),
    Case("start_date not a date", {"start_date": "yesterday"}, ("start_date",)),
    Case("reversed dates", {"start_date": "2026-02-01", "end_date": "2026-01-01"}, ("`end_date`", "`start_date`")),
    Case("window_days over 90", {"window_days": 91}, ("`window_days`", "90")),
    Case("window_days 0", {"window_days": 0}, ("`window_days`", "1")),
    Case("page_size over 10000", {"page_size": 10001}, ("`page_size`", "10000")),
    Case("page_size 0", {"page_size": 0}, ("`page_size`",)),
    Case("lookback_days negative", {"lookback_days": -1}, ("`lookback_days`",)),
    Case("filters for an unknown stream", {"filters": {"callz": {"field": "id", "operator": "=", "value": 1}}},
         ("`filters`", "callz", "calls")),
    Case("filter on a non-filterable field",
         {"filters": {"calls": {"field": "call_records", "operator": "=", "value": 1}}},
         ("filters.calls", "call_records", "not filterable")),
    Case("filter on a field deals_history cannot filter",
         {"filters": {"deals_history": {"field": "comments", "operator": "=", "value": "x"}}},
         ("filters.deals_history", "comments", "not filterable")),
    Case("filter without an operator", {"filters": {"calls": {"field": "id", "value": 1}}},
         ("filters.calls", "operator")),
    Case("filter condition neither and nor or",
         {"filters": {"calls": {"filters": [{"field": "id", "operator": "=", "value": 1}], "condition": "xor"}}},
         ("filters.calls", "condition")),
    Case("unknown time zone", {"timezone": "Mars/Olympus"}, ("`timezone`", "Europe/Moscow")),
    Case("datetime_output neither utc nor account_offset", {"datetime_output": "local"},
         ("datetime_output", "utc")),
    Case("batch_config with stream_maps",
         {"batch_config": {"encoding": {"format": "jsonl", "compression": "gzip"},
                           "storage": {"root": "file:///tmp/tap-comagic-batches"}},
          "stream_maps": {"calls": {"contact_phone_number": "None"}}},
         ("`batch_config`", "`stream_maps`")),
    Case("api_url not https", {"api_url": "http://dataapi.comagic.ru/v2.0"}, ("`api_url`", "https")),
    Case("api_url another scheme", {"api_url": "ftp://127.0.0.1/v2.0"}, ("`api_url`", "https")),
    Case("max_parallel_requests 0", {"max_parallel_requests": 0}, ("`max_parallel_requests`",)),
    Case("max_retries negative", {"max_retries": -1}, ("`max_retries`",)),
    Case("page_size of the wrong type", {"page_size": "abc"}, ("page_size", "integer")),
    Case("access_token of the wrong type", {"access_token": 12345678987654321}, ("access_token",)),
    Case("request_timeout 0", {"request_timeout": 0}, ("`request_timeout`",)),
    Case("retry_backoff_seconds negative", {"retry_backoff_seconds": -1}, ("`retry_backoff_seconds`",)),
    Case("unknown setting (a typo)", {"windows_days": 5}, ("windows_days",)),
    Case("config file not JSON", raw_config='{"access_token": "' + SECRET_KEY + '", start_date: 2026-01-01',
         names=("config",)),
    Case("state file not JSON", raw_state="{bookmarks: ", names=("state",)),
    Case("state file a JSON list", raw_state='[{"bookmarks": {}}]', names=("state", "list")),
    Case("state file an empty JSON list", raw_state="[]", names=("state", "list")),
    Case("state bookmarks a list", raw_state='{"bookmarks": [{"goals": {}}]}', names=("`bookmarks`", "list")),
    Case("a bookmark not an object", raw_state='{"bookmarks": {"goals": "2026-01-02"}}', names=("`goals`",)),
    Case("bookmark not a date", state=goals_bookmark("last tuesday"), catalog=catalog({"goals"}),
         names=("goals", "state", "last tuesday")),
    Case("deals_history bookmark not a date",
         state={"bookmarks": {"deals_history": {"replication_key": "modified_stage_date_time",
                                                "replication_key_value": "last tuesday"}}},
         catalog=catalog({"deals_history"}), names=("deals_history", "state", "last tuesday")),
    Case("catalog selects an unknown field", catalog=catalog_with_field("not_in_schema"),
         names=("not_in_schema",)),
    Case("catalog has an unknown stream", catalog=catalog_with_stream("callz"), names=("callz",)),
    Case("catalog from before customer_id", catalog=catalog_before_accounts(), names=("`customer_id`", "--discover")),
    Case("catalog key without customer_id", catalog=catalog_before_accounts(key_only=True),
         names=("`customer_id`", "--discover")),
    Case("api key the server rejects", {"access_token": "sk-wrong-0000000000"}, ("access_token",)),
    Case("wrong password", {"access_token": None, "login": "analyst", "password": "pw-wrong-0000"},
         ("auth_error", "`password`")),
]


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def run_raw(config_text: str, state_text: str | None, cat: dict[str, Any] | None) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "config.json"
        cfg_path.write_text(config_text)
        cmd = [sys.executable, "-m", "tap_comagic", "--config", str(cfg_path)]
        if state_text is not None:
            (Path(tmp) / "state.json").write_text(state_text)
            cmd += ["--state", str(Path(tmp) / "state.json")]
        if cat is not None:
            (Path(tmp) / "catalog.json").write_text(json.dumps(cat))
            cmd += ["--catalog", str(Path(tmp) / "catalog.json")]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def params() -> list[Any]:
    return [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(reason=f"tap bug: {c.bug}", strict=True)]
                         if c.bug else []) for c in CASES]


@pytest.mark.parametrize("case", params())
def test_bad_input_fails_in_one_clear_line(sim: Sandbox, case: Case) -> None:
    cfg = {**base(sim), **case.change}
    cfg = {k: v for k, v in cfg.items() if v is not None}
    config_text = case.raw_config if case.raw_config is not None else json.dumps(cfg)
    state_text = case.raw_state if case.raw_state is not None else (
        json.dumps(case.state) if case.state is not None else None)
    out = run_raw(config_text, state_text, case.catalog)
    everything = out.stdout + out.stderr
    assert SECRET_KEY not in everything, "the API key leaked"
    assert SECRET_PASSWORD not in everything, "the password leaked"
    assert "12345678987654321" not in everything, "a mistyped access_token leaked"
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr[-1500:]
    errors = error_lines(out.stderr)
    assert len(errors) == 1, errors or out.stderr[-1500:]
    for name in case.names:
        assert name in errors[0], f"{name!r} not in {errors[0]!r}"
    assert not [line for line in out.stdout.splitlines() if '"type":"RECORD"' in line.replace(" ", "")]


def test_there_are_at_least_25_cases() -> None:
    assert len(CASES) >= 25


def test_a_bookmark_without_an_offset_is_read_as_account_time(sim: Sandbox) -> None:
    """A bookmark written by hand may lack its offset: it means account time, and the run resumes from it."""
    cfg = {**base(sim), "lookback_days": 0}
    account = sim.truth("get.account")[0]["app_id"]
    bookmark = {"context": {"customer_id": account}, **goals_bookmark("2026-01-02 12:00:00")["bookmarks"]["goals"]}
    state = {"bookmarks": {"goals": {"partitions": [bookmark]}}}
    out = run_raw(json.dumps(cfg), json.dumps(state), catalog({"goals"}))
    assert out.returncode == 0, out.stderr[-1500:]
    records = [json.loads(line)["record"] for line in out.stdout.splitlines() if '"RECORD"' in line]
    expected = [r["id"] for r in sim.truth("get.goals_report", "2026-01-02 12:00:00", "2026-01-02 23:59:59")]
    assert expected
    assert sorted(r["id"] for r in records) == sorted(expected)
