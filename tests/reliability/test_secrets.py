"""No secret in the output: at DEBUG, through faults, retries and session renewal, neither the API key,
the session tokens nor the password appear in stdout, stderr or state.

singer-sdk reads the level from ``<PLUGIN_NAME>_LOGLEVEL`` (here ``TAP_COMAGIC_LOGLEVEL``) or ``LOGLEVEL``
(``singer_sdk.plugin_base._plugin_log_level``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tap_comagic.sandbox import Faults, Sandbox
from tests.reliability_helpers import (
    DEFAULT_STREAMS,
    catalog,
    compare,
    error_lines,
    small_world,
    tap_config,
    truth,
)
from tests.tap_harness import run_tap

DEBUG = {"TAP_COMAGIC_LOGLEVEL": "DEBUG"}
API_KEY = "sk-live-fedcba9876543210"
LOGIN, PASSWORD = "analyst", "pw-Very$ecret-77"
FAULTS = {"http_error": 0.05, "drop": 0.03, "truncated": 0.03, "internal_error": 0.03}


@contextmanager
def issued_tokens(sim: Sandbox) -> Iterator[list[str]]:
    """Every session token the simulator hands out, read off its login.user answers."""
    tokens: list[str] = []
    original = sim.handle

    def spy(body: bytes) -> Any:
        answer = original(body)
        text = b"".join(answer.body)
        if b'"access_token"' in text:
            try:
                data = json.loads(text)["result"]["data"]
            except (ValueError, KeyError, TypeError):
                data = {}
            if isinstance(data, dict) and data.get("access_token"):
                tokens.append(str(data["access_token"]))
        return answer

    sim.handle = spy  # type: ignore[method-assign]
    try:
        yield tokens
    finally:
        sim.handle = original  # type: ignore[method-assign]


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret ({secret[:4]}...) appears in the output"


def test_debug_logs_with_an_api_key_and_faults_hold_no_secret() -> None:
    with Sandbox(small_world(api_keys=(API_KEY,)), faults=Faults(seed=8, **FAULTS)) as sim:
        run = run_tap(tap_config(sim, access_token=API_KEY), catalog=catalog(), env=DEBUG, timeout=120)
        injected = sum(sim.injected.values())
    assert run.returncode == 0, run.stderr[-2000:]
    assert injected >= 2
    assert "| DEBUG " in run.stderr, "not at DEBUG: the test proved little"
    assert_no_secret(run.stdout + run.stderr + json.dumps(run.states), [API_KEY])


def test_debug_logs_through_session_renewal_hold_no_secret() -> None:
    world = small_world(users={LOGIN: PASSWORD})
    faults = Faults(seed=4, token_expiry=0.1, **FAULTS)
    with Sandbox(world, faults=faults) as sim, issued_tokens(sim) as tokens:
        cfg = tap_config(sim, **{"access_token": None, "login": LOGIN, "password": PASSWORD})
        run = run_tap(cfg, catalog=catalog(), env=DEBUG, timeout=120)
        cmp = compare(run.records, truth(sim, DEFAULT_STREAMS))
    assert run.returncode == 0, run.stderr[-2000:]
    assert cmp.ok, cmp.detail
    assert len(tokens) >= 2, "no session was renewed: the test proved little"
    assert "| DEBUG " in run.stderr
    assert_no_secret(run.stdout + run.stderr + json.dumps(run.states), [PASSWORD, *tokens])


def test_sessions_expired_mid_run_leave_no_token_in_stdout() -> None:
    with Sandbox(small_world(users={LOGIN: PASSWORD})) as sim, issued_tokens(sim) as tokens:
        cfg = tap_config(sim, **{"access_token": None, "login": LOGIN, "password": PASSWORD})

        def expire(n: int) -> None:
            if n % 50 == 0:
                sim.expire_tokens()

        got = run_tap(cfg, catalog=catalog(), on_line=expire)
    assert got.returncode == 0, got.stderr[-2000:]
    assert len(tokens) >= 2
    text = got.stdout + got.stderr
    assert_no_secret(text, [PASSWORD, *tokens])


def test_failures_at_debug_hold_no_secret() -> None:
    with Sandbox(small_world(users={LOGIN: PASSWORD}, api_keys=(API_KEY,), blocked_tokens=(API_KEY,))) as sim:
        blocked = run_tap(tap_config(sim, access_token=API_KEY), catalog=catalog({"goals"}), env=DEBUG, timeout=60)
        wrong = run_tap(tap_config(sim, **{"access_token": None, "login": LOGIN, "password": PASSWORD + "x"}),
                        catalog=catalog({"goals"}), env=DEBUG, timeout=60)
    for run in (blocked, wrong):
        assert run.returncode == 1
        assert len(error_lines(run.stderr)) == 1, error_lines(run.stderr)
        assert_no_secret(run.stdout + run.stderr, [API_KEY, PASSWORD])
