"""Which accounts a run reads: the token's own (as get.account names it), or the clients of an agent
(partner) token that `customers` asks for, each with the user the agent acts as (get.customers and
get.customer_users, which the public docs give to partners only)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tap_comagic.errors import TapError
from tap_comagic.settings import ALL, Settings

# An agent's own lists, read whole (their rows name the accounts the run then reads): method -> the fields
# asked for (get.customer_users' own customer_id among them).
AGENT_CUSTOMERS = ("get.customers", ("id", "name"))
AGENT_CUSTOMER_USERS = ("get.customer_users", ("id", "customer_id"))


@dataclass(frozen=True)
class Customer:
    """An account to read: its id (None: the token's own, named by get.account) and the user an agent
    acts as for it (None: a client's own token)."""

    id: int | None
    user_id: int | None
    name: str | None = None


def choose(settings: Settings, customers: Iterable[dict[str, Any]], users: Iterable[dict[str, Any]]
           ) -> tuple[list[Customer], list[tuple[int, str]]]:
    """The clients `customers` asks for, each with its user; and the clients listed by "all" that
    cannot be read (no user), with the reason. A client asked for by id that the agent does not have,
    or that has no user, is the settings' fault: one line naming it."""
    listed: dict[int, str | None] = {int(row["id"]): row.get("name") for row in customers if row.get("id") is not None}
    users_of: dict[int, list[int]] = {}
    for row in users:
        if row.get("id") is not None and row.get("customer_id") is not None:
            users_of.setdefault(int(row["customer_id"]), []).append(int(row["id"]))
    wanted: list[int] = list(listed) if not isinstance(settings.customers, tuple) else list(settings.customers)
    unknown = [c for c in wanted if c not in listed]
    if unknown:
        raise TapError(f"`customers` names {', '.join(map(str, unknown))}, which get.customers does not list "
                       "among this agent's active clients (archived ones are not listed): remove "
                       f"{'it' if len(unknown) == 1 else 'them'} from `customers`, or use \"all\"")
    chosen: list[Customer] = []
    unreadable: list[tuple[int, str]] = []
    for cid in wanted:
        ids = sorted(users_of.get(cid, ()))
        user = settings.customer_user_ids.get(cid)
        if user is not None and user not in ids:
            raise TapError(f"`customer_user_ids` gives user {user} for customer {cid}, but get.customer_users "
                           f"lists {ids or 'no user'} for it: use one of those")
        if user is None and not ids:
            reason = ("get.customer_users lists no user for it: create a user for the agent in the client's "
                      "account")
            if settings.customers != ALL:
                raise TapError(f"customer {cid} in `customers` cannot be read: {reason}, or remove it from "
                               "`customers`")
            unreadable.append((cid, "no user (get.customer_users lists none)"))
            continue
        chosen.append(Customer(cid, user if user is not None else ids[0], listed[cid]))
    return chosen, unreadable
