"""Faults on demand and changes between runs, as a client sees them."""

from __future__ import annotations

import contextlib
import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from tap_comagic.sandbox import DEFAULT_LOGIN, DEFAULT_PASSWORD, Faults, Sandbox
from tests.simulator import TEN_DAYS
from tests.tap_harness import small_world

RANGE = {"date_from": "2026-01-01 00:00:00", "date_till": "2026-01-10 23:59:59"}


def post(sb: Sandbox, params: dict[str, Any] | None = None,
         method: str = "get.calls_report") -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; (status, headers, body) or the http.client exception."""
    u = urlsplit(sb.url)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                       "params": params if params is not None else {"access_token": sb.api_key, **RANGE}})
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
    try:
        conn.request("POST", u.path, body=body.encode())
        with conn.getresponse() as r:
            return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def mnemonic(raw: bytes) -> str | None:
    doc = json.loads(raw)
    return doc["error"]["data"]["mnemonic"] if "error" in doc else None


@pytest.fixture
def faulty():
    with Sandbox(small_world(**TEN_DAYS), Faults()) as sb:
        yield sb


def test_http_errors(faulty):
    faulty.faults = Faults(http_error=1.0)
    statuses = {post(faulty)[0] for _ in range(12)}
    assert statuses <= {500, 502, 503}
    assert len(statuses) >= 2
    assert faulty.injected["http_error"] == 12
    assert {e.outcome for e in faulty.log} <= {"http_500", "http_502", "http_503"}


def test_dropped_connection(faulty):
    faulty.faults = Faults(drop=1.0)
    with pytest.raises(http.client.IncompleteRead):
        post(faulty)
    assert faulty.injected["drop"] == 1
    assert faulty.log[-1].outcome == "dropped"


def test_truncated_body(faulty):
    faulty.faults = Faults(truncated=1.0)
    status, headers, raw = post(faulty)
    assert status == 200
    assert int(headers["Content-Length"]) == len(raw)
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    assert faulty.injected["truncated"] == 1


def test_slow_answer(faulty):
    faulty.faults = Faults(slow=1.0, slow_seconds=0.3)
    t = time.monotonic()
    status, _, raw = post(faulty)
    assert time.monotonic() - t >= 0.3
    assert status == 200
    assert mnemonic(raw) is None
    assert faulty.injected["slow"] == 1


def test_internal_error(faulty):
    faulty.faults = Faults(internal_error=1.0)
    assert mnemonic(post(faulty)[2]) == "internal_error"
    assert faulty.injected["internal_error"] == 1


def test_limit_burst_resets_on_the_clock(faulty):
    faulty.faults = Faults(limit_burst=1.0, limit_reset_seconds=30)
    doc = json.loads(post(faulty)[2])
    assert doc["error"]["data"]["mnemonic"] == "limit_exceeded"
    limits = doc["error"]["data"]["metadata"]["limits"]
    assert limits["minute_remaining"] == 0
    assert 0 < limits["minute_reset"] <= 30
    faulty.faults = Faults()
    assert mnemonic(post(faulty)[2]) == "limit_exceeded"  # the burst lasts until the reset
    faulty.clock.advance(31)
    assert mnemonic(post(faulty)[2]) is None
    assert faulty.injected["limit_burst"] == 2


def test_token_expiry(faulty):
    login = {"login": DEFAULT_LOGIN, "password": DEFAULT_PASSWORD}
    token = json.loads(post(faulty, login, "login.user")[2])["result"]["data"]["access_token"]
    faulty.faults = Faults(token_expiry=1.0)
    assert mnemonic(post(faulty, {"access_token": token, **RANGE})[2]) == "access_token_expired"
    assert mnemonic(post(faulty)[2]) is None  # API keys are not sessions: untouched
    faulty.faults = Faults()
    assert mnemonic(post(faulty, {"access_token": token, **RANGE})[2]) == "access_token_expired"
    fresh = json.loads(post(faulty, login, "login.user")[2])["result"]["data"]["access_token"]
    assert mnemonic(post(faulty, {"access_token": fresh, **RANGE})[2]) is None
    assert faulty.injected["token_expiry"] == 1


def test_disabled_methods_fault(faulty):
    faulty.faults = Faults(disabled_methods=frozenset({"get.calls_report"}))
    assert mnemonic(post(faulty)[2]) == "method_component_disabled"
    assert mnemonic(post(faulty, {"access_token": faulty.api_key, **RANGE}, "get.goals_report")[2]) is None
    assert faulty.injected["method_component_disabled"] == 1


def _outcomes(sb: Sandbox, n: int) -> list[str]:
    for _ in range(n):
        with contextlib.suppress(http.client.HTTPException):
            post(sb)
    return [e.outcome for e in sb.log]


def test_faults_are_deterministic_and_shared_out():
    faults = {"seed": 5, "http_error": 0.2, "internal_error": 0.2, "truncated": 0.1, "drop": 0.1}
    world = small_world(**TEN_DAYS)
    with Sandbox(world, Faults(**faults)) as a, Sandbox(world, Faults(**faults)) as b:
        first, second = _outcomes(a, 40), _outcomes(b, 40)
        assert first == second
        assert sum(a.injected.values()) == sum(o != "ok" for o in first)
    assert 8 <= sum(o != "ok" for o in first) <= 32
    assert {"ok", "internal_error", "truncated", "dropped"} <= set(first)


# ---- changes between runs ----------------------------------------------------------------------------------
def test_late_records_appear_everywhere(sandbox):
    before = {r["id"] for r in sandbox.truth("get.calls_report")}
    comms_before = len(sandbox.truth("get.communications_report"))
    ids = sandbox.add_late_records(5, "calls", "2026-01-02 00:00:00", "2026-01-04 23:59:59")
    calls = {r["id"]: r for r in sandbox.truth("get.calls_report")}
    assert set(calls) == before | set(ids)
    assert all("2026-01-02" <= calls[i]["start_time"][:10] <= "2026-01-04" for i in ids)
    assert len(sandbox.truth("get.communications_report")) == comms_before + 5
    legs = {r["call_session_id"] for r in sandbox.truth("get.call_legs_report")}
    fin = {r["call_session_id"] for r in sandbox.truth("get.financial_call_legs_report")}
    assert set(ids) <= legs
    assert set(ids) <= fin
    _, _, raw = post(sandbox, {"access_token": sandbox.api_key, "date_from": "2026-01-02 00:00:00",
                               "date_till": "2026-01-04 23:59:59", "fields": ["id"], "limit": 10_000})
    served = [r["id"] for r in json.loads(raw)["result"]["data"]]
    assert set(ids) <= set(served)
    assert served == [i for i in calls if "2026-01-02" <= calls[i]["start_time"][:10] <= "2026-01-04"]
    chats = sandbox.add_late_records(2, "chats", "2026-01-05 00:00:00", "2026-01-05 23:59:59")
    for chat in (c for c in sandbox.truth("get.chats_report") if c["id"] in chats):
        assert len(sandbox.truth("get.chat_messages_report", chat_ids=[chat["id"]])) == chat["messages_count"]


def test_changed_records_show_in_truth_and_answers(sandbox):
    changes = sandbox.change_old_records(12, "2026-01-01 00:00:00", "2026-01-05 23:59:59")
    assert len(changes) == 12
    method = {"calls": "get.calls_report", "chats": "get.chats_report", "goals": "get.goals_report",
              "offline_messages": "get.offline_messages_report"}
    for ch in changes:
        rec = next(r for r in sandbox.truth(method[ch["report"]]) if r["id"] == ch["id"])
        for k, v in ch["changes"].items():
            assert rec[k] == v
        fields = sorted(ch["changes"])
        _, _, raw = post(sandbox, {"access_token": sandbox.api_key, **RANGE, "fields": ["id", *fields],
                                   "limit": 10_000}, method[ch["report"]])
        served = next(r for r in json.loads(raw)["result"]["data"] if r["id"] == ch["id"])
        assert {k: served[k] for k in fields} == {k: rec[k] for k in fields}
    kinds = {k for ch in changes for k in ch["changes"]}
    assert {"tags", "sale_date"} & kinds
