"""Account discovery: which accounts a run reads (the token's own, or an agent's clients that `customers`
asks for) and what each is (its id, the user an agent acts as, its time zone), asked of the API through
the run's client before any stream of the account is read."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tap_comagic.context import Account, RunContext
from tap_comagic.customers import AGENT_CUSTOMER_USERS, AGENT_CUSTOMERS, Customer, choose
from tap_comagic.errors import CoMagicError, SkipStream, StopRun, TapError
from tap_comagic.limits import Throttle, optional_int
from tap_comagic.outcomes import as_stop
from tap_comagic.progress import Tally


class Accounts:
    """Looks the run's accounts up, counting its requests in the run's progress."""

    def __init__(self, run: RunContext, logger: logging.Logger) -> None:
        self.run = run
        self.settings = run.settings
        self.logger = logger

    def _counted(self, customer_id: int | None, what: str) -> tuple[Callable[[], None], Tally]:
        """A new line of the run's summary, and what counts a request on it."""
        tally = self.run.progress.tally(customer_id, what)
        return (lambda: self.run.progress.count_request(tally)), tally

    def _agent_table(self, method_and_fields: tuple[str, tuple[str, ...]]) -> list[dict[str, Any]]:
        method, fields = method_and_fields
        sent, _ = self._counted(self.run.account.customer_id, method)
        return self.run.client.table(method, fields, self.settings.page_size, sent)

    def customers(self) -> list[Customer]:
        """The accounts to read: the token's own, or the clients `customers` asks for (StopRun: none)."""
        settings = self.settings
        if settings.customers is None:
            try:
                return [Customer(self.client_of(settings.user_id), settings.user_id)]
            except Exception as exc:
                raise as_stop(exc, "customers") from None
        try:
            chosen, unreadable = choose(settings, self._agent_table(AGENT_CUSTOMERS),
                                        self._agent_table(AGENT_CUSTOMER_USERS))
        except SkipStream as exc:
            refused = TapError(f"`customers` needs an agent (partner) token: get.customers refused this one ({exc}); "
                               "remove `customers` to read the token's own account")
            raise StopRun(refused, "customers") from None
        except Exception as exc:
            raise as_stop(exc, "customers") from None
        for cid, reason in unreadable:
            self.run.progress.tally(cid, "*").skipped = reason
            self.logger.warning("Skipping customer %s: %s", cid, reason)
        self.logger.info("Reading %d customer(s) of the agent: %s", len(chosen),
                         ", ".join(f"{c.id} ({c.name})" if c.name else str(c.id) for c in chosen))
        return chosen

    def client_of(self, user_id: int | None) -> int | None:
        """The client an agent's `user_id` acts for: `customer_id` if set, else the one get.customer_users
        names. Not get.account's app_id: a server may answer that for the agent's own account, and two
        clients read so into one warehouse would share keys. None: a client's own token (get.account names
        it), or a server that does not say."""
        if user_id is None:
            return None
        if self.settings.customer_id is not None:
            return self.settings.customer_id
        try:
            users = self._agent_table(AGENT_CUSTOMER_USERS)
        except (SkipStream, CoMagicError) as exc:
            self.logger.warning("get.customer_users does not say which client user %s belongs to (%s): the records "
                                "carry the id get.account gives; set `customer_id` to name the client", user_id, exc)
            return None
        return next((optional_int(u.get("customer_id")) for u in users if optional_int(u.get("id")) == user_id), None)

    def account_of(self, customer: Customer) -> Account:
        """The account ``customer`` names, as get.account describes it: its id (the client id an agent
        knows, or the `app_id` of the token's own account) and its time zone (unless `timezone` is set)."""
        settings = self.settings
        token_throttle = self.run.account.throttle
        throttle = token_throttle if customer.id is None else token_throttle.fresh()
        info = self._look_up(customer, throttle)
        customer_id = customer.id if customer.id is not None else optional_int(info.get("app_id"))
        if customer_id is None:
            customer_id = settings.customer_id or 0
            self.logger.warning("The account's id is unknown (get.account gave no app_id): records carry "
                                "customer_id %s; set `customer_id` to name the account", customer_id)
        zone = settings.zone
        if not settings.zone_given and info.get("timezone"):
            try:
                zone = ZoneInfo(str(info["timezone"]))
            except (ZoneInfoNotFoundError, ValueError):
                self.logger.warning("get.account gives time zone %r, which is not an IANA name: using %s; set "
                                    "`timezone`", info["timezone"], zone)
        v3_id = settings.customer_id if settings.customer_id is not None else (
            customer_id if customer.user_id is not None else None)
        return Account(zone, customer.user_id, customer_id, v3_id, throttle, info or None,
                       datetime_output=settings.datetime_output)

    def _look_up(self, customer: Customer, throttle: Throttle) -> dict[str, Any]:
        """The account's get.account row (empty: the API would not say, with a warning why)."""
        sent, tally = self._counted(customer.id, "get.account")
        params = {"user_id": customer.user_id} if customer.user_id is not None else {}
        info: dict[str, Any] | None = None
        try:
            data = self.run.connection.client.for_account(throttle).result("get.account", params, sent)
            info = data if isinstance(data, dict) else next(iter(data or []), None)
        except SkipStream as exc:
            self.logger.warning("get.account is refused (%s): the account's id and time zone come from the "
                                "settings", exc)
        except CoMagicError as exc:
            if customer.user_id is None or exc.field != "user_id" or exc.mnemonic != "unexpected_parameters":
                raise as_stop(exc, "account") from None
            # The docs give get.account no user_id: a server that refuses it for agents cannot say which
            # time zone a client keeps (its own account would be the agent's).
            self.logger.warning("get.account does not take `user_id` here: customer %s is read in `timezone` "
                                "(%s)", customer.id, self.settings.zone)
        except Exception as exc:
            raise as_stop(exc, "account") from None
        named = optional_int((info or {}).get("app_id"))
        if info and customer.id is not None and named not in (None, customer.id):
            # a server that ignores user_id here answers for the agent's own account: not this client's
            self.logger.warning("get.account answers for account %s, not customer %s: customer %s is read in "
                                "`timezone` (%s)", named, customer.id, customer.id, self.settings.zone)
            info = None
        tally.customer_id = customer.id if customer.id is not None else named
        return info or {}
