"""tap-comagic: settings, their checks, and the list of streams."""

from __future__ import annotations

import atexit
import datetime as dt
import difflib
import json
import logging
import sys
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError

from tap_comagic.auth import CoMagicAuth
from tap_comagic.client import load_schema
from tap_comagic.errors import DailyLimitSpent, TapError
from tap_comagic.limits import Throttle
from tap_comagic.pagination import MAX_PAGE_SIZE, MAX_WINDOW_DAYS
from tap_comagic.registry import STREAMS, STREAMS_BY_NAME
from tap_comagic.streams import ReportStream
from tap_comagic.timezones import FromApi, as_account_time

if TYPE_CHECKING:
    from tap_comagic.client import CoMagicStream

HOSTS = {
    "CoMagic": "https://dataapi.comagic.ru/v2.0",
    "UIS": "https://dataapi.uiscom.ru/v2.0",
    "CallGear": "https://dataapi.callgear.com/v2.0",
}
ID_BATCH = 1000  # parent ids handed to a child stream at once (chat_ids per request)
LOOPBACK = ("localhost", "127.0.0.1", "::1")
SECRET_SETTINGS = ("access_token", "password")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {list: "list", str: "string", int: "number", float: "number", Decimal: "number",
            dict: "object"}.get(type(value), "null" if value is None else type(value).__name__)


def parse_datetime_setting(name: str, value: str, zone: ZoneInfo) -> dt.datetime:
    """A date or date-time setting as naive account-local time (naive input is account time)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"  # Python 3.10 does not read "Z"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise TapError(f"`{name}` is not a date or date-time: {value!r}; use e.g. 2026-01-01 or "
                       "2026-01-01T00:00:00+03:00") from None
    return as_account_time(moment, zone).replace(microsecond=0)


class TapCoMagic(Tap):
    """Singer tap for the reports of the CoMagic (UIS, CallGear) Data API."""

    name = "tap-comagic"
    message_writer_class = MsgSpecWriter  # msgspec encodes RECORD lines several times faster

    config_jsonschema = th.PropertiesList(
        th.Property("access_token", th.StringType, secret=True, title="API key",
                    description="Permanent API key generated in the CoMagic UI (Settings > API). Use either "
                    "this or `login` + `password`."),
        th.Property("login", th.StringType, title="Login",
                    description="CoMagic user login, for session authentication through `login.user`."),
        th.Property("password", th.StringType, secret=True, title="Password",
                    description="Password of `login`. Sessions last one hour and are renewed automatically."),
        th.Property("api_url", th.StringType, default=HOSTS["CoMagic"], title="API URL",
                    description="Data API endpoint of your brand: " + ", ".join(
                        f"{brand} `{url}`" for brand, url in HOSTS.items()) + "."),
        th.Property("user_id", th.IntegerType, title="User ID (agents)",
                    description="For agents (partners): the client's user id, sent with every report call."),
        th.Property("customer_id", th.IntegerType, title="Customer ID (v3 reports)",
                    description="For partners: the client id sent by the v3 reports `sales` and "
                    "`api_requests`."),
        th.Property("start_date", th.DateTimeType, required=True, title="Start date",
                    description="Earliest date-time to extract, in account time unless it carries an offset."),
        th.Property("end_date", th.DateTimeType, title="End date",
                    description="Latest date-time to extract (default: now), in account time unless it "
                    "carries an offset."),
        th.Property("lookback_days", th.IntegerType, default=3, title="Look-back days",
                    description="Incremental runs re-read this many days before the bookmark, to pick up "
                    "late records and changed tags, sales and statuses."),
        th.Property("window_days", th.IntegerType, default=30, title="Window days",
                    description="Days per request window (1 to 90; the API refuses more than three months)."),
        th.Property("page_size", th.IntegerType, default=MAX_PAGE_SIZE, title="Page size",
                    description="Rows per request (1 to 10000)."),
        th.Property("timezone", th.StringType, default="Europe/Moscow", title="Account time zone",
                    description="IANA name of the account's time zone: the API's date-times are in it."),
        th.Property("filters", th.ObjectType(additional_properties=th.ObjectType()), title="Filters",
                    description="Optional: stream name -> CoMagic filter object sent with that stream's "
                    'requests, e.g. {"calls": {"field": "site_id", "operator": "=", "value": 5}}.'),
        th.Property("max_parallel_requests", th.IntegerType, default=4, title="Parallel requests",
                    description="Requests in flight at once for the pages of one window and for per-chat "
                    "or per-visitor calls (1 to 16), never more than the minute's remaining points."),
        th.Property("max_retries", th.IntegerType, default=8, title="Max retries",
                    description="Retries of one request after a transient failure (5xx, dropped connection, "
                    "timeout, malformed answer, internal_error, limit_exceeded)."),
        th.Property("retry_backoff_seconds", th.NumberType, default=1.0, title="Retry back-off",
                    description="First wait of the exponential back-off between retries, in seconds."),
        th.Property("request_timeout", th.IntegerType, default=300, title="Request timeout",
                    description="Seconds to wait for one answer."),
        th.Property("sandbox", th.BooleanType, default=False, title="Sandbox",
                    description="Start the bundled CoMagic simulator in-process and read from it: no "
                    "credentials, for trying the tap."),
    ).to_dict()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        state = kwargs.get("state")
        if state is not None and not isinstance(state, dict):  # the SDK would take it for a file name
            self._refuse_state(f"the state is a JSON {_json_kind(state)}, not an object: pass the state file the "
                               "target last wrote, or none to start at `start_date`")
        super().__init__(*args, **kwargs)
        try:
            self.check_settings()
            self.check_state()
            self.check_catalog()
        except TapError as exc:
            raise ConfigValidationError(str(exc), errors=[str(exc)]) from None
        self.daily_limit_spent: DailyLimitSpent | None = None
        self.throttle = Throttle()
        self._sandbox: Any = None

    # ---- settings ---------------------------------------------------------------------

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # The SDK's messages quote the offending value: never let that be a secret's.
        errors = super()._validate_config(raise_errors=False)
        secrets = [str(self._config[k]) for k in SECRET_SETTINGS if self._config.get(k) not in (None, "")]
        for secret in secrets:
            errors = [e.replace(secret, "***") for e in errors]
        if errors and raise_errors:
            raise ConfigValidationError(errors[0], errors=errors[:1])
        return errors

    def check_settings(self) -> None:
        c = self.config
        known = set(self.config_jsonschema["properties"])
        for name in c:
            if name not in known:
                hint = difflib.get_close_matches(name, known, n=1)
                also = f"; did you mean `{hint[0]}`?" if hint else ""
                raise TapError(f"unknown setting `{name}`{also}")
        try:
            self.zone = ZoneInfo(str(c.get("timezone") or "Europe/Moscow"))
        except (ZoneInfoNotFoundError, ValueError):
            raise TapError(f"`timezone` {c.get('timezone')!r} is not a known IANA time zone; use e.g. "
                           "Europe/Moscow") from None
        self.from_api = FromApi(self.zone)
        has_key, has_login = bool(c.get("access_token")), bool(c.get("login") or c.get("password"))
        if not c.get("sandbox"):
            if has_key and has_login:
                raise TapError("set either `access_token` or `login` + `password`, not both")
            if not has_key and not has_login:
                raise TapError("no credentials: set `access_token` (an API key) or `login` + `password` "
                               "(or `sandbox: true` to try the bundled simulator)")
            if has_login and not (c.get("login") and c.get("password")):
                raise TapError("`login` and `password` go together: set both")
            url = urlparse(str(c.get("api_url") or ""))
            if url.scheme != "https" and not (url.scheme == "http" and url.hostname in LOOPBACK):
                raise TapError(f"`api_url` must be an https URL such as {HOSTS['CoMagic']}")
        self.start_date = parse_datetime_setting("start_date", str(c["start_date"]), self.zone)
        end = c.get("end_date")
        now = dt.datetime.now(self.zone).replace(tzinfo=None, microsecond=0)
        self.end_date = parse_datetime_setting("end_date", str(end), self.zone) if end else now
        if self.end_date < self.start_date:
            raise TapError("`end_date` is before `start_date`: swap them or leave `end_date` empty")
        self.window_days = self._bounded("window_days", 30, 1, MAX_WINDOW_DAYS)
        self.page_size = self._bounded("page_size", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        self.lookback_days = self._bounded("lookback_days", 3, 0, 3650)
        self.max_parallel_requests = self._bounded("max_parallel_requests", 4, 1, 16)
        self._bounded("max_retries", 8, 0, 100)
        self._bounded("request_timeout", 300, 1, 3600)
        backoff = c.get("retry_backoff_seconds", 1.0)
        # the SDK reads JSON numbers with a fraction as Decimal
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float, Decimal)) or not 0 <= backoff <= 600:
            raise TapError(f"`retry_backoff_seconds` must be a number from 0 to 600, not {backoff!r}")
        self.customer_id = c.get("customer_id")
        self.id_batch = ID_BATCH
        filters = c.get("filters") or {}
        for stream_name, spec in filters.items():
            if stream_name not in STREAMS_BY_NAME:
                raise TapError(f"`filters` names an unknown stream {stream_name!r}; streams: "
                               + ", ".join(sorted(STREAMS_BY_NAME)))
            self._check_filter(stream_name, spec)
        self.filters: dict[str, Any] = dict(filters)

    def _bounded(self, name: str, default: int, low: int, high: int) -> int:
        value = self.config.get(name, default)
        if value is None:
            return default
        if not isinstance(value, int) or not low <= value <= high:
            raise TapError(f"`{name}` must be a whole number from {low} to {high}, not {value!r}")
        return value

    @staticmethod
    def _check_filter(stream_name: str, spec: Any) -> None:
        if not isinstance(spec, dict):
            raise TapError(f"`filters.{stream_name}` must be a CoMagic filter object")
        _, flags = load_schema(stream_name)
        filterable = set(flags.get("filterable", ()))

        def walk(node: Any) -> None:
            if not isinstance(node, dict):
                raise TapError(f"`filters.{stream_name}` must be a CoMagic filter object")
            if "filters" in node:
                if node.get("condition", "and") not in ("and", "or"):
                    raise TapError(f"`filters.{stream_name}`: condition must be 'and' or 'or'")
                for child in node["filters"]:
                    walk(child)
                return
            field = node.get("field")
            if not field or "operator" not in node:
                raise TapError(f"`filters.{stream_name}`: each condition needs `field`, `operator` and `value`")
            if filterable and field not in filterable:
                raise TapError(f"`filters.{stream_name}`: field {field!r} is not filterable in this report")

        walk(spec)

    def load_state(self, state: dict[str, Any]) -> None:
        bookmarks = state.get("bookmarks", {})
        if not isinstance(bookmarks, dict):
            self._refuse_state(f"the state's `bookmarks` is a JSON {_json_kind(bookmarks)}, not an object of "
                               "stream name -> bookmark: fix it or delete it (streams then start at `start_date`)")
        for stream, bookmark in bookmarks.items():
            if not isinstance(bookmark, dict):
                self._refuse_state(f"the state's bookmark of stream `{stream}` is a JSON {_json_kind(bookmark)}, "
                                   "not an object: fix it or delete it (the stream then starts at `start_date`)")
        super().load_state(state)

    @staticmethod
    def _refuse_state(message: str) -> NoReturn:
        raise ConfigValidationError(message, errors=[message])

    def check_state(self) -> None:
        for stream, bookmark in (self.state.get("bookmarks") or {}).items():
            value = bookmark.get("replication_key_value") if isinstance(bookmark, dict) else None
            if value is None:
                continue
            try:
                parse_datetime_setting("state", str(value), self.zone)
            except TapError:
                raise TapError(f"the state's bookmark of stream `{stream}` is not a date-time: {value!r}; fix "
                               "it or delete it from the state (the stream then starts at `start_date`)") from None

    def check_catalog(self) -> None:
        if self.input_catalog is None:
            return
        for entry in self.input_catalog.streams:
            if entry.tap_stream_id not in STREAMS_BY_NAME:
                raise TapError(f"the catalog names stream `{entry.tap_stream_id}`, which tap-comagic does not have; "
                               "run discovery again (`--discover`)")
            properties = load_schema(entry.tap_stream_id)[0]["properties"]
            for breadcrumb, meta in entry.metadata.items():
                if len(breadcrumb) == 2 and meta.selected and breadcrumb[1] not in properties:
                    raise TapError(f"the catalog selects field `{breadcrumb[1]}` of stream `{entry.tap_stream_id}`, "
                                   "which tap-comagic does not have; deselect it or run discovery again")

    # ---- connection -------------------------------------------------------------------

    @cached_property
    def api_url(self) -> str:
        if self.config.get("sandbox"):
            return str(self._start_sandbox().url)
        return str(self.config.get("api_url") or HOSTS["CoMagic"])

    @cached_property
    def auth(self) -> CoMagicAuth:
        if self.config.get("sandbox"):
            sandbox = self._start_sandbox()
            return CoMagicAuth(self.api_url, access_token=sandbox.api_key)
        auth = CoMagicAuth(self.api_url, access_token=self.config.get("access_token"),
                           login=self.config.get("login"), password=self.config.get("password"),
                           timeout=float(self.config.get("request_timeout", 300)))
        if auth.is_session:
            atexit.register(auth.log_out)  # end the session rather than leave it open for an hour
        return auth

    def _start_sandbox(self) -> Any:
        if self._sandbox is None:
            from tap_comagic.sandbox import Sandbox  # the only place the tap touches the simulator

            self._sandbox = Sandbox()
            self._sandbox.start()
            atexit.register(self.close)
            self.logger.info("Sandbox: reading from the bundled CoMagic simulator at %s", self._sandbox.url)
        return self._sandbox

    # ---- streams ----------------------------------------------------------------------

    def discover_streams(self) -> list[CoMagicStream]:
        return [stream_class(tap=self) for stream_class in STREAMS]

    def stop_for_daily_limit(self, stream: CoMagicStream, exc: DailyLimitSpent) -> None:
        if self.daily_limit_spent is not None:
            return  # said once already, by the stream that met it first
        self.daily_limit_spent = exc
        for finished in self.streams.values():
            if isinstance(finished, ReportStream):
                finished.hold_finished()
        stream._write_state_message()
        when = ""
        if exc.reset_seconds is not None:
            at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=exc.reset_seconds)
            when = f" after {at:%Y-%m-%d %H:%M} UTC"
        self.logger.warning(
            "The account's daily API limit is spent (stream '%s'): stopping cleanly with state saved up to "
            "the last complete window; run again%s to resume.", stream.name, when)

    def fail(self, exc: Exception) -> NoReturn:
        """One clear line, the state of every window finished so far, a non-zero exit."""
        self.logger.error("%s", exc)
        self._state_writer.write_state(self.state)
        self.close()
        sys.exit(1)

    def close(self) -> None:
        if "auth" in self.__dict__:
            self.auth.log_out()
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None


logging.getLogger("urllib3").setLevel(logging.INFO)  # its DEBUG lines add nothing and cost time


def main() -> None:
    """The `tap-comagic` command: the SDK's CLI, with unreadable input files reported in one line."""
    try:
        TapCoMagic.cli()
    except ValueError as exc:
        if type(exc).__name__ != "JSONDecodeError":  # the SDK reads files with simplejson, not json
            raise
        args = sys.argv[1:]
        culprit = "an input file"
        for flag in ("--config", "--state", "--catalog"):
            if flag in args and args.index(flag) + 1 < len(args):
                path = args[args.index(flag) + 1]
                try:
                    with open(path, encoding="utf-8") as handle:
                        json.load(handle)
                except (OSError, json.JSONDecodeError):
                    culprit = f"the {flag.lstrip('-')} file {path}"
                    break
        logging.getLogger(TapCoMagic.name).error("%s is not valid JSON: fix it (or pass another)", culprit)
        sys.exit(1)


if __name__ == "__main__":
    main()
