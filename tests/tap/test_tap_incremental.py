"""Incremental runs, look-back, window splitting, and the child streams' batching."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from tap_comagic.sandbox import Sandbox, SandboxConfig
from tests.tap_harness import MOSCOW, as_emitted, bookmarks_of, by_key, discover, multiset, run_tap, select

START = "2026-01-01"


def cfg(sim: Sandbox, **extra: object) -> dict[str, object]:
    return {"api_url": sim.url, "access_token": sim.api_key, "start_date": START, "window_days": 10,
            "page_size": 300, "retry_backoff_seconds": 0.01, **extra}


def test_second_run_reemits_exactly_the_lookback_with_late_and_changed_records():
    with Sandbox(SandboxConfig(seed=3, start=START, days=60)) as sim:
        end = "2026-03-01 23:59:59"
        config = cfg(sim, end_date=end, lookback_days=5)
        catalog = select(discover(config), {"calls", "call_legs", "chats", "chat_messages", "communications"})
        first = run_tap(config, catalog=catalog)
        assert first.returncode == 0, first.stderr[-2000:]
        late = sim.add_late_records(7, "calls", "2026-02-26 00:00:00", "2026-03-01 12:00:00", seed=1)
        changed = sim.change_old_records(10, "2026-02-27 00:00:00", "2026-03-01 23:00:00", seed=2)
        second = run_tap(config, catalog=catalog, state=first.state)
        assert second.returncode == 0, second.stderr[-2000:]

        # the second run starts at bookmark - lookback_days and reads to the end, nothing older
        bookmark = dt.datetime.fromisoformat(bookmarks_of(first.state)["calls"]["replication_key_value"])
        resume = (bookmark - dt.timedelta(days=5)).astimezone(MOSCOW).replace(tzinfo=None)  # account time
        expected = [as_emitted(r, second.schemas["calls"]) for r in sim.truth(
            "get.calls_report", resume.strftime("%Y-%m-%d %H:%M:%S"), end)]
        assert by_key(second.records["calls"], ("id",)) == by_key(expected, ("id",))
        got_ids = {r["id"] for r in second.records["calls"]}
        assert set(late) <= got_ids
        for change in changed:
            if change["report"] == "calls":
                record = next(r for r in second.records["calls"] if r["id"] == change["id"])
                for key, value in change["changes"].items():
                    assert record[key] == as_emitted({key: value}, second.schemas["calls"])[key]
        # and the first run's earlier records are not read again
        assert min(dt.datetime.fromisoformat(r["start_time"]) for r in second.records["calls"]) >= (
            resume.replace(tzinfo=MOSCOW))
        assert len(second.records["calls"]) < len(first.records["calls"]) / 4


@pytest.mark.slow  # 114 000 calls: past the offset cap of one window
def test_a_window_past_the_offset_cap_is_split_before_it_is_read():
    with Sandbox(SandboxConfig(seed=5, start=START, days=30, calls_per_day=3_800, chats_per_day=1,
                               goals_per_day=1, offline_messages_per_day=1, visitor_sessions_per_day=1)) as sim:
        config = cfg(sim, end_date="2026-01-30 23:59:59", window_days=30, page_size=10_000)
        catalog = select(discover(config), {"calls"})
        for entry in catalog["streams"]:  # two fields keep this test light; the paging is the point
            for md in entry["metadata"]:
                if md["breadcrumb"] and md["breadcrumb"][-1] not in ("id", "start_time"):
                    md["metadata"]["selected"] = False
        run = run_tap(config, catalog=catalog)
        assert run.returncode == 0, run.stderr[-2000:]
        truth = sim.truth("get.calls_report")
        assert len(truth) > 110_000
        assert sorted(r["id"] for r in run.records["calls"]) == sorted(r["id"] for r in truth)
        sent = [e for e in sim.log if e.method == "get.calls_report"]
        offsets = [e.params["offset"] for e in sent]
        assert max(offsets) <= 100_000
        # one probe of the whole window, then each half read in full: 1 + 2 * ceil(57k / 10k)
        assert len(sent) == 1 + 2 * 6
        assert sent[0].params["date_from"] == "2026-01-01 00:00:00"
        assert {e.params["date_from"] for e in sent[1:]} == {"2026-01-01 00:00:00", "2026-01-15 23:59:59"}


@pytest.mark.parametrize("supported", [True, False], ids=["chat_ids", "one-chat_id-each"])
def test_chat_messages_alone_batches_chat_ids_or_falls_back(supported):
    with Sandbox(SandboxConfig(seed=9, start=START, days=12, chats_per_day=30,
                               chat_ids_supported=supported)) as sim:
        config = cfg(sim, end_date="2026-01-12 23:59:59", max_parallel_requests=4)
        run = run_tap(config, catalog=select(discover(config), {"chat_messages"}))
        assert run.returncode == 0, run.stderr[-2000:]
        assert "chats" not in run.records  # selecting the child alone emits only the child
        chat_ids = [c["id"] for c in sim.truth("get.chats_report")]
        truth = [as_emitted(m, run.schemas["chat_messages"])
                 for m in sim.truth("get.chat_messages_report", chat_ids=chat_ids)]
        assert multiset(run.records["chat_messages"]) == multiset(truth)  # twin messages count twice
        sent = [e for e in sim.log if e.method == "get.chat_messages_report"]
        chats_requests = [e for e in sim.log if e.method == "get.chats_report"]
        assert all(e.params["fields"] == ["id", "date_time"] for e in chats_requests)  # parent: keys only
        if supported:
            # one batch of chat ids per chats window, paged: requests = windows + pages at most
            assert len(sent) <= len(chats_requests) + math.ceil(len(truth) / 300)
            assert len(sent) < len(chat_ids) / 20
        else:
            assert len([e for e in sent if "chat_id" in e.params]) == len(chat_ids)
            assert "one chat per request" in run.stderr


def test_call_legs_alone_need_no_calls_requests():
    with Sandbox(SandboxConfig(seed=11, start=START, days=25)) as sim:
        config = cfg(sim, end_date="2026-01-25 23:59:59")
        run = run_tap(config, catalog=select(discover(config), {"call_legs"}))
        assert run.returncode == 0, run.stderr[-2000:]
        truth = [as_emitted(r, run.schemas["call_legs"]) for r in sim.truth("get.call_legs_report")]
        assert by_key(run.records["call_legs"], ("id",)) == by_key(truth, ("id",))
        assert not [e for e in sim.log if e.method == "get.calls_report"]
        assert "calls" not in run.records


def test_filters_setting_is_sent_and_narrows_the_rows():
    with Sandbox(SandboxConfig(seed=13, start=START, days=10)) as sim:
        site = sim.truth("get.calls_report")[0]["site_id"]
        flt = {"field": "site_id", "operator": "=", "value": site}
        config = cfg(sim, end_date="2026-01-10 23:59:59", filters={"calls": flt})
        run = run_tap(config, catalog=select(discover(config), {"calls"}))
        assert run.returncode == 0, run.stderr[-2000:]
        expected = [r["id"] for r in sim.truth("get.calls_report") if r["site_id"] == site]
        assert sorted(r["id"] for r in run.records["calls"]) == sorted(expected)
        assert all(e.params.get("filter") == flt for e in sim.log if e.method == "get.calls_report")
