"""Fields an account refuses (``unexpected_parameters`` naming one the tap asked for).

Such a field is left out of the stream's requests, and remembered in the stream's bookmark (field ->
when the account last refused it, UTC) so that later runs do not spend a request on it again; after
:data:`ASK_AGAIN_AFTER` it is asked for again, so that an account that gains it gets it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

REFUSED_FIELDS = "refused_fields"  # the bookmark's entry
ASK_AGAIN_AFTER = dt.timedelta(days=30)
T = TypeVar("T")


class RefusedFields:
    """One stream's refused fields, for one account: ``state`` gives that account's bookmark."""

    def __init__(self, method: str, state: Callable[[], dict[str, Any]], log: Callable[..., None]) -> None:
        self.method = method
        self._state = state
        self._log = log
        self.dropped: set[str] = set()
        self._settled = False  # an answer has accepted the fields asked for
        self._recalled = False  # the bookmark's refused fields are applied
        self._lock = threading.Lock()

    def first_answers(self, fetch: Callable[[], T], requested: Callable[[], list[str]]) -> T:
        """``fetch``'s answer; until one answer has accepted the fields asked for, one request at a time, so that a
        field the account refuses costs one request per run however many queries would run in parallel."""
        if self._settled:
            return fetch()
        with self._lock:
            if self._settled:
                return fetch()
            if not self._recalled:
                self._recalled = True
                self._recall()
            answer = fetch()
            self._settled = True
            memory = self._state().get(REFUSED_FIELDS)
            if isinstance(memory, dict):
                for name in set(memory) & set(requested()):  # asked again and accepted
                    del memory[name]
                if not memory:
                    del self._state()[REFUSED_FIELDS]
            return answer

    def refused(self, name: str) -> None:
        """The account refused field ``name``: leave it out from now on, and remember when."""
        self.dropped.add(name)
        state = self._state()
        memory = state.get(REFUSED_FIELDS)
        if not isinstance(memory, dict):
            memory = state[REFUSED_FIELDS] = {}
        memory[name] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self._log("%s: the account does not know field '%s'; it is left out (asked again after %d days)",
                  self.method, name, ASK_AGAIN_AFTER.days, level=logging.WARNING)

    def _recall(self) -> None:
        memory = self._state().get(REFUSED_FIELDS)
        if not isinstance(memory, dict):
            return  # not ours (the state was edited): every field is asked for, and the answer remembered
        now = dt.datetime.now(dt.timezone.utc)
        recent = []
        for name, when in memory.items():
            try:
                at = dt.datetime.fromisoformat(str(when))
            except ValueError:
                continue  # unreadable: ask again
            if now - (at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)) < ASK_AGAIN_AFTER:
                recent.append(name)
        if recent:
            self.dropped.update(recent)
            self._log("%s: not asking for %s, refused by the account in the last %d days (see the state's `%s`)",
                      self.method, ", ".join(sorted(recent)), ASK_AGAIN_AFTER.days, REFUSED_FIELDS)
