"""tap-comagic: the Tap. It parses the settings once, gives every stream its run context, checks the
state and catalog against the streams, and is the one place a run ends (see ``sync_all``)."""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import json
import logging
import sys
from decimal import Decimal
from functools import cached_property
from typing import Any, NoReturn

from singer_sdk import Tap
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from typing_extensions import override

from tap_comagic.auth import CoMagicAuth
from tap_comagic.client import CoMagicStream
from tap_comagic.context import Account, RunContext
from tap_comagic.errors import DailyLimitSpent, StopRun, TapError
from tap_comagic.limits import Throttle
from tap_comagic.registry import STREAMS, STREAMS_BY_NAME
from tap_comagic.reports import ReportStream
from tap_comagic.settings import CONFIG_SCHEMA, Settings, parse_datetime_setting, parse_settings, schema_errors
from tap_comagic.shapes import load_schema


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
        """What every stream of this run receives instead of the tap."""
        return RunContext(self.settings, Account.of(self.settings), self._connect,
                          user_agent=f"tap-comagic/{self.plugin_version}",
                          write_state=lambda: self.state_writer.write_state(self.state))

    @property
    def throttle(self) -> Throttle:
        """The account's throttle."""
        return self.run.account.throttle

    @throttle.setter
    def throttle(self, throttle: Throttle) -> None:
        """Another throttle for the account (the tests run one on a simulated clock)."""
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
            value = bookmark.get("replication_key_value") if isinstance(bookmark, dict) else None
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
            for breadcrumb, meta in entry.metadata.items():
                if len(breadcrumb) == 2 and meta.selected and breadcrumb[1] not in properties:
                    raise TapError(f"the catalog selects field `{breadcrumb[1]}` of stream `{entry.tap_stream_id}`, "
                                   "which tap-comagic does not have; deselect it or run discovery again")

    # ---- connection -------------------------------------------------------------------

    def _connect(self) -> tuple[str, CoMagicAuth]:
        """The API's address and credentials, at the first request of the run."""
        settings = self.settings
        if settings.sandbox:
            sandbox = self._start_sandbox()
            return str(sandbox.url), CoMagicAuth(str(sandbox.url), access_token=sandbox.api_key)
        auth = CoMagicAuth(settings.api_url, access_token=settings.access_token, login=settings.login,
                           password=settings.password, timeout=float(settings.request_timeout))
        if auth.is_session:
            atexit.register(auth.log_out)  # end the session rather than leave it open for an hour
        return settings.api_url, auth

    def _start_sandbox(self) -> Any:
        if self._sandbox is None:
            from tap_comagic.sandbox import Sandbox  # the only place the tap touches the simulator

            self._sandbox = Sandbox()
            self._sandbox.start()
            atexit.register(self.close)
            self.logger.info("Sandbox: reading from the bundled CoMagic simulator at %s", self._sandbox.url)
        return self._sandbox

    # ---- streams ----------------------------------------------------------------------

    @override
    def discover_streams(self) -> list[CoMagicStream]:
        return [stream_class(self, self.run) for stream_class in STREAMS]

    # final in the SDK, but the one entry every run takes (the CLI's and an embedder's)
    @override  # type: ignore[misc]
    def sync_all(self) -> None:
        """The SDK's sync, and the one place a run ends early: see :meth:`end_run`."""
        try:
            super().sync_all()
        except StopRun as stop:
            self.end_run(stop)

    def end_run(self, stop: StopRun) -> None:
        """A stream ended the run. The daily limit: one warning saying when to resume, the state saved,
        exit 0. Any other error: one clear line, the state of every window finished so far, exit 1."""
        if isinstance(stop.reason, DailyLimitSpent):
            for stream in self.streams.values():
                if isinstance(stream, ReportStream):
                    stream.hold_finished()
            for stream in self.streams.values():
                # as the SDK does at a stream's end: no starting value, signpost or progress marker stays
                stream.finalize_state_progress_markers()
            self.state_writer.write_state(self.state)
            when = ""
            if stop.reason.reset_seconds is not None:
                at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=stop.reason.reset_seconds)
                when = f" after {at:%Y-%m-%d %H:%M} UTC"
            self.logger.warning(
                "The account's daily API limit is spent (stream '%s'): stopping cleanly with state saved up to "
                "the last complete window; run again%s to resume.", stop.stream, when)
            return
        self.logger.error("%s", stop.reason)
        self.state_writer.write_state(self.state)
        self.close()
        sys.exit(1)

    def close(self) -> None:
        """Log out of the session and stop the sandbox, if either was started."""
        if "run" in self.__dict__ and self.run.connected:
            self.run.auth.log_out()
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
