"""Transient failures are retried (boundedly), fatal ones fail at once; sessions renew; fields and
streams the account lacks are dropped or skipped with a warning."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from tap_comagic.sandbox import DEFAULT_LOGIN, DEFAULT_PASSWORD, Faults, Sandbox
from tap_comagic.sandbox.catalog import CATALOG
from tests.reliability_helpers import (
    DEFAULT_STREAMS,
    catalog,
    compare,
    error_lines,
    log_lines,
    non_ok,
    retry_lines,
    small_world,
    tap_config,
    truth,
)
from tests.tap_harness import Run, run_tap

TRANSIENT = {
    "http_error": Faults(seed=1, http_error=0.15),
    "drop": Faults(seed=2, drop=0.15),
    "truncated": Faults(seed=3, truncated=0.15),
    "internal_error": Faults(seed=4, internal_error=0.15),
}


@pytest.mark.parametrize("kind", sorted(TRANSIENT))
def test_transient_failures_are_retried_and_nothing_is_lost(kind: str) -> None:
    with Sandbox(small_world(), faults=TRANSIENT[kind]) as sim:
        run = run_tap(tap_config(sim), catalog=catalog(), timeout=120)
        cmp = compare(run.records, truth(sim, DEFAULT_STREAMS))
        injected = sim.injected[kind]
    assert run.returncode == 0, run.stderr[-2000:]
    assert injected >= 2
    assert cmp.ok, cmp.detail
    assert cmp.duplicates == 0
    assert len(retry_lines(run.stderr)) >= injected
    assert "Traceback" not in run.stderr


@pytest.fixture(scope="module")
def always_5xx() -> Iterator[tuple[int, Run]]:
    with Sandbox(small_world(), faults=Faults(seed=1, http_error=1.0)) as sim:
        run = run_tap(tap_config(sim, max_retries=2), catalog=catalog({"goals"}), timeout=60)
        yield len(sim.log), run


def test_retries_are_bounded_by_max_retries(always_5xx: tuple[int, Run]) -> None:
    attempts, run = always_5xx
    assert run.returncode != 0
    assert attempts == 3  # the first try and two retries, then the stream fails
    assert len(retry_lines(run.stderr)) == 2


def test_giving_up_after_the_retries_fails_in_one_line(always_5xx: tuple[int, Run]) -> None:
    _, run = always_5xx
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    errors = error_lines(run.stderr)
    assert len(errors) == 1, errors
    assert "get.account" in errors[0]  # the run's first request: it looks the account up
    assert "HTTP 5" in errors[0]
    assert "`max_retries`" in errors[0]  # what to do: raise it, or check the API's status


def test_a_request_past_the_timeout_is_retried() -> None:
    faults = Faults(seed=9, slow=0.05, slow_seconds=2.0)
    with Sandbox(small_world(days=2), faults=faults) as sim:
        cfg = tap_config(sim, request_timeout=1, end_date="2026-01-02 23:59:59")
        run = run_tap(cfg, catalog=catalog({"calls", "goals"}), timeout=120)
        cmp = compare(run.records, truth(sim, {"calls", "goals"}, date_till="2026-01-02 23:59:59"))
        slow = sim.injected["slow"]
    assert run.returncode == 0, run.stderr[-2000:]
    assert slow >= 1
    assert cmp.ok, cmp.detail
    timeouts = [line for line in retry_lines(run.stderr) if "Timeout" in line or "timed out" in line]
    assert len(timeouts) >= slow


def test_a_fatal_error_fails_at_once_naming_method_mnemonic_and_field() -> None:
    with Sandbox(small_world(blocked_tokens=("comagic-sandbox-key",))) as sim:
        run = run_tap(tap_config(sim), catalog=catalog({"goals"}), timeout=60)
        attempts = [e for e in sim.log if e.method == "get.account"]  # the run's first request
    assert run.returncode == 1
    assert len(attempts) == 1, "a fatal error must not be retried"
    errors = error_lines(run.stderr)
    assert len(errors) == 1, errors
    assert "get.account" in errors[0]
    assert "access_token_blocked" in errors[0]
    assert "access_token" in errors[0].split("access_token_blocked", 1)[1]  # the field, after the mnemonic
    assert retry_lines(run.stderr) == []
    assert "Traceback" not in run.stderr


def fails_in_one_line(run: Run, *, hiding: str) -> str:
    """A credential the server refuses: exit 1 with one error line (returned), no traceback, the credential
    nowhere in the output."""
    assert run.returncode == 1
    errors = error_lines(run.stderr)
    assert len(errors) == 1, errors
    assert "Traceback" not in run.stderr
    assert hiding not in run.stderr + run.stdout
    return errors[0]


def test_an_expired_api_key_fails_saying_so() -> None:
    with Sandbox(small_world(api_keys=("live-key",), expired_api_keys=("old-key",))) as sim:
        run = run_tap(tap_config(sim, access_token="old-key"), catalog=catalog({"goals"}), timeout=60)
    error = fails_in_one_line(run, hiding="old-key")
    assert "expired" in error
    assert "`access_token`" in error


def test_an_api_key_the_server_rejects_fails_in_one_line() -> None:
    with Sandbox(small_world()) as sim:
        run = run_tap(tap_config(sim, access_token="not-a-key-0000"), catalog=catalog({"goals"}), timeout=60)
    error = fails_in_one_line(run, hiding="not-a-key-0000")
    assert "access_token_invalid" in error  # the API's mnemonic, as for the other token errors
    assert "`access_token`" in error


# ---- sessions -----------------------------------------------------------------------------------------

def session_config(sim: Sandbox, **extra: Any) -> dict[str, Any]:
    return tap_config(sim, **{"access_token": None, "login": DEFAULT_LOGIN, "password": DEFAULT_PASSWORD, **extra})


def test_session_tokens_expiring_mid_run_are_renewed() -> None:
    with Sandbox(small_world(), faults=Faults(seed=4, token_expiry=0.15)) as sim:
        run = run_tap(session_config(sim), catalog=catalog(), timeout=120)
        cmp = compare(run.records, truth(sim, DEFAULT_STREAMS))
        expired = sim.injected["token_expiry"]
        logins = [e for e in sim.log if e.method == "login.user" and e.outcome == "ok"]
    assert run.returncode == 0, run.stderr[-2000:]
    assert expired >= 2
    assert cmp.ok, cmp.detail
    assert len(logins) >= expired  # one new session per expired one (plus the first)
    assert "Traceback" not in run.stderr


def test_sessions_expired_by_the_server_mid_run_are_renewed() -> None:
    with Sandbox(small_world()) as sim:
        def expire_every_40(n: int) -> None:
            if n % 40 == 0:
                sim.expire_tokens()

        got = run_tap(session_config(sim), catalog=catalog(), on_line=expire_every_40)
        cmp = compare(got.records, truth(sim, DEFAULT_STREAMS))
        expired = [e for e in sim.log if e.outcome == "access_token_expired"]
        logins = [e for e in sim.log if e.method == "login.user" and e.outcome == "ok"]
    assert got.returncode == 0, got.stderr[-2000:]
    assert expired, "the sessions never expired: the test proved nothing"
    assert cmp.ok, cmp.detail
    assert len(logins) >= 2


def test_wrong_password_fails_in_one_line() -> None:
    with Sandbox(small_world()) as sim:
        run = run_tap(session_config(sim, password="wrong-pass-123"), catalog=catalog({"goals"}), timeout=60)
    error = fails_in_one_line(run, hiding="wrong-pass-123")
    assert "auth_error" in error
    assert "`password`" in error


# ---- fields and streams the account lacks ----------------------------------------------------------------

def test_a_field_the_account_lacks_is_dropped_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    # The account's API lacks a spec field: the simulator's own catalog loses it for this test.
    spec = CATALOG["get.goals_report"]
    monkeypatch.setitem(CATALOG, "get.goals_report",
                        dataclasses.replace(spec, fields=tuple(f for f in spec.fields if f.name != "ymclid")))
    with Sandbox(small_world()) as sim:
        run = run_tap(tap_config(sim), catalog=catalog({"goals", "calls"}), timeout=60)
        expected = truth(sim, {"goals", "calls"})
        refused = [e for e in sim.log if e.outcome == "unexpected_parameters"]
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(refused) == 1  # asked once, then never again in this run
    assert refused[0].method == "get.goals_report"
    warnings = [line for line in log_lines(run.stderr, "WARNING") if "ymclid" in line]
    assert len(warnings) == 1, warnings
    assert all("ymclid" not in r for r in expected["goals"])
    emitted = {s: [{k: v for k, v in r.items() if not (s == "goals" and k == "ymclid" and v is None)}
                   for r in rows] for s, rows in run.records.items()}
    cmp = compare(emitted, expected)
    assert cmp.ok, cmp.detail
    assert len(run.records["goals"]) == len(expected["goals"]) > 0


def test_a_disabled_report_is_skipped_with_one_warning_and_the_others_complete() -> None:
    faults = Faults(disabled_methods=frozenset({"get.goals_report"}))
    streams = {"goals", "calls", "chats"}
    with Sandbox(small_world(), faults=faults) as sim:
        run = run_tap(tap_config(sim), catalog=catalog(streams), timeout=60)
        expected = truth(sim, {"calls", "chats"})
        goals_calls = [e for e in sim.log if e.method == "get.goals_report"]
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(goals_calls) == 1
    warnings = [line for line in log_lines(run.stderr, "WARNING") if "goals" in line]
    assert len(warnings) == 1, warnings
    assert "method_component_disabled" in warnings[0]
    assert run.records.get("goals", []) == []
    cmp = compare(run.records, expected)
    assert cmp.ok, cmp.detail
    assert non_ok(sim) == {"method_component_disabled": 1}
