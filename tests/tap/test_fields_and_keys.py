"""Keys that never merge two records, every documented field, and accounts that refuse some fields.

- Every stream's declared key is unique over the simulator's data, twin chat messages included, and the
  records emitted are as many as the truth holds (an upserting target keeps them all).
- An account that knows only the spec's fields loads exactly, asking at most once per refused field per
  run; the next run, given the state, asks not at all; after 30 days it asks again.
- An account that refuses chat messages' `id`: the stream still keys on `id`, filled with a stable
  stand-in that keeps twin messages apart.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from typing import Any

import pytest

from tap_comagic.sandbox import Sandbox, SandboxConfig
from tests.tap_harness import (
    OTHER_KEYS,
    REPORTS,
    Run,
    as_emitted,
    bookmarks_of,
    discover,
    keys_of,
    multiset,
    page_data,
    run_tap,
    select,
)
from tools.specdoc import ROOT

START, DAYS = "2026-01-01", 6
END = "2026-01-06 23:59:59"
ALL = set(REPORTS) | set(OTHER_KEYS)
SMALL = {"calls_per_day": 25, "chats_per_day": 15, "goals_per_day": 8, "offline_messages_per_day": 5,
         "visitor_sessions_per_day": 30, "api_requests_per_day": 6}


def world(**extra: Any) -> Sandbox:
    return Sandbox(SandboxConfig(seed=11, start=START, days=DAYS, **{**SMALL, **extra}))


def config(sim: Sandbox, **extra: object) -> dict[str, object]:
    return {"api_url": sim.url, "access_token": sim.api_key, "start_date": START, "end_date": END,
            "window_days": 2, "page_size": 40, "retry_backoff_seconds": 0.01, **extra}


def truth(sim: Sandbox, stream: str, run: Run) -> list[dict[str, Any]]:
    """The records the stream should emit, as the tap emits them."""
    if stream in REPORTS:
        rows = sim.truth(REPORTS[stream][0], START + " 00:00:00", END)
    elif stream == "chat_messages":
        chats = sim.truth("get.chats_report", START + " 00:00:00", END)
        rows = sim.truth("get.chat_messages_report", chat_ids=[c["id"] for c in chats])
    elif stream == "visitors":
        sessions = sim.truth("get.visitor_sessions_report", START + " 00:00:00", END)
        visitors = sorted({s["visitor_id"] for s in sessions if s["visitor_id"] is not None})
        rows = [r for v in visitors for r in sim.truth("get.visitors_report", visitor_id=v)]
    elif stream == "financial_summary":
        rows = [r for r in sim.truth("get.financial_summary_report", year=2026, month=1) if r["date"] <= END[:10]]
    else:
        rows = sim.truth(OTHER_KEYS[stream][0], START + " 00:00:00", END)
    return [as_emitted(r) for r in rows]


def public_only(stream: str) -> list[str]:
    flags = json.loads((ROOT / "tap_comagic" / "schemas" / f"{stream}.json").read_text("utf-8"))["x-comagic"]
    names: list[str] = flags.get("public_docs_only", [])
    return names


def refusals(sim: Sandbox, since: int = 0) -> Counter[str]:
    """Requests per method that the account refused for naming a field it does not know."""
    return Counter(e.method for e in sim.log[since:] if e.outcome == "unexpected_parameters")


def without(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != name} for r in records]


def test_every_key_is_unique_and_every_record_arrives():
    """The key a target upserts on never merges two records: the twins of chat_messages stay two."""
    with world() as sim:
        cfg = config(sim)
        run = run_tap(cfg, catalog=select(discover(cfg), ALL))
        assert run.returncode == 0, run.stderr[-3000:]
        for stream in sorted(ALL):
            emitted = run.records[stream]
            assert run.keys[stream] == (REPORTS[stream][1] if stream in REPORTS else OTHER_KEYS[stream][1])
            if not run.keys[stream]:  # declares no key (targets append): every row once, none merged
                assert multiset(emitted) == multiset(truth(sim, stream, run)), stream
                continue
            keys = keys_of(emitted, run.keys[stream])
            assert len(set(keys)) == len(emitted) == len(truth(sim, stream, run)), stream
            assert all(None not in k for k in keys), stream
        messages = run.records["chat_messages"]
        old_key = Counter(keys_of(messages, ("chat_id", "date_time", "source", "text")))
        assert any(n > 1 for n in old_key.values())  # the data has twins: the old key would merge them
        assert multiset(messages) == multiset(truth(sim, "chat_messages", run))


def test_an_account_that_knows_only_the_spec_fields():
    """Every stream loads exactly; each refused field costs one request in the first run and none in the
    next, which starts from the first run's state; after 30 days the fields are asked for again."""
    with world(spec_fields_only=True) as sim:
        cfg = config(sim)
        catalog = select(discover(cfg), ALL)
        first = run_tap(cfg, catalog=catalog)
        assert first.returncode == 0, first.stderr[-3000:]
        refused = refusals(sim)
        for stream in sorted(ALL):
            method = REPORTS[stream][0] if stream in REPORTS else OTHER_KEYS[stream][0]
            assert refused[method] == len(public_only(stream)), stream
            emitted = first.records[stream]
            expected = truth(sim, stream, first)
            if stream == "chat_messages":  # `id` refused: the tap's stand-in (see the test below)
                emitted = without(emitted, "id")
            assert multiset(emitted) == multiset(expected), stream
        bookmarks = bookmarks_of(first.state)
        assert sorted(bookmarks["calls"]["refused_fields"]) == sorted(public_only("calls"))

        mark = len(sim.log)
        second = run_tap(cfg, catalog=catalog, state=first.state)
        assert second.returncode == 0, second.stderr[-3000:]
        assert refusals(sim, mark) == Counter()
        assert second.records["calls"]  # the look-back reads again: the same records, the same fields
        for stream in sorted(ALL):
            assert not multiset(second.records[stream]) - multiset(first.records[stream]), stream
        assert bookmarks_of(second.state)["calls"]["refused_fields"] == bookmarks["calls"]["refused_fields"]

        stale = json.loads(json.dumps(first.state))
        for bookmark in bookmarks_of(stale).values():
            for name in bookmark.get("refused_fields", {}):
                bookmark["refused_fields"][name] = "2020-01-01T00:00:00+00:00"
        mark = len(sim.log)
        third = run_tap(cfg, catalog=select(catalog, {"calls"}), state=stale)
        assert third.returncode == 0, third.stderr[-3000:]
        assert refusals(sim, mark)["get.calls_report"] == len(public_only("calls"))
        asked = bookmarks_of(third.state)["calls"]["refused_fields"]
        assert sorted(asked) == sorted(public_only("calls"))
        assert "2020-01-01T00:00:00+00:00" not in asked.values()  # refused again: remembered anew


def test_an_account_that_gains_a_field_gets_it_after_30_days():
    with world() as sim:
        cfg = config(sim)
        catalog = select(discover(cfg), {"calls"})
        recent = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        account = {"customer_id": sim.truth("get.account")[0]["app_id"]}
        state = {"bookmarks": {"calls": {"partitions": [{"context": account,
                                                         "refused_fields": {"cpn_region_id": recent}}]}}}
        run = run_tap(cfg, catalog=catalog, state=state)
        assert run.returncode == 0, run.stderr[-3000:]
        assert all("cpn_region_id" not in e.params["fields"] for e in sim.log if e.method == "get.calls_report")
        assert "cpn_region_id" in bookmarks_of(run.state)["calls"]["refused_fields"]

        # 30 days on, or a date the tap cannot read: asked again
        bookmarks_of(state)["calls"]["refused_fields"] = {"cpn_region_id": "2026-01-01T00:00:00+00:00",
                                                         "tags": "not a date"}
        mark = len(sim.log)
        run = run_tap(cfg, catalog=catalog, state=state)
        assert run.returncode == 0, run.stderr[-3000:]
        assert all({"cpn_region_id", "tags"} <= set(e.params["fields"])
                   for e in sim.log[mark:] if e.method == "get.calls_report")
        assert "cpn_region_id" in run.records["calls"][0]
        assert "cpn_region_id" not in bookmarks_of(run.state)["calls"].get("refused_fields", {})


def null_message_ids(sim: Sandbox) -> None:
    """The server answers chat messages' `id` with null (message ids are the simulator's 17xxxxxxxxxxx)."""
    original = sim.handle

    def handle(body: bytes) -> Any:
        answer = original(body)
        answer.body = [re.sub(rb'"id":17\d{11}', b'"id":null', b"".join(answer.body))]
        return answer

    sim.handle = handle  # type: ignore[method-assign]


@pytest.mark.parametrize(("server", "deselect"), [("refuses", set()), ("refuses", {"chat_id"}), ("nulls", set())],
                         ids=["refused", "refused-chat_id-deselected", "null"])
def test_chat_messages_without_id_keep_twins_apart(server, deselect):
    """The account refuses `id` (or answers null): the key stays `id` (the SCHEMA message comes before any
    answer), filled from the message's place in its chat, so twins stay two, and a re-run gives each message
    the same id."""
    refused = frozenset({"id"}) if server == "refuses" else frozenset()
    with world(unknown_fields={"get.chat_messages_report": refused}) as sim:
        if server == "nulls":
            null_message_ids(sim)
        cfg = config(sim)
        catalog = select(discover(cfg), {"chats", "chat_messages"}, {"chat_messages": deselect})
        runs = [run_tap(cfg, catalog=catalog) for _ in range(2)]
        for run in runs:
            assert run.returncode == 0, run.stderr[-3000:]
            assert run.keys["chat_messages"] == ("id",)
        messages = runs[0].records["chat_messages"]
        expected = without(truth(sim, "chat_messages", runs[0]), "id")
        ids = [m["id"] for m in messages]
        assert len(set(ids)) == len(messages) == len(expected)
        assert all(isinstance(i, int) and i < 0 for i in ids)  # never a real (positive) CoMagic id
        assert multiset(without(messages, "id")) == multiset(
            [{k: v for k, v in r.items() if k not in deselect} for r in expected])
        assert multiset(runs[1].records["chat_messages"]) == multiset(messages)  # the same ids again
        assert refusals(sim)["get.chat_messages_report"] == (2 if refused else 0)  # once per run


def test_a_goal_ext_id_sent_as_a_number_is_emitted_as_a_string():
    """The public docs give goals.ext_id as a number in their example and a string in their table."""
    from tap_comagic.tap import TapCoMagic

    goals = TapCoMagic(config={"sandbox": True, "start_date": START}).streams["goals"]
    rows = goals.record_decoder(page_data(b'[{"id": 1, "ext_id": 31337}, {"id": 2, "ext_id": "x-9"}]'))
    assert [(r["id"], r["ext_id"]) for r in rows] == [(1, "31337"), (2, "x-9")]
    row = goals.post_process({"id": 2, "ext_id": "g-7"})
    assert row is not None
    assert (row["id"], row["ext_id"]) == (2, "g-7")  # (its customer_id: tap_harness checks it in every run)


def test_a_refused_field_costs_one_request_however_many_run_in_parallel():
    """visitors asks one query per visitor, several in flight: the refusal is still paid once per field."""
    refused = frozenset({"company", "comment"})
    with world(unknown_fields={"get.visitors_report": refused}) as sim:
        cfg = config(sim, max_parallel_requests=8)
        run = run_tap(cfg, catalog=select(discover(cfg), {"visitor_sessions", "visitors"}))
        assert run.returncode == 0, run.stderr[-3000:]
        assert refusals(sim)["get.visitors_report"] == len(refused)
        assert multiset(run.records["visitors"]) == multiset(truth(sim, "visitors", run))
        assert sorted(bookmarks_of(run.state)["visitors"]["refused_fields"]) == sorted(refused)
