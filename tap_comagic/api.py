"""The one way the tap talks to the CoMagic Data API: a JSON-RPC 2.0 call POSTed to ``api_url``.

:class:`CoMagicClient` carries every call of a run, the streams' and the run's own (get.account, an
agent's get.customers and get.customer_users, login.user and logout.user). Each attempt takes a point
from the account's throttle (:mod:`tap_comagic.limits`), puts in the token (:mod:`tap_comagic.auth`),
and reads the answer once; an ``error`` object, which comes with HTTP 200, becomes the action that
:mod:`tap_comagic.errors` gives its mnemonic. Transient failures are retried with the ``backoff``
library (as singer-sdk's own REST streams are) within `max_retries` and `retry_backoff_seconds`.
"""

from __future__ import annotations

import copy
import itertools
import logging
import random
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import backoff
import msgspec
import requests
from singer_sdk import metrics
from singer_sdk.exceptions import RetriableAPIError

from tap_comagic.auth import Credentials
from tap_comagic.errors import (
    ADVICE,
    CoMagicError,
    DropField,
    RateLimited,
    RetryAfter,
    TapError,
    TokenExpired,
    raise_for_error,
)
from tap_comagic.limits import Throttle

_request_ids = itertools.count(1)
_BODY = "_comagic_body"
_TOTAL = "_comagic_total"
HEADERS = {"Content-Type": "application/json; charset=UTF-8"}
# What a retry is for: the SDK's own list for its REST streams (network faults, timeouts) and ours.
RETRIABLE = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
MAX_WAIT = 120.0  # no back-off wait is longer, however many retries `max_retries` allows


# ---- the answer --------------------------------------------------------------------------------------

# A list (a page) is split into its items' JSON in the same parse that reads the envelope; each record is
# decoded when a consumer takes it (shapes.Rows). Anything else is small (get.account, login.user).
Data = Union[list[msgspec.Raw], dict[str, Any], str, int, float, bool, None]  # noqa: UP007


class _Result(msgspec.Struct):
    data: Data = None
    metadata: dict[str, Any] | None = None
    meta_data: dict[str, Any] | None = None  # v3 methods (the spec's example) say so


class Answer(msgspec.Struct):
    """A decoded answer: the envelope, errors and metadata at once, the records only when taken."""

    result: _Result | None = None
    error: dict[str, Any] | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        """The answer's metadata (v2 `metadata` or v3 `meta_data`), empty if none."""
        if self.result is None:
            return {}
        meta = self.result.metadata if self.result.metadata is not None else self.result.meta_data
        return meta or {}

    def records(self, decode: Callable[[Data], Sequence[dict[str, Any]]]) -> Sequence[dict[str, Any]]:
        """The records, decoded by ``decode`` (a stream's :class:`~tap_comagic.shapes.RecordDecoder`: never
        untyped, so that no record can contradict its schema)."""
        return decode(self.result.data if self.result is not None else None)

    def data(self) -> Any:
        """The result's ``data`` as plain JSON values (None without a result)."""
        data = self.result.data if self.result is not None else None
        return [msgspec.json.decode(item) for item in data] if isinstance(data, list) else data


_ANSWER = msgspec.json.Decoder(Answer)


def answer_of(response: requests.Response) -> Answer:
    """The answer, parsed once per response however many times it is asked for.

    The envelope is read in the thread that fetched the page (errors must reach the retry loop);
    the records are decoded by whoever consumes the page, so queued pages stay compact bytes.
    """
    cached = response.__dict__.get(_BODY)
    if cached is None:
        try:
            cached = _ANSWER.decode(response.content)
        except msgspec.DecodeError as exc:  # truncated or not JSON (ValidationError is a DecodeError)
            raise RetryAfter(f"malformed JSON from the API ({str(exc)[:200]})") from None
        response.__dict__[_BODY] = cached
    answer: Answer = cached
    return answer


def read_whole(response: requests.Response) -> None:
    """Read a streamed response's body in one piece. ``Response.content`` reads 10 KiB at a time, which
    for a page of 10,000 calls (37 MB) costs more CPU than decoding it; ``iter_content`` keeps requests'
    mapping of transport faults (a cut body is a ChunkedEncodingError, retried)."""
    unread: object = response._content  # False until read (requests' typing says bytes | None)
    if unread is False:
        response._content = b"".join(response.iter_content(chunk_size=None))


def release(response: requests.Response, total: int) -> None:
    """Let go of a page's raw bytes and parsed envelope once its page is made (memory stays flat)."""
    response.__dict__[_TOTAL] = total
    response.__dict__.pop(_BODY, None)
    response._content = b""


def total_items(response: requests.Response) -> int:
    """The page's total as :func:`release` settled it."""
    return int(response.__dict__[_TOTAL])


# ---- retries -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Retries:
    """How often and how long to retry: `max_retries` and `retry_backoff_seconds`."""

    max_retries: int = 5
    backoff_seconds: float = 1.0

    def waits(self) -> Generator[float, Any, None]:
        """Exponential waits from ``backoff_seconds``, unless the error says how long to wait (its ``wait``)."""
        attempt = 0
        exception = yield 0.0  # primed by backoff; later sends are the exceptions raised
        while True:
            attempt += 1
            wait = getattr(exception, "wait", None)
            if wait is None:
                wait = min(self.backoff_seconds * 2**attempt, MAX_WAIT)
            exception = yield wait

    @staticmethod
    def jitter(value: float) -> float:
        """Half to all of the wait, so that parallel requests do not retry in step."""
        return value * (0.5 + random.random() / 2)


@dataclass(frozen=True)
class Call:
    """One method call: what is sent, and what the answer is checked against."""

    method: str
    params: Mapping[str, Any]
    fields: Sequence[str] = ()  # the fields asked for: one the account refuses can be dropped
    stream: str = ""  # for the request-duration metric
    context: Mapping[str, Any] | None = None
    authenticated: bool = True  # False: login.user and logout.user carry their own credentials


# ---- the client --------------------------------------------------------------------------------------

class CoMagicClient:
    """Every JSON-RPC call of a run; one per account read (its own throttle), sharing the HTTP session
    and the credentials (see :meth:`for_account`)."""

    def __init__(self, api_url: str, credentials: Credentials, *, throttle: Throttle | None = None,
                 retries: Retries = Retries(), timeout: float = 300, user_agent: str = "tap-comagic",
                 session: requests.Session | None = None, logger: logging.Logger | None = None) -> None:
        self.api_url = api_url
        self.credentials = credentials
        self.throttle = throttle or Throttle()
        self.retries = retries
        self.timeout = timeout
        self.headers = {**HEADERS, "User-Agent": user_agent}
        self.session = session or requests.Session()
        self.logger = logger or logging.getLogger("tap-comagic")
        self.metrics_logger = metrics.get_metrics_logger()

    def for_account(self, throttle: Throttle) -> CoMagicClient:
        """The same connection and credentials, keeping another account's points."""
        other = copy.copy(self)
        other.throttle = throttle
        return other

    # ---- calls -------------------------------------------------------------------------------------

    def call(self, method: str, params: Mapping[str, Any], *, fields: Sequence[str] = (), stream: str = "",
             context: Mapping[str, Any] | None = None, sent: Callable[[], None] | None = None) -> requests.Response:
        """The answer to one call, retried as the settings allow; an error raises what errors.py says."""
        return self._with_retries(Call(method, params, fields, stream or method, context), sent)

    def result(self, method: str, params: Mapping[str, Any] | None = None,
               sent: Callable[[], None] | None = None) -> Any:
        """The ``data`` of one call's result, as plain JSON values."""
        return answer_of(self.call(method, params or {}, sent=sent)).data()

    def table(self, method: str, fields: Sequence[str], page_size: int,
              sent: Callable[[], None] | None = None) -> list[dict[str, Any]]:
        """Every row of a paged method (an agent's lists), dropping a field the account refuses."""
        asked = list(fields)
        while True:
            try:
                return self._pages(method, asked, page_size, sent)
            except DropField as exc:
                asked.remove(exc.field)
                self.logger.warning("%s: the account does not know field '%s'; it is left out", method, exc.field)

    def _pages(self, method: str, fields: list[str], page_size: int,
               sent: Callable[[], None] | None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while True:
            params = {"offset": len(rows), "limit": page_size, **({"fields": fields} if fields else {})}
            answer = answer_of(self.call(method, params, fields=fields, sent=sent))
            page = answer.data() or []
            rows += page
            total = answer.metadata.get("total_items")
            if not page or (len(rows) >= int(total) if total is not None else len(page) < page_size):
                return rows

    # ---- sessions ----------------------------------------------------------------------------------

    def log_in(self) -> tuple[str, float | None]:
        """A new session token from login.user, and when it expires (epoch seconds; None: not said)."""
        try:
            response = self._with_retries(Call("login.user", self.credentials.login_params(), authenticated=False))
        except CoMagicError as exc:
            advice = ADVICE.get(exc.mnemonic, "check `login`, `password` and `api_url`")
            raise TapError(f"login.user failed: {exc.mnemonic}; {advice}") from None
        data = answer_of(response).data() or {}
        token = data.get("access_token") if isinstance(data, dict) else None
        if not token:
            raise TapError("login.user returned no access_token; check `login`, `password` and `api_url`")
        expire_at = data.get("expire_at")
        return str(token), float(expire_at) if expire_at else None

    def log_out(self) -> None:
        """End the session (if any) rather than leave it open for its hour."""
        token = self.credentials.end_session()
        if token is None:
            return
        try:
            self._with_retries(Call("logout.user", {"access_token": token}, authenticated=False))
        except Exception as exc:  # the session ends by itself within the hour
            self.logger.debug("logout.user failed (%s); the session ends by itself", type(exc).__name__)

    # ---- one attempt -------------------------------------------------------------------------------

    def _with_retries(self, call: Call, sent: Callable[[], None] | None = None) -> requests.Response:
        def attempt() -> requests.Response:
            return self._attempt(call, sent or _nothing)

        retried: Callable[[], requests.Response] = backoff.on_exception(
            self.retries.waits, RETRIABLE, max_tries=self.retries.max_retries + 1,
            on_backoff=lambda details: self._on_retry(call.method, details), jitter=self.retries.jitter,
            logger=self.logger)(attempt)
        return retried()

    def _attempt(self, call: Call, sent: Callable[[], None]) -> requests.Response:
        self.throttle.before_request()
        params = dict(call.params)
        token = None
        if call.authenticated:
            token = params["access_token"] = self.credentials.token(self.log_in)
        body = msgspec.json.encode({"jsonrpc": "2.0", "id": next(_request_ids), "method": call.method,
                                    "params": params})
        response = self.session.post(self.api_url, data=body, headers=self.headers, timeout=self.timeout,
                                     stream=True)
        read_whole(response)
        sent()
        self._measure(call, response)
        self._check(call, response, token)
        return response

    def _measure(self, call: Call, response: requests.Response) -> None:
        """The SDK's HTTP request-duration metric, as its REST streams log it."""
        tags: dict[str, Any] = {
            metrics.Tag.STREAM: call.stream or call.method, metrics.Tag.ENDPOINT: call.method,
            metrics.Tag.HTTP_STATUS_CODE: response.status_code,
            metrics.Tag.STATUS: metrics.Status.SUCCEEDED if response.status_code < 400 else metrics.Status.FAILED}
        if call.context:
            tags[metrics.Tag.CONTEXT] = dict(call.context)
        metrics.log(self.metrics_logger, metrics.Point(
            "timer", metric=metrics.Metric.HTTP_REQUEST_DURATION, value=response.elapsed.total_seconds(), tags=tags))

    def _check(self, call: Call, response: requests.Response, token: str | None) -> None:
        """Turn an answer's JSON-RPC error (sent with HTTP 200) or a bad status into the action the table says;
        note the limits it reports."""
        status = response.status_code
        if status >= 500 or status == 429:
            raise RetryAfter(f"{call.method}: HTTP {status} from the API")
        # a 4xx that is not a JSON-RPC error means a wrong address rather than a passing fault
        wrong_address = TapError(f"{call.method}: HTTP {status} from {self.api_url}: check `api_url`")
        try:
            answer = answer_of(response)
        except RetryAfter:
            if status >= 400:
                raise wrong_address from None
            raise
        if answer.error:
            self._act_on_error(call, answer.error, token)
        if status >= 400:
            raise wrong_address
        if answer.result is None:
            raise RetryAfter(f"{call.method}: an answer with neither result nor error")
        self.throttle.observe(answer.metadata.get("limits"))

    def _act_on_error(self, call: Call, error: dict[str, Any], token: str | None) -> None:
        """Raise what errors.py's table says for this error, after the session or limits bookkeeping."""
        try:
            raise_for_error(call.method, error, list(call.fields))
        except TokenExpired as exc:
            if not call.authenticated:  # login.user or logout.user: no session to renew
                raise CoMagicError(call.method, error) from None
            if not self.credentials.renew(token):
                raise TapError(f"{exc}; the API key in `access_token` has expired or is invalid: create a new "
                               "key in the CoMagic UI") from None
            raise
        except RateLimited as exc:
            # Some servers say when the limit resets in the error itself; else the last answer did.
            data = error.get("data") or {}
            self.throttle.observe(data.get("limits") or (data.get("metadata") or {}).get("limits"))
            exc.pause = self.throttle.on_limit_exceeded()
            exc.wait = 0.0  # the throttle holds the retry back; jitter must not shorten that
            raise

    def _on_retry(self, method: str, details: Any) -> None:
        """One WARNING per retry, naming the method and the cause."""
        exc = details.get("exception")
        wait = exc.pause if isinstance(exc, RateLimited) else details.get("wait") or 0.0
        self.logger.warning("%s: retry %d in %.1f s after %s", method, details.get("tries", 0), wait,
                            exc if isinstance(exc, RetriableAPIError) else type(exc).__name__)


def _nothing() -> None:
    return None
