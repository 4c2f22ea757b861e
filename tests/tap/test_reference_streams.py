"""The reference tables and summary reports against the simulator: its data, its joins, its request count."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tap_comagic.sandbox import Faults, Sandbox, SandboxConfig
from tap_comagic.tap import TapCoMagic
from tests.tap_harness import (
    MOSCOW,
    REFERENCE,
    as_emitted,
    bookmarks_of,
    by_key,
    days,
    discover,
    keys_of,
    page_data,
    requests_of,
    run_tap,
    select,
    small_world,
    window_config,
)

START = "2026-01-01"
DAILY = {"ct_summary": "get.ct_summary_report", "ct_ac_summary": "get.ct_ac_summary_report",
         "employee_stat": "get.employee_stat"}
REPORTS = {"calls", "call_legs", "chats", "chat_messages", "goals", "offline_messages", "communications"}


# This module's world: small_world with more of what its streams are about.
WORLD: dict[str, Any] = {"seed": 5, "days": 6, "calls_per_day": 12, "chats_per_day": 4, "goals_per_day": 5,
                         "offline_messages_per_day": 3, "visitor_sessions_per_day": 10, "api_requests_per_day": 1}


def world_config(**overrides: Any) -> SandboxConfig:
    return small_world(**{**WORLD, **overrides})


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[Sandbox, Any]]:
    """Four days: every new stream and the reports that name their ids."""
    with Sandbox(world_config()) as sim:
        cfg = window_config(sim, "2026-01-04 23:59:59")
        streams = {*REFERENCE, *DAILY, "campaign_daily_stat", *REPORTS}
        run = run_tap(cfg, catalog=select(discover(cfg), streams))
        assert run.returncode == 0, run.stderr[-3000:]
        yield sim, run


# methods whose docs offer a flag that adds deleted items (false by default): read once more with it
WITH_DELETED = {"statuses": "is_deleted"}


@pytest.mark.parametrize("stream", sorted(REFERENCE))
def test_reference_table_equals_the_account_in_one_request(world, stream):
    sim, run = world
    method, key = REFERENCE[stream]
    flag = WITH_DELETED.get(stream)
    truth = [as_emitted(r) for r in sim.truth(method)]
    if flag:
        truth += [as_emitted(r) for r in sim.truth(method, **{flag: True})]
    assert truth
    assert run.keys[stream] == key  # the key it declares (after customer_id): the documented one
    assert len(run.records[stream]) == len(truth)
    assert by_key(run.records[stream], key) == by_key(truth, key)
    asked = requests_of(sim, method)
    assert [p.get(flag) for p in asked] == ([None, True] if flag else [None])  # fewer than 10,000 rows: a page


def test_account_is_the_clients_own(world):
    sim, run = world
    (truth,) = sim.truth("get.account")
    assert run.records["account"] == [{"app_id": sim.config.app_id, "name": truth["name"],
                                       "timezone": "Europe/Moscow"}]


def site_ids(sim: Sandbox) -> list[int]:
    return [s["id"] for s in sim.truth("get.sites")]


def test_daily_summaries_are_one_day_per_request(world):
    sim, run = world
    sites = site_ids(sim)
    for stream, method in DAILY.items():
        per_site = stream == "ct_ac_summary"
        truth = []
        for day in days(1, 4):
            for site in sites if per_site else [None]:
                params = {"site_id": site} if per_site else {}
                for row in sim.truth(method, f"{day} 00:00:00", f"{day} 23:59:59", **params):
                    truth.append({**as_emitted(row), "date": day, **params})
        assert truth, stream
        assert sorted(map(repr, run.records[stream])) == sorted(map(repr, truth)), stream
        asked = Counter((p["date_from"], p["date_till"], p.get("site_id")) for p in requests_of(sim, method))
        assert asked == Counter((f"{d} 00:00:00", f"{d} 23:59:59", s)
                                for d in days(1, 4) for s in (sites if per_site else [None])), stream


@pytest.mark.parametrize("stream", sorted({*DAILY, "campaign_daily_stat"}))
def test_a_summarys_declared_key_merges_no_two_rows(world, stream):
    """An upserting target keeps every row of a summary (compared with the truth row for row above): the
    key_properties the tap declares tell them apart."""
    _, run = world
    rows = run.records[stream]
    assert len(rows) > 1
    assert len(set(keys_of(rows, run.keys[stream]))) == len(rows), run.keys[stream]


def test_ct_summary_counts_the_calls_of_each_site_and_day(world):
    _, run = world
    # the account's local day of each call (date-times are emitted in UTC)
    calls = Counter((c["site_id"], dt.datetime.fromisoformat(c["start_time"]).astimezone(MOSCOW).date().isoformat())
                    for c in run.records["calls"])
    assert sum(calls.values()) > 0
    assert {(r["site_id"], r["date"]): r["calls_count"] for r in run.records["ct_summary"]} == {
        (r["site_id"], r["date"]): calls.get((r["site_id"], r["date"]), 0) for r in run.records["ct_summary"]}


def ad_key(row: dict[str, Any]) -> str:
    """The README's key of a campaign_daily_stat row: ad group, keyword and ad ids, "" for a null."""
    return "|".join("" if row[k] is None else str(row[k]) for k in ("banner_group_id", "keyword_id",
                                                                    "current_banner_id"))


def test_campaign_daily_stat_reads_every_site_once_per_window(world):
    sim, run = world
    sites = site_ids(sim)
    truth = [{**as_emitted(r), "ad_key": ad_key(r)} for s in sites
             for r in sim.truth("get.campaign_daily_stat", "2026-01-01 00:00:00", "2026-01-04 23:59:59", site_id=s)]
    key = ("date", "site_id", "campaign_id", "ad_key")
    assert "||" in {r["ad_key"] for r in truth}  # no ad group, keyword nor ad: still a key
    assert len({r["ad_key"] for r in truth}) > 2  # campaigns of an ad system: a row per keyword
    assert len(truth) > len(sites)
    assert len(run.records["campaign_daily_stat"]) == len(truth)
    assert by_key(run.records["campaign_daily_stat"], key) == by_key(truth, key)
    asked = sorted((p["site_id"], p["date_from"], p["date_till"]) for p in requests_of(sim, "get.campaign_daily_stat"))
    windows = [("2026-01-01 00:00:00", "2026-01-02 23:59:59"), ("2026-01-03 00:00:00", "2026-01-04 23:59:59")]
    assert asked == sorted((s, a, b) for s in sites for a, b in windows)  # window_days 2: one per site per window


def ids_named(records: list[dict[str, Any]], wanted: tuple[str, ...]) -> set[Any]:
    """Every non-null value of a key ending with one of ``wanted``, at any depth."""
    found: set[Any] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k.endswith(wanted) and v is not None and not isinstance(v, (dict, list)):
                    found.add(v)
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(records)
    return found


@pytest.mark.parametrize(("names", "table", "column"), [
    (("site_id",), "sites", "id"),
    (("campaign_id", "ac_id"), "campaigns", "id"),
    (("employee_id",), "employees", "id"),
    (("tag_id",), "tags", "id"),
    (("scenario_id",), "scenarios", "id"),
    (("virtual_phone_number",), "virtual_numbers", "virtual_phone_number"),
])
def test_every_id_in_the_reports_is_in_its_reference_table(world, names, table, column):
    _, run = world
    reports = [r for s in (*REPORTS, "campaign_daily_stat", "ct_summary", "ct_ac_summary") for r in run.records[s]]
    used = ids_named(reports, names)
    assert len(used) > 1
    assert used <= {r[column] for r in run.records[table]}


def test_employee_stat_rows_are_employees_and_statuses(world):
    _, run = world
    employees = {r["id"] for r in run.records["employees"]}
    statuses = {str(r["id"]) for r in run.records["statuses"]}
    assert {r["id"] for r in run.records["employee_stat"]} == employees
    used = {k for r in run.records["employee_stat"] for k in r["status_stats"]}
    assert used <= statuses
    deleted = {str(r["id"]) for r in run.records["statuses"] if r["is_deleted"]}
    assert deleted & used  # old days name statuses deleted since: found, marked deleted


@pytest.mark.parametrize("true_means_all", [False, True])
def test_deleted_statuses_are_read_once_whichever_the_flag_means(true_means_all):
    # The docs leave open whether is_deleted=true gives the deleted statuses only or every status.
    with Sandbox(world_config(days=2, deleted_flag_gives_all=true_means_all)) as sim:
        current = {r["id"] for r in sim.truth("get.statuses")}
        flagged = sim.truth("get.statuses", is_deleted=True)
        deleted = {r["id"] for r in flagged} - current
        assert deleted
        assert (current <= {r["id"] for r in flagged}) is true_means_all
        cfg = window_config(sim, "2026-01-02 23:59:59")
        run = run_tap(cfg, catalog=select(discover(cfg), {"statuses"}))
        assert run.returncode == 0, run.stderr[-3000:]
        ids = [r["id"] for r in run.records["statuses"]]
        assert sorted(ids) == sorted(current | deleted)
        assert {r["id"] for r in run.records["statuses"] if r["is_deleted"]} == deleted


def test_a_second_run_reads_only_the_days_since_the_bookmark():
    streams = {"ct_summary", "ct_ac_summary", "employee_stat", "campaign_daily_stat"}
    with Sandbox(world_config()) as sim:
        cfg = window_config(sim, "2026-01-03 23:59:59")
        catalog = select(discover(cfg), streams)
        first = run_tap(cfg, catalog=catalog)
        assert first.returncode == 0, first.stderr[-3000:]
        assert {s: bookmarks_of(first.state)[s]["replication_key_value"] for s in streams} == dict.fromkeys(
            streams, "2026-01-03")
        sim.log.clear()
        second = run_tap(window_config(sim, "2026-01-05 23:59:59"), catalog=catalog, state=first.state)
        assert second.returncode == 0, second.stderr[-3000:]
        sites = len(site_ids(sim))
        for stream, method in DAILY.items():
            asked = sorted({p["date_from"][:10] for p in requests_of(sim, method)})
            assert asked == days(3, 5), stream  # the bookmark's day again (it may have been partial), then new days
            assert len(requests_of(sim, method)) == 3 * (sites if stream == "ct_ac_summary" else 1)
            assert {r["date"] for r in second.records[stream]} == set(days(3, 5))
        assert len(requests_of(sim, "get.campaign_daily_stat")) == 2 * sites  # 01-03..04 and 01-05
        assert len(requests_of(sim, "get.sites")) == 1  # the parent, read whole, for its ids only
        assert "sites" not in second.records
        assert bookmarks_of(second.state)["ct_summary"]["replication_key_value"] == "2026-01-05"


def test_reference_tables_page_by_page_size():
    with Sandbox(world_config()) as sim:
        cfg = window_config(sim, "2026-01-02 23:59:59", page_size=4)
        run = run_tap(cfg, catalog=select(discover(cfg), set(REFERENCE)))
        assert run.returncode == 0, run.stderr[-3000:]
        for stream, (method, key) in REFERENCE.items():
            flag = WITH_DELETED.get(stream)
            reads = [sim.truth(method), *([sim.truth(method, **{flag: True})] if flag else [])]
            truth = [as_emitted(r) for rows in reads for r in rows]
            assert by_key(run.records[stream], key) == by_key(truth, key)
            pages = 1 if stream == "account" else sum(math.ceil(len(rows) / 4) for rows in reads)
            assert len(requests_of(sim, method)) == pages, stream


def test_deselected_fields_are_not_emitted_and_ad_key_needs_no_selection():
    with Sandbox(world_config()) as sim:
        cfg = window_config(sim, "2026-01-02 23:59:59")
        dropped = {"campaigns": {"campaign_conditions", "site_blocks"}, "campaign_daily_stat": {"keyword_id", "engine"}}
        run = run_tap(cfg, catalog=select(discover(cfg), {"campaigns", "campaign_daily_stat"}, dropped))
        assert run.returncode == 0, run.stderr[-3000:]
        assert all(not dropped["campaigns"] & set(p["fields"]) for p in requests_of(sim, "get.campaigns"))
        sent = requests_of(sim, "get.campaign_daily_stat")
        assert all("keyword_id" in p["fields"] and "engine" not in p["fields"] for p in sent)  # ad_key needs it
        for stream, fields in dropped.items():
            assert run.records[stream]
            assert all(not fields & set(r) for r in run.records[stream]), stream
        truth = {ad_key(r) for s in site_ids(sim)
                 for r in sim.truth("get.campaign_daily_stat", "2026-01-01 00:00:00", "2026-01-02 23:59:59", site_id=s)}
        assert {r["ad_key"] for r in run.records["campaign_daily_stat"]} == truth


def test_faults_are_retried_and_lose_nothing():
    streams = {"tags", "employees", "sites", "ct_ac_summary", "employee_stat", "campaign_daily_stat", "sources",
               "events", "source_costs", "deals_history"}
    faults = Faults(seed=4, http_error=0.15, drop=0.05, truncated=0.05, internal_error=0.1)
    with Sandbox(world_config(), faults) as sim:
        cfg = window_config(sim, "2026-01-03 23:59:59", page_size=3, max_retries=20)
        run = run_tap(cfg, catalog=select(discover(cfg), streams))
        assert run.returncode == 0, run.stderr[-3000:]
        assert sum(sim.injected.values()) > 5
        faults.http_error = faults.drop = faults.truncated = faults.internal_error = 0.0
        clean = run_tap(cfg, catalog=select(discover(cfg), streams))
    for stream in streams:
        assert run.records[stream], stream
        assert sorted(map(repr, run.records[stream])) == sorted(map(repr, clean.records[stream])), stream


def test_employee_stat_is_skipped_once_without_the_call_center():
    with Sandbox(world_config(call_center=False)) as sim:
        cfg = window_config(sim, "2026-01-03 23:59:59")
        run = run_tap(cfg, catalog=select(discover(cfg), {"employee_stat", "tags"}))
        assert run.returncode == 0, run.stderr[-3000:]
        warnings = [line for line in run.stderr.splitlines() if "Skipping stream 'employee_stat'" in line]
        assert len(warnings) == 1, run.stderr[-3000:]
        assert "method_component_disabled" in warnings[0]
        assert not run.records["employee_stat"]
        assert len(run.records["tags"]) == len(sim.truth("get.tags"))
        assert len([r for r in sim.log if r.method == "get.employee_stat"]) == 1


def test_only_the_reference_tables_are_selected_by_default():
    tap = TapCoMagic(config={"sandbox": True, "start_date": START})
    new = {*REFERENCE, *DAILY, "campaign_daily_stat", "source_costs", "deals_history"}
    on = {name for name, s in tap.streams.items() if s.selected and name in new}
    # one request each a run; the summaries cost requests per day or per site, deals_history one per window
    assert on == set(REFERENCE)


def test_a_filter_of_the_filters_setting_is_sent_with_a_reference_table_and_a_summary():
    with Sandbox(world_config()) as sim:
        tag = sim.truth("get.tags")[1]
        site = site_ids(sim)[0]
        filters = {"tags": {"field": "name", "operator": "=", "value": tag["name"]},
                   "ct_summary": {"field": "site_id", "operator": "=", "value": site}}
        cfg = window_config(sim, "2026-01-02 23:59:59", filters=filters)
        run = run_tap(cfg, catalog=select(discover(cfg), {"tags", "ct_summary"}))
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.records["tags"] == [as_emitted(tag)]
        assert {r["site_id"] for r in run.records["ct_summary"]} == {site}
        assert len(run.records["ct_summary"]) == 2
        assert all(p["filter"] == filters["ct_summary"] for p in requests_of(sim, "get.ct_summary_report"))


# ---- the simulator's side: strict like the other methods ---------------------------------------------

def mnemonic(doc: dict[str, Any]) -> str | None:
    return (doc.get("error") or {}).get("data", {}).get("mnemonic")


def test_simulator_reference_methods_are_strict(rpc):
    assert mnemonic(rpc("get.account", limit=10)) == "unexpected_parameters"  # no paging: one account
    assert mnemonic(rpc("get.tags", fields=["id", "nope"])) == "unexpected_parameters"
    assert mnemonic(rpc("get.campaign_daily_stat", date_from="2026-01-01 00:00:00",
                        date_till="2026-01-02 00:00:00")) == "required_parameter_missed"  # site_id
    assert mnemonic(rpc("get.ct_summary_report")) == "required_parameter_missed"
    assert mnemonic(rpc("get.ct_ac_summary_report", site_id="1", date_from="2026-01-01 00:00:00",
                        date_till="2026-01-02 00:00:00")) == "data_type_error"
    assert mnemonic(rpc("get.employee_stat", date_from="2026-01-01 00:00:00",
                        date_till="2026-06-01 00:00:00")) == "date_interval_limit_reached"
    assert mnemonic(rpc("get.statuses", is_deleted="true")) == "data_type_error"
    assert mnemonic(rpc("get.tags", is_deleted=True)) == "unexpected_parameters"  # only get.statuses has it


def test_simulator_statuses_leave_deleted_ones_out_unless_asked(sandbox, rpc):
    listed = rpc("get.statuses")["result"]["data"]
    deleted = rpc("get.statuses", is_deleted=True)["result"]["data"]
    assert listed == rpc("get.statuses", is_deleted=False)["result"]["data"]
    assert deleted
    assert not any(r["is_deleted"] for r in listed)
    assert all(r["is_deleted"] for r in deleted)
    assert not {r["id"] for r in listed} & {r["id"] for r in deleted}


def test_simulator_pages_filters_and_sorts_reference_tables(sandbox, rpc):
    employees = sandbox.truth("get.employees")
    page = rpc("get.employees", fields=["id", "full_name"], limit=5, offset=5,
               sort=[{"field": "full_name", "order": "asc"}])["result"]
    assert page["metadata"]["total_items"] == len(employees)
    assert page["data"] == [{"id": e["id"], "full_name": e["full_name"]}
                            for e in sorted(employees, key=lambda e: e["full_name"])[5:10]]
    one = rpc("get.employees", fields=["id"], filter={"field": "id", "operator": "=", "value": employees[3]["id"]})
    assert one["result"]["data"] == [{"id": employees[3]["id"]}]


def test_simulator_without_call_center_disables_employee_stat_only(rpc):
    with Sandbox(world_config(call_center=False)) as sim:
        dates = {"date_from": "2026-01-01 00:00:00", "date_till": "2026-01-01 23:59:59"}
        assert mnemonic(rpc("get.employee_stat", sb=sim, **dates)) == "method_component_disabled"
        assert mnemonic(rpc("get.ct_summary_report", sb=sim, **dates)) is None


def test_ids_the_docs_declare_strings_stay_strings_when_a_server_sends_numbers():
    config = {"sandbox": True, "start_date": START}
    catalog = select(TapCoMagic(config=config).catalog_dict, {"campaign_daily_stat", "ct_summary"})
    tap = TapCoMagic(config=config, catalog=catalog)
    stream = tap.streams["campaign_daily_stat"]
    page = (b'[{"date": "2026-01-01", "site_id": 1, "campaign_id": 2, "campaign_ext_id": 77, "banner_group_id": 123,'
            b' "keyword_id": 456, "current_banner_id": 789, "cost_sum": "10.50"}]')
    row = stream.post_process(stream.record_decoder(page_data(page))[0])  # as a page is read
    assert row is not None
    assert (row["campaign_ext_id"], row["banner_group_id"], row["keyword_id"]) == ("77", "123", "456")
    assert (row["ad_key"], row["cost_sum"]) == ("123|456|789", 10.5)
    summary = tap.streams["ct_summary"]
    page = b'[{"site_id": 1, "site_domain": 5, "date": "2026-01-01"}]'
    row = summary.post_process(summary.record_decoder(page_data(page))[0])
    assert row is not None
    assert row["site_domain"] == "5"


@pytest.mark.parametrize("module", ["tap_comagic.reports", "tap_comagic.streams", "tap_comagic.registry",
                                    "tap_comagic.settings", "tap_comagic.context", "tap_comagic.tap"])
def test_each_stream_module_imports_first_in_a_fresh_interpreter(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
