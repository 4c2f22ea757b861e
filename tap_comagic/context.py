"""What one run of a stream needs besides its declaration: the settings, the account it reads, and the
connection (address and credentials). Streams receive it from the tap and never see the tap itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from zoneinfo import ZoneInfo

from tap_comagic.auth import CoMagicAuth
from tap_comagic.limits import Throttle
from tap_comagic.settings import Settings
from tap_comagic.timezones import FromApi


@dataclass(frozen=True)
class Account:
    """The account a stream reads: whose data (``user_id`` for agents, ``customer_id`` for v3 reports),
    its time zone and date-time conversion, and its per-minute and daily points (the throttle)."""

    zone: ZoneInfo
    user_id: int | None = None
    customer_id: int | None = None
    throttle: Throttle = field(default_factory=Throttle)
    from_api: FromApi = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "from_api", FromApi(self.zone))

    @classmethod
    def of(cls, settings: Settings) -> Account:
        """The account the settings name (the client's own, or the one an agent acts for)."""
        return cls(settings.zone, settings.user_id, settings.customer_id)


class RunContext:
    """The settings, the account and the connection, shared by every stream of one run.

    The connection is made at first use (``connect``), so that discovery starts no sandbox and opens
    no session.
    """

    def __init__(self, settings: Settings, account: Account, connect: Callable[[], tuple[str, CoMagicAuth]],
                 user_agent: str, write_state: Callable[[], None]) -> None:
        self.settings = settings
        self.account = account
        self.user_agent = user_agent
        self._connect = connect
        self.write_state = write_state  # a STATE message of the whole state, if it changed since the last

    @cached_property
    def _connection(self) -> tuple[str, CoMagicAuth]:
        return self._connect()

    @property
    def api_url(self) -> str:
        """The API's address (the sandbox's when `sandbox` is set), connecting at first use."""
        return self._connection[0]

    @property
    def auth(self) -> CoMagicAuth:
        """The credentials, connecting at first use."""
        return self._connection[1]

    @property
    def connected(self) -> bool:
        """Whether a connection was made (so that closing logs out only a session that exists)."""
        return "_connection" in self.__dict__
