"""What a parent stream hands its child streams: one batch per window, never one sync per record.

A child declares its link once, beside the SDK's ``parent_stream_type``: ``fed = WINDOWS`` (the child is
date-windowed itself and reads the parent's windows: calls -> call_legs) or ``fed = ids_of("id")`` (the
child reads the values a field takes in the window's rows, in batches: chats -> chat_messages). The
parent's :class:`ChildFeed` asks for those fields, collects the values and hands them over at each window
end, in the child's context: ``date_from`` and ``date_till`` (the window) and, for ids, ``ids``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tap_comagic.bookmarks import BookmarkKeeper, fmt
from tap_comagic.pagination import Window

Row = dict[str, Any]
IDS = "ids"  # the context key of a batch of ids


@dataclass(frozen=True)
class Link:
    """How a child is fed: the parent's windows (``field`` None), or the values ``field`` takes in each
    window's rows (``once_per_run``: each value once per run, however many windows it appears in)."""

    field: str | None = None
    once_per_run: bool = False


WINDOWS = Link()


def ids_of(field: str, once_per_run: bool = False) -> Link:
    """A child fed the values ``field`` takes in the parent's rows, window by window."""
    return Link(field, once_per_run)


def window_of(context: Mapping[str, Any]) -> Window:
    """The parent's window a child's context hands it."""
    return Window(dt.datetime.fromisoformat(context["date_from"]), dt.datetime.fromisoformat(context["date_till"]))


class Child(Protocol):
    """What the feed needs of a child stream."""

    @property
    def selected(self) -> bool: ...

    @property
    def fed(self) -> Link | None: ...

    @property
    def bookmarks(self) -> BookmarkKeeper | None: ...


class ChildFeed:
    """A parent's side of its links: ``children()`` lists the parent's child streams (read at each use:
    the catalog decides which are selected), ``sync(child, context)`` syncs one."""

    def __init__(self, children: Callable[[], Iterable[Any]], sync: Callable[[Any, dict[str, Any]], None]) -> None:
        self.children = children
        self.sync = sync
        self._batches: dict[Link, list[Any]] = {}
        self._handed: dict[Link, set[Any]] = {}  # the values handed this run, for once_per_run links

    def fed(self) -> list[Child]:
        """The selected children this parent feeds."""
        return [c for c in self.children() if c.selected and c.fed is not None and c.bookmarks is not None]

    def takes_windows(self) -> bool:
        """Whether a fed child reads the parent's windows (so that every window is handed, rows or not)."""
        return any(c.fed is not None and c.fed.field is None for c in self.fed())

    def fields(self) -> list[str]:
        """The fields the parent asks for to feed its children (selected by the user or not)."""
        return list(dict.fromkeys(c.fed.field for c in self.fed() if c.fed is not None and c.fed.field))

    def collector(self) -> Callable[[Row], None] | None:
        """What takes each record's values for the children (None: no child is fed ids)."""
        links = list(dict.fromkeys(c.fed for c in self.fed() if c.fed is not None and c.fed.field))
        collectors = [self._collector(link) for link in links]
        if len(collectors) <= 1:
            return collectors[0] if collectors else None

        def collect_all(record: Row) -> None:
            for collect in collectors:
                collect(record)

        return collect_all

    def _collector(self, link: Link) -> Callable[[Row], None]:
        field, batch = link.field or "", self._batches.setdefault(link, [])
        if not link.once_per_run:

            def collect(record: Row) -> None:
                value = record.get(field)
                if value is not None:
                    batch.append(value)

            return collect
        handed = self._handed.setdefault(link, set())

        def collect_once(record: Row) -> None:
            value = record.get(field)
            if value is not None and value not in handed:
                batch.append(value)
                handed.add(value)

        return collect_once

    def window_done(self, window: Window) -> None:
        """Every record of ``window`` is written: each child gets its batch (one sync), or, with no ids to
        read, is done with the window too."""
        batches = {link: list(batch) for link, batch in self._batches.items()}
        for batch in self._batches.values():
            batch.clear()
        context: dict[str, Any] = {"date_from": fmt(window.start), "date_till": fmt(window.end)}
        for child in self.fed():
            link, keeper = child.fed, child.bookmarks
            if link is None or keeper is None:
                continue
            if link.field is None:
                self.sync(child, context)
            elif batches.get(link):
                self.sync(child, {**context, IDS: batches[link]})
            else:
                keeper.commit(window.end)

    def starts(self) -> list[dt.datetime]:
        """Where the fed children start reading in this run."""
        return [s for c in self.fed() if c.bookmarks is not None and (s := c.bookmarks.start()) is not None]

    def finish(self) -> bool:
        """The parent's run is finished, so are its children's: whether any state changed."""
        return any([c.bookmarks.finish() for c in self.fed() if c.bookmarks is not None])
