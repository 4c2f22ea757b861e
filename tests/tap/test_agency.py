"""Agency mode: an agent token reads every client in one run, each row marked with its account.

The simulator plays the agency of ``agency_demo``: clients 5001 (Moscow) and 5002 (Yekaterinburg) with
their own data, 5003 which does not white-list the agent's IP, and 5004, archived (not listed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tap_comagic.sandbox import CustomerConfig, Sandbox, agency_demo
from tests.reliability_helpers import Killed, error_lines, log_lines, run_until
from tests.tap_harness import Run, as_emitted, discover, method_and_key, multiset, names_number, run_tap, select

AGENT_KEY = "agent-key-0123456789"
START, END = "2026-01-01", "2026-01-12 23:59:59"
SIZES = {"days": 12, "calls_per_day": 8, "chats_per_day": 3, "goals_per_day": 4, "offline_messages_per_day": 2,
         "visitor_sessions_per_day": 6, "api_requests_per_day": 3}
ZONES = {5001: ZoneInfo("Europe/Moscow"), 5002: ZoneInfo("Asia/Yekaterinburg")}
READABLE = (5001, 5002)
# stream -> (method, key without customer_id); a report, a child fed ids, one fed windows, a v3 report
# (customer_id instead of user_id) and reference tables
STREAMS = {s: method_and_key(s) for s in ("calls", "call_legs", "chats", "chat_messages", "goals", "api_requests",
                                          "sites", "campaigns", "account")}


def agency(**changes: Any) -> Any:
    return replace(agency_demo(agent_key=AGENT_KEY, start=START, **SIZES), **changes)


@pytest.fixture(scope="module")
def sim() -> Iterator[Sandbox]:
    with Sandbox(agency()) as sb:
        yield sb


def config(sim: Sandbox, **changes: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"api_url": sim.url, "access_token": AGENT_KEY, "customers": "all", "start_date": START,
                           "end_date": END, "window_days": 5, "page_size": 40, "retry_backoff_seconds": 0.01}
    cfg.update(changes)
    return {k: v for k, v in cfg.items() if v is not None}


@pytest.fixture(scope="module")
def catalog(sim: Sandbox) -> dict[str, Any]:
    return select(discover(config(sim)), set(STREAMS))


def truth(sim: Sandbox, stream: str, customer: int) -> list[dict[str, Any]]:
    """What ``stream`` should emit for one client, as the tap emits it (in the client's time zone)."""
    method = STREAMS[stream][0]
    if stream == "chat_messages":
        chats = sim.truth("get.chats_report", START + " 00:00:00", END, customer_id=customer)
        rows = sim.truth(method, customer_id=customer, chat_ids=[c["id"] for c in chats])
    elif stream in ("sites", "campaigns", "account"):
        rows = sim.truth(method, customer_id=customer)
    else:
        rows = sim.truth(method, START + " 00:00:00", END, customer_id=customer)
    return [as_emitted(r, zone=ZONES[customer]) for r in rows]


def same(emitted: list[dict[str, Any]], expected: list[dict[str, Any]], key: tuple[str, ...]) -> bool:
    if not key:
        return multiset(emitted) == multiset(expected)
    got = {tuple(r[k] for k in key): r for r in emitted}
    return len(got) == len(emitted) and got == {tuple(r[k] for k in key): r for r in expected}


def warnings(run: Run) -> list[str]:
    return log_lines(run.stderr, "WARNING")


def summary(run: Run) -> list[str]:
    lines = run.stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if "Summary: customer x stream" in line)
    return lines[start:]


# ---- one run, every client ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def first(sim: Sandbox, catalog: dict[str, Any]) -> Run:
    run = run_tap(config(sim), catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def test_all_clients_each_exactly_keyed_by_customer(sim: Sandbox, first: Run) -> None:
    for stream, (_, key) in STREAMS.items():
        assert set(first.accounts[stream]) == set(READABLE), stream  # 5003 refused, 5004 archived
        for customer in READABLE:
            expected = truth(sim, stream, customer)
            assert expected, (stream, customer)
            assert same(first.of(stream, customer), expected, key), (stream, customer)
    # the clients' data differ: a tap reading one client twice would fail above, and this says so plainly
    assert first.of("calls", 5001) != first.of("calls", 5002)


def test_no_declared_key_merges_two_rows_of_the_run(sim: Sandbox, first: Run) -> None:
    """Each client numbers its own records, so their ids overlap: the key the tap declares (its SCHEMA
    message's key_properties, customer_id first) tells every row of the whole run apart, both clients' rows
    together, and an upserting target keeps as many rows as both clients' truths hold."""
    for stream, (_, key) in STREAMS.items():
        if not key:  # declares no key: targets append (rows checked whole above)
            continue
        declared = first.keys[stream]  # what follows customer_id
        keys = [(owner, *(r[k] for k in declared))
                for r, owner in zip(first.records[stream], first.owners[stream], strict=True)]
        assert len(set(keys)) == len(keys) == sum(len(truth(sim, stream, c)) for c in READABLE), (stream, declared)
    for stream in ("calls", "call_legs", "chats", "chat_messages", "goals"):
        ids = [{r["id"] for r in truth(sim, stream, c)} for c in READABLE]
        assert ids[0] & ids[1], stream  # the same id in both clients: a key without the account merges them


def test_each_client_is_read_in_its_own_time_zone(sim: Sandbox, first: Run) -> None:
    for customer, other in ((5001, 5002), (5002, 5001)):
        emitted = sorted(r["start_time"] for r in first.of("calls", customer))
        rows = sim.truth("get.calls_report", START + " 00:00:00", END, customer_id=customer)
        assert emitted == sorted(as_emitted(r, zone=ZONES[customer])["start_time"] for r in rows)
        assert emitted != sorted(as_emitted(r, zone=ZONES[other])["start_time"] for r in rows)


def test_the_unreachable_client_is_one_warning_and_a_summary_line(sim: Sandbox, first: Run) -> None:
    about = [w for w in warnings(first) if names_number(w, 5003)]
    assert len(about) == 1, warnings(first)
    assert "ip_not_whitelisted" in about[0]
    table = summary(first)
    assert [line for line in table if " 5003 " in line and "ip_not_whitelisted" in line], table
    # archived: not listed, so never asked for, nor named anywhere in the log
    assert not [e for e in sim.log if e.customer_id == 5004]
    assert not [line for line in first.stderr.splitlines() if names_number(line, 5004)]
    for customer in READABLE:
        assert [line for line in table if f" {customer}  calls " in line], table


def test_state_holds_one_partition_per_client(first: Run) -> None:
    for stream in ("calls", "chats", "chat_messages", "call_legs", "goals"):
        contexts = [p["context"] for p in first.state["bookmarks"][stream]["partitions"]]
        assert sorted(c["customer_id"] for c in contexts) == list(READABLE), stream


def test_a_second_run_with_the_state_reads_under_a_fifth(sim: Sandbox, catalog: dict[str, Any], first: Run) -> None:
    second = run_tap(config(sim, lookback_days=1), catalog=catalog, state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    before = sum(len(rows) for rows in first.records.values())
    after = sum(len(rows) for rows in second.records.values())
    assert 0 < after < 0.2 * before, (after, before)


def test_fail_on_skip_makes_a_skip_fatal_after_the_others(sim: Sandbox, catalog: dict[str, Any]) -> None:
    run = run_tap(config(sim, fail_on_skip=True), catalog=catalog)
    assert run.returncode == 1
    for customer in READABLE:  # the readable clients still complete
        assert same(run.of("calls", customer), truth(sim, "calls", customer), ("id",)), customer
    assert sorted(p["context"]["customer_id"] for p in run.state["bookmarks"]["calls"]["partitions"]) == [5001, 5002]
    assert len(error_lines(run.stderr)) == 1, error_lines(run.stderr)


# ---- a client's own token ------------------------------------------------------------------------------

def test_a_client_token_names_its_app_id_in_every_record(sim: Sandbox, catalog: dict[str, Any]) -> None:
    run = run_tap(config(sim, access_token="client-5002-key", customers=None), catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    for stream, (_, key) in STREAMS.items():
        assert set(run.accounts[stream]) == {5002}, stream
        assert same(run.records[stream], truth(sim, stream, 5002), key), stream  # in its zone, from get.account


# ---- state per client ----------------------------------------------------------------------------------

def test_a_client_added_later_starts_at_start_date_and_a_removed_one_keeps_its_bookmarks(
        sim: Sandbox, catalog: dict[str, Any]) -> None:
    one = run_tap(config(sim, customers=[5001]), catalog=catalog)
    assert one.returncode == 0, one.stderr[-3000:]
    assert set(one.accounts["calls"]) == {5001}
    both = run_tap(config(sim, customers=[5001, 5002], lookback_days=1), catalog=catalog, state=one.state)
    assert both.returncode == 0, both.stderr[-3000:]
    assert same(both.of("calls", 5002), truth(sim, "calls", 5002), ("id",))  # from start_date
    assert 0 < len(both.of("calls", 5001)) < len(truth(sim, "calls", 5001)) / 3  # the look-back only
    other = run_tap(config(sim, customers=[5002], lookback_days=1), catalog=catalog, state=both.state)
    assert other.returncode == 0, other.stderr[-3000:]
    assert set(other.accounts["calls"]) == {5002}
    kept = [p for p in other.state["bookmarks"]["calls"]["partitions"] if p["context"]["customer_id"] == 5001]
    was = [p for p in both.state["bookmarks"]["calls"]["partitions"] if p["context"]["customer_id"] == 5001]
    assert kept
    assert kept == was


def test_a_killed_run_resumes_every_client_from_its_own_windows(sim: Sandbox, catalog: dict[str, Any]) -> None:
    cfg = config(sim, window_days=1, lookback_days=0)
    calls_only = select(discover(cfg), {"calls"})
    total = {c: len(truth(sim, "calls", c)) for c in READABLE}
    # killed within the second client's calls, about half read (the lines counted include a few STATE messages)
    killed = run_until(cfg, catalog=calls_only, kill_after=total[5001] + total[5002] // 2)
    assert not killed.finished
    resumed = run_tap(cfg, catalog=calls_only, state=killed.last_state)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 5001 not in resumed.accounts["calls"]  # finished before the kill: nothing read again
    assert same(killed.of("calls", 5001), truth(sim, "calls", 5001), ("id",))
    before = killed.of("calls", 5002)
    assert before
    again = [r for r in resumed.of("calls", 5002) if r in before]
    per_day = len(truth(sim, "calls", 5002)) / SIZES["days"]
    assert len(again) <= 2 * per_day  # at most the one-day window the kill cut, read again
    union = {r["id"]: r for r in before + resumed.of("calls", 5002)}
    assert same(list(union.values()), truth(sim, "calls", 5002), ("id",))


def middle_of(killed: Killed, stream: str, customer: int) -> int:
    """The number of RECORD/STATE lines a whole run has written when half of ``customer``'s ``stream`` is out."""
    seen = Counter[str]()
    at = []
    for line, kind in enumerate(killed.kinds, 1):
        if kind != "STATE":
            if kind == stream and killed.owners[stream][seen[stream]] == customer:
                at.append(line)
            seen[kind] += 1
    assert at, (stream, customer)
    return at[len(at) // 2]


def test_a_run_killed_while_a_clients_children_read_loses_nothing(sim: Sandbox) -> None:
    """Killed halfway through a client's child stream (the first client's call_legs, fed windows; the second's
    chat_messages, fed ids), the next run from the last STATE delivers every record of every client: no
    bookmark, parent's or child's, of this client or the other, passed a window whose records were not all out."""
    cfg = config(sim, window_days=1, lookback_days=0)
    family = select(discover(cfg), {"calls", "call_legs", "chats", "chat_messages"})
    whole = run_until(cfg, catalog=family, kill_after=10**9)
    assert whole.finished
    for child, customer in (("call_legs", 5001), ("chat_messages", 5002)):
        killed = run_until(cfg, catalog=family, kill_after=middle_of(whole, child, customer))
        assert not killed.finished
        assert killed.of(child, customer), child
        resumed = run_tap(cfg, catalog=family, state=killed.last_state)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        for stream in ("calls", "call_legs", "chats", "chat_messages"):
            for client in READABLE:
                union = {r["id"]: r for r in killed.of(stream, client) + resumed.of(stream, client)}
                assert same(list(union.values()), truth(sim, stream, client), ("id",)), (child, stream, client)


# ---- one client's rights, limits and failures are that client's alone ----------------------------------

def test_a_stream_the_user_may_not_read_is_skipped_for_that_client_only(sim: Sandbox, catalog: dict[str, Any]) -> None:
    run = run_tap(config(sim, customer_user_ids={"5002": 70022}), catalog=catalog)  # 70022 may not read chats
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.accounts["chats"]) == {5001}
    assert set(run.accounts["calls"]) == set(READABLE)
    assert [w for w in warnings(run) if "'chats' of customer 5002" in w and "forbidden" in w], warnings(run)
    assert [line for line in summary(run) if " 5002  chats " in line and "forbidden" in line]


def test_one_clients_daily_limit_stops_that_client_only() -> None:
    demo = agency()
    poor = replace(demo.customers[0], account=replace(demo.customers[0].account, day_limit=3))
    with Sandbox(replace(demo, customers=(poor, *demo.customers[1:]))) as sb:
        cfg = config(sb, window_days=1)
        run = run_tap(cfg, catalog=select(discover(cfg), {"calls", "goals"}))
        assert run.returncode == 0, run.stderr[-3000:]
        assert [w for w in warnings(run) if "customer 5001" in w and "daily" in w], warnings(run)
        assert same(run.of("calls", 5002), truth(sb, "calls", 5002), ("id",))
        assert same(run.of("goals", 5002), truth(sb, "goals", 5002), ("id",))
        assert len(run.of("calls", 5001)) < len(truth(sb, "calls", 5001))


def test_a_client_stopped_by_its_daily_limit_resumes_each_day_until_all_is_read() -> None:
    """Day after day (the simulator's day restarts the clients' budgets), runs from the last state deliver
    all of the stopped client's records, children too: its bookmarks never passed a window not read.
    The other client is read whole on the first day."""
    demo = agency()
    poor = replace(demo.customers[0], account=replace(demo.customers[0].account, day_limit=25))
    family = ("calls", "call_legs", "chats", "chat_messages")
    with Sandbox(replace(demo, customers=(poor, *demo.customers[1:]))) as sb:
        cfg = config(sb, window_days=1)
        chosen = select(discover(cfg), set(family))
        read: dict[str, list[dict[str, Any]]] = {stream: [] for stream in family}
        state: dict[str, Any] | None = None
        for day in range(12):
            run = run_tap(cfg, catalog=chosen, state=state)
            assert run.returncode == 0, run.stderr[-3000:]
            if day == 0:
                for stream in family:
                    assert same(run.of(stream, 5002), truth(sb, stream, 5002), ("id",)), stream
            for stream in family:
                read[stream] += run.of(stream, 5001)
            state = run.state
            if not [w for w in warnings(run) if names_number(w, 5001) and "daily" in w]:
                break
            sb.new_day()
        else:
            pytest.fail("12 days did not read the client whole")
        for stream in family:
            union = {r["id"]: r for r in read[stream]}
            assert same(list(union.values()), truth(sb, stream, 5001), ("id",)), stream
        assert day >= 2, "the limit stopped the client too seldom: the test proves little"


def test_the_summary_counts_each_clients_records_and_requests_and_no_log_holds_the_key(
        sim: Sandbox, catalog: dict[str, Any]) -> None:
    since = len(sim.log)
    run = run_tap(config(sim, progress_seconds=1), catalog=catalog, env={"LOGLEVEL": "DEBUG"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert AGENT_KEY not in run.stderr + run.stdout
    asked = Counter((e.customer_id, e.method) for e in sim.log[since:])  # what the server answered, per client
    table = summary(run)
    for customer in READABLE:
        for stream in ("calls", "chat_messages", "sites"):
            (line,) = [line for line in table if f" {customer}  {stream} " in line]
            records, requests = line.split(f" {customer}  {stream} ", 1)[1].split()[:2]
            assert records == f"{len(truth(sim, stream, customer)):,}", line
            assert requests == f"{asked[customer, STREAMS[stream][0]]:,}", (line, asked)


# ---- bad input: one clear line each ---------------------------------------------------------------------

def one_line(sim: Sandbox, cfg: dict[str, Any], *names: str) -> None:
    run = run_tap(cfg, catalog=select(discover(config(sim)), {"calls"}))
    assert run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    errors = error_lines(run.stderr)
    assert len(errors) == 1, errors or run.stderr[-2000:]
    for name in names:
        assert name in errors[0], (name, errors[0])
    assert not run.records
    assert AGENT_KEY not in run.stderr


@pytest.mark.parametrize(("customers", "names"), [
    (5001, ("`customers`", '"all"')),
    ({"id": 5001}, ("`customers`",)),
    ("5001,x", ("`customers`", "'x'")),
    ([], ("`customers`",)),
    ([5001, 5009], ("`customers`", "5009", "get.customers")),
    ([5004], ("`customers`", "5004", "archived")),
])
def test_customers_of_a_wrong_type_or_unknown_are_one_line(sim: Sandbox, customers: Any,
                                                           names: tuple[str, ...]) -> None:
    one_line(sim, config(sim, customers=customers), *names)


def test_customers_with_a_client_token_is_one_line(sim: Sandbox) -> None:
    one_line(sim, config(sim, access_token="client-5001-key"), "`customers`", "agent", "forbidden")


def test_customers_with_user_id_is_one_line(sim: Sandbox) -> None:
    one_line(sim, config(sim, user_id=70011), "`customers`", "`user_id`")


def test_a_user_of_another_client_is_one_line(sim: Sandbox) -> None:
    one_line(sim, config(sim, customers=[5001], customer_user_ids={"5001": 70021}), "`customer_user_ids`", "70021")


def test_a_customer_without_users() -> None:
    """Asked for by id: one line. Found by "all": skipped, with a warning and a summary line."""
    lonely = CustomerConfig(id=5005, name="Без пользователей", account=agency().customers[0].account)
    with Sandbox(replace(agency(), customers=(*agency().customers, lonely))) as sb:
        one_line(sb, config(sb, customers=[5001, 5005]), "5005", "no user")
        cfg = config(sb)
        run = run_tap(cfg, catalog=select(discover(cfg), {"goals"}))
        assert run.returncode == 0, run.stderr[-2000:]
        assert set(run.accounts["goals"]) == set(READABLE)
        assert [w for w in warnings(run) if names_number(w, 5005) and "no user" in w], warnings(run)
        assert [line for line in summary(run) if " 5005 " in line and "no user" in line], summary(run)


def test_the_users_chosen_by_default_are_the_lowest_ids(sim: Sandbox) -> None:
    cfg = config(sim, customers=[5002])
    chosen = select(discover(cfg), {"calls"})
    since = len(sim.log)
    run = run_tap(cfg, catalog=chosen)
    assert run.returncode == 0, run.stderr[-2000:]
    users = {e.params.get("user_id") for e in sim.log[since:] if e.method == "get.calls_report"}
    assert users == {70021}


def test_every_stream_reads_each_client_as_its_own_token_does(sim: Sandbox) -> None:
    """The reference tables and summaries too: an agent's run holds, per client, exactly what the
    client's own key reads (a short range: the summaries cost a request per day and site)."""
    short = {"end_date": "2026-01-03 23:59:59"}
    cfg = config(sim, **short)
    everything = select(discover(cfg), set(discover_names(cfg)))
    agent = run_tap(cfg, catalog=everything)
    assert agent.returncode == 0, agent.stderr[-3000:]
    for customer in READABLE:
        own = run_tap(config(sim, access_token=f"client-{customer}-key", customers=None, **short), catalog=everything)
        assert own.returncode == 0, own.stderr[-3000:]
        for stream in discover_names(cfg):
            assert set(own.accounts[stream]) <= {customer}, stream
            assert multiset(agent.of(stream, customer)) == multiset(own.records[stream]), (stream, customer)
        assert len([s for s in discover_names(cfg) if own.records[s]]) >= 20, "too few streams hold data"


def discover_names(cfg: dict[str, Any]) -> list[str]:
    return [entry["tap_stream_id"] for entry in discover(cfg)["streams"]]


@pytest.mark.parametrize("reading", ["refuses_user_id", "own"])
def test_a_server_whose_get_account_knows_no_user_id(reading: str) -> None:
    """The docs give get.account no user_id. Refused, or answered for the agent's own account: the clients are
    still read whole (in `timezone`), each record still names its client, and the account stream is skipped."""
    with Sandbox(agency(agent_account=reading)) as sb:
        cfg = config(sb, timezone="Asia/Yekaterinburg", customers=[5002])
        run = run_tap(cfg, catalog=select(discover(cfg), {"calls", "account"}))
        assert run.returncode == 0, run.stderr[-3000:]
        assert same(run.of("calls", 5002), truth(sb, "calls", 5002), ("id",))
        assert not run.records["account"]
        assert [w for w in warnings(run) if "get.account" in w and "5002" in w], warnings(run)


@pytest.mark.parametrize("reading", ["user_id", "refuses_user_id", "own"])
def test_one_client_by_user_id_is_named_as_that_client(reading: str) -> None:
    """The single-client form (`user_id`, no `customers`): whatever get.account makes of user_id, the records
    name the client the user belongs to, never the agent's own account or 0. Two clients loaded this way into
    one warehouse would otherwise share keys (financial_summary's is a date)."""
    with Sandbox(agency(agent_account=reading)) as sb:
        for user, customer in ((70011, 5001), (70021, 5002)):
            cfg = config(sb, customers=None, user_id=user, timezone=str(ZONES[customer]))
            run = run_tap(cfg, catalog=select(discover(cfg), {"calls"}))
            assert run.returncode == 0, run.stderr[-3000:]
            assert set(run.accounts["calls"]) == {customer}, (reading, user, dict(run.accounts["calls"]))
            assert same(run.of("calls", customer), truth(sb, "calls", customer), ("id",))


def test_one_client_by_user_id_and_customer_id_asks_no_user_list() -> None:
    """`customer_id` set beside `user_id` names the client itself: no get.customer_users request, and the
    records carry it even from a server whose get.account answers for the agent."""
    with Sandbox(agency(agent_account="own")) as sb:
        cfg = config(sb, customers=None, user_id=70021, customer_id=5002, timezone=str(ZONES[5002]))
        run = run_tap(cfg, catalog=select(discover(cfg), {"calls"}))
        assert run.returncode == 0, run.stderr[-3000:]
        assert set(run.accounts["calls"]) == {5002}
        assert [e for e in sb.log if e.method == "get.customer_users"] == []
