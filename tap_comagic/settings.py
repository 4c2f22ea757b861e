"""The tap's settings: their JSON Schema (what Meltano and the Hub show), their defaults, and their
parsing into one frozen :class:`Settings` value, checked once before any stream runs."""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from singer_sdk import typing as th
from singer_sdk.plugin_base import JSONSchemaValidator

from tap_comagic.errors import TapError
from tap_comagic.pagination import MAX_PAGE_SIZE, MAX_WINDOW_DAYS
from tap_comagic.shapes import load_schema
from tap_comagic.timezones import DATETIME_OUTPUTS, UTC_OUTPUT, as_account_time

HOSTS = {
    "CoMagic": "https://dataapi.comagic.ru/v2.0",
    "UIS": "https://dataapi.uiscom.ru/v2.0",
    "CallGear": "https://dataapi.callgear.com/v2.0",
}
LOOPBACK = ("localhost", "127.0.0.1", "::1")
SECRET_SETTINGS = ("access_token", "password")
ID_BATCH = 1000  # parent ids handed to a child stream at once (chat_ids per request)

# Every default, once: the schema shows them and Settings falls back on them.
DEFAULTS: dict[str, Any] = {
    "api_url": HOSTS["CoMagic"],
    "lookback_days": 3,
    "window_days": 30,
    "page_size": MAX_PAGE_SIZE,
    "timezone": "Europe/Moscow",
    "max_parallel_requests": 4,
    "max_retries": 8,
    "retry_backoff_seconds": 1.0,
    "request_timeout": 300,
    "sandbox": False,
    "fail_on_skip": False,
    "progress_seconds": 30,
    "datetime_output": UTC_OUTPUT,
}
# (lowest, highest) allowed, said in the JSON Schema (minimum, maximum)
BOUNDS: dict[str, tuple[int, int]] = {
    "window_days": (1, MAX_WINDOW_DAYS),
    "page_size": (1, MAX_PAGE_SIZE),
    "lookback_days": (0, 3650),
    "max_parallel_requests": (1, 16),
    "max_retries": (0, 100),
    "request_timeout": (1, 3600),
    "progress_seconds": (1, 3600),
}
BACKOFF_BOUNDS = (0, 600)



def _whole(name: str) -> th.IntegerType:
    return th.IntegerType(minimum=BOUNDS[name][0], maximum=BOUNDS[name][1])


CONFIG_SCHEMA: dict[str, Any] = th.PropertiesList(
    th.Property("access_token", th.StringType, secret=True, title="API key",
                description="Permanent API key generated in the CoMagic UI (Settings > API). Use either "
                "this or `login` + `password`."),
    th.Property("login", th.StringType, title="Login",
                description="CoMagic user login, for session authentication through `login.user`."),
    th.Property("password", th.StringType, secret=True, title="Password",
                description="Password of `login`. Sessions last one hour and are renewed automatically."),
    th.Property("api_url", th.StringType, default=DEFAULTS["api_url"], title="API URL",
                description="Data API endpoint of your brand: " + ", ".join(
                    f"{brand} `{url}`" for brand, url in HOSTS.items()) + "."),
    th.Property("customers", th.CustomType({"type": ["string", "array"], "items": {"type": "integer"}}),
                title="Customers (agents)",
                description='For agents (partners): the clients to read in one run, "all" (every active '
                "client get.customers lists) or a list of customer ids. Absent: the token's own account "
                "(or the one `user_id` names). Every record carries its account in `customer_id`."),
    th.Property("customer_user_ids", th.ObjectType(additional_properties=th.IntegerType),
                title="User per customer (agents)",
                description="For agents: customer id -> the user id to act as for that client, e.g. "
                '{"5002": 70021}. Default: the lowest user id get.customer_users lists for the client.'),
    th.Property("fail_on_skip", th.BooleanType, default=DEFAULTS["fail_on_skip"], title="Fail on skip",
                description="Exit non-zero at the end of a run that skipped a client or a stream (IP not "
                "white-listed, inactive account, forbidden, component disabled); the others still complete."),
    th.Property("progress_seconds", _whole("progress_seconds"), default=DEFAULTS["progress_seconds"],
                title="Progress interval",
                description="Seconds between progress lines (customer, stream, window, records, requests, "
                "rate, ETA) while a run works."),
    th.Property("user_id", th.IntegerType, title="User ID (agents)",
                description="For agents (partners) reading one client: the client's user id, sent with every "
                "report call."),
    th.Property("customer_id", th.IntegerType, title="Customer ID (v3 reports)",
                description="For partners reading one client: the client id, sent by the v3 reports `sales` "
                "and `api_requests` and carried by every record (default: the client of `user_id`, from "
                "get.customer_users)."),
    th.Property("start_date", th.DateTimeType, required=True, title="Start date",
                description="Earliest date-time to extract, in account time unless it carries an offset."),
    th.Property("end_date", th.DateTimeType, title="End date",
                description="Latest date-time to extract (default: now), in account time unless it "
                "carries an offset."),
    th.Property("lookback_days", _whole("lookback_days"), default=DEFAULTS["lookback_days"], title="Look-back days",
                description="Incremental runs re-read this many days before the bookmark, to pick up "
                "late records and changed tags, sales and statuses."),
    th.Property("window_days", _whole("window_days"), default=DEFAULTS["window_days"], title="Window days",
                description=f"Days per request window (1 to {MAX_WINDOW_DAYS}; the API refuses more than "
                "three months)."),
    th.Property("page_size", _whole("page_size"), default=DEFAULTS["page_size"], title="Page size",
                description=f"Rows per request (1 to {MAX_PAGE_SIZE})."),
    th.Property("timezone", th.StringType, title="Account time zone",
                description="IANA name of the account's time zone: the API's date-times are in it. Default: "
                f"the account's own, from get.account (each client's, for agents); {DEFAULTS['timezone']} if "
                "it gives none."),
    th.Property("filters", th.ObjectType(additional_properties=th.ObjectType()), title="Filters",
                description="Optional: stream name -> CoMagic filter object sent with that stream's "
                'requests, e.g. {"calls": {"field": "site_id", "operator": "=", "value": 5}}.'),
    th.Property("max_parallel_requests", _whole("max_parallel_requests"), default=DEFAULTS["max_parallel_requests"],
                title="Parallel requests",
                description="Requests in flight at once for the pages of one window and for per-chat "
                "or per-visitor calls (1 to 16), never more than the minute's remaining points."),
    th.Property("max_retries", _whole("max_retries"), default=DEFAULTS["max_retries"], title="Max retries",
                description="Retries of one request after a transient failure (5xx, dropped connection, "
                "timeout, malformed answer, internal_error, limit_exceeded)."),
    th.Property("retry_backoff_seconds", th.NumberType(minimum=BACKOFF_BOUNDS[0], maximum=BACKOFF_BOUNDS[1]),
                default=DEFAULTS["retry_backoff_seconds"],
                title="Retry back-off",
                description="First wait of the exponential back-off between retries, in seconds."),
    th.Property("request_timeout", _whole("request_timeout"), default=DEFAULTS["request_timeout"],
                title="Request timeout",
                description="Seconds to wait for one answer."),
    th.Property("sandbox", th.BooleanType, default=DEFAULTS["sandbox"], title="Sandbox",
                description="Start the bundled CoMagic simulator in-process and read from it: no "
                "credentials, for trying the tap."),
    th.Property("datetime_output", th.StringType(allowed_values=list(DATETIME_OUTPUTS)),
                default=DEFAULTS["datetime_output"], title="Date-time output",
                description='How date-times are written: "utc" (e.g. 2026-01-01T09:00:00+00:00), which every '
                'target stores as the right instant, or "account_offset" (2026-01-01T12:00:00+03:00, the '
                "account's wall clock), which targets that drop the offset (COPY and BATCH loads into "
                "`timestamp` columns) store off by that offset. Dates stay dates."),
).to_dict()


@dataclass(frozen=True)
class Settings:
    """The settings as the run uses them: checked, typed, defaults filled in."""

    start_date: dt.datetime  # naive account-local wall time, like every date-time below
    end_date: dt.datetime
    zone: ZoneInfo
    api_url: str
    access_token: str | None
    login: str | None
    password: str | None
    user_id: int | None
    customer_id: int | None
    lookback_days: int
    window_days: int
    page_size: int
    max_parallel_requests: int
    max_retries: int
    retry_backoff_seconds: float
    request_timeout: int
    filters: Mapping[str, Any]
    sandbox: bool
    progress_seconds: int = DEFAULTS["progress_seconds"]
    customers: str | tuple[int, ...] | None = None  # ALL, the ids listed, or None: the token's own account
    customer_user_ids: Mapping[int, int] = field(default_factory=dict)
    fail_on_skip: bool = DEFAULTS["fail_on_skip"]
    datetime_output: str = DEFAULTS["datetime_output"]  # UTC_OUTPUT or OFFSET_OUTPUT (timezones.py)
    zone_given: bool = False  # `timezone` was set: it wins over the account's own
    dates: tuple[str, str | None] = ("", None)  # `start_date` and `end_date` as given, for another zone
    id_batch: int = ID_BATCH

    def in_zone(self, zone: ZoneInfo) -> Settings:
        """These settings for an account in ``zone`` (unless `timezone` is set): the date settings are
        that account's wall time, as they would be had its zone been set."""
        if self.zone_given or zone == self.zone or not self.dates[0]:
            return self
        start, end = _dates(*self.dates, zone)
        return replace(self, zone=zone, start_date=start, end_date=end)


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


def parse_settings(config: Mapping[str, Any], known: Collection[str], streams: Collection[str]) -> Settings:
    """Check the settings the JSON Schema cannot (names, time zone, dates, credentials, filters) and
    return them as :class:`Settings`. ``known``: every setting name; ``streams``: every stream name."""
    c = {**DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
    for name in config:
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            also = f"; did you mean `{hint[0]}`?" if hint else ""
            raise TapError(f"unknown setting `{name}`{also}")
    try:
        zone = ZoneInfo(str(c["timezone"] or DEFAULTS["timezone"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise TapError(f"`timezone` {c['timezone']!r} is not a known IANA time zone; use e.g. "
                       "Europe/Moscow") from None
    has_key, has_login = bool(c.get("access_token")), bool(c.get("login") or c.get("password"))
    if not c["sandbox"]:
        if has_key and has_login:
            raise TapError("set either `access_token` or `login` + `password`, not both")
        if not has_key and not has_login:
            raise TapError("no credentials: set `access_token` (an API key) or `login` + `password` "
                           "(or `sandbox: true` to try the bundled simulator)")
        if has_login and not (c.get("login") and c.get("password")):
            raise TapError("`login` and `password` go together: set both")
        url = urlparse(str(c["api_url"] or ""))
        if url.scheme != "https" and not (url.scheme == "http" and url.hostname in LOOPBACK):
            raise TapError(f"`api_url` must be an https URL such as {HOSTS['CoMagic']}")
    if c.get("batch_config") and c.get("stream_maps"):
        raise TapError("`batch_config` and `stream_maps` exclude each other: the SDK writes BATCH files without "
                       "applying the maps; remove one of them")
    output = str(c["datetime_output"] or DEFAULTS["datetime_output"])
    if output not in DATETIME_OUTPUTS:
        raise TapError("`datetime_output` must be " + " or ".join(f'"{o}"' for o in DATETIME_OUTPUTS)
                       + f", not {output!r}")
    dates = (str(c["start_date"]), str(c["end_date"]) if c.get("end_date") else None)
    start, end = _dates(*dates, zone)
    numbers = {name: int(c[name]) for name in BOUNDS}  # in bounds: the schema's check came first
    backoff = float(c["retry_backoff_seconds"])  # the SDK reads JSON numbers with a fraction as Decimal
    customers, user_ids = _customer_settings(c)
    filters = dict(c.get("filters") or {})
    for stream_name, spec in filters.items():
        if stream_name not in streams:
            raise TapError(f"`filters` names an unknown stream {stream_name!r}; streams: " + ", ".join(sorted(streams)))
        _check_filter(stream_name, spec)
    return Settings(
        start_date=start, end_date=end, zone=zone, api_url=str(c["api_url"] or DEFAULTS["api_url"]),
        access_token=c.get("access_token"), login=c.get("login"), password=c.get("password"),
        user_id=c.get("user_id"), customer_id=c.get("customer_id"), retry_backoff_seconds=float(backoff),
        filters=filters, sandbox=bool(c["sandbox"]), customers=customers, customer_user_ids=user_ids,
        fail_on_skip=bool(c["fail_on_skip"]), zone_given=bool(config.get("timezone")), dates=dates,
        datetime_output=output, **numbers)


def _dates(start_text: str, end_text: str | None, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    start = parse_datetime_setting("start_date", start_text, zone)
    now = dt.datetime.now(zone).replace(tzinfo=None, microsecond=0)
    end = parse_datetime_setting("end_date", end_text, zone) if end_text else now
    if end < start:
        raise TapError("`end_date` is before `start_date`: swap them or leave `end_date` empty")
    return start, end


ALL = "all"
CUSTOMERS_FORM = '`customers` must be "all" or a list of customer ids (integers)'


def _customers(value: Any) -> str | tuple[int, ...] | None:
    """`customers` as ALL or the ids listed; Meltano may hand a list over as its JSON text or as "1,2"."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == ALL:
            return ALL
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise TapError(f"{CUSTOMERS_FORM}, not {value!r}") from None
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, list) or not value:
        raise TapError(f"{CUSTOMERS_FORM}, not {value!r}")
    ids = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, str)) or not str(item).strip().isdigit():
            raise TapError(f"{CUSTOMERS_FORM}: {item!r} is not a customer id")
        ids.append(int(item))
    return tuple(dict.fromkeys(ids))


def _customer_settings(c: Mapping[str, Any]) -> tuple[str | tuple[int, ...] | None, dict[int, int]]:
    customers = _customers(c.get("customers"))
    raw = c.get("customer_user_ids") or {}
    if customers is None:
        if raw:
            raise TapError("`customer_user_ids` is set but `customers` is not: set `customers` (\"all\" or a list "
                           "of ids) to read clients of an agent token")
        return None, {}
    for name in ("user_id", "customer_id"):
        if c.get(name) is not None:
            raise TapError(f"`customers` and `{name}` exclude each other: `customers` reads many clients, each with "
                           f"its own user; remove `{name}` (or set it per client in `customer_user_ids`)")
    user_ids: dict[int, int] = {}
    for key, user in dict(raw).items():
        if not str(key).strip().isdigit() or isinstance(user, bool) or not isinstance(user, int):
            raise TapError(f"`customer_user_ids` maps customer ids to user ids (integers), e.g. "
                           f'{{"5002": 70021}}; not {key!r}: {user!r}')
        user_ids[int(key)] = user
    if isinstance(customers, tuple):
        stray = sorted(set(user_ids) - set(customers))
        if stray:
            raise TapError(f"`customer_user_ids` names customer {stray[0]}, which `customers` does not list")
    return customers, user_ids


def schema_errors(config: Mapping[str, Any], schema: dict[str, Any]) -> list[str]:
    """What the settings' JSON Schema finds wrong, one line per setting, naming it and never quoting a
    secret (the SDK's own messages quote the value and name no setting in words)."""
    errors = []
    for error in JSONSchemaValidator(schema).iter_errors(dict(config)):
        if not error.path:  # a required setting is missing (or the config is not an object)
            missing = [n for n in error.validator_value or () if isinstance(config, Mapping) and n not in config] \
                if error.validator == "required" else []
            errors.append(f"`{missing[0]}` is required" if missing else f"the settings: {error.message}")
            continue
        name = str(error.path[0])
        prop = schema["properties"].get(name, {})
        value = config.get(name)
        if name == "customers":
            errors.append(f"{CUSTOMERS_FORM}, not {value!r}")
            continue
        shown = "" if name in SECRET_SETTINGS or prop.get("secret") else f", not {value!r}"
        kind = "an integer" if "integer" in prop.get("type", ()) else "a number"
        if "minimum" in prop and "maximum" in prop and len(error.path) == 1:
            errors.append(f"`{name}` must be {kind} from {prop['minimum']} to {prop['maximum']}{shown}")
        elif shown:
            errors.append(f"`{'.'.join(map(str, error.path))}`: {error.message}")
        else:
            types = " or ".join(t for t in prop.get("type", ()) if t != "null")
            errors.append(f"`{name}` must be a {types or 'valid value'}")
    return errors


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
