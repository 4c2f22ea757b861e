"""Authentication: a permanent API key, or a one-hour session from ``login.user``.

The token always travels in ``params.access_token``.  :class:`CoMagicAuth` is a
``requests`` auth hook: the SDK calls it before every attempt, retries included, so a
retry after a renewed session carries the new token without rebuilding the page request.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
import requests

from tap_comagic.errors import ADVICE, TapError

logger = logging.getLogger("tap-comagic.auth")
RENEW_MARGIN_SECONDS = 300  # renew a session this long before its expire_at
_ids = itertools.count(1)


class CoMagicAuth(requests.auth.AuthBase):
    """Puts the token in every request: the API key, or a session token from `login.user` renewed before it expires."""

    def __init__(
        self,
        api_url: str,
        *,
        access_token: str | None = None,
        login: str | None = None,
        password: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_url = api_url
        self._api_key = access_token
        self._login = login
        self._password = password
        self._session = session or requests.Session()
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expire_at = 0.0
        self.logins = 0

    @property
    def is_session(self) -> bool:
        """True for `login` + `password` (a session to renew and end), False for an API key."""
        return self._api_key is None

    def token(self) -> str:
        """The token for the next request, logging in again when the session is about to expire."""
        if self._api_key is not None:
            return self._api_key
        with self._lock:
            if self._token is None or self._clock() >= self._expire_at - RENEW_MARGIN_SECONDS:
                self._token, self._expire_at = self._log_in()
            return self._token

    def renew(self, used_token: str | None) -> bool:
        """Forget an expired session token so the next attempt logs in; False for an API key."""
        if not self.is_session:
            return False
        with self._lock:
            if used_token is None or used_token == self._token:
                self._token = None
        return True

    def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}
        last: Exception | None = None
        for attempt in range(5):
            try:
                resp = self._session.post(self.api_url, data=msgspec.json.encode(body), timeout=self._timeout,
                                          headers={"Content-Type": "application/json; charset=UTF-8"})
                if resp.status_code >= 500:
                    raise requests.HTTPError(f"HTTP {resp.status_code}")
                answer: dict[str, Any] = msgspec.json.decode(resp.content)
            except (requests.RequestException, msgspec.DecodeError) as exc:
                last = exc
                self._back_off(method, attempt, type(exc).__name__)
                continue
            error = answer.get("error")
            if error:
                mnemonic = str((error.get("data") or {}).get("mnemonic") or "unknown_error")
                if mnemonic in ("internal_error", "limit_exceeded"):
                    last = TapError(mnemonic)
                    self._back_off(method, attempt, mnemonic)
                    continue
                advice = ADVICE.get(mnemonic, "check `login`, `password` and `api_url`")
                raise TapError(f"{method} failed: {mnemonic}; {advice}")
            result: dict[str, Any] = answer.get("result") or {}
            return result
        raise TapError(f"{method} failed after retries ({type(last).__name__}); check `api_url` and the network")

    def _back_off(self, method: str, attempt: int, reason: str) -> None:
        wait = min(2**attempt, 30) * 0.5
        logger.warning("%s: retry %d in %.1f s after %s", method, attempt + 1, wait, reason)
        time.sleep(wait)

    def _log_in(self) -> tuple[str, float]:
        data = self._call("login.user", {"login": self._login, "password": self._password}).get("data") or {}
        token = data.get("access_token")
        if not token:
            raise TapError("login.user returned no access_token; check `login`, `password` and `api_url`")
        self.logins += 1
        expire_at = float(data.get("expire_at") or (self._clock() + 3600))
        return str(token), expire_at

    def log_out(self) -> None:
        """End the session (if any) rather than leave it open for its hour."""
        with self._lock:
            token, self._token = self._token, None
        if token is not None:
            with contextlib.suppress(TapError):  # the session ends by itself within the hour
                self._call("logout.user", {"access_token": token})

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if request.body:
            body = msgspec.json.decode(request.body)
            body["params"]["access_token"] = self.token()
            encoded = msgspec.json.encode(body)
            request.body = encoded
            request.headers["Content-Length"] = str(len(encoded))
        return request


def used_token(request: requests.PreparedRequest | None) -> str | None:
    """The token an already-sent request carried (to renew only a token that is still current)."""
    if request is None or not request.body:
        return None
    try:
        token = msgspec.json.decode(request.body)["params"].get("access_token")
    except (msgspec.DecodeError, KeyError, TypeError):
        return None
    return None if token is None else str(token)
