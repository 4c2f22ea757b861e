"""Refused fields: left out, remembered in the bookmark, asked for again after a while; the first answers
one at a time."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from tap_comagic.refused import ASK_AGAIN_AFTER, REFUSED_FIELDS, RefusedFields


def fields(state: dict[str, Any]) -> tuple[RefusedFields, list[str]]:
    said: list[str] = []
    return RefusedFields("get.goals_report", lambda: state, lambda msg, *args, **_: said.append(msg % args)), said


def ago(delta: dt.timedelta) -> str:
    return (dt.datetime.now(dt.timezone.utc) - delta).isoformat(timespec="seconds")


def test_a_refused_field_is_left_out_and_remembered_with_one_warning() -> None:
    state: dict[str, Any] = {}
    refused, said = fields(state)
    refused.refused("ymclid")
    assert refused.dropped == {"ymclid"}
    remembered = dt.datetime.fromisoformat(state[REFUSED_FIELDS]["ymclid"])
    assert dt.datetime.now(dt.timezone.utc) - remembered < dt.timedelta(minutes=1)
    assert len(said) == 1
    assert "ymclid" in said[0]


def test_a_field_refused_recently_is_not_asked_for_and_one_refused_long_ago_is() -> None:
    state = {REFUSED_FIELDS: {"recent": ago(dt.timedelta(days=1)), "old": ago(ASK_AGAIN_AFTER + dt.timedelta(days=1)),
                              "garbled": "last week"}}
    refused, _ = fields(state)
    refused.first_answers(lambda: "page", lambda: ["id", "old", "garbled"])
    assert refused.dropped == {"recent"}
    assert set(state[REFUSED_FIELDS]) == {"recent"}  # asked again and accepted: forgotten


def test_the_memory_goes_once_every_field_is_accepted() -> None:
    state = {REFUSED_FIELDS: {"old": ago(ASK_AGAIN_AFTER * 2)}}
    refused, _ = fields(state)
    assert refused.first_answers(lambda: "page", lambda: ["id", "old"]) == "page"
    assert REFUSED_FIELDS not in state


def test_a_memory_that_is_not_ours_is_left_alone_and_every_field_asked_for() -> None:
    state: dict[str, Any] = {REFUSED_FIELDS: ["edited", "by hand"]}
    refused, _ = fields(state)
    refused.first_answers(lambda: "page", lambda: ["id"])
    assert refused.dropped == set()
    assert state[REFUSED_FIELDS] == ["edited", "by hand"]


def test_until_an_answer_accepts_the_fields_a_second_request_waits_for_the_first() -> None:
    refused, _ = fields({})
    second_ran = threading.Event()
    order: list[str] = []

    def second() -> str:
        order.append("second")
        second_ran.set()
        return "page"

    def first() -> str:
        other = threading.Thread(target=refused.first_answers, args=(second, list))
        other.start()
        # held back while this answer is pending: the event stays unset however long it is waited for
        order.append("second ran first" if second_ran.wait(0.3) else "first")
        threads.append(other)
        return "page"

    threads: list[threading.Thread] = []
    refused.first_answers(first, list)
    threads[0].join()
    assert order == ["first", "second"]
