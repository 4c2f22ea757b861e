"""CoMagic error objects and what the tap does about each mnemonic.

The API answers most errors with HTTP 200 and a JSON-RPC ``error`` whose
``data.mnemonic`` is the only reliable key (codes differ from the docs).  One table maps
a mnemonic to an action; :func:`raise_for_error` turns an error object into the matching
exception, which the client's retry loop (api.py), a stream's window loop or the run's end acts on.
"""

from __future__ import annotations

import enum
from typing import Any

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError


class Action(enum.Enum):
    """What the tap does about an API error; errors.py's table maps each mnemonic to one."""

    RETRY = "retry with back-off"
    WAIT_LIMIT = "wait for the limit to reset, then retry"
    REAUTH = "log in again once (session) or fail (API key)"
    SPLIT_WINDOW = "split the date window"
    DROP_FIELD = "drop the unknown field from `fields` and retry"
    SKIP_STREAM = "skip the stream with a warning"
    SKIP_CLIENT = "skip that client with a warning (agencies); fail with a clear message (one account)"
    FAIL = "fail with a clear message"


ACTIONS: dict[str, Action] = {
    "limit_exceeded": Action.WAIT_LIMIT,
    "internal_error": Action.RETRY,
    "access_token_expired": Action.REAUTH,
    "access_token_invalid": Action.REAUTH,
    "access_token_blocked": Action.FAIL,
    "auth_error": Action.FAIL,
    "ip_not_whitelisted": Action.SKIP_CLIENT,
    "account_inactive": Action.SKIP_CLIENT,
    "forbidden": Action.SKIP_STREAM,
    "method_component_disabled": Action.SKIP_STREAM,
    "parameter_component_disabled": Action.SKIP_STREAM,
    "method_not_found": Action.SKIP_STREAM,
    "date_interval_limit_reached": Action.SPLIT_WINDOW,
    "unexpected_parameters": Action.DROP_FIELD,
}

# What a person should do about a fatal mnemonic; shown after the API's own message.
ADVICE: dict[str, str] = {
    "access_token_expired": "the API key has expired: create a new key in the CoMagic UI and set `access_token`",
    "access_token_invalid": "`access_token` is not a valid key for this `api_url` (keys of one brand do not "
    "work on another's host)",
    "access_token_blocked": "the API key is blocked: unblock it or create a new one in the CoMagic UI",
    "auth_error": "check `login` and `password`",
    "ip_not_whitelisted": "add this machine's public IP address to the account's API allow-list in the "
    "CoMagic UI",
    "account_inactive": "the CoMagic account is inactive: contact CoMagic support",
    "filter_prohibited": "remove that field from the stream's entry in `filters` (it is not filterable)",
    "sort_prohibited": "that field cannot be sorted on",
    "unexpected_parameters": "remove that field from the stream's selection or `filters`",
    "invalid_parameter_value": "check the setting behind that parameter",
    "data_type_error": "check the type of that value in `filters`",
    "required_parameter_missed": "the parameter is required (`user_id` for agents, `customer_id` for v3 "
    "reports)",
}


class TapError(Exception):
    """A failure a person must fix; its message is one line naming the setting or field."""


class CoMagicError(FatalAPIError):
    """An ``error`` object the tap cannot recover from."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        data = error.get("data") or {}
        self.method = method
        self.code = error.get("code")
        self.mnemonic: str = str(data.get("mnemonic") or "unknown_error")
        self.field: str | None = data.get("field")
        self.api_message = str(error.get("message") or "")
        parts = [f"{method} failed: {self.mnemonic}"]
        if self.field:
            parts.append(f"field `{self.field}`")
        if self.api_message:
            parts.append(self.api_message.rstrip("."))
        advice = ADVICE.get(self.mnemonic)
        if advice:
            parts.append(advice)
        super().__init__("; ".join(parts))


class RetryAfter(RetriableAPIError):
    """A transient failure; ``wait`` (seconds) overrides the exponential back-off when set."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class RateLimited(RetryAfter):
    """``limit_exceeded``: retried once the limit resets (the throttle pauses for ``pause`` seconds)."""

    pause = 0.0


class TokenExpired(RetryAfter):
    """The session token expired: the client logs in again before the retry."""


class SplitWindow(Exception):
    """The date window is too large for one query."""


class DropField(Exception):
    """The API does not know a field the tap asked for."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class SkipStream(Exception):
    """The account lacks this report (component disabled, method absent, forbidden)."""


class DailyLimitSpent(Exception):
    """The account's daily points are spent: end the run cleanly and resume later."""

    def __init__(self, reset_seconds: float | None) -> None:
        super().__init__(reset_seconds)
        self.reset_seconds = reset_seconds


class StopRun(BaseException):
    """Ends the run from inside a stream: ``reason`` is a :class:`DailyLimitSpent` (a clean stop) or the
    error that failed the run, met by stream ``stream``.

    A BaseException, so that it passes the SDK's per-stream
    ``except Exception`` (which would log a second, "unhandled error" line) and the parents' record
    generators on its way to the tap's ``sync_all``, the one place that ends a run.
    """

    def __init__(self, reason: Exception, stream: str) -> None:
        super().__init__(reason, stream)
        self.reason = reason
        self.stream = stream


def raise_for_error(method: str, error: dict[str, Any], requested_fields: list[str] | None) -> None:
    """Raise the exception that carries out the table's action for this error object."""
    failure = CoMagicError(method, error)
    action = ACTIONS.get(failure.mnemonic, Action.FAIL)
    if action is Action.RETRY:
        raise RetryAfter(str(failure))
    if action is Action.WAIT_LIMIT:
        raise RateLimited(str(failure))  # how long: the limits module (Throttle.on_limit_exceeded)
    if action is Action.REAUTH:
        raise TokenExpired(str(failure), wait=0)
    if action is Action.SPLIT_WINDOW:
        raise SplitWindow(str(failure))
    if action is Action.SKIP_STREAM:
        raise SkipStream(str(failure))
    if action is Action.DROP_FIELD and requested_fields and failure.field in requested_fields:
        raise DropField(str(failure.field))
    raise failure
