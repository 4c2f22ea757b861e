"""What one run of a stream needs besides its declaration: the settings, the account it reads, and the
client of the API (its address and credentials shared, its throttle the account's). Streams receive it
from the tap and never see the tap itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from tap_comagic.api import CoMagicClient
from tap_comagic.limits import Throttle
from tap_comagic.progress import Progress
from tap_comagic.settings import Settings
from tap_comagic.timezones import UTC_OUTPUT, FromApi, date_time_output

# The column every record carries and every key starts with: the account the row came from.
ACCOUNT_COLUMN = "customer_id"


@dataclass(frozen=True)
class Account:
    """The account a stream reads: its id (``customer_id``, the client id an agent knows it by, or the
    ``app_id`` of a client's own token), whose data an agent asks for (``user_id``), the id the v3
    reports name (``v3_customer_id``), its time zone and date-time conversion, and its per-minute and
    daily points (the throttle). ``info``: its get.account row, once read."""

    zone: ZoneInfo
    user_id: int | None = None
    customer_id: int | None = None
    v3_customer_id: int | None = None
    throttle: Throttle = field(default_factory=Throttle)
    info: dict[str, Any] | None = field(default=None, compare=False)
    datetime_output: str = UTC_OUTPUT  # the `datetime_output` setting
    from_api: FromApi = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "from_api", date_time_output(self.zone, self.datetime_output))

    @classmethod
    def of(cls, settings: Settings, throttle: Throttle) -> Account:
        """The account the settings name, before the API has said which it is (discovery, the agent's own
        calls): on the token's throttle, which the token's own account then keeps."""
        return cls(settings.zone, settings.user_id, None, settings.customer_id, throttle,
                   datetime_output=settings.datetime_output)

    @property
    def scope(self) -> dict[str, Any]:
        """The state partition of this account's bookmarks, in every stream."""
        return {ACCOUNT_COLUMN: self.customer_id}


class Connection:
    """The client of the API (its address and credentials), made at first use (so that discovery starts
    no sandbox and opens no session) and shared by every account a run reads."""

    def __init__(self, connect: Callable[[], CoMagicClient]) -> None:
        self._connect = connect

    @cached_property
    def client(self) -> CoMagicClient:
        """The client, connecting at first use; it keeps the points of the token's own account."""
        return self._connect()

    @property
    def made(self) -> bool:
        """Whether a connection was made (so that closing logs out only a session that exists)."""
        return "client" in self.__dict__


class WindowStates:
    """Writes the state once a window is finished, as a STATE message.

    Every STATE message carries the whole state, every account's bookmarks, so with many accounts each costs
    more, and a run writes one per window: the cost would grow with the square of the accounts. While a
    message is cheap (under ``small`` seconds) every window's is written; a dearer one is written at most so
    often that writing takes about ``share`` of the run, and a run killed in between repeats the windows since
    the last one (never more: bookmarks only move at window ends, and every stream's end writes the state).
    """

    def __init__(self, write: Callable[[], None], clock: Callable[[], float] = time.monotonic,
                 share: float = 0.02, small: float = 0.002, flush: Callable[[], None] = lambda: None) -> None:
        self._write = write
        self._flush = flush  # writes the RECORDs buffered so far: their time is theirs, not the STATE's
        self._clock = clock
        self._share = share
        self._small = small
        self._quiet_until = 0.0

    def __call__(self) -> None:
        self._flush()
        began = self._clock()
        if began < self._quiet_until:
            return
        self._write()
        spent = self._clock() - began
        self._quiet_until = began + spent / self._share if spent >= self._small else 0.0


class RunContext:
    """The settings, the account and the connection, shared by every stream reading one account."""

    def __init__(self, settings: Settings, account: Account, connection: Connection,
                 user_agent: str, write_state: Callable[[], None], progress: Progress) -> None:
        self.settings = settings
        self.account = account
        self.user_agent = user_agent
        self.connection = connection
        self.write_state = write_state  # a STATE message of the whole state, if it changed since the last
        self.progress = progress  # the run's counts, progress lines and summary

    def reading(self, account: Account) -> RunContext:
        """The same run, reading another account (the date settings in its time zone)."""
        return RunContext(self.settings.in_zone(account.zone), account, self.connection, self.user_agent,
                          self.write_state, self.progress)

    @property
    def api_url(self) -> str:
        """The API's address (the sandbox's when `sandbox` is set), connecting at first use."""
        return self.client.api_url

    @cached_property
    def client(self) -> CoMagicClient:
        """The client of the API, keeping this account's points; connecting at first use."""
        return self.connection.client.for_account(self.account.throttle)
