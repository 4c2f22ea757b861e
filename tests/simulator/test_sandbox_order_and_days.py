"""The simulator's switches for unstable row order and for daily budgets, over HTTP as a client sees them."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tap_comagic.sandbox import Sandbox, SandboxConfig

WINDOW = {"date_from": "2026-01-01 00:00:00", "date_till": "2026-01-03 23:59:59"}


def call(sim: Sandbox, method: str, **params: Any) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"access_token": sim.api_key, **params}}
    answer: dict[str, Any] = requests.post(sim.url, json=body, timeout=30).json()
    return answer


def paged_ids(sim: Sandbox, method: str, page: int, **params: Any) -> tuple[list[int], int]:
    """Every id of a naive offset paging, in arrival order, and the total the first page announced."""
    ids: list[int] = []
    offset, total = 0, 1
    while offset < total:
        result = call(sim, method, **params, offset=offset, limit=page, fields=["id"])["result"]
        total = result["metadata"]["total_items"] if offset == 0 else total
        ids += [r["id"] for r in result["data"]]
        offset += page
    return ids, total


def world(**switches: bool) -> SandboxConfig:
    return SandboxConfig(seed=3, days=3, calls_per_day=60, goals_per_day=60, **switches)


@pytest.mark.parametrize(("method", "extra", "switch"), [
    ("get.goals_report", {}, "unsorted_any_order"),  # no sort: any order
    ("get.calls_report", {"sort": [{"field": "start_time", "order": "asc"}]}, "reorder_ties"),
])
def test_reordered_rows_make_naive_offset_paging_inexact(method: str, extra: dict[str, Any], switch: str) -> None:
    # calls share seconds (three a day) only rarely: pages of 1 row put a page boundary in every tie
    page = 1 if switch == "reorder_ties" else 7
    with Sandbox(world()) as stable:
        ids, total = paged_ids(stable, method, page, **WINDOW, **extra)
        assert len(ids) == len(set(ids)) == total  # a stable order pages exactly
    with Sandbox(world(**{switch: True})) as unstable:
        ids, total = paged_ids(unstable, method, page, **WINDOW, **extra)
        truth = {r["id"] for r in unstable.truth(method, WINDOW["date_from"], WINDOW["date_till"])}
        assert total == len(truth)
        assert len(set(ids)) < total, "every row arrived: the order did not change between requests"
        assert set(ids) <= truth


def test_reordering_keeps_the_requested_sort() -> None:
    with Sandbox(world(reorder_ties=True, unsorted_any_order=True)) as sim:
        sort = [{"field": "start_time", "order": "asc"}]
        rows = call(sim, "get.calls_report", **WINDOW, limit=1000, sort=sort,
                    fields=["id", "start_time"])["result"]["data"]
        times = [r["start_time"] for r in rows]
        assert times == sorted(times)
        assert len(rows) == 180


def test_a_day_budget_is_spent_then_renewed_by_new_day() -> None:
    with Sandbox(world(day_limit=3)) as sim:
        answers = [call(sim, "get.goals_report", **WINDOW, limit=1, fields=["id"]) for _ in range(4)]
        assert [a["result"]["metadata"]["limits"]["day_remaining"] for a in answers[:3]] == [2, 1, 0]
        assert all(0 < a["result"]["metadata"]["limits"]["day_reset"] <= 86_400 for a in answers[:3])
        error = answers[3]["error"]
        assert error["data"]["mnemonic"] == "limit_exceeded"
        assert error["data"]["metadata"]["limits"]["day_remaining"] == 0
        sim.new_day(day_limit=5)
        again = call(sim, "get.goals_report", **WINDOW, limit=1, fields=["id"])
        limits = again["result"]["metadata"]["limits"]
        assert (limits["day_limit"], limits["day_remaining"]) == (5, 4)
