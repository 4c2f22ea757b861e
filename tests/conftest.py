"""Shared fixtures: a started simulator (the world of the simulator's own tests) and a JSON-RPC caller bound to
it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tap_comagic.sandbox import Sandbox
from tests.simulator import TEN_DAYS
from tests.tap_harness import small_world


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(small_world(**TEN_DAYS)) as sb:
        yield sb


RPC = Callable[..., dict[str, Any]]


@pytest.fixture
def rpc_to() -> Iterator[Callable[..., RPC]]:
    """``rpc_to(sb, token)``: an ``rpc`` bound to ``sb`` that sends ``token`` unless told otherwise (default: the
    sandbox's API key), for tests of their own sandboxes and tokens (an agent's)."""
    session = requests.Session()

    def bind(bound: Sandbox, default_token: Any = ...) -> RPC:
        def call(method: str, *, token: Any = ..., sb: Sandbox | None = None, **params: Any) -> dict[str, Any]:
            target = sb or bound
            if token is ...:
                token = target.api_key if default_token is ... else default_token
            if token is not None:
                params = {"access_token": token, **params}
            body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
            with session.post(target.url, json=body, timeout=30) as r:
                assert r.status_code == 200, r.text
                doc: dict[str, Any] = r.json()
            return doc

        return call

    yield bind
    session.close()


@pytest.fixture
def rpc(sandbox: Sandbox, rpc_to: Callable[..., RPC]) -> RPC:
    """``rpc(method, **params)``: POST one JSON-RPC call with the sandbox's API key; the decoded answer.
    ``token=None`` sends no access_token, ``token="x"`` another one; ``sb=`` another sandbox."""
    return rpc_to(sandbox)
