"""tap-comagic: the Tap. It parses the settings once, gives every stream its run context, checks the
state and catalog against the streams, and is the one place a run ends (see ``sync_all``)."""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from functools import cached_property
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from singer_sdk import Stream, Tap
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError, RetriableAPIError
from typing_extensions import override

from tap_comagic.auth import CoMagicAuth
from tap_comagic.client import CoMagicStream
from tap_comagic.context import ACCOUNT_COLUMN, Account, Connection, RunContext, WindowStates
from tap_comagic.customers import AgentCustomers, AgentCustomerUsers, Customer, choose
from tap_comagic.errors import ACTIONS, Action, CoMagicError, DailyLimitSpent, SkipStream, StopRun, TapError
from tap_comagic.limits import Throttle, optional_int
from tap_comagic.progress import Progress
from tap_comagic.registry import STREAMS, STREAMS_BY_NAME
from tap_comagic.reports import ReportStream
from tap_comagic.settings import CONFIG_SCHEMA, Settings, parse_datetime_setting, parse_settings, schema_errors
from tap_comagic.shapes import load_schema
from tap_comagic.streams import AccountStream


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {list: "list", str: "string", int: "number", float: "number", Decimal: "number",
            dict: "object"}.get(type(value), "null" if value is None else type(value).__name__)


class TapCoMagic(Tap):
    """Singer tap for the reports of the CoMagic (UIS, CallGear) Data API."""

    name = "tap-comagic"
    message_writer_class = MsgSpecWriter  # msgspec encodes RECORD lines several times faster

    config_jsonschema = CONFIG_SCHEMA

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        state = kwargs.get("state")
        if state is not None and not isinstance(state, dict):  # the SDK would take it for a file name
            self._refuse_state(f"the state is a JSON {_json_kind(state)}, not an object: pass the state file the "
                               "target last wrote, or none to start at `start_date`")
        self._sandbox: Any = None
        self._account_streams: dict[str, Stream] | None = None  # the streams of the account being read
        self._throttle = Throttle()
        # The settings are checked by `settings` (the schema's check in our one-line form, then the checks a
        # schema cannot make), always; the SDK's own check, which quotes values, only fills in the defaults.
        super().__init__(*args, **{**kwargs, "validate_config": False})
        try:
            _ = self.run  # the settings are checked even when nothing asked for a stream yet
            self.check_state()
            self.check_catalog()
        except TapError as exc:
            raise ConfigValidationError(str(exc), errors=[str(exc)]) from None

    # ---- settings ---------------------------------------------------------------------

    @cached_property
    def settings(self) -> Settings:
        """The settings, parsed once (a bad one raises its one-line ConfigValidationError)."""
        try:
            errors = schema_errors(self.config, self.config_jsonschema)
            if errors:
                raise TapError(errors[0])
            return parse_settings(self.config, self.config_jsonschema["properties"], STREAMS_BY_NAME)
        except TapError as exc:
            raise ConfigValidationError(str(exc), errors=[str(exc)]) from None

    @cached_property
    def run(self) -> RunContext:
        """What the streams receive instead of the tap: the token's own account until the API names the
        accounts to read (see ``reading``)."""
        progress = Progress(logging.getLogger(self.name), self.settings.progress_seconds)
        return RunContext(self.settings, Account.of(self.settings, self._throttle), Connection(self._connect),
                          user_agent=f"tap-comagic/{self.plugin_version}",
                          write_state=self._window_states(), progress=progress)

    def _window_states(self) -> Callable[[], None]:
        # BATCH files: the state follows each file instead (a window's records may still wait in one)
        if self.config.get("batch_config"):
            return lambda: None
        return WindowStates(lambda: self.state_writer.write_state(self.state))

    @cached_property
    def reading(self) -> RunContext:
        """The run context of the account being read (the streams of ``streams`` read it)."""
        return self.run

    @property
    def throttle(self) -> Throttle:
        """The token's throttle; each account read gets a fresh one on the same clock."""
        return self._throttle

    @throttle.setter
    def throttle(self, throttle: Throttle) -> None:
        """Another throttle (the tests run one on a simulated clock)."""
        self._throttle = throttle
        self.run.account = dataclasses.replace(self.run.account, throttle=throttle)

    @override
    def load_state(self, state: dict[str, Any]) -> None:
        """Refuse a state whose bookmarks are not objects, in one line, before the SDK reads it."""
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
        """Refuse a bookmark that is not a date-time, in one line naming its stream."""
        for stream, bookmark in (self.state.get("bookmarks") or {}).items():
            partitions = bookmark.get("partitions") if isinstance(bookmark, dict) else None
            for entry in [bookmark, *(partitions if isinstance(partitions, list) else [])]:
                value = entry.get("replication_key_value") if isinstance(entry, dict) else None
                if value is None:
                    continue
                try:
                    parse_datetime_setting("state", str(value), self.settings.zone)
                except TapError:
                    raise TapError(f"the state's bookmark of stream `{stream}` is not a date-time: {value!r}; fix "
                                   "it or delete it from the state (the stream then starts at `start_date`)") from None

    def check_catalog(self) -> None:
        """Refuse a catalog naming a stream or field the tap does not have, in one line."""
        if self.input_catalog is None:
            return
        for entry in self.input_catalog.streams:
            if entry.tap_stream_id not in STREAMS_BY_NAME:
                raise TapError(f"the catalog names stream `{entry.tap_stream_id}`, which tap-comagic does not have; "
                               "run discovery again (`--discover`)")
            properties = load_schema(entry.tap_stream_id)[0]["properties"]
            keyed = bool(STREAMS_BY_NAME[entry.tap_stream_id].declared_keys())
            if (keyed and ACCOUNT_COLUMN not in (entry.key_properties or ())) \
                    or ACCOUNT_COLUMN not in entry.schema.to_dict().get("properties", {}):
                # a catalog from before records named their account: its keys would merge accounts' rows
                raise TapError(f"the catalog's stream `{entry.tap_stream_id}` lacks `{ACCOUNT_COLUMN}` (in its schema "
                               "and at the head of its key_properties), which every record now carries: run "
                               "discovery again (`--discover`)")
            for breadcrumb, meta in entry.metadata.items():
                if len(breadcrumb) == 2 and meta.selected and breadcrumb[1] not in properties \
                        and breadcrumb[1] != ACCOUNT_COLUMN:
                    raise TapError(f"the catalog selects field `{breadcrumb[1]}` of stream `{entry.tap_stream_id}`, "
                                   "which tap-comagic does not have; deselect it or run discovery again")

    # ---- connection -------------------------------------------------------------------

    def _connect(self) -> tuple[str, CoMagicAuth]:
        """The API's address and credentials, at the first request of the run."""
        settings = self.settings
        if settings.sandbox:
            sandbox = self._start_sandbox()
            # with `customers`, the simulator plays an agency and the tap its agent
            key = sandbox.config.agent_api_keys[0] if settings.customers is not None else sandbox.api_key
            return str(sandbox.url), CoMagicAuth(str(sandbox.url), access_token=key)
        auth = CoMagicAuth(settings.api_url, access_token=settings.access_token, login=settings.login,
                           password=settings.password, timeout=float(settings.request_timeout))
        if auth.is_session:
            atexit.register(auth.log_out)  # end the session rather than leave it open for an hour
        return settings.api_url, auth

    def _start_sandbox(self) -> Any:
        if self._sandbox is None:
            from tap_comagic.sandbox import Sandbox, agency_demo  # the only place the tap touches the simulator

            self._sandbox = Sandbox(agency_demo()) if self.settings.customers is not None else Sandbox()
            self._sandbox.start()
            atexit.register(self.close)
            self.logger.info("Sandbox: reading from the bundled CoMagic simulator at %s", self._sandbox.url)
        return self._sandbox

    # ---- streams ----------------------------------------------------------------------

    @override
    def discover_streams(self) -> list[CoMagicStream]:
        return [stream_class(self, self.reading) for stream_class in STREAMS]

    @property
    @override
    def streams(self) -> dict[str, Stream]:
        """The streams of the account being read: one set per account, each keeping that account's state
        partition, time zone, throttle and counts (the SDK builds them so, once, for the one account)."""
        if self._account_streams is None:
            self._account_streams = {}
            for stream in self.load_streams():
                if self.input_catalog is not None:
                    stream.apply_catalog(self.input_catalog)
                self._account_streams[stream.name] = stream
        return self._account_streams

    # ---- the run ----------------------------------------------------------------------

    # final in the SDK, but the one entry every run takes (the CLI's and an embedder's)
    @override  # type: ignore[misc]
    def sync_all(self) -> None:
        """The SDK's sync, once per account read; the one place a run ends (see :meth:`end_account`).

        One account's failure is that account's alone when the run reads several: the others complete,
        and the run exits 1 at its end (also after a skip, with `fail_on_skip`)."""
        progress = self.run.progress
        progress.start()
        ok = True
        try:
            try:
                customers = self.customers()
            except StopRun as stop:
                ok = self.end_account(stop, streams=())
                customers = []
            for index, customer in enumerate(customers, 1):
                ok = self.sync_account(index, len(customers), customer) and ok
        finally:
            progress.stop()
        for line in progress.summary():
            self.logger.info("%s", line)
        skipped = [t for t in progress.tallies if t.skipped]
        if not ok or (skipped and self.settings.fail_on_skip):
            if ok:
                self.logger.error("%d skip(s) in this run, and `fail_on_skip` is set: exiting 1 (the rest is "
                                  "extracted and its state saved)", len(skipped))
            self.close()
            sys.exit(1)

    def customers(self) -> list[Customer]:
        """The accounts to read: the token's own, or the clients `customers` asks for (StopRun: none)."""
        settings = self.settings
        if settings.customers is None:
            try:
                return [Customer(self.client_of(settings.user_id), settings.user_id)]
            except Exception as exc:
                raise as_stop(exc, "customers") from None
        try:
            rows = {table: list(table(self, self.run).table(None)) for table in (AgentCustomers, AgentCustomerUsers)}
            chosen, unreadable = choose(settings, rows[AgentCustomers], rows[AgentCustomerUsers])
        except SkipStream as exc:
            refused = TapError(f"`customers` needs an agent (partner) token: get.customers refused this one ({exc}); "
                               "remove `customers` to read the token's own account")
            raise StopRun(refused, "customers") from None
        except Exception as exc:
            raise as_stop(exc, "customers") from None
        for cid, reason in unreadable:
            self.run.progress.tally(cid, "*").skipped = reason
            self.logger.warning("Skipping customer %s: %s", cid, reason)
        self.logger.info("Reading %d customer(s) of the agent: %s", len(chosen),
                         ", ".join(f"{c.id} ({c.name})" if c.name else str(c.id) for c in chosen))
        return chosen

    def client_of(self, user_id: int | None) -> int | None:
        """The client an agent's `user_id` acts for: `customer_id` if set, else the one get.customer_users
        names. Not get.account's app_id: a server may answer that for the agent's own account, and two
        clients read so into one warehouse would share keys. None: a client's own token (get.account names
        it), or a server that does not say."""
        if user_id is None:
            return None
        if self.settings.customer_id is not None:
            return self.settings.customer_id
        try:
            users = AgentCustomerUsers(self, self.run).table(None)
            return next((optional_int(u.get("customer_id")) for u in users if optional_int(u.get("id")) == user_id),
                        None)
        except (SkipStream, CoMagicError) as exc:
            self.logger.warning("get.customer_users does not say which client user %s belongs to (%s): the records "
                                "carry the id get.account gives; set `customer_id` to name the client", user_id, exc)
            return None

    def sync_account(self, index: int, total: int, customer: Customer) -> bool:
        """Read one account: its streams, from its state partition. False: it failed."""
        try:
            account = self.account_of(customer)
        except StopRun as stop:
            return self.end_account(stop, customer.id, streams=())
        self.read_account(account)
        streams = [s.name for s in self.streams.values()
                   if (s.selected or s.has_selected_descendents) and not s.parent_stream_type]
        self.run.progress.at_customer(index, total, account.customer_id, streams)
        try:
            super().sync_all()
        except StopRun as stop:
            return self.end_account(stop, account.customer_id)
        self.state_writer.write_state(self.state)  # a window's state the gate held back (see WindowStates)
        return True

    def read_account(self, account: Account) -> None:
        """From now on ``streams`` are those of ``account``."""
        self.reading = self.run.reading(account)
        self._account_streams = None
        if self.settings.customers is None:
            adopt_unpartitioned(self.state, account.scope)

    # final in the SDK, like sync_all: the other entry of a run (`--test`, the SDK's standard tests)
    @override  # type: ignore[misc]
    def run_sync_dry_run(self, dry_run_record_limit: int | None = 1, streams: Iterable[Stream] | None = None) -> bool:
        """The SDK's dry run, of the first account a run reads (looked up as sync_all does)."""
        if streams is None:
            try:
                first = self.customers()[:1]
                if first:
                    self.read_account(self.account_of(first[0]))
            except StopRun as stop:
                self.end_account(stop, streams=())
                return False
        return super().run_sync_dry_run(dry_run_record_limit, streams)

    def account_of(self, customer: Customer) -> Account:
        """The account ``customer`` names, as get.account describes it: its id (the client id an agent
        knows, or the `app_id` of the token's own account) and its time zone (unless `timezone` is set)."""
        settings = self.settings
        throttle = self._throttle if customer.id is None else self._throttle.fresh()
        account = Account(settings.zone, customer.user_id, customer.id, settings.customer_id, throttle,
                          datetime_output=settings.datetime_output)
        info: dict[str, Any] | None = None
        try:
            lookup = AccountStream(self, self.run.reading(account))
            lookup.tally.stream = lookup.api_method
            info = lookup.look_up()
        except SkipStream as exc:
            self.logger.warning("get.account is refused (%s): the account's id and time zone come from the "
                                "settings", exc)
        except CoMagicError as exc:
            if customer.user_id is None or exc.field != "user_id" or exc.mnemonic != "unexpected_parameters":
                raise as_stop(exc, "account") from None
            # The docs give get.account no user_id: a server that refuses it for agents cannot say which
            # time zone a client keeps (its own account would be the agent's).
            self.logger.warning("get.account does not take `user_id` here: customer %s is read in `timezone` "
                                "(%s)", customer.id, settings.zone)
        except Exception as exc:
            raise as_stop(exc, "account") from None
        named = optional_int((info or {}).get("app_id"))
        if info and customer.id is not None and named not in (None, customer.id):
            # a server that ignores user_id here answers for the agent's own account: not this client's
            self.logger.warning("get.account answers for account %s, not customer %s: customer %s is read in "
                                "`timezone` (%s)", named, customer.id, customer.id, settings.zone)
            info = None
        info = info or {}
        customer_id = customer.id if customer.id is not None else named
        lookup.tally.customer_id = customer_id
        if customer_id is None:
            customer_id = settings.customer_id or 0
            self.logger.warning("The account's id is unknown (get.account gave no app_id): records carry "
                                "customer_id %s; set `customer_id` to name the account", customer_id)
        zone = settings.zone
        if not settings.zone_given and info.get("timezone"):
            try:
                zone = ZoneInfo(str(info["timezone"]))
            except (ZoneInfoNotFoundError, ValueError):
                self.logger.warning("get.account gives time zone %r, which is not an IANA name: using %s; set "
                                    "`timezone`", info["timezone"], zone)
        v3_id = settings.customer_id if settings.customer_id is not None else (
            customer_id if customer.user_id is not None else None)
        return Account(zone, customer.user_id, customer_id, v3_id, throttle, info or None,
                       datetime_output=settings.datetime_output)

    def end_account(self, stop: StopRun, customer_id: int | None = None, streams: Iterable[Stream] | None = None
                    ) -> bool:
        """A stream ended an account's run. The daily limit: one warning saying when to resume, the state
        saved (True). An account an agent may not read (IP not white-listed, inactive): skipped with one
        warning, when the run reads several (True). Any other error: one clear line, the state of every
        window finished so far (False: the run exits 1). ``streams``: the account's (default: ``streams``)."""
        several = self.settings.customers is not None
        read = list(self.streams.values() if streams is None else streams)
        who = f"customer {customer_id}: " if several else ""
        if isinstance(stop.reason, DailyLimitSpent):
            for stream in read:
                if isinstance(stream, ReportStream):
                    stream.hold_finished()
            for stream in read:
                # as the SDK does at a stream's end: no starting value, signpost or progress marker stays
                stream.finalize_state_progress_markers()
            self.state_writer.write_state(self.state)
            when = ""
            if stop.reason.reset_seconds is not None:
                at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=stop.reason.reset_seconds)
                when = f" after {at:%Y-%m-%d %H:%M} UTC"
            self.run.progress.tally(customer_id, stop.stream).stopped = "stopped: daily limit spent (resumes next run)"
            self.logger.warning(
                "%sThe account's daily API limit is spent (stream '%s'): stopping cleanly with state saved up to "
                "the last complete window; run again%s to resume.", who, stop.stream, when)
            return True
        self.state_writer.write_state(self.state)
        reason = stop.reason
        if several and isinstance(reason, CoMagicError) and reason.mnemonic in CLIENT_REFUSALS:
            self.run.progress.tally(customer_id, "*").skipped = f"{reason.mnemonic}: {reason.api_message}".rstrip(": ")
            self.logger.warning("Skipping customer %s: %s", customer_id, reason)
            return True
        self.run.progress.tally(customer_id, stop.stream).stopped = f"failed: {reason}"
        self.logger.error("%s%s", who, reason)
        return False

    def close(self) -> None:
        """Log out of the session and stop the sandbox, if either was started."""
        if "run" in self.__dict__ and self.run.connection.made:
            self.run.auth.log_out()
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None


# What an agent may not do for one client, while it may for others: that client is skipped.
CLIENT_REFUSALS = frozenset(m for m, action in ACTIONS.items() if action is Action.SKIP_CLIENT)


def as_stop(exc: Exception, where: str) -> StopRun:
    """A failure outside a stream's records (the accounts' lookup) as the StopRun a stream would raise."""
    if isinstance(exc, (DailyLimitSpent, TapError, CoMagicError)):
        return StopRun(exc, where)
    if isinstance(exc, (RetriableAPIError, requests.RequestException)):
        return StopRun(TapError(f"{exc} (gave up after retries: raise `max_retries` or run again later)"), where)
    raise exc


def adopt_unpartitioned(state: Mapping[str, Any], scope: dict[str, Any]) -> None:
    """A state written before bookmarks were kept per account: its bookmarks become this account's."""
    for bookmark in (state.get("bookmarks") or {}).values():
        if isinstance(bookmark, dict) and "partitions" not in bookmark and bookmark:
            moved = {k: bookmark.pop(k) for k in list(bookmark)}
            bookmark["partitions"] = [{"context": dict(scope), **moved}]


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
