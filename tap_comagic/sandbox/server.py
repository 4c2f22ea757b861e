"""The HTTP side of the simulator: JSON-RPC envelope, auth, rate limits, faults, and the Sandbox object."""

from __future__ import annotations

import collections
import contextlib
import json
import math
import random
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from .agency import AGENT, OWN, Agency, Principal
from .agency import METHODS as AGENCY_METHODS
from .catalog import CATALOG, DATE_FIELD
from .config import Faults, SandboxConfig
from .data import BASE, COMM_TYPE, DAY, SOURCES, TYPE_SOURCE, Record, World, dumps
from .errors import ApiError
from .query import Query, build_query, candidates, check_type, is_int, parse_dt, run
from .reference import CALL_CENTER_METHODS, CALL_TRACKING_3_METHODS, SUMMARIES
from .reference import METHODS as REFERENCE_METHODS

PATH = "/v2.0"
HIDDEN_PARAMS = ("access_token", "password")
AUTH_METHODS = ("login.user", "logout.user")


class Clock:
    """Wall time plus an offset that tests move forward with :meth:`advance`."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


@dataclass
class LoggedRequest:
    method: str | None
    params: dict[str, Any]
    outcome: str  # "ok", an error mnemonic, "http_500", "dropped", "truncated", "not_found", ...
    fault: str | None = None  # the injected fault, if any
    at: float = 0.0  # clock time
    request_id: Any = None
    customer_id: int | None = None  # the agency client the request was for (None: the configured account)


@dataclass
class _Session:
    login: str
    expire_at: float
    principal: Principal = OWN


@dataclass
class _Window:
    length: float
    used: int = 0
    started: float | None = None

    def refresh(self, now: float) -> None:
        if self.started is not None and now >= self.started + self.length:
            self.used, self.started = 0, None

    def reset_in(self, now: float) -> int:
        return int(self.length) if self.started is None else max(0, math.ceil(self.started + self.length - now))


@dataclass
class _Answer:
    status: int = 200
    body: list[bytes] = field(default_factory=list)
    content_type: str = "application/json; charset=UTF-8"
    fault: str | None = None
    outcome: str = "ok"


@dataclass
class _Faulted:
    kind: str | None
    http_status: int


class Sandbox:
    """A local CoMagic Data API: ``with Sandbox() as sb: ... sb.url, sb.api_key``."""

    def __init__(self, config: SandboxConfig | None = None, faults: Faults | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SandboxConfig()
        self.faults = faults or Faults()
        self.host, self.port = host, port
        self.clock = Clock()
        self.world = World(self.config)
        self.injected: collections.Counter[str] = collections.Counter()
        self.log: list[LoggedRequest] = []
        self.blocked: set[str] = set(self.config.blocked_tokens)
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._minute = _Window(60)
        self._day = _Window(DAY)
        self._burst_until = 0.0
        self._fault_rng: random.Random | None = None
        self._fault_seed: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        self._mutation_counter = 0
        self.agency = Agency(self.config)
        self._client_windows: dict[int, tuple[_Window, _Window]] = {}  # per client: its minute and day
        self._acting = threading.local()  # the client of the request this thread handles
        self._requests_run = 0

    # ---- lifecycle ------------------------------------------------------------------------------------
    @property
    def api_key(self) -> str:
        return self.config.api_keys[0]

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return f"http://{self.host}:{self._server.server_address[1]}{PATH}"

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _Handler)
        server.sandbox = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="comagic-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            conns = list(self._conns)
            handlers = list(self._handlers)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        for t in handlers:
            t.join(timeout=5)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ---- ground truth and mutations -------------------------------------------------------------------
    def truth(self, method: str, date_from: str | None = None, date_till: str | None = None,
              customer_id: int | None = None, **params: Any) -> list[dict[str, Any]]:
        """Every record the report holds, every field the account knows, as the API returns them.

        The range is INCLUSIVE on the report's date field, whatever ``till_exclusive`` says. Without a
        range: the whole data period. ``get.chat_messages_report`` also takes ``chat_ids=[...]`` (or
        ``chat_id``), ``get.visitors_report`` ``visitor_id``, ``get.financial_summary_report`` ``year`` and
        ``month``; a summary report (``get.ct_summary_report``...) its range and ``site_id`` where it takes one;
        a reference method its own parameters (``get.statuses``: ``is_deleted=True``).
        ``customer_id``: the records of that agency client (default: the configured account).
        """
        world = self.world_of(customer_id)
        spec = CATALOG[method]
        unknown = world.config.refused(spec.public_fields, method)
        names = tuple(n for n in spec.field_names if n not in unknown)
        q = Query(spec=spec, names=names, limit=10**12, offset=0, exclusive=False)
        report = spec.report
        if report in DATE_FIELD:
            w = world
            q.date_from = date_from or w.fmt(0, 0)
            q.date_till = date_till or w.fmt(w.config.days - 1, DAY - 1)
            parse_dt("date_from", q.date_from)
            parse_dt("date_till", q.date_till)
        if "chat_ids" in params or "chat_id" in params:
            q.chat_ids = list(params.get("chat_ids") or [params["chat_id"]])
        if report == "visitors":
            q.visitor_id = int(params["visitor_id"])
        if report == "financial_summary":
            q.year_month = (int(params["year"]), int(params["month"]))
        if method in REFERENCE_METHODS:  # a method's own parameters: site_id, is_deleted...
            q.extra = dict(params)
        if method in SUMMARIES:
            w = world
            q.date_from = date_from or w.fmt(0, 0)
            q.date_till = date_till or w.fmt(w.config.days - 1, DAY - 1)
            q.extra = dict(params)
        with world.lock:
            refs = candidates(q, world)
            return [json.loads(dumps({n: r[n] for n in names})) for *_, r in refs]

    def world_of(self, customer_id: int | None) -> World:
        """The data of an agency client (``SandboxConfig.customers``), or of the configured account."""
        return self.world if customer_id is None else self.agency.world(customer_id)

    def add_late_records(self, n: int, report: str = "calls", date_from: str | None = None,
                         date_till: str | None = None, seed: int | None = None,
                         customer_id: int | None = None) -> list[int]:
        """Add ``n`` records that arrive late, at times inside ``[date_from, date_till]`` (default: the
        whole data period). ``report`` is one of calls (with legs, financial legs and a communication),
        chats (with messages), goals, offline_messages, visitor_sessions, api_requests. Returns their ids.
        ``customer_id``: into that agency client's data.
        """
        if report not in SOURCES:
            raise ValueError(f"late records come for {SOURCES}, not {report}")
        w = self.world_of(customer_id)
        lo = w.abs_of(date_from) if date_from else 0
        hi = w.abs_of(date_till) if date_till else w.end_abs - 1
        lo, hi = max(0, lo), min(w.end_abs - 1, hi)
        if lo > hi:
            raise ValueError("the range holds no day of data")
        self._mutation_counter += 1
        rng = random.Random(f"{w.config.seed}:late:{seed if seed is not None else self._mutation_counter}")
        ids = []
        for _ in range(n):
            t = rng.randint(lo, hi)
            ids.append(w.add_late(report, t // DAY, t % DAY))
        return ids

    def change_old_records(self, n: int, date_from: str | None = None, date_till: str | None = None,
                           seed: int | None = None, customer_id: int | None = None) -> list[dict[str, Any]]:
        """Change ``n`` existing communications (calls, chats, goals, offline messages) dated inside the range:
        a tag added, sale_date/sale_cost set, chat or offline-message status changed, attributes changed.
        Returns ``[{"report", "id", "changes"}]``. ``customer_id``: in that agency client's data."""
        w = self.world_of(customer_id)
        lo = w.abs_of(date_from) if date_from else 0
        hi = w.abs_of(date_till) if date_till else w.end_abs - 1
        d0, d1 = max(0, lo // DAY), min(w.config.days - 1, hi // DAY)
        self._mutation_counter += 1
        rng = random.Random(f"{w.config.seed}:change:{seed if seed is not None else self._mutation_counter}")
        out: list[dict[str, Any]] = []
        seen: set[int] = set()
        attempts = 0
        while len(out) < n and attempts < n * 50:
            attempts += 1
            day = rng.randint(d0, d1)
            src = rng.choice(tuple(COMM_TYPE))
            recs = w.bundle(day).records[src]
            if not recs:
                continue
            rec = recs[rng.randrange(len(recs))]
            if rec["id"] in seen:
                continue
            seen.add(rec["id"])
            date_field = "start_time" if src == "calls" else "date_time"
            t = w.abs_of(rec[date_field])
            if not lo <= t <= hi:
                continue
            changes = self._changes(rng, src, rec, t, w)
            w.patch(src, rec["id"], changes)
            out.append({"report": src, "id": rec["id"], "changes": changes})
        return out

    def _changes(self, rng: random.Random, src: str, rec: Record, t: int, world: World | None = None) -> Record:
        w = world or self.world
        kinds = ["tags", "sale", "attributes"] + (["status"] if src in ("chats", "offline_messages") else [])
        kind = rng.choice(kinds)
        later = min(w.end_abs - 1, t + rng.randint(3600, 5 * DAY))
        if kind == "tags":
            tag = rng.choice(w.ref.TAGS)
            new: Record = dict.fromkeys(("tag_user_id", "tag_user_login", "tag_employee_id",
                                         "tag_employee_full_name"))
            new.update(tag_id=tag[0], tag_name=tag[1], tag_type="manual", tag_change_time=w.fmt(0, later))
            kept = [x for x in rec["tags"] if x["tag_id"] != tag[0]]
            return {"tags": [*kept, new]}
        if kind == "sale":
            return {"sale_date": w.fmt(0, later), "sale_cost": round(rng.uniform(990, 99_000), 2)}
        if kind == "attributes":
            return {"attributes": sorted({*rec["attributes"], "has_sale"} ^ {"is_repeated"})}
        if src == "chats":
            return {"status": rng.choice([s for s in ("succeed", "lost", "refused") if s != rec["status"]])}
        new_status = rng.choice([s for s in ("processed", "processing", "not_processed") if s != rec["status"]])
        return {"status": new_status, "process_time": w.fmt(0, later) if new_status != "not_processed" else None}

    def new_day(self, day_limit: int | None = None) -> None:
        """Start the account's next day now: its points are all there again (``day_limit`` sets a new budget)."""
        with self._lock:
            if day_limit is not None:
                self.config.day_limit = day_limit
            self._day.used, self._day.started = 0, None
            for _, day in self._client_windows.values():  # every agency client's day starts too
                day.used, day.started = 0, None

    def expire_tokens(self) -> None:
        """Expire every login.user session now."""
        now = self.clock.now()
        with self._lock:
            for s in self._sessions.values():
                s.expire_at = min(s.expire_at, now)

    def block_token(self, token: str) -> None:
        with self._lock:
            self.blocked.add(token)

    # ---- request processing ---------------------------------------------------------------------------
    def _draw_fault(self) -> tuple[float, float]:
        with self._lock:
            if self._fault_rng is None or self._fault_seed != self.faults.seed:
                self._fault_rng = random.Random(self.faults.seed)
                self._fault_seed = self.faults.seed
            return self._fault_rng.random(), self._fault_rng.random()

    def _pick_fault(self, u: float) -> str | None:
        f = self.faults
        acc = 0.0
        for kind in ("http_error", "drop", "slow", "truncated", "internal_error", "limit_burst", "token_expiry"):
            acc += float(getattr(f, kind))
            if u < acc:
                return kind
        return None

    def handle(self, body: bytes) -> _Answer:
        self._acting.customer_id = None
        u, v = self._draw_fault()
        fault = self._pick_fault(u)
        if self.config.latency:
            time.sleep(self.config.latency)
        if fault == "http_error":
            status = (500, 502, 503)[int(v * 3)]
            self._count("http_error")
            self._log(None, {}, f"http_{status}", "http_error", None)
            return _Answer(status=status, body=[f"{status} server error\n".encode()],
                           content_type="text/plain; charset=UTF-8", fault="http_error",
                           outcome=f"http_{status}")
        if fault == "slow":
            self._count("slow")
            time.sleep(self.faults.slow_seconds)
        req_id: Any = None
        method: str | None = None
        params: dict[str, Any] = {}
        try:
            try:
                doc = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise ApiError("parse_error", message="Parse error: the body is not JSON") from None
            if isinstance(doc, list):
                raise ApiError("invalid_request", message="batch requests are not supported")
            if not isinstance(doc, dict):
                raise ApiError("invalid_request", message="the request must be a JSON object")
            req_id = doc.get("id")
            if "id" not in doc or not (isinstance(req_id, (str, int)) and not isinstance(req_id, bool)):
                req_id = None
                raise ApiError("invalid_request", field="id", message="id is mandatory (a number or a string)")
            if doc.get("jsonrpc") != "2.0":
                raise ApiError("invalid_request", field="jsonrpc", value=doc.get("jsonrpc"),
                               message='jsonrpc must be "2.0"')
            for k in doc:
                if k not in ("jsonrpc", "id", "method", "params"):
                    raise ApiError("invalid_request", field=k, message=f"unexpected member {k}")
            m = doc.get("method")
            if not isinstance(m, str):
                raise ApiError("invalid_request", field="method", value=m, message="method must be a string")
            method = m
            raw_params = doc.get("params", {})
            if not isinstance(raw_params, dict):
                raise ApiError("invalid_request", field="params", message="params must be an object")
            params = raw_params
            if method not in CATALOG and method not in AUTH_METHODS and method not in AGENCY_METHODS:
                raise ApiError("method_not_found", field="method", value=method,
                               message=f"method {method} not found")
            if fault == "internal_error":
                self._count("internal_error")
                raise ApiError("internal_error")
            result = self._dispatch(method, params, fault)
            body_out = [b'{"jsonrpc":"2.0","id":' + dumps(req_id) + b',"result":', *result, b"}"]
            outcome = "ok"
        except ApiError as e:
            body_out = [dumps({"jsonrpc": "2.0", "id": req_id, "error": e.to_json()})]
            outcome = e.mnemonic
        except Exception as e:
            err = ApiError("internal_error", message=f"simulator bug: {type(e).__name__}: {e}")
            body_out = [dumps({"jsonrpc": "2.0", "id": req_id, "error": err.to_json()})]
            outcome = "internal_error"
        ans = _Answer(body=body_out, outcome=outcome)
        if fault in ("drop", "truncated"):
            self._count(fault)
            ans.fault = fault
            ans.outcome = "dropped" if fault == "drop" else "truncated"
        elif fault in ("slow", "internal_error") or (fault in ("limit_burst", "token_expiry")
                                                    and outcome in ("limit_exceeded", "access_token_expired")):
            ans.fault = fault
        self._log(method, params, ans.outcome, ans.fault, req_id)
        return ans

    def _count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1

    def _log(self, method: str | None, params: dict[str, Any], outcome: str, fault: str | None,
             req_id: Any) -> None:
        shown = {k: v for k, v in params.items() if k not in HIDDEN_PARAMS}
        with self._lock:
            self.log.append(LoggedRequest(method=method, params=shown, outcome=outcome, fault=fault,
                                          at=self.clock.now(), request_id=req_id,
                                          customer_id=getattr(self._acting, "customer_id", None)))

    def _dispatch(self, method: str, params: dict[str, Any], fault: str | None) -> list[bytes]:
        if method == "login.user":
            return [self._login(params)]
        token = self._authenticate(params, fault)
        if method == "logout.user":
            for k in params:
                if k != "access_token":
                    raise ApiError("unexpected_parameters", field=k, value=params[k])
            with self._lock:
                self._sessions.pop(token, None)
            return [dumps({"data": {"success": True}})]
        principal = self._principal(token)
        if method in AGENCY_METHODS:
            total, rows = self.agency.answer(principal, method, params, self.world)
            self._check_limits(fault)
            with self._lock:
                limits = self._charge()
            return [b'{"data":[', b",".join(rows), b'],"metadata":' + dumps({"total_items": total, "limits": limits})
                    + b"}"]
        if method == "get.account" and principal == AGENT and self.config.agent_account != "user_id":
            if self.config.agent_account == "refuses_user_id" and "user_id" in params:
                raise ApiError("unexpected_parameters", field="user_id", value=params["user_id"])
            params = {k: v for k, v in params.items() if k != "user_id"}
            principal = OWN  # the agent's own account
        self._acting.customer_id = self.agency.named(principal, params)
        acting = self.agency.act(principal, method, params)
        if acting is None:
            config, world, cid = self.config, self.world, None
            rest = {k: v for k, v in params.items() if k != "access_token"}
        else:
            config, world, cid, rest = acting.config, acting.world, acting.customer.id, acting.params
        disabled = (config.disabled_methods | (frozenset() if config.call_center else CALL_CENTER_METHODS)
                    | (frozenset() if config.call_tracking_3 else CALL_TRACKING_3_METHODS))
        if method in disabled or method in self.faults.disabled_methods:
            if method in self.faults.disabled_methods:
                self._count("method_component_disabled")
            raise ApiError("method_component_disabled", field="method", value=method)
        spec = CATALOG[method]
        if method == "set.visitor_communication":
            q = None
            self._check_set_params(rest)
        else:
            q = build_query(spec, rest, world, config.till_exclusive, config.chat_ids_supported,
                            config.max_chat_ids, config.refused(spec.public_fields, method))
        self._check_limits(fault, cid)
        if q is None:
            data = self._set_visitor(rest, world)
            with self._lock:
                limits = self._charge(cid)
            return [dumps({"data": data, "metadata": {"limits": limits}})]
        reorder = None
        if config.reorder_ties or config.unsorted_any_order:
            with self._lock:
                self._requests_run += 1
                reorder = random.Random(f"{config.seed}:order:{self._requests_run}")
        with world.lock:
            total, rows = run(q, world, reorder, config.reorder_ties, config.unsorted_any_order)
        with self._lock:
            limits = self._charge(cid)
        meta_key = b"meta_data" if method == "get.sales_report" else b"metadata"
        meta = dumps({"total_items": total, "limits": limits})
        return [b'{"data":[', b",".join(rows), b'],"' + meta_key + b'":' + meta + b"}"]

    # ---- auth -----------------------------------------------------------------------------------------
    def _login(self, params: dict[str, Any]) -> bytes:
        for k in params:
            if k not in ("login", "password"):
                raise ApiError("unexpected_parameters", field=k, value=params[k])
        for k in ("login", "password"):
            if k not in params:
                raise ApiError("required_parameter_missed", field=k)
            check_type(k, "string", params[k])
        principal = self.agency.principal_of_login(params["login"], params["password"])
        if principal is None:
            raise ApiError("auth_error", field="login", message="wrong login or password")
        token = secrets.token_hex(20)
        expire = self.clock.now() + self.config.token_ttl
        with self._lock:
            self._sessions[token] = _Session(login=params["login"], expire_at=expire, principal=principal)
        return dumps({"data": {"access_token": token, "expire_at": int(expire),
                               "app_id": self.agency.app_id(principal)}})

    def _authenticate(self, params: dict[str, Any], fault: str | None) -> str:
        if "access_token" not in params:
            raise ApiError("required_parameter_missed", field="access_token")
        token = params["access_token"]
        if not isinstance(token, str):
            raise ApiError("data_type_error", field="access_token", value=None)
        with self._lock:
            if token in self.blocked:
                raise ApiError("access_token_blocked", field="access_token")
            if token in self.config.expired_api_keys:
                raise ApiError("access_token_expired", field="access_token")
            if self.agency.principal_of_key(token) is not None:
                return token
            session = self._sessions.get(token)
            if session is None:
                raise ApiError("access_token_invalid", field="access_token")
            now = self.clock.now()
            if fault == "token_expiry" and session.expire_at > now:
                session.expire_at = now
                self.injected["token_expiry"] += 1
            if now >= session.expire_at:
                raise ApiError("access_token_expired", field="access_token")
            return token

    def _principal(self, token: str) -> Principal:
        found = self.agency.principal_of_key(token)
        if found is not None:
            return found
        with self._lock:
            session = self._sessions.get(token)
        return session.principal if session is not None else OWN

    # ---- limits ---------------------------------------------------------------------------------------
    def _windows(self, cid: int | None) -> tuple[SandboxConfig, _Window, _Window]:
        """The limits of an account: the configured one, or an agency client's own (called under the lock)."""
        if cid is None:
            return self.config, self._minute, self._day
        if cid not in self._client_windows:
            self._client_windows[cid] = (_Window(60), _Window(DAY))
        return (self.agency.client_config(cid), *self._client_windows[cid])

    def _limits(self, now: float, cid: int | None = None) -> dict[str, int]:
        config, minute, day = self._windows(cid)
        burst = self._burst_until > now
        minute_reset = minute.reset_in(now)
        if burst:
            minute_reset = max(1, math.ceil(self._burst_until - now))
        return {
            "day_limit": config.day_limit,
            "day_remaining": max(0, config.day_limit - day.used),
            "day_reset": int(day.reset_in(now)),
            "minute_limit": config.minute_limit,
            "minute_remaining": 0 if burst else max(0, config.minute_limit - minute.used),
            "minute_reset": int(minute_reset),
        }

    def _check_limits(self, fault: str | None, cid: int | None = None) -> None:
        with self._lock:
            config, minute, day = self._windows(cid)
            now = self.clock.now()
            minute.refresh(now)
            day.refresh(now)
            if fault == "limit_burst" and self._burst_until <= now:
                self._burst_until = now + self.faults.limit_reset_seconds
            if self._burst_until > now:
                self.injected["limit_burst"] += 1
                raise ApiError("limit_exceeded", extra={"metadata": {"limits": self._error_limits(now, cid)}})
            if (minute.used >= config.minute_limit) or (day.used >= config.day_limit):
                raise ApiError("limit_exceeded", extra={"metadata": {"limits": self._error_limits(now, cid)}})

    def _error_limits(self, now: float, cid: int | None = None) -> dict[str, int]:
        limits = self._limits(now, cid)
        if not self.faults.limit_error_resets:
            del limits["minute_reset"], limits["day_reset"]
        return limits

    def _charge(self, cid: int | None = None) -> dict[str, int]:
        now = self.clock.now()
        _, minute, day = self._windows(cid)
        for w in (minute, day):
            w.refresh(now)
            if w.started is None:
                w.started = now
            w.used += 1
        return self._limits(now, cid)

    # ---- set.visitor_communication -------------------------------------------------------------------
    @staticmethod
    def _check_set_params(p: dict[str, Any]) -> None:
        # The spec's table spells the type parameter "cummunication_type", its example "communication_type":
        # both are accepted, exactly one is required.
        allowed = {"customer_id": "number", "communication_id": "number", "cummunication_type": "string",
                   "communication_type": "string", "visitor_id": "number"}
        for k, v in p.items():
            if k not in allowed:
                raise ApiError("unexpected_parameters", field=k, value=v)
            check_type(k, allowed[k], v)
        for k in ("communication_id", "visitor_id"):
            if k not in p:
                raise ApiError("required_parameter_missed", field=k)
        if ("cummunication_type" in p) == ("communication_type" in p):
            raise ApiError("required_parameter_missed", field="cummunication_type")
        ctype = p.get("cummunication_type", p.get("communication_type"))
        if ctype not in TYPE_SOURCE:
            raise ApiError("invalid_parameter_value", field="cummunication_type", value=ctype)

    def _set_visitor(self, p: dict[str, Any], world: World | None = None) -> dict[str, Any]:
        w = world or self.world
        ctype = p.get("cummunication_type", p.get("communication_type"))
        src = TYPE_SOURCE[str(ctype)]
        comm_id, visitor_id = p["communication_id"], p["visitor_id"]
        if not is_int(comm_id) or not is_int(visitor_id):
            raise ApiError("data_type_error", field="communication_id")
        src_id = BASE[src] + (comm_id - BASE["comm:" + str(ctype)])
        found = w.find(src, src_id) if comm_id >= BASE["comm:" + str(ctype)] else None
        if found is None:
            raise ApiError("invalid_parameter_value", field="communication_id", value=comm_id,
                           message="no such communication")
        w.patch(src, src_id, {"visitor_id": visitor_id})
        return {"communication_id": comm_id, "communication_type": ctype, "visitor_id": visitor_id}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sandbox: Sandbox


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out as separate writes: without TCP_NODELAY, Nagle and the client's delayed
    # ACK stall every small answer by ~40 ms
    disable_nagle_algorithm = True
    server: _Server
    timeout = 60

    def setup(self) -> None:
        super().setup()
        sb = self.server.sandbox
        with sb._lock:
            sb._conns.add(self.connection)
            sb._handlers.add(threading.current_thread())

    def finish(self) -> None:
        sb = self.server.sandbox
        with sb._lock:
            sb._conns.discard(self.connection)
            sb._handlers.discard(threading.current_thread())
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, chunks: list[bytes], content_type: str, cut: int | None = None) -> None:
        length = sum(len(c) for c in chunks)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if cut is None:
            for c in chunks:
                self.wfile.write(c)
        else:
            self.wfile.write(b"".join(chunks)[:cut])
            self.wfile.flush()
            self.close_connection = True

    def _not_found(self) -> None:
        body = self.path.encode() + b" not found\n"
        self._send(404, [body], "text/plain; charset=UTF-8")

    def do_GET(self) -> None:
        if self.path != PATH:
            self._not_found()
            return
        self._send(405, [b"use POST\n"], "text/plain; charset=UTF-8")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path != PATH:
            self._not_found()
            return
        ans = self.server.sandbox.handle(body)
        try:
            size = sum(len(c) for c in ans.body)
            if ans.fault == "drop":
                self._send(ans.status, ans.body, ans.content_type, cut=max(1, size // 2))
            elif ans.fault == "truncated":
                self._send(ans.status, [b"".join(ans.body)[: max(1, size // 2)]], ans.content_type)
            else:
                self._send(ans.status, ans.body, ans.content_type)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

