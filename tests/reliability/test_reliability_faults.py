"""Fault injection: many seeded runs with random faults; de-duplicated by primary key, the output
equals the ground truth (and one uninterrupted run emits nothing twice)."""

from __future__ import annotations

import pytest

from tests.reliability_helpers import fault_run

SEEDS = range(1, 7)


@pytest.mark.parametrize("seed", SEEDS)
def test_mixed_faults_lose_nothing(seed: int) -> None:
    result = fault_run("mixed", seed)
    cmp = result.comparison
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.injected >= 1, "no fault injected: the run proved nothing"
    assert cmp.lost == 0, cmp.detail
    assert cmp.ok, cmp.detail
    assert cmp.duplicates == 0
    assert result.retried >= 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["slow", "token_expiry", "limit_burst"])
def test_one_fault_kind_at_a_time_loses_nothing(kind: str) -> None:
    result = fault_run(kind, seed=21)
    cmp = result.comparison
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.injected >= 1
    assert cmp.ok, cmp.detail
    assert cmp.duplicates == 0
