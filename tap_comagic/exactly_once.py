"""Every row of one query exactly once, whatever order the server gives it in.

Offset pages are only as exact as the server's order: a database answering LIMIT/OFFSET may order rows
that tie on the sort field differently on each request, so that consecutive pages skip some rows and
repeat others. :class:`ExactPager` reads a query's pages, drops the repeats by key, counts the rows
against ``total_items``, and when some are missing reads the query again in narrower pieces (a
:class:`Narrowing` says how: shorter date windows, fewer ids), each piece in one page where it fits.

Consecutive windows share their boundary second: :class:`BoundaryDedup` drops the rows a window returns
again there. Nothing here knows a stream: it is fed pages and a function that fetches one more.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any

import msgspec

from tap_comagic.errors import TapError
from tap_comagic.pagination import MAX_PAGE_SIZE, Page, Window
from tap_comagic.timezones import api_second

Row = dict[str, Any]
Key = Callable[[Row], Any]
# one page of a query: (params, offset, limit) -> the page
Fetch = Callable[[dict[str, Any], int, int], Page]

SECOND = dt.timedelta(seconds=1)


def row_key(keys: tuple[str, ...], unique: bool) -> tuple[Key, bool]:
    """What tells two rows apart, and whether it is the whole row (no key, or a key rows may share)."""
    if not unique or not keys:
        return msgspec.json.encode, True
    if len(keys) == 1:
        only = keys[0]
        return (lambda r: r.get(only)), False
    return (lambda r: tuple([r.get(k) for k in keys])), False


def pieces_for(total: int, page_size: int) -> int:
    """How many pieces ``total`` rows are read again in: each meant to fill three quarters of a page, so
    that most fit one request."""
    return max(2, math.ceil(total / max(1, page_size * 3 // 4)))


class Narrowing:
    """How one query is asked again in narrower pieces. A piece is whatever ``params`` turns into request
    parameters; this base is a query that cannot be narrowed."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.query = params

    def params(self, piece: Any) -> dict[str, Any]:
        """The request parameters of a piece."""
        result: dict[str, Any] = piece
        return result

    def whole(self, total: int) -> list[Any]:
        """The query as pieces that together ask the same, sized for ``total`` rows."""
        return [self.query]

    def smaller(self, piece: Any, total: int) -> list[Any]:
        """A piece holding ``total`` rows as narrower pieces (none: it cannot be narrowed)."""
        return []

    def tied(self, seconds: list[str], values: set[Any]) -> list[Any]:
        """Pieces holding the rows of the seconds a page boundary cut (none: the query cannot ask for
        just those). ``values``: the tie field's values of the rows seen at those seconds."""
        return []


class WindowNarrowing(Narrowing):
    """A date window asked again as shorter windows (whole seconds, sharing their ends)."""

    def __init__(self, span: Window, params_of: Callable[[Window], dict[str, Any]], page_size: int) -> None:
        super().__init__(params_of(span))
        self.span = span
        self.params_of = params_of
        self.page_size = page_size

    def params(self, piece: Any) -> dict[str, Any]:
        return self.params_of(piece)

    def whole(self, total: int) -> list[Any]:
        return list(self.span.pieces(pieces_for(total, self.page_size)))

    def smaller(self, piece: Any, total: int) -> list[Any]:
        window: Window = piece
        return list(window.pieces(pieces_for(total, self.page_size))) if total and window.splittable else []

    def tied(self, seconds: list[str], values: set[Any]) -> list[Any]:
        # each cut second alone, with a neighbour second inside the window (date_till may be exclusive)
        moments = (dt.datetime.fromisoformat(t) for t in dict.fromkeys(seconds))
        return [Window(t, t + SECOND) if t + SECOND <= self.span.end else Window(t - SECOND, t) for t in moments]


class IdsNarrowing(Narrowing):
    """A query of a list of ids (``ids_param``) asked again for fewer ids at a time."""

    def __init__(self, params: dict[str, Any], ids_param: str, page_size: int) -> None:
        super().__init__(params)
        self.ids_param = ids_param
        self.page_size = page_size

    def smaller(self, piece: Any, total: int) -> list[Any]:
        params: dict[str, Any] = piece
        ids = params.get(self.ids_param) or []
        parts = min(len(ids), pieces_for(total, self.page_size)) if total else 1
        if parts < 2:
            return []
        return [{**params, self.ids_param: ids[i * len(ids) // parts:(i + 1) * len(ids) // parts]}
                for i in range(parts)]

    def tied(self, seconds: list[str], values: set[Any]) -> list[Any]:
        ids = sorted(i for i in values if i is not None)
        return [{**self.query, self.ids_param: ids}] if ids and self.ids_param in self.query else []


class Ties:
    """The seconds a page boundary cuts in a query sorted on time, and the tie field's values of the rows
    seen at them: the only places such a query can miss rows."""

    def __init__(self, time_field: str, tie_field: str | None) -> None:
        self.time_field = time_field
        self.tie_field = tie_field
        self.seconds: list[str] = []
        self.values: set[Any] = set()
        self._last: str | None = None
        self._tail: list[Any] = []

    def page(self, rows: Sequence[Row]) -> None:
        """Note one page (in the query's order)."""
        if not rows:
            return
        field = self.time_field
        edge = api_second(rows[0].get(field))
        if edge is not None and edge == self._last:
            self.seconds.append(edge)
            self.values.update(self._tail, self._at_second(rows, edge))
        self._last = api_second(rows[-1].get(field))
        self._tail = self._at_second(reversed(rows), self._last)

    def _at_second(self, rows: Iterable[Row], second: str | None) -> list[Any]:
        """The tie field's values of the first rows (in the order given) whose time is ``second``."""
        if self.tie_field is None:
            return []
        out = []
        for row in rows:
            if api_second(row.get(self.time_field)) != second:
                break
            out.append(row.get(self.tie_field))
        return out


class ExactPager:
    """Reads queries each row once. ``key``: what tells two rows apart (``whole_rows``: the whole row,
    where a key may repeat); ``time_field``/``tie_field``: the field a query sorted on time is sorted on,
    and the field that narrows a query to the rows of a cut second."""

    def __init__(self, fetch: Fetch, key: Key, *, whole_rows: bool, page_size: int, time_field: str,
                 tie_field: str | None = None, name: str = "", method: str = "",
                 logger: logging.Logger | None = None) -> None:
        self.fetch = fetch
        self.key = key
        self.whole_rows = whole_rows
        self.page_size = page_size
        self.time_field = time_field
        self.tie_field = tie_field
        self.name = name  # the stream, in log lines
        self.method = method  # the API method, in errors
        self.logger = logger or logging.getLogger(__name__)

    def rows(self, first: Page, pages: Generator[Page, None, None], narrowing: Narrowing,
             ordered: bool) -> Iterator[Row]:
        """The rows of one query (its ``first`` page, then the rest of ``pages``), each once.

        One page is one consistent answer. Over several pages, repeats are dropped by key, and when fewer
        rows arrived than the query holds, ``narrowing``'s pieces are read, yielding only the rows not
        seen yet. With a stable order nothing more is asked. ``ordered``: the query is sorted on
        ``time_field``, so rows can be missing only where a page boundary cuts rows of one second; else
        a repeat shows the order is not stable, and the remaining pages are not worth reading.
        """
        if first.exact_total and first.total <= self.page_size:
            yield from first.take()
            return
        key = self.key
        seen: dict[Any, int] = {}  # key -> rows of that key emitted
        expected = count = 0
        unstable = False
        ties = Ties(self.time_field, self.tie_field) if ordered else None
        for page in itertools.chain([first], pages):
            expected = max(expected, page.total) if page.exact_total else page.total
            rows = page.take()
            if ties is not None:
                ties.page(rows)
            if self.whole_rows:
                for record in self.new_rows(rows, seen):
                    count += 1
                    yield record
            else:
                for record in rows:
                    k = key(record)
                    if k not in seen:
                        seen[k] = 1
                        count += 1
                        yield record
                    elif not ordered and page.exact_total:
                        unstable = True
            del rows  # before the next page is decoded: one page of records in memory, not two
            if unstable:
                pages.close()
                break
        if count < expected:
            self.logger.info("%s: %d of %d rows arrived: the server ordered them differently between pages; "
                             "reading them again in narrower pieces", self.name, count, expected)
            yield from self.reread(narrowing, expected, seen, ties)

    def reread(self, narrowing: Narrowing, total: int, seen: dict[Any, int], ties: Ties | None) -> Iterator[Row]:
        """The rows of a query of ``total`` not ``seen`` yet: first the seconds a page boundary cut (where
        the query is sorted on time and they can be asked alone), then, if rows are still missing, the
        whole query in pieces."""
        tied = narrowing.tied(ties.seconds, ties.values) if ties is not None and ties.seconds else []
        if tied:
            yield from self.pieces(tied, narrowing, seen)
            if sum(seen.values()) >= total:
                return
        yield from self.pieces(narrowing.whole(total), narrowing, seen)

    def pieces(self, pieces: list[Any], narrowing: Narrowing, seen: dict[Any, int]) -> Iterator[Row]:
        """Each piece in one page; a piece holding more is read again as narrower pieces, or, when it
        has none, in one page of up to the API's largest limit."""
        todo = list(reversed(pieces))
        while todo:
            piece = todo.pop()
            params = narrowing.params(piece)
            page = self.fetch(params, 0, self.page_size)
            rows = page.take()
            if page.total > len(rows):
                smaller = narrowing.smaller(piece, page.total)
                if smaller:
                    todo.extend(reversed(smaller))  # this page's rows are kept all the same
                else:
                    page = self.fetch(params, 0, MAX_PAGE_SIZE)
                    rows = page.take()
                    if page.total > len(rows):
                        raise TapError(f"{self.method}: {page.total} rows share one second and the server orders "
                                       "them differently on each request: they cannot be paged exactly")
            yield from self.new_rows(rows, seen)

    def new_rows(self, rows: Sequence[Row], seen: dict[Any, int]) -> Iterator[Row]:
        """The rows of one page not emitted yet. A key may repeat (rows alike in every field): a page is
        consistent, so a key is emitted again only as often as one page holds it more often than emitted
        so far."""
        key = self.key
        in_page: dict[Any, int] = {}
        for record in rows:
            k = key(record)
            n = in_page[k] = in_page.get(k, 0) + 1
            if seen.get(k, 0) < n:
                seen[k] = n
                yield record


class BoundaryDedup:
    """Drops the records a window returns again at the second it shares with the previous one."""

    def __init__(self, key: Callable[[dict[str, Any]], Any]) -> None:
        self.key = key  # what tells two rows apart (the stream's key, or the whole row where it has none)
        self._previous_end = ""
        self._previous_keys: set[Any] = set()
        self._end = ""
        self._keys: set[Any] = set()

    def start_window(self, start: str, end: str) -> None:
        """Begin a window: rows repeated from the window before it (their shared second) are dropped."""
        if start != self._end:  # not contiguous with the window before: nothing to compare
            self._keys = set()
        self._previous_end, self._previous_keys = self._end, self._keys
        self._end, self._keys = end, set()

    def is_repeat(self, record: dict[str, Any], value: Any) -> bool:
        """``value``: the record's time as "YYYY-MM-DD hh:mm:ss"."""
        if value == self._end:
            self._keys.add(self.key(record))
        if value == self._previous_end and self._previous_keys:
            return self.key(record) in self._previous_keys
        return False
