"""The sandbox as an agency (partner): an agent token lists its clients and reads each client's own account."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
import requests

from tap_comagic.sandbox import Sandbox, SandboxConfig
from tap_comagic.sandbox.agency import CustomerConfig, CustomerUser, agency_demo

AGENT_KEY = "agent-test-key"
RANGE = {"date_from": "2026-01-01 00:00:00", "date_till": "2026-01-03 23:59:59"}
SMALL = {"days": 3, "calls_per_day": 6, "chats_per_day": 3, "goals_per_day": 3, "offline_messages_per_day": 2,
         "visitor_sessions_per_day": 8, "api_requests_per_day": 2}
Call = Callable[..., dict[str, Any]]


def demo(**changes: Any) -> SandboxConfig:
    return replace(agency_demo(agent_key=AGENT_KEY, **SMALL), **changes)


def error(doc: dict[str, Any]) -> tuple[str, int]:
    assert "error" in doc, doc
    return doc["error"]["data"]["mnemonic"], doc["error"]["code"]


def data(doc: dict[str, Any]) -> list[dict[str, Any]]:
    assert "error" not in doc, doc["error"]
    rows: list[dict[str, Any]] = doc["result"]["data"]
    return rows


@pytest.fixture
def caller(rpc_to: Callable[..., Call]) -> Callable[[Sandbox], Call]:
    """``caller(sb)``: conftest's ``rpc`` bound to ``sb``, sending the agent's key unless told otherwise."""
    return lambda sb: rpc_to(sb, AGENT_KEY)


@pytest.fixture(scope="module")
def agency() -> Iterator[Sandbox]:
    with Sandbox(demo()) as sb:
        yield sb


@pytest.fixture
def rpc(agency: Sandbox, caller: Callable[[Sandbox], Call]) -> Call:
    return caller(agency)


def test_get_customers_lists_the_active_clients_not_the_archived(rpc: Call) -> None:
    rows = data(rpc("get.customers"))
    assert [r["id"] for r in rows] == [5001, 5002, 5003]
    assert {r["status"] for r in rows} == {"active"}
    assert rpc("get.customers", fields=["id", "name"], filter={"field": "id", "operator": "=", "value": 5002})[
        "result"]["data"] == [{"id": 5002, "name": "ИП Васильев"}]
    page = rpc("get.customers", fields=["id"], limit=1, offset=1, sort=[{"field": "status", "order": "asc"}])
    assert page["result"]["data"] == [{"id": 5002}]
    assert page["result"]["metadata"]["total_items"] == 3


@pytest.mark.parametrize("token", ["client-5001-key", "comagic-sandbox-key"])
def test_get_customers_refuses_a_client_token(rpc: Call, token: str) -> None:
    assert error(rpc("get.customers", token=token)) == ("forbidden", -32003)
    assert error(rpc("get.customer_users", token=token)) == ("forbidden", -32003)


def test_get_customer_users_filtered_by_customer_id(rpc: Call) -> None:
    rows = data(rpc("get.customer_users", filter={"field": "customer_id", "operator": "=", "value": 5002}))
    assert sorted((r["id"], r["customer_id"]) for r in rows) == [(70021, 5002), (70022, 5002)]
    assert set(rows[0]) == {"id", "login", "description", "name", "customer_id"}
    everyone = {r["customer_id"] for r in data(rpc("get.customer_users"))}
    assert everyone == {5001, 5002, 5003}  # the archived client's users are not offered


def test_agent_needs_user_id_and_reads_each_clients_own_data(agency: Sandbox, rpc: Call) -> None:
    assert error(rpc("get.calls_report", **RANGE)) == ("required_parameter_missed", -32602)
    assert error(rpc("get.calls_report", user_id=999, **RANGE))[0] == "invalid_parameter_value"
    first = data(rpc("get.calls_report", user_id=70011, fields=["id", "start_time"], **RANGE))
    second = data(rpc("get.calls_report", user_id=70021, fields=["id", "start_time"], **RANGE))
    own = data(rpc("get.calls_report", token=agency.api_key, fields=["id", "start_time"], **RANGE))
    assert first
    assert second
    assert first != second
    assert own not in (first, second)
    for cid, got in ((5001, first), (5002, second)):
        want = [{"id": r["id"], "start_time": r["start_time"]}
                for r in agency.truth("get.calls_report", RANGE["date_from"], RANGE["date_till"], customer_id=cid)]
        assert got == want
    assert len(first) == 3 * 30
    assert len(second) == 3 * 12


def test_client_token_reads_its_own_account_without_user_id(agency: Sandbox, rpc: Call) -> None:
    got = data(rpc("get.chats_report", token="client-5002-key", fields=["id"], **RANGE))
    want = agency.truth("get.chats_report", RANGE["date_from"], RANGE["date_till"], customer_id=5002)
    assert [r["id"] for r in got] == [r["id"] for r in want]


def test_get_account_per_client(rpc: Call) -> None:
    assert data(rpc("get.account", token="client-5001-key")) == [
        {"app_id": 5001, "name": "ООО «Ромашка»", "timezone": "Europe/Moscow"}]
    assert data(rpc("get.account", user_id=70021)) == [
        {"app_id": 5002, "name": "ИП Васильев", "timezone": "Asia/Yekaterinburg"}]
    assert error(rpc("get.account"))[0] == "required_parameter_missed"


def test_v3_methods_name_the_client_with_customer_id(agency: Sandbox, rpc: Call) -> None:
    flt = {"filters": [{"field": "date_from", "operator": "eq", "value": "2026-01-01"},
                       {"field": "date_till", "operator": "eq", "value": "2026-01-03"}], "condition": "and"}
    assert error(rpc("get.api_requests_report", filter=flt))[0] == "required_parameter_missed"
    got = data(rpc("get.api_requests_report", customer_id=5002, filter=flt, field=["request_id"], limit=1000))
    want = agency.truth("get.api_requests_report", "2026-01-01 00:00:00", "2026-01-03 23:59:59", customer_id=5002)
    assert got
    assert [r["request_id"] for r in got] == [r["request_id"] for r in want]


def test_ip_not_whitelisted_client(rpc: Call) -> None:
    for method in ("get.calls_report", "get.sites"):
        params = RANGE if method == "get.calls_report" else {}
        assert error(rpc(method, user_id=70031, **params)) == ("ip_not_whitelisted", -32003)
    assert data(rpc("get.calls_report", user_id=70011, limit=1, **RANGE))  # the other clients still answer


def test_archived_and_inactive_clients_answer_account_inactive(caller: Callable[[Sandbox], Call]) -> None:
    cfg = demo()
    inactive = replace(cfg.customers[0], account_inactive=True)
    with Sandbox(replace(cfg, customers=(inactive, *cfg.customers[1:]))) as sb:
        rpc = caller(sb)
        assert error(rpc("get.calls_report", user_id=70011, **RANGE)) == ("account_inactive", -32009)
        assert error(rpc("get.calls_report", token="client-5001-key", **RANGE)) == ("account_inactive", -32009)
        assert error(rpc("get.calls_report", user_id=70041, **RANGE)) == ("account_inactive", -32009)
        assert data(rpc("get.calls_report", user_id=70021, limit=1, **RANGE))


def test_forbidden_method_for_one_user_of_a_client(rpc: Call) -> None:
    assert error(rpc("get.chats_report", user_id=70022, **RANGE)) == ("forbidden", -32003)
    assert data(rpc("get.calls_report", user_id=70022, limit=1, **RANGE))
    assert data(rpc("get.chats_report", user_id=70021, limit=1, **RANGE))


def test_disabled_components_per_client(caller: Callable[[Sandbox], Call]) -> None:
    cfg = demo()
    first = cfg.customers[0]
    no_chats = replace(first, account=replace(first.account, disabled_methods=frozenset({"get.chats_report"}),
                                              call_center=False))
    with Sandbox(replace(cfg, customers=(no_chats, *cfg.customers[1:]))) as sb:
        rpc = caller(sb)
        assert error(rpc("get.chats_report", user_id=70011, **RANGE)) == ("method_component_disabled", -32008)
        assert error(rpc("get.employee_stat", user_id=70011, **RANGE))[0] == "method_component_disabled"
        assert data(rpc("get.chats_report", user_id=70021, limit=1, **RANGE))
        assert data(rpc("get.employee_stat", user_id=70021, limit=1, **RANGE))


def test_limits_are_per_client(caller: Callable[[Sandbox], Call]) -> None:
    cfg = demo()
    first = cfg.customers[0]
    tight = replace(first, account=replace(first.account, minute_limit=2))
    with Sandbox(replace(cfg, customers=(tight, *cfg.customers[1:]))) as sb:
        rpc = caller(sb)
        limits = [rpc("get.sites", user_id=70011)["result"]["metadata"]["limits"] for _ in range(2)]
        assert [(x["minute_limit"], x["minute_remaining"]) for x in limits] == [(2, 1), (2, 0)]
        assert error(rpc("get.sites", user_id=70011)) == ("limit_exceeded", -32029)
        assert error(rpc("get.sites", token="client-5001-key"))[0] == "limit_exceeded"
        other = rpc("get.sites", user_id=70021)["result"]["metadata"]["limits"]
        assert other["minute_remaining"] == other["minute_limit"] - 1
        own = rpc("get.sites", token=sb.api_key)["result"]["metadata"]["limits"]
        assert own["minute_remaining"] == own["minute_limit"] - 1


def test_agent_login_acts_as_the_agent(rpc: Call) -> None:
    doc = rpc("login.user", token=None, login="agency", password="agency-password")
    token = doc["result"]["data"]["access_token"]
    assert [r["id"] for r in data(rpc("get.customers", token=token))] == [5001, 5002, 5003]
    assert error(rpc("get.calls_report", token=token, **RANGE))[0] == "required_parameter_missed"
    assert data(rpc("get.calls_report", token=token, user_id=70011, limit=1, **RANGE))


def test_request_log_names_the_client(caller: Callable[[Sandbox], Call]) -> None:
    with Sandbox(demo()) as sb:
        rpc = caller(sb)
        rpc("get.sites", user_id=70021)
        rpc("get.sites", token="client-5001-key")
        rpc("get.sites", token=sb.api_key)
        rpc("get.customers")
        rpc("get.sites", user_id=70031)
        assert [(r.method, r.customer_id, r.outcome) for r in sb.log] == [
            ("get.sites", 5002, "ok"), ("get.sites", 5001, "ok"), ("get.sites", None, "ok"),
            ("get.customers", None, "ok"), ("get.sites", 5003, "ip_not_whitelisted")]


def test_late_records_land_in_one_client(caller: Callable[[Sandbox], Call]) -> None:
    with Sandbox(demo()) as sb:
        before = {cid: len(sb.truth("get.calls_report", customer_id=cid)) for cid in (5001, 5002)}
        own_before = len(sb.truth("get.calls_report"))
        ids = sb.add_late_records(2, customer_id=5002)
        assert {cid: len(sb.truth("get.calls_report", customer_id=cid)) for cid in (5001, 5002)} == {
            5001: before[5001], 5002: before[5002] + 2}
        assert len(sb.truth("get.calls_report")) == own_before
        got = data(caller(sb)("get.calls_report", user_id=70021, fields=["id"], **RANGE))
        assert set(ids) <= {r["id"] for r in got}


def test_the_configured_account_is_unchanged_by_the_agency(caller: Callable[[Sandbox], Call]) -> None:
    with Sandbox(SandboxConfig(**SMALL)) as plain, Sandbox(demo()) as sb:
        token = plain.api_key
        assert token == sb.api_key
        assert caller(plain)("get.calls_report", token=token, **RANGE)["result"]["data"] == caller(sb)(
            "get.calls_report", token=token, **RANGE)["result"]["data"]


def test_bad_agency_config_is_refused() -> None:
    users = (CustomerUser(id=1, login="u", name="u"),)
    twice = (CustomerConfig(id=7, name="a", account=SandboxConfig(), users=users),
             CustomerConfig(id=7, name="b", account=SandboxConfig()))
    with pytest.raises(ValueError, match="id 7 is given twice"):
        Sandbox(SandboxConfig(customers=twice))


def test_changed_records_change_one_client() -> None:
    with Sandbox(demo()) as sb:
        before = {cid: sb.truth("get.calls_report", customer_id=cid) for cid in (5001, 5002)}
        own = sb.truth("get.chats_report")
        changed = sb.change_old_records(4, customer_id=5001)
        assert changed
        assert sb.truth("get.calls_report", customer_id=5002) == before[5002]
        assert sb.truth("get.chats_report") == own
        for c in changed:
            after = {r["id"]: r for r in sb.truth(f"get.{c['report']}_report", customer_id=5001)}
            assert {k: after[c["id"]][k] for k in c["changes"]} == c["changes"]


def test_two_readers_of_different_clients_at_once(agency: Sandbox) -> None:
    """Two shards of clients (two tap processes) read one simulator side by side, each its own clients."""
    def read(user_id: int) -> list[list[int]]:
        with requests.Session() as session:
            pages = []
            for offset in range(0, 60, 5):
                params = {"access_token": AGENT_KEY, "user_id": user_id, "fields": ["id"], "limit": 5,
                          "offset": offset, **RANGE}
                body = {"jsonrpc": "2.0", "id": offset, "method": "get.calls_report", "params": params}
                pages.append([r["id"] for r in data(session.post(agency.url, json=body, timeout=30).json())])
            return pages

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(read, (70011, 70021))
    for cid, pages in ((5001, first), (5002, second)):
        want = [r["id"] for r in agency.truth("get.calls_report", RANGE["date_from"], RANGE["date_till"],
                                              customer_id=cid)]
        assert [i for p in pages for i in p] == want[:60]
