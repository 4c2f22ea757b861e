"""Agency mode reads each client with exactly the requests a run of that client's own token makes; what the
agent adds is its own get.customers and get.customer_users pages, read once per run, and nothing else."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from tap_comagic.sandbox import CustomerConfig, CustomerUser, LoggedRequest, Sandbox, SandboxConfig
from tests.reliability_helpers import catalog, small_world, tap_config
from tests.tap_harness import Run, run_tap

AGENT_KEY = "agency-test-agent-key"
PAGE = 2  # smaller than the agent's lists, so that they take several pages
ZONES = ("Europe/Moscow", "Asia/Yekaterinburg", "Europe/Samara")
# a child of each kind (call_legs of calls, chat_messages of chats read for their ids) and the account row
STREAMS = frozenset({"calls", "call_legs", "chat_messages", "account"})


def client_key(cid: int) -> str:
    return f"agency-test-client-{cid}"


def agency(clients: int = 3) -> SandboxConfig:
    """An agent with ``clients`` small clients, each with its own data and zone; every second one has two
    users (the agent acts as one of them)."""
    customers = []
    for i in range(clients):
        cid = 6001 + i
        account = small_world(seed=30 + i, calls_per_day=4 + 2 * i, chats_per_day=2 + i, timezone=ZONES[i % 3],
                              api_keys=(client_key(cid),), users={})
        users = tuple(CustomerUser(id=cid * 10 + j, login=f"agent-{cid}-{j}", name=f"API {cid} {j}")
                      for j in range(1 + i % 2))
        customers.append(CustomerConfig(id=cid, name=f"Client {cid}", account=account, users=users))
    return small_world(days=1, customers=tuple(customers), agent_api_keys=(AGENT_KEY,))


def requests_by_account(entries: Iterable[LoggedRequest]) -> dict[int | None, Counter[str]]:
    """account (None: the agent's own calls) -> method -> requests answered."""
    out: dict[int | None, Counter[str]] = {}
    for e in entries:
        assert e.outcome == "ok", e
        out.setdefault(e.customer_id, Counter())[str(e.method)] += 1
    return out


def records_of(run: Run, cid: int) -> dict[str, int]:
    return {stream: counts[cid] for stream, counts in run.accounts.items() if counts[cid]}


def test_each_client_costs_the_requests_of_its_own_run_and_the_agent_only_its_lists() -> None:
    with Sandbox(agency()) as sim:
        cfg = tap_config(sim, page_size=PAGE)
        first = len(sim.log)
        run = run_tap({**cfg, "access_token": AGENT_KEY, "customers": "all"}, catalog=catalog(STREAMS), timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        agent = requests_by_account(sim.log[first:])
        single: dict[int, Counter[str]] = {}
        for customer in sim.config.customers:
            first = len(sim.log)
            own = run_tap({**cfg, "access_token": client_key(customer.id)}, catalog=catalog(STREAMS), timeout=120)
            assert own.returncode == 0, own.stderr[-2000:]
            logged = requests_by_account(sim.log[first:])
            assert set(logged) == {customer.id}, logged
            single[customer.id] = logged[customer.id]
            records = records_of(own, customer.id)
            assert set(records) == STREAMS, records
            assert records_of(run, customer.id) == records, customer.id
        customers = sim.config.customers

    ids = [c.id for c in customers]
    assert set(agent) == {None, *ids}, agent
    for cid in ids:
        assert single[cid]["get.account"] == 1, (cid, single[cid])
        assert agent[cid] == single[cid], (cid, agent[cid], single[cid])
    # the lists are read whole, in pages, once per run (not per client, nor filtered per client)
    users = sum(len(c.users) for c in customers)
    assert len(customers) > PAGE < users  # both lists take several pages
    assert agent[None] == Counter({"get.customers": math.ceil(len(customers) / PAGE),
                                   "get.customer_users": math.ceil(users / PAGE)}), agent[None]
    overhead = sum(agent[None].values())
    assert sum(sum(c.values()) for c in agent.values()) == sum(sum(c.values()) for c in single.values()) + overhead
