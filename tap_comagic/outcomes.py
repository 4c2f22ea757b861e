"""How an account's run and the whole run end: a clean stop on the daily limit (state saved, resumed next
run), a client an agent may not read (skipped), a failure (one clear line, exit 1 at the run's end), and
the summary table with the exit code."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_comagic.errors import ACTIONS, Action, CoMagicError, DailyLimitSpent, StopRun, TapError
from tap_comagic.reports import ReportStream

if TYPE_CHECKING:
    from singer_sdk import Stream

    from tap_comagic.progress import Progress
    from tap_comagic.settings import Settings

# What an agent may not do for one client, while it may for others: that client is skipped.
CLIENT_REFUSALS = frozenset(m for m, action in ACTIONS.items() if action is Action.SKIP_CLIENT)


def as_stop(exc: Exception, where: str) -> StopRun:
    """A failure outside a stream's records (the accounts' lookup) as the StopRun a stream would raise."""
    if isinstance(exc, (DailyLimitSpent, TapError, CoMagicError)):
        return StopRun(exc, where)
    if isinstance(exc, (RetriableAPIError, requests.RequestException)):
        return StopRun(TapError(f"{exc} (gave up after retries: raise `max_retries` or run again later)"), where)
    raise exc


class Outcomes:
    """Ends accounts' runs and the whole run, writing the state through ``write_state``."""

    def __init__(self, settings: Settings, progress: Progress, logger: logging.Logger,
                 write_state: Callable[[], None]) -> None:
        self.settings = settings
        self.progress = progress
        self.logger = logger
        self.write_state = write_state

    def end_account(self, stop: StopRun, customer_id: int | None, streams: Iterable[Stream]) -> bool:
        """A stream ended an account's run. The daily limit: one warning saying when to resume, the state
        saved (True). An account an agent may not read (IP not white-listed, inactive): skipped with one
        warning, when the run reads several (True). Any other error: one clear line, the state of every
        window finished so far (False: the run exits 1). ``streams``: the account's."""
        if isinstance(stop.reason, DailyLimitSpent):
            self._stop_for_the_day(stop, stop.reason, customer_id, list(streams))
            return True
        self.write_state()
        several = self.settings.customers is not None
        reason = stop.reason
        if several and isinstance(reason, CoMagicError) and reason.mnemonic in CLIENT_REFUSALS:
            self.progress.tally(customer_id, "*").skipped = f"{reason.mnemonic}: {reason.api_message}".rstrip(": ")
            self.logger.warning("Skipping customer %s: %s", customer_id, reason)
            return True
        self.progress.tally(customer_id, stop.stream).stopped = f"failed: {reason}"
        self.logger.error("%s%s", f"customer {customer_id}: " if several else "", reason)
        return False

    def _stop_for_the_day(self, stop: StopRun, spent: DailyLimitSpent, customer_id: int | None,
                          streams: list[Stream]) -> None:
        for stream in streams:
            if isinstance(stream, ReportStream):
                stream.hold_finished()
        for stream in streams:
            # as the SDK does at a stream's end: no starting value, signpost or progress marker stays
            stream.finalize_state_progress_markers()
        self.write_state()
        when = ""
        if spent.reset_seconds is not None:
            at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=spent.reset_seconds)
            when = f" after {at:%Y-%m-%d %H:%M} UTC"
        self.progress.tally(customer_id, stop.stream).stopped = "stopped: daily limit spent (resumes next run)"
        who = f"customer {customer_id}: " if self.settings.customers is not None else ""
        self.logger.warning(
            "%sThe account's daily API limit is spent (stream '%s'): stopping cleanly with state saved up to "
            "the last complete window; run again%s to resume.", who, stop.stream, when)

    def exit_code(self, ok: bool) -> int:
        """The summary table, and the run's exit code: 1 after a failure, or after a skip with `fail_on_skip`."""
        for line in self.progress.summary():
            self.logger.info("%s", line)
        skipped = [t for t in self.progress.tallies if t.skipped]
        if ok and not (skipped and self.settings.fail_on_skip):
            return 0
        if ok:
            self.logger.error("%d skip(s) in this run, and `fail_on_skip` is set: exiting 1 (the rest is "
                              "extracted and its state saved)", len(skipped))
        return 1
