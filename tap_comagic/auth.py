"""Credentials: a permanent API key, or a one-hour session from ``login.user``.

The token always travels in ``params.access_token``; the client (:mod:`tap_comagic.api`) asks for it
at every attempt, retries included, so that a retry after a renewed session carries the new token.
Logging in and out are calls like any other, made by the client: this module keeps the token only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

RENEW_MARGIN_SECONDS = 300  # renew a session this long before its expire_at
SESSION_SECONDS = 3600  # a session's life when login.user does not say when it expires


class Credentials:
    """The API key, or a session token from `login.user`, renewed before it expires and when the API
    says it has."""

    def __init__(self, *, access_token: str | None = None, login: str | None = None, password: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._api_key = access_token
        self._login = login
        self._password = password
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expire_at = 0.0

    @property
    def is_session(self) -> bool:
        """True for `login` + `password` (a session to renew and end), False for an API key."""
        return self._api_key is None

    def login_params(self) -> dict[str, Any]:
        """The parameters of login.user."""
        return {"login": self._login, "password": self._password}

    def token(self, log_in: Callable[[], tuple[str, float | None]]) -> str:
        """The token for the next request; ``log_in`` (login.user) when the session is missing or about
        to expire. One thread logs in while the others wait for its token."""
        if self._api_key is not None:
            return self._api_key
        with self._lock:
            if self._token is None or self._clock() >= self._expire_at - RENEW_MARGIN_SECONDS:
                token, expire_at = log_in()
                self._token = token
                self._expire_at = expire_at if expire_at is not None else self._clock() + SESSION_SECONDS
            return self._token

    def renew(self, used_token: str | None) -> bool:
        """Forget an expired session token so the next attempt logs in; False for an API key.

        Only a token that is still current is forgotten: parallel requests that all met the same
        expired token cause one login, not one each."""
        if not self.is_session:
            return False
        with self._lock:
            if used_token is None or used_token == self._token:
                self._token = None
        return True

    def end_session(self) -> str | None:
        """The session token to log out with (None: no session is open); forgotten here."""
        with self._lock:
            token, self._token = self._token, None
        return token
