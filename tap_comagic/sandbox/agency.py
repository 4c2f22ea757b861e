"""The agency (partner) side of the simulator: an agent's tokens, its clients, and acting for a client.

An agent token (``SandboxConfig.agent_api_keys`` or a ``login.user`` session of ``agent_users``) lists its
clients with ``get.customers`` and their users with ``get.customer_users``; every client method it calls
names one of those users in ``user_id`` (the v3 reports and ``set.visitor_communication``, whose spec
gives them ``customer_id`` instead, name the client there) and is answered from that client's own
account: its data (:class:`World` of ``CustomerConfig.account``), its components, its limits, its flags.
A client's own API key (``CustomerConfig.account.api_keys``) reads that client's account with no user_id.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from .catalog import FieldSpec, MethodSpec
from .config import SandboxConfig
from .data import Record, World, dumps
from .errors import ApiError
from .query import build_query, sort_key

AGENT = "agent"
OWN = "own"
Principal = str | int  # OWN (the configured account), AGENT, or a client's id (that client's own token)

CUSTOMER_STATUSES = ("waiting", "active", "manual_lock", "limit_lock", "debt_lock")
# The methods whose spec names the client with customer_id ("required for a partner") instead of user_id.
CUSTOMER_ID_METHODS = frozenset({"get.sales_report", "get.api_requests_report", "set.visitor_communication"})


@dataclass(frozen=True)
class CustomerUser:
    """A user of a client's account; its ``id`` is the ``user_id`` an agent passes when acting for the client."""

    id: int
    login: str
    name: str
    description: str | None = None
    forbidden_methods: frozenset[str] = frozenset()  # answered ``forbidden`` for this user (its rights)


@dataclass
class CustomerConfig:
    """One client of the agent. ``account`` is its own account (seed and sizes of its data, time zone,
    limits, disabled methods, call_center, its own api_keys); its ``app_id`` is taken from ``id``."""

    id: int
    name: str
    account: SandboxConfig
    users: tuple[CustomerUser, ...] = ()
    status: str = "active"  # get.customers' status enum
    archived: bool = False  # not listed by get.customers nor get.customer_users; calls: account_inactive
    ip_not_whitelisted: bool = False  # the agent's IP is not in this client's white list: every agent call fails
    account_inactive: bool = False  # every call for this client: account_inactive
    description: str | None = None
    creation_date_time: str = "2025-06-02 10:00:00"
    tariff_plan_id: int = 101
    tariff_plan_name: str = "Базовый"
    sites: tuple[tuple[int, str], ...] = field(default_factory=tuple)


def _f(name: str, type_: str, filterable: bool = False, sortable: bool = False,
       children: tuple[FieldSpec, ...] = ()) -> FieldSpec:
    return FieldSpec(name=name, type=type_, filterable=filterable, sortable=sortable, default=False,
                     children=children)


_PAGED = {"access_token": "string", "limit": "number", "offset": "number", "filter": "object",
          "fields": "array", "sort": "array"}
# Fields and their filter/sort flags as the public docs' pages data_api/partner/get_customers and
# data_api/partner/get_customer_users give them.
SPECS: dict[str, MethodSpec] = {
    "get.customers": MethodSpec(
        method="get.customers", version="v2", status="available", params=dict(_PAGED), required=("access_token",),
        fields=(_f("id", "integer", filterable=True), _f("name", "string", filterable=True),
                _f("description", "string"), _f("creation_date_time", "date-time", sortable=True),
                _f("status", "string", filterable=True, sortable=True), _f("status_change_date_time", "date-time"),
                _f("tariff_plan_id", "integer", filterable=True), _f("tariff_plan_name", "string", filterable=True),
                _f("monthly_base_limit", "number"), _f("monthly_base_notify_limit", "number"),
                _f("monthly_base_notify_emails", "array"), _f("monthly_calls_limit", "number"),
                _f("monthly_calls_notify_limit", "number"), _f("monthly_calls_notify_emails", "array"),
                _f("daily_calls_limit", "number"), _f("daily_calls_notify_limit", "number"),
                _f("daily_calls_notify_emails", "array"),
                _f("sites", "array", children=(_f("site_id", "integer"), _f("site_domain_name", "string"))))),
    "get.customer_users": MethodSpec(
        method="get.customer_users", version="v2", status="available", params=dict(_PAGED),
        required=("access_token",),
        fields=(_f("id", "integer", filterable=True), _f("login", "string"), _f("description", "string"),
                _f("name", "string", filterable=True, sortable=True),
                _f("customer_id", "integer", filterable=True, sortable=True))),
}
METHODS = frozenset(SPECS)


@dataclass
class Acting:
    """The client account a request reads."""

    customer: CustomerConfig
    config: SandboxConfig
    world: World
    params: dict[str, Any]  # the method's parameters without access_token and the agent's user_id


class Agency:
    """The clients of a :class:`SandboxConfig` and the worlds of their accounts (built on first use)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.customers: dict[int, CustomerConfig] = {}
        for c in config.customers:
            if c.id in self.customers:
                raise ValueError(f"customers: the id {c.id} is given twice")
            if c.status not in CUSTOMER_STATUSES:
                raise ValueError(f"customers: client {c.id} has status {c.status!r}, not one of {CUSTOMER_STATUSES}")
            self.customers[c.id] = c
        self.by_user = {u.id: c for c in config.customers for u in c.users}
        self._configs = {c.id: replace(c.account, app_id=c.id, account_name=c.name) for c in config.customers}
        self._worlds: dict[int, World] = {}
        self._lock = threading.Lock()

    # ---- who a token is -------------------------------------------------------------------------------
    def principal_of_key(self, token: str) -> Principal | None:
        if token in self.config.api_keys:
            return OWN
        if token in self.config.agent_api_keys:
            return AGENT
        for c in self.customers.values():
            if token in c.account.api_keys:
                return c.id
        return None

    def principal_of_login(self, login: str, password: str) -> Principal | None:
        if self.config.users.get(login) == password:
            return OWN
        if self.config.agent_users.get(login) == password:
            return AGENT
        for c in self.customers.values():
            if c.account.users.get(login) == password:
                return c.id
        return None

    def app_id(self, principal: Principal) -> int:
        return principal if isinstance(principal, int) else self.config.app_id

    # ---- the clients' accounts -----------------------------------------------------------------------
    def client_config(self, customer_id: int) -> SandboxConfig:
        if customer_id not in self._configs:
            raise KeyError(f"no client {customer_id} in SandboxConfig.customers")
        return self._configs[customer_id]

    def world(self, customer_id: int) -> World:
        cfg = self.client_config(customer_id)
        with self._lock:
            w = self._worlds.get(customer_id)
            if w is None:
                w = self._worlds[customer_id] = World(cfg)
            return w

    def act(self, principal: Principal, method: str, params: dict[str, Any]) -> Acting | None:
        """The client account a client method reads for this principal (None: the principal's own
        account), after the client's checks; ApiError when the call is refused."""
        if principal == OWN:
            return None
        rest = {k: v for k, v in params.items() if k != "access_token"}
        if isinstance(principal, int):
            customer = self.customers[principal]
            self._check_active(customer)
            return Acting(customer, self.client_config(customer.id), self.world(customer.id), rest)
        if method in CUSTOMER_ID_METHODS:
            customer = self._customer_named(rest)
            user = None
        else:
            customer, user = self._user_named(rest)
            del rest["user_id"]
        # The IP white list is checked first: it refuses every call of the agent for this client.
        if customer.ip_not_whitelisted:
            raise ApiError("ip_not_whitelisted", message="Your IP 127.0.0.1 is not whitelisted",
                           params={"ip": "127.0.0.1"})
        self._check_active(customer)
        if user is not None and method in user.forbidden_methods:
            raise ApiError("forbidden", field="method", value=method)
        return Acting(customer, self.client_config(customer.id), self.world(customer.id), rest)

    def named(self, principal: Principal, params: dict[str, Any]) -> int | None:
        """The client a request names, if any (for the request log, also when the call is refused)."""
        if isinstance(principal, int):
            return principal
        if principal != AGENT:
            return None
        uid, cid = params.get("user_id"), params.get("customer_id")
        if isinstance(uid, int) and uid in self.by_user:
            return self.by_user[uid].id
        return cid if isinstance(cid, int) and cid in self.customers else None

    @staticmethod
    def _check_active(customer: CustomerConfig) -> None:
        if customer.archived or customer.account_inactive:
            raise ApiError("account_inactive")

    def _user_named(self, params: dict[str, Any]) -> tuple[CustomerConfig, CustomerUser]:
        if "user_id" not in params:
            raise ApiError("required_parameter_missed", field="user_id",
                           message="user_id is required when an agent calls a client method")
        uid = params["user_id"]
        if not isinstance(uid, int) or isinstance(uid, bool):
            raise ApiError("data_type_error", field="user_id", value=uid)
        customer = self.by_user.get(uid)
        if customer is None:
            raise ApiError("invalid_parameter_value", field="user_id", value=uid,
                           message="no user with this id among the agent's clients")
        return customer, next(u for u in customer.users if u.id == uid)

    def _customer_named(self, params: dict[str, Any]) -> CustomerConfig:
        if "customer_id" not in params:
            raise ApiError("required_parameter_missed", field="customer_id",
                           message="customer_id is required when an agent calls this method")
        cid = params["customer_id"]
        if not isinstance(cid, int) or isinstance(cid, bool):
            raise ApiError("data_type_error", field="customer_id", value=cid)
        if cid not in self.customers:
            raise ApiError("invalid_parameter_value", field="customer_id", value=cid,
                           message="no such client of the agent")
        return self.customers[cid]

    # ---- the partner methods -------------------------------------------------------------------------
    def answer(self, principal: Principal, method: str, params: dict[str, Any],
               world: World) -> tuple[int, list[bytes]]:
        """get.customers / get.customer_users: (total, encoded page). ``forbidden`` for a non-agent token."""
        if principal != AGENT:
            # The docs give these methods to partners only, behind the client_selected / client_user rights.
            raise ApiError("forbidden", field="method", value=method, message="Permission denied")
        spec = SPECS[method]
        rest = {k: v for k, v in params.items() if k != "access_token"}
        q = build_query(spec, rest, world, False, True, 0)
        listed = [c for c in self.customers.values() if not c.archived]
        rows = [_customer_row(c) for c in listed] if method == "get.customers" else [
            {"id": u.id, "login": u.login, "description": u.description, "name": u.name, "customer_id": c.id}
            for c in listed for u in c.users]
        if q.predicate is not None:
            p = q.predicate
            rows = [r for r in rows if p(r)]
        for get, desc in reversed(q.sort):
            key = sort_key(get)
            rows.sort(key=lambda r: key(r), reverse=desc)
        return len(rows), [dumps({n: r[n] for n in q.names}) for r in rows[q.offset:q.offset + q.limit]]


def _customer_row(c: CustomerConfig) -> Record:
    changed = datetime.fromisoformat(c.creation_date_time) + timedelta(days=1)
    return {
        "id": c.id, "name": c.name, "description": c.description, "creation_date_time": c.creation_date_time,
        "status": c.status, "status_change_date_time": changed.strftime("%Y-%m-%d %H:%M:%S"),
        "tariff_plan_id": c.tariff_plan_id, "tariff_plan_name": c.tariff_plan_name,
        "monthly_base_limit": None, "monthly_base_notify_limit": None, "monthly_base_notify_emails": [],
        "monthly_calls_limit": None, "monthly_calls_notify_limit": None, "monthly_calls_notify_emails": [],
        "daily_calls_limit": None, "daily_calls_notify_limit": None, "daily_calls_notify_emails": [],
        "sites": [{"site_id": sid, "site_domain_name": dom} for sid, dom in c.sites],
    }


def agency_demo(agent_key: str = "comagic-sandbox-agent-key", agent_login: str = "agency",
                agent_password: str = "agency-password", **account: Any) -> SandboxConfig:
    """A ready agency: the configured account plus an agent with four clients. Client 5001 and 5002 are
    active with their own data (different seeds, sizes and time zones), 5002 without Call tracking 3.0 (its
    source methods answer method_component_disabled); 5003 is active but does not
    white-list the agent's IP (``ip_not_whitelisted``); 5004 is archived. ``account`` overrides the
    configured account's settings (days, sizes...); the clients take its ``start`` and ``days``."""
    base = SandboxConfig(**account)

    def client(seed: int, tz: str, calls: int, key: str) -> SandboxConfig:
        return replace(base, seed=seed, timezone=tz, calls_per_day=calls, chats_per_day=max(1, calls // 4),
                       api_keys=(key,), users={}, expired_api_keys=(), blocked_tokens=())

    customers = (
        CustomerConfig(id=5001, name="ООО «Ромашка»", account=client(11, "Europe/Moscow", 30, "client-5001-key"),
                       users=(CustomerUser(id=70011, login="agency_romashka", name="API Ромашка"),),
                       sites=((9101, "romashka.example"),)),
        CustomerConfig(id=5002, name="ИП Васильев",
                       account=replace(client(12, "Asia/Yekaterinburg", 12, "client-5002-key"), call_tracking_3=False),
                       users=(CustomerUser(id=70021, login="agency_vasiliev", name="API Васильев"),
                              CustomerUser(id=70022, login="vasiliev_readonly", name="Только звонки",
                                           forbidden_methods=frozenset({"get.chats_report"}))),
                       sites=((9201, "vasiliev.example"),)),
        CustomerConfig(id=5003, name="ООО «Закрытый IP»", account=client(13, "Europe/Moscow", 10, "client-5003-key"),
                       users=(CustomerUser(id=70031, login="agency_closed", name="API Закрытый"),),
                       ip_not_whitelisted=True),
        CustomerConfig(id=5004, name="ООО «Архив»", account=client(14, "Europe/Moscow", 10, "client-5004-key"),
                       users=(CustomerUser(id=70041, login="agency_archive", name="API Архив"),),
                       archived=True, status="manual_lock"),
    )
    return replace(base, customers=customers, agent_api_keys=(agent_key,), agent_users={agent_login: agent_password})
