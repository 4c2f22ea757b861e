"""``python -m tap_comagic.sandbox --port 8080 --seed 1 --days 120``: serve until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import threading
from typing import Any

from .agency import agency_demo
from .config import DEFAULT_LOGIN, DEFAULT_PASSWORD, SandboxConfig
from .server import Sandbox


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tap_comagic.sandbox", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", default="2026-01-01", help="first day of data (account-local)")
    p.add_argument("--days", type=int, default=120)
    p.add_argument("--calls-per-day", type=int, default=40)
    p.add_argument("--chats-per-day", type=int, default=12)
    p.add_argument("--goals-per-day", type=int, default=15)
    p.add_argument("--offline-messages-per-day", type=int, default=6)
    p.add_argument("--visitor-sessions-per-day", type=int, default=80)
    p.add_argument("--api-requests-per-day", type=int, default=10)
    p.add_argument("--timezone", default="Europe/Moscow")
    p.add_argument("--till-exclusive", action="store_true")
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--spec-fields-only", action="store_true",
                   help="an account that knows only the spec's fields, not the public docs' others")
    p.add_argument("--agency", action="store_true", help="also an agent with clients (agency_demo)")
    a = p.parse_args(argv)
    settings: dict[str, Any] = dict(
        seed=a.seed, start=a.start, days=a.days, calls_per_day=a.calls_per_day, chats_per_day=a.chats_per_day,
        goals_per_day=a.goals_per_day, offline_messages_per_day=a.offline_messages_per_day,
        visitor_sessions_per_day=a.visitor_sessions_per_day, api_requests_per_day=a.api_requests_per_day,
        timezone=a.timezone, till_exclusive=a.till_exclusive, latency=a.latency,
        spec_fields_only=a.spec_fields_only,
    )
    cfg = agency_demo(**settings) if a.agency else SandboxConfig(**settings)
    with Sandbox(cfg, host=a.host, port=a.port) as sb:
        print(f"CoMagic sandbox: {sb.url}", flush=True)
        print(f"API key: {sb.api_key}   login: {DEFAULT_LOGIN} / {DEFAULT_PASSWORD}", flush=True)
        for login, password in cfg.agent_users.items():
            print(f"agent key: {cfg.agent_api_keys[0]}   agent login: {login} / {password}", flush=True)
        for c in cfg.customers:
            flags = [k for k in ("archived", "ip_not_whitelisted", "account_inactive") if getattr(c, k)]
            print(" ".join([f"client {c.id} {c.name}: user_ids {[u.id for u in c.users]},",
                            f"key {c.account.api_keys[0]}", *flags]), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
