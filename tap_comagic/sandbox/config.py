"""Configuration of the simulator: the account it pretends to be and the faults it injects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .agency import CustomerConfig

DEFAULT_API_KEY = "comagic-sandbox-key"
DEFAULT_LOGIN = "demo"
DEFAULT_PASSWORD = "demo-password"


@dataclass
class SandboxConfig:
    """The simulated account. Data covers ``[start, start + days)`` in the account's local time."""

    seed: int = 1
    start: str = "2026-01-01"
    days: int = 120
    calls_per_day: int = 40
    chats_per_day: int = 12
    goals_per_day: int = 15
    offline_messages_per_day: int = 6
    visitor_sessions_per_day: int = 80
    api_requests_per_day: int = 10
    timezone: str = "Europe/Moscow"
    till_exclusive: bool = False
    chat_ids_supported: bool = True
    api_keys: tuple[str, ...] = (DEFAULT_API_KEY,)
    expired_api_keys: tuple[str, ...] = ()
    blocked_tokens: tuple[str, ...] = ()
    users: dict[str, str] = field(default_factory=lambda: {DEFAULT_LOGIN: DEFAULT_PASSWORD})
    app_id: int = 4_100_271
    token_ttl: int = 3600
    minute_limit: int = 10_000
    day_limit: int = 1_000_000
    latency: float = 0.0
    disabled_methods: frozenset[str] = frozenset()
    max_chat_ids: int = 1000  # longest accepted `chat_ids` array
    call_center: bool = True  # the call-center component: without it get.employee_stat is disabled
    call_tracking_3: bool = True  # Call tracking 3.0: without it the source model's methods are disabled
    # get.statuses with is_deleted=true: the deleted statuses only, or every status (the docs leave it open)
    deleted_flag_gives_all: bool = False
    # An account that knows only the spec's fields: the public docs' others are unknown (unexpected_parameters).
    spec_fields_only: bool = False
    unknown_fields: dict[str, frozenset[str]] = field(default_factory=dict)  # method -> fields it refuses too

    def refused(self, spec_fields: frozenset[str], method: str) -> frozenset[str]:
        """The fields of ``method`` this account does not know (``spec_fields``: its public-docs-only ones)."""
        out = frozenset(self.unknown_fields.get(method, ()))
        return out | spec_fields if self.spec_fields_only else out

    account_name: str | None = None  # get.account's name; None: one drawn from the seed
    # The agency (see agency.py): an agent's keys and logins, and the clients it acts for
    customers: tuple[CustomerConfig, ...] = ()
    agent_api_keys: tuple[str, ...] = ()
    agent_users: dict[str, str] = field(default_factory=dict)
    # get.account called by an agent, which the docs leave open: "user_id" (the client's account, like every
    # client method), "refuses_user_id" (unexpected_parameters) or "own" (the agent's account, user_id ignored)
    agent_account: str = "user_id"

    # As a database answering LIMIT/OFFSET: rows that tie in the requested sort (with no sort: on the
    # report's date field) come in a different order on each request ...
    reorder_ties: bool = False
    # ... and with no `sort` at all, the rows come in any order (no ORDER BY), different on each request.
    unsorted_any_order: bool = False


@dataclass
class Faults:
    """Shares in [0, 1] of requests answered with a fault; one draw per request, in arrival order.

    The kinds are tried in the order of the fields below against one uniform draw, so their shares add up
    (keep the sum <= 1).
    """

    seed: int = 0
    http_error: float = 0.0  # HTTP 500/502/503 with a short text body
    drop: float = 0.0  # headers with a Content-Length, part of the body, then the connection closes
    slow: float = 0.0  # sleep slow_seconds, then answer normally
    slow_seconds: float = 2.0
    truncated: float = 0.0  # a complete HTTP answer whose JSON body is cut short
    internal_error: float = 0.0  # JSON-RPC error internal_error
    limit_burst: float = 0.0  # starts a burst: limit_exceeded for limit_reset_seconds (clock time)
    limit_reset_seconds: float = 1.0
    limit_error_resets: bool = True  # False: limit_exceeded errors say how many points remain, not when they reset
    token_expiry: float = 0.0  # the login.user token of this request expires now: access_token_expired
    disabled_methods: frozenset[str] = frozenset()  # answered method_component_disabled (always)
