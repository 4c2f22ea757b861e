"""Account discovery through the client, with a fake transport and no server: an agent's clients, the
client a user acts for, and each account's id and time zone from get.account."""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from tap_comagic.accounts import Accounts
from tap_comagic.api import CoMagicClient, Retries
from tap_comagic.auth import Credentials
from tap_comagic.checks import settings_of
from tap_comagic.context import Account, Connection, RunContext
from tap_comagic.customers import Customer
from tap_comagic.errors import StopRun
from tap_comagic.limits import Throttle
from tap_comagic.progress import Progress
from tap_comagic.settings import CONFIG_SCHEMA
from tests.unit.fake_api import URL, FakeAPI, Reply, error, ok

CUSTOMERS = [{"id": 5001, "name": "Romashka"}, {"id": 5002, "name": "Vasiliev"}, {"id": 5003, "name": "No user"}]
USERS = [{"id": 70011, "customer_id": 5001}, {"id": 70022, "customer_id": 5002}, {"id": 70021, "customer_id": 5002}]


def agency(body: dict[str, Any]) -> Reply:
    """An agent's API: its clients and their users; get.account answers for the user's client."""
    method, params = body["method"], body["params"]
    if method in ("get.customers", "get.customer_users"):
        rows = CUSTOMERS if method == "get.customers" else USERS
        return ok([{k: r[k] for k in params["fields"]} for r in rows], total_items=len(rows))
    if method == "get.account":
        client = {70011: 5001, 70021: 5002, 70022: 5002}.get(params.get("user_id"), 4000)
        return ok({"app_id": client, "timezone": "Asia/Yekaterinburg" if client == 5002 else "Europe/Moscow"})
    return error("method_not_found")


def accounts(fake: FakeAPI, **config: Any) -> Accounts:
    settings = settings_of({"access_token": "agent-key", "start_date": "2026-01-01", **config}, CONFIG_SCHEMA)
    session = requests.Session()
    session.mount("https://", fake)
    token = Throttle()
    client = CoMagicClient(URL, Credentials(access_token="agent-key"), throttle=token, retries=Retries(0, 0.0),
                           session=session)
    logger = logging.getLogger("test-accounts")
    run = RunContext(settings, Account.of(settings, token), Connection(lambda: client), user_agent="test",
                     write_state=lambda: None, progress=Progress(logger, 3600))
    return Accounts(run, logger)


def test_all_of_an_agents_clients_with_a_user_each_and_those_without_one_skipped() -> None:
    found = accounts(FakeAPI(agency), customers="all")
    chosen = found.customers()
    assert chosen == [Customer(5001, 70011, "Romashka"), Customer(5002, 70021, "Vasiliev")]  # the lowest user id
    skipped = {t.customer_id: t.skipped for t in found.run.progress.tallies if t.skipped}
    assert list(skipped) == [5003]


def test_customers_from_a_token_that_is_no_agents_stop_the_run_saying_so() -> None:
    with pytest.raises(StopRun) as stop:
        accounts(FakeAPI(lambda body: error("method_not_found")), customers="all").customers()
    assert "`customers` needs an agent (partner) token" in str(stop.value.reason)


def test_an_agents_user_id_acts_for_the_client_get_customer_users_names() -> None:
    assert accounts(FakeAPI(agency), user_id=70022).customers() == [Customer(5002, 70022)]


def test_each_account_gets_its_id_and_time_zone_from_get_account_and_its_own_points() -> None:
    fake = FakeAPI(agency)
    found = accounts(fake, customers="all")
    account = found.account_of(Customer(5002, 70021))
    assert (account.customer_id, account.user_id, account.zone) == (5002, 70021, ZoneInfo("Asia/Yekaterinburg"))
    assert account.throttle is not found.run.account.throttle
    assert fake.bodies[-1]["params"]["user_id"] == 70021


def test_a_get_account_answering_for_another_account_is_not_taken_for_the_clients() -> None:
    found = accounts(FakeAPI(agency), customers="all", timezone="Europe/Berlin")
    account = found.account_of(Customer(5009, 70099))  # get.account answers for the agent's own 4000
    assert (account.customer_id, account.zone, account.info) == (5009, ZoneInfo("Europe/Berlin"), None)


def test_the_tokens_own_account_is_named_by_get_account() -> None:
    found = accounts(FakeAPI(agency))
    account = found.account_of(found.customers()[0])
    assert (account.customer_id, account.zone) == (4000, ZoneInfo("Europe/Moscow"))
    assert account.throttle is found.run.account.throttle
