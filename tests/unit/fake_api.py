"""A fake transport for the CoMagic client: scripted answers, no server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import BaseAdapter

URL = "https://api.example.test/v2.0"
Reply = tuple[int, bytes] | Exception
Script = Callable[[dict[str, Any]], Reply]


def ok(data: Any = None, **metadata: Any) -> Reply:
    return 200, json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"data": data, "metadata": metadata}}).encode()


def error(mnemonic: str, status: int = 200, **data: Any) -> Reply:
    body = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": f"said {mnemonic}",
                                                  "data": {"mnemonic": mnemonic, **data}}}
    return status, json.dumps(body).encode()


class FakeAPI(BaseAdapter):
    """A transport that answers each request from a script: a list of replies in turn, or a function of the
    request's JSON-RPC body."""

    def __init__(self, script: list[Reply] | Script) -> None:
        super().__init__()
        self.script = script
        self.bodies: list[dict[str, Any]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        assert request.body is not None
        body = json.loads(request.body)
        self.bodies.append(body)
        reply = self.script(body) if callable(self.script) else self.script.pop(0)
        if isinstance(reply, Exception):
            raise reply
        response = requests.Response()
        response.status_code, response._content = reply
        response.request, response.url = request, request.url or URL
        return response

    def close(self) -> None:
        pass

    @property
    def methods(self) -> list[str]:
        return [b["method"] for b in self.bodies]


class Clock:
    """A clock for the throttle and the session: sleeping moves it."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
