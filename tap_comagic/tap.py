"""tap-comagic: the Tap, the singer-sdk wiring. It parses the settings once, makes the run's client and
context, gives every stream that context, and reads the run's accounts one after another.

The parts it wires: input checks (:mod:`tap_comagic.checks`), account discovery
(:mod:`tap_comagic.accounts`), the one client of the API (:mod:`tap_comagic.api`), and how accounts and
the run end (:mod:`tap_comagic.outcomes`).
"""

from __future__ import annotations

import atexit
import logging
import sys
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError
from typing_extensions import override

from tap_comagic.accounts import Accounts
from tap_comagic.api import CoMagicClient, Retries
from tap_comagic.auth import Credentials
from tap_comagic.checks import (
    check_bookmark_values,
    check_bookmarks_shape,
    check_catalog,
    check_state_is_an_object,
    settings_of,
    unreadable_input,
)
from tap_comagic.client import CoMagicStream
from tap_comagic.context import Account, Connection, RunContext, WindowStates
from tap_comagic.customers import Customer
from tap_comagic.errors import StopRun, TapError
from tap_comagic.limits import Throttle
from tap_comagic.outcomes import Outcomes
from tap_comagic.output import BufferedWriter, flush_output, flushing
from tap_comagic.progress import Progress
from tap_comagic.registry import STREAMS
from tap_comagic.settings import CONFIG_SCHEMA, Settings


class TapCoMagic(Tap):
    """Singer tap for the reports of the CoMagic (UIS, CallGear) Data API."""

    name = "tap-comagic"
    message_writer_class = BufferedWriter  # msgspec lines, written in chunks (see output.py)

    config_jsonschema = CONFIG_SCHEMA

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_state_is_an_object(kwargs.get("state"))
        self._sandbox: Any = None
        self._account_streams: dict[str, Stream] | None = None  # the streams of the account being read
        # The settings are checked by `settings` (the schema's check in our one-line form, then the checks a
        # schema cannot make), always; the SDK's own check, which quotes values, only fills in the defaults.
        super().__init__(*args, **{**kwargs, "validate_config": False})
        try:
            _ = self.run  # the settings are checked even when nothing asked for a stream yet
            check_bookmark_values(self.state, self.settings.zone)
            check_catalog(self.input_catalog)
        except TapError as exc:
            raise ConfigValidationError(str(exc), errors=[str(exc)]) from None

    @cached_property
    def settings(self) -> Settings:
        """The settings, parsed once (a bad one raises its one-line ConfigValidationError)."""
        return settings_of(self.config, self.config_jsonschema)

    @cached_property
    def run(self) -> RunContext:
        """What the streams receive instead of the tap: the token's own account until the API names the
        accounts to read (see ``reading``)."""
        progress = Progress(logging.getLogger(self.name), self.settings.progress_seconds)
        return RunContext(self.settings, Account.of(self.settings, Throttle()), Connection(self._connect),
                          user_agent=f"tap-comagic/{self.plugin_version}",
                          write_state=self._window_states(), progress=progress)

    def _window_states(self) -> Callable[[], None]:
        # BATCH files: the state follows each file instead (a window's records may still wait in one)
        if self.config.get("batch_config"):
            return lambda: None
        return WindowStates(lambda: self.state_writer.write_state(self.state), flush=lambda: flush_output(self))

    @cached_property
    def reading(self) -> RunContext:
        """The run context of the account being read (the streams of ``streams`` read it)."""
        return self.run

    @override
    def load_state(self, state: dict[str, Any]) -> None:
        check_bookmarks_shape(state)
        super().load_state(state)

    # ---- connection -------------------------------------------------------------------

    def _connect(self) -> CoMagicClient:
        """The client of the API, made at the first request of the run."""
        settings = self.settings
        if settings.sandbox:
            sandbox = self._start_sandbox()
            # with `customers`, the simulator plays an agency and the tap its agent
            key = sandbox.config.agent_api_keys[0] if settings.customers is not None else sandbox.api_key
            api_url, credentials = str(sandbox.url), Credentials(access_token=key)
        else:
            api_url = settings.api_url
            credentials = Credentials(access_token=settings.access_token, login=settings.login,
                                      password=settings.password)
        client = CoMagicClient(api_url, credentials, throttle=self.run.account.throttle,
                               retries=Retries(settings.max_retries, settings.retry_backoff_seconds),
                               timeout=settings.request_timeout, user_agent=self.run.user_agent, logger=self.logger)
        if credentials.is_session:
            atexit.register(client.log_out)  # end the session rather than leave it open for an hour
        return client

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

    @cached_property
    def accounts(self) -> Accounts:
        """Which accounts the run reads, and what each is."""
        return Accounts(self.run, self.logger)

    @cached_property
    def outcomes(self) -> Outcomes:
        """How accounts and the run end."""
        return Outcomes(self.settings, self.run.progress, self.logger,
                        lambda: self.state_writer.write_state(self.state))

    # Both entries of a run are final in the SDK, which reads one set of streams once; the tap reads one
    # set per account, one account after another (its state partition, time zone and throttle), and the SDK
    # has no hook for that (its partitions would read every account per stream, in one time zone).
    @override  # type: ignore[misc]
    @flushing
    def sync_all(self) -> None:
        """The SDK's sync, once per account read; the one place a run ends. One account's failure is that
        account's alone: the others complete, and the run exits 1 at its end (also after a skip, with
        `fail_on_skip`)."""
        progress = self.run.progress
        progress.start()
        try:
            ok = self._sync_accounts()
        finally:
            progress.stop()
        code = self.outcomes.exit_code(ok)
        if code:
            self.close()
            sys.exit(code)

    @override  # type: ignore[misc]
    @flushing
    def run_sync_dry_run(self, dry_run_record_limit: int | None = 1, streams: Iterable[Stream] | None = None) -> bool:
        """The SDK's dry run (`--test`, the SDK's standard tests), of the first account a run reads: of its
        streams of the names given (default: all)."""
        names = None if streams is None else [stream.name for stream in streams]
        try:
            if self.reading is self.run:  # no account read yet
                first = self.accounts.customers()[:1]
                if first:
                    self.read_account(self.accounts.account_of(first[0]))
            chosen = None if names is None else [self.streams[name] for name in names]
            return super().run_sync_dry_run(dry_run_record_limit, chosen)
        except StopRun as stop:
            self.outcomes.end_account(stop, self.reading.account.customer_id, ())
            return False

    def _sync_accounts(self) -> bool:
        try:
            customers = self.accounts.customers()
        except StopRun as stop:
            return self.outcomes.end_account(stop, None, ())
        ok = True
        for index, customer in enumerate(customers, 1):
            ok = self._sync_account(index, len(customers), customer) and ok
        return ok

    def _sync_account(self, index: int, total: int, customer: Customer) -> bool:
        """Read one account: its streams, from its state partition. False: it failed."""
        try:
            account = self.accounts.account_of(customer)
        except StopRun as stop:
            return self.outcomes.end_account(stop, customer.id, ())
        self.read_account(account)
        streams = [s.name for s in self.streams.values()
                   if (s.selected or s.has_selected_descendents) and not s.parent_stream_type]
        self.run.progress.at_customer(index, total, account.customer_id, streams)
        try:
            super().sync_all()
        except StopRun as stop:
            return self.outcomes.end_account(stop, account.customer_id, self.streams.values())
        self.state_writer.write_state(self.state)  # a window's state the gate held back (see WindowStates)
        return True

    def read_account(self, account: Account) -> None:
        """From now on ``streams`` are those of ``account``."""
        self.reading = self.run.reading(account)
        self._account_streams = None

    def close(self) -> None:
        """Log out of the session and stop the sandbox, if either was started."""
        if "run" in self.__dict__ and self.run.connection.made:
            self.run.connection.client.log_out()
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
        logging.getLogger(TapCoMagic.name).error("%s is not valid JSON: fix it (or pass another)",
                                                 unreadable_input(sys.argv[1:]))
        sys.exit(1)


if __name__ == "__main__":
    main()
