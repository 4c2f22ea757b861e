"""Sources, their costs, goal definitions, positions, schedules, chat channels, funnels and deals history
against the simulator: each equals the account's truth, the ids the reports hold are rows of them, and a
second run reads source_costs and deals_history from their bookmarks, losing no stage changed between."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tap_comagic.sandbox import Sandbox, SandboxConfig, agency_demo
from tests.reliability_helpers import run_until
from tests.tap_harness import (
    DATED,
    as_emitted,
    bookmarks_of,
    by_key,
    days,
    discover,
    method_and_key,
    requests_of,
    run_tap,
    select,
    small_world,
    window_config,
)

START = "2026-01-01"
NEW_TABLES = {"sources", "source_channels", "source_groups", "events", "employee_positions", "schedules",
              "chat_channels", "sales_funnels", "lead_funnel_stages"}
REPORTS = {"calls", "chats", "goals", "employees", "sites"}
COSTS, DEALS = "source_costs", "deals_history"


# This module's world: small_world with more of what its streams are about.
WORLD: dict[str, Any] = {"seed": 7, "days": 8, "calls_per_day": 16, "chats_per_day": 5, "goals_per_day": 6,
                         "offline_messages_per_day": 2, "visitor_sessions_per_day": 8, "api_requests_per_day": 1}


def world_config(**overrides: Any) -> SandboxConfig:
    return small_world(**{**WORLD, **overrides})


def costs_truth(sim: Sandbox, first: int, last: int) -> list[dict[str, Any]]:
    """The costs of each day read alone, with the day and the key's stand-in for a null site."""
    return [{**row, "date": day, "site_key": row["site_id"] or 0}
            for day in days(first, last) for row in sim.truth("get.source_costs", f"{day} 00:00:00", f"{day} 23:59:59")]


def deals_truth(sim: Sandbox, date_from: str, date_till: str) -> list[dict[str, Any]]:
    """The stages entered in [date_from, date_till] (account-local), as the tap emits them."""
    return [as_emitted(r) for r in sim.truth("get.deals_history")
            if date_from <= r["modified_stage_date_time"] <= date_till]


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[Sandbox, Any]]:
    """Four days of every new stream and the reports and tables that name their ids."""
    with Sandbox(world_config()) as sim:
        cfg = window_config(sim, "2026-01-04 23:59:59")
        run = run_tap(cfg, catalog=select(discover(cfg), {*NEW_TABLES, *REPORTS, COSTS, DEALS}))
        assert run.returncode == 0, run.stderr[-3000:]
        yield sim, run


def test_source_costs_are_each_days_totals_one_request_per_day(world):
    sim, run = world
    truth = costs_truth(sim, 1, 4)
    assert {r["site_key"] for r in truth} & {0}  # a cost entered for no site: still keyed
    assert len({r["date"] for r in truth}) > 1
    assert run.keys[COSTS] == DATED[COSTS][1]
    assert len(run.records[COSTS]) == len(truth)
    assert by_key(run.records[COSTS], DATED[COSTS][1]) == by_key(truth, DATED[COSTS][1])
    asked = sorted((p["date_from"], p["date_till"]) for p in requests_of(sim, "get.source_costs"))
    assert asked == [(f"{d} 00:00:00", f"{d} 23:59:59") for d in days(1, 4)]


def test_deals_history_is_read_by_a_filter_on_the_stage_change_time(world):
    sim, run = world
    key = DATED[DEALS][1]
    truth = deals_truth(sim, "2026-01-01 00:00:00", "2026-01-04 23:59:59")
    assert any(r["is_generated"] for r in truth)  # a skipped stage shares its time with the next: key holds
    assert run.keys[DEALS] == key
    assert len(run.records[DEALS]) == len(truth)
    assert by_key(run.records[DEALS], key) == by_key(truth, key)
    asked = requests_of(sim, "get.deals_history")
    assert "date_from" not in asked[0]  # the method takes no dates
    bounds = [{(f["field"], f["operator"]): f["value"] for f in p["filter"]["filters"]} for p in asked]
    field = "modified_stage_date_time"
    assert [(b[(field, ">=")], b[(field, "<=")]) for b in bounds] == [
        ("2026-01-01 00:00:00", "2026-01-03 00:00:00"), ("2026-01-03 00:00:00", "2026-01-05 00:00:00")]
    assert all(p["sort"] == [{"field": field, "order": "asc"}] for p in asked)


@pytest.mark.parametrize(("report", "column", "table", "table_column"), [
    ("goals", "ext_id", "events", "ext_id"),
    ("goals", "name", "events", "goal_name"),
    ("chats", "chat_channel_id", "chat_channels", "id"),
    ("calls", "source_id", "sources", "id"),
    ("chats", "source_id", "sources", "id"),
    ("employees", "schedule_id", "schedules", "id"),
    ("sources", "channel_id", "source_channels", "id"),
    ("sources", "group_id", "source_groups", "id"),
    (COSTS, "source_id", "sources", "id"),
    (COSTS, "site_id", "sites", "id"),
    (DEALS, "communication_id", "calls", "communication_id"),
    (DEALS, "sales_funnel_ext_id", "sales_funnels", "ext_id"),
])
def test_every_id_is_a_row_of_its_table(world, report, column, table, table_column):
    _, run = world
    used = {r[column] for r in run.records[report] if r.get(column) is not None}
    assert len(used) > 1, (report, column)
    assert used <= {r[table_column] for r in run.records[table]}


def test_employees_positions_and_deals_stages_are_rows_of_their_tables(world):
    _, run = world
    positions = {r["operator"]["operator_position_id"] for r in run.records["employees"]}
    assert len(positions) > 1
    assert positions <= {r["id"] for r in run.records["employee_positions"]}
    stages = {(f["ext_id"], s["stage_ext_id"]) for f in run.records["sales_funnels"] for s in f["stages"]}
    entered = {(r["sales_funnel_ext_id"], r["stage_ext_id"]) for r in run.records[DEALS]}
    assert len(entered) > 3
    assert entered <= stages


def test_a_second_run_reads_costs_and_stages_from_the_bookmarks_and_loses_no_stage():
    with Sandbox(world_config()) as sim:
        catalog = select(discover(window_config(sim, "2026-01-03 23:59:59")), {COSTS, DEALS})
        first = run_tap(window_config(sim, "2026-01-03 23:59:59"), catalog=catalog)
        assert first.returncode == 0, first.stderr[-3000:]
        marks = bookmarks_of(first.state)
        assert marks[COSTS]["replication_key_value"] == "2026-01-03"
        assert marks[DEALS]["replication_key_value"][:10] == "2026-01-03"
        sim.log.clear()
        second = run_tap(window_config(sim, "2026-01-06 23:59:59", lookback_days=1), catalog=catalog, state=first.state)
        assert second.returncode == 0, second.stderr[-3000:]

        asked = sorted(p["date_from"][:10] for p in requests_of(sim, "get.source_costs"))
        assert asked == days(2, 6)  # the bookmark's day less the look-back, then the new days
        assert {r["date"] for r in second.records[COSTS]} == set(days(2, 6))
        deal_reads = requests_of(sim, "get.deals_history")
        lowest = min(f["value"] for p in deal_reads for f in p["filter"]["filters"] if f["operator"] == ">=")
        # the filter speaks the account's wall time; the bookmark is an instant (UTC by default)
        zone = ZoneInfo(sim.config.timezone)
        bookmark = dt.datetime.fromisoformat(marks[DEALS]["replication_key_value"]).astimezone(zone)
        bookmark = bookmark.replace(tzinfo=None)
        assert lowest == f"{bookmark - dt.timedelta(days=1):%Y-%m-%d %H:%M:%S}"  # not start_date: not the history
        span = dt.datetime(2026, 1, 6, 23, 59, 59) - (bookmark - dt.timedelta(days=1))
        assert len(deal_reads) == math.ceil(span / dt.timedelta(days=2))  # windows of 2 days, a page each

        key = DATED[DEALS][1]
        both = by_key(first.records[DEALS] + second.records[DEALS], key)
        truth = deals_truth(sim, "2026-01-01 00:00:00", "2026-01-06 23:59:59")
        assert both == by_key(truth, key)  # no stage lost between the runs
        moved = {r["ext_id"] for r in first.records[DEALS]} & {
            r["ext_id"] for r in second.records[DEALS] if r["modified_stage_date_time"] > "2026-01-04"}
        assert moved  # deals the first run saw entered new stages after it: the second run found them
        costs = first.records[COSTS] + second.records[COSTS]
        assert by_key(costs, DATED[COSTS][1]) == by_key(costs_truth(sim, 1, 6), DATED[COSTS][1])


def test_a_user_filter_narrows_deals_history_within_its_windows():
    with Sandbox(world_config(days=4)) as sim:
        funnel = "funnel-windows"
        flt = {"field": "sales_funnel_ext_id", "operator": "=", "value": funnel}
        cfg = window_config(sim, "2026-01-04 23:59:59", filters={DEALS: flt})
        run = run_tap(cfg, catalog=select(discover(cfg), {DEALS}))
        assert run.returncode == 0, run.stderr[-3000:]
        truth = [r for r in deals_truth(sim, "2026-01-01 00:00:00", "2026-01-04 23:59:59")
                 if r["sales_funnel_ext_id"] == funnel]
        assert truth
        assert by_key(run.records[DEALS], DATED[DEALS][1]) == by_key(truth, DATED[DEALS][1])
        assert all(flt in p["filter"]["filters"] for p in requests_of(sim, "get.deals_history"))


def test_deals_history_pages_and_reads_each_stage_once():
    with Sandbox(world_config()) as sim:
        cfg = window_config(sim, "2026-01-06 23:59:59", page_size=5, window_days=30)
        run = run_tap(cfg, catalog=select(discover(cfg), {DEALS}))
        assert run.returncode == 0, run.stderr[-3000:]
        truth = deals_truth(sim, "2026-01-01 00:00:00", "2026-01-06 23:59:59")
        assert len(truth) > 10
        keys = Counter(tuple(r[k] for k in DATED[DEALS][1]) for r in run.records[DEALS])
        assert max(keys.values()) == 1
        assert set(keys) == set(by_key(truth, DATED[DEALS][1]))
        assert len(requests_of(sim, "get.deals_history")) >= len(truth) // 5


def test_an_account_without_call_tracking_3_skips_the_source_streams_with_one_warning_each():
    with Sandbox(world_config(days=3, call_tracking_3=False)) as sim:
        cfg = window_config(sim, "2026-01-02 23:59:59")
        streams = {"sources", "source_channels", "source_groups", COSTS, "events"}
        run = run_tap(cfg, catalog=select(discover(cfg), streams))
        assert run.returncode == 0, run.stderr[-3000:]
        for stream in streams - {"events"}:
            warned = [line for line in run.stderr.splitlines() if f"Skipping stream '{stream}'" in line]
            assert len(warned) == 1, (stream, run.stderr[-3000:])
            assert "method_component_disabled" in warned[0]
            assert not run.records[stream]
        assert len(run.records["events"]) == len(sim.truth("get.events"))


# ---- killed and resumed -------------------------------------------------------------------------------

@pytest.mark.parametrize("lookback_days", [0, 1])
def test_killed_anywhere_a_resumed_run_loses_no_cost_nor_stage(lookback_days):
    with Sandbox(world_config(days=5)) as sim:
        cfg = window_config(sim, "2026-01-05 23:59:59", window_days=1, lookback_days=lookback_days, page_size=4)
        cat = select(discover(cfg), {COSTS, DEALS})
        whole = run_until(cfg, kill_after=10**9, catalog=cat)
        assert whole.finished
        truth = {COSTS: costs_truth(sim, 1, 5), DEALS: deals_truth(sim, "2026-01-01 00:00:00", "2026-01-05 23:59:59")}
        for kill_after in sorted(random.Random(lookback_days).sample(range(1, whole.lines_read), 3)):
            first = run_until(cfg, kill_after=kill_after, catalog=cat)
            assert not first.finished
            second = run_tap(cfg, catalog=cat, state=first.last_state)
            assert second.returncode == 0, second.stderr[-3000:]
            for stream, expected in truth.items():
                key = DATED[stream][1]
                got = by_key(first.records[stream] + second.records[stream], key)
                assert got == by_key(expected, key), (stream, kill_after)


# ---- agency: every client, one with no Call tracking 3.0 ------------------------------------------------

AGENT_KEY = "agent-key-0123456789"
ZONES = {5001: ZoneInfo("Europe/Moscow"), 5002: ZoneInfo("Asia/Yekaterinburg")}
SOURCE_MODEL = {"sources", "source_channels", "source_groups", COSTS}  # Call tracking 3.0 only
ALL_NEW = {*NEW_TABLES, "offline_message_user_fields", "deal_user_fields", "lead_user_fields", COSTS, DEALS}


def agency_truth(sim: Sandbox, stream: str, customer: int) -> list[dict[str, Any]]:
    """What ``stream`` should emit for one client over 2026-01-01..04, in the client's own zone."""
    if stream == COSTS:
        rows = [{**r, "date": d, "site_key": r["site_id"] or 0} for d in days(1, 4)
                for r in sim.truth("get.source_costs", f"{d} 00:00:00", f"{d} 23:59:59", customer_id=customer)]
    elif stream == DEALS:
        rows = [r for r in sim.truth("get.deals_history", customer_id=customer)
                if r["modified_stage_date_time"] <= "2026-01-04 23:59:59"]
    else:
        rows = sim.truth(method_and_key(stream)[0], customer_id=customer)
    return [as_emitted(r, zone=ZONES[customer]) for r in rows]


def test_agency_reads_each_client_and_skips_the_source_model_where_it_is_not_bought():
    with Sandbox(agency_demo(agent_key=AGENT_KEY, start=START, days=5, calls_per_day=10)) as sim:
        assert not sim.agency.customers[5002].account.call_tracking_3
        cfg = {**window_config(sim, "2026-01-04 23:59:59"), "access_token": AGENT_KEY, "customers": "all"}
        run = run_tap(cfg, catalog=select(discover(cfg), ALL_NEW))
        assert run.returncode == 0, run.stderr[-3000:]
        for stream in sorted(ALL_NEW):
            key = method_and_key(stream)[1]
            for customer in (5001, 5002):
                emitted = run.of(stream, customer)
                if customer == 5002 and stream in SOURCE_MODEL:
                    assert not emitted, stream
                    continue
                expected = agency_truth(sim, stream, customer)
                assert expected, (stream, customer)
                assert len(emitted) == len(expected), (stream, customer)
                assert by_key(emitted, key) == by_key(expected, key), (stream, customer)
        for stream in SOURCE_MODEL:
            warned = [line for line in run.stderr.splitlines()
                      if f"'{stream}'" in line and "method_component_disabled" in line and "WARNING" in line]
            assert len(warned) == 1, (stream, warned)
        marks = {s: {p["context"]["customer_id"]: p.get("replication_key_value") for p in b["partitions"]}
                 for s, b in run.state["bookmarks"].items() if s in (COSTS, DEALS)}
        assert sorted(marks[DEALS]) == [5001, 5002]  # one partition per account
        assert all(marks[DEALS].values())
        assert marks[COSTS].get(5001) == "2026-01-04"
        assert marks[COSTS].get(5002) is None  # refused: nothing read, no bookmark


# ---- a small daily budget ------------------------------------------------------------------------------

def test_daily_runs_under_a_small_budget_read_costs_and_stages_once_each():
    """A run stopped by the account's daily limit saves its state; the next day's run goes on from there,
    and the runs together read every day's costs and every stage, each once."""
    with Sandbox(world_config(days=6, day_limit=4)) as sim:
        cfg = window_config(sim, "2026-01-06 23:59:59", window_days=1, page_size=10)
        cat = select(discover(cfg), {COSTS, DEALS})
        state: dict[str, Any] = {}
        emitted: dict[str, list[dict[str, Any]]] = {COSTS: [], DEALS: []}
        stops = 0
        for _ in range(30):
            run = run_tap(cfg, catalog=cat, state=state, clock=sim)
            assert run.returncode == 0
            for stream in emitted:
                emitted[stream] += run.records.get(stream, [])
            if run.states:
                state = run.states[-1]
            if not [w for w in run.warnings if "daily" in w.lower()]:
                break
            stops += 1
            sim.new_day()
        else:
            pytest.fail("30 days did not finish the sync")
        assert stops >= 2, "the budget did not stop the runs: nothing tested"
        truth = {COSTS: costs_truth(sim, 1, 6), DEALS: deals_truth(sim, "2026-01-01 00:00:00", "2026-01-06 23:59:59")}
        for stream, expected in truth.items():
            keys = Counter(tuple(r[k] for k in DATED[stream][1]) for r in emitted[stream])
            # lookback 0: a stage is read once; a day of costs at most twice (a run starts again at its
            # bookmark's day, which the day before may have read only in part)
            assert max(keys.values()) == (1 if stream == DEALS else 2), stream
            assert by_key(emitted[stream], DATED[stream][1]) == by_key(expected, DATED[stream][1]), stream


# ---- the simulator's side: strict like the other reference methods --------------------------------------

def mnemonic(doc: dict[str, Any]) -> str | None:
    return (doc.get("error") or {}).get("data", {}).get("mnemonic")


def test_simulator_pages_filters_and_sorts_deals_history(sandbox, rpc):
    history = sandbox.truth("get.deals_history")
    field = "modified_stage_date_time"
    since = sorted(r[field] for r in history)[len(history) // 2]
    wanted = sorted((r for r in history if r[field] >= since), key=lambda r: r[field])
    page = rpc("get.deals_history", fields=["ext_id", "stage_ext_id", field], limit=3, offset=2,
               filter={"filters": [{"field": field, "operator": ">=", "value": since}], "condition": "and"},
               sort=[{"field": field, "order": "asc"}])["result"]
    assert page["metadata"]["total_items"] == len(wanted)
    assert [r[field] for r in page["data"]] == [r[field] for r in wanted[2:5]]
    assert set(page["data"][0]) == {"ext_id", "stage_ext_id", field}


def test_simulator_new_methods_are_strict(rpc):
    assert mnemonic(rpc("get.source_costs")) == "required_parameter_missed"  # dates are required
    assert mnemonic(rpc("get.events", fields=["id", "nope"])) == "unexpected_parameters"
    assert mnemonic(rpc("get.deals_history", date_from="2026-01-01 00:00:00",
                        date_till="2026-01-02 00:00:00")) == "unexpected_parameters"  # it takes no dates
    assert mnemonic(rpc("get.deals_history", filter={"field": "comments", "operator": "=", "value": "x"})) == (
        "filter_prohibited")  # the docs do not let comments filter
    assert mnemonic(rpc("get.sources", fields=["id", "name"])) is None


def test_simulator_without_call_tracking_3_refuses_the_source_model_only(rpc):
    with Sandbox(world_config(days=2, call_tracking_3=False)) as sim:
        dates = {"date_from": "2026-01-01 00:00:00", "date_till": "2026-01-01 23:59:59"}
        for method in ("get.sources", "get.sources_channels", "get.sources_groups"):
            assert mnemonic(rpc(method, sb=sim)) == "method_component_disabled", method
        assert mnemonic(rpc("get.source_costs", sb=sim, **dates)) == "method_component_disabled"
        assert mnemonic(rpc("get.events", sb=sim, fields=["id"])) is None
