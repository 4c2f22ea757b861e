"""What every stream of the catalog shares, whatever it reads (date windows, a whole table, days): its
records shaped (:mod:`tap_comagic.shaper`), the user's filter, the children it feeds
(:mod:`tap_comagic.children`) and, where it has a replication key, its bookmark
(:mod:`tap_comagic.bookmarks`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk.exceptions import AbortedSyncFailedException, AbortedSyncPausedException
from typing_extensions import override

from tap_comagic.bookmarks import BookmarkKeeper
from tap_comagic.children import ChildFeed, Link
from tap_comagic.client import CoMagicStream
from tap_comagic.shaper import RecordShaper, datetime_paths

if TYPE_CHECKING:
    import datetime as dt

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_comagic.context import RunContext


class ApiStream(CoMagicStream):
    """A stream of one API method's rows, as the catalog declares them."""

    sort_field: ClassVar[str | None] = None  # the report sorts on this field, ascending (else: server order)
    # declared plain strings that hold account-local date-times: given the offset too, but kept
    # strings, so that a value of another shape still loads
    local_time_fields: ClassVar[tuple[tuple[str, ...], ...]] = ()
    # a child stream: how its parent (``parent_stream_type``) feeds it (see children.py)
    fed: ClassVar[Link | None] = None
    bookmarks: BookmarkKeeper | None = None  # streams with a replication key keep one

    def __init__(self, tap: Tap, run: RunContext) -> None:
        super().__init__(tap, run)
        self._shaper: RecordShaper | None = None
        self.feed = ChildFeed(lambda: self.child_streams, self.sync_child)

    @cached_property
    def added(self) -> frozenset[str]:
        """Columns the tap adds to the API's rows: never requested, always kept."""
        return frozenset(self.flags.get("added", ()))

    @property
    @override
    def requested_fields(self) -> list[str]:
        fields = [f for f in super().requested_fields if f not in self.added]
        # the fields the children are fed are asked for even when the user deselected them (not emitted)
        extra = [f for f in self.feed.fields() if f not in fields]
        return fields + extra if extra else fields

    def filtered(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with the stream's `filters` entry."""
        user_filter = self.settings.filters.get(self.name)
        return {**params, "filter": user_filter} if user_filter else params

    def bounded_filter(self, bounds: list[dict[str, Any]]) -> dict[str, Any]:
        """A ``filter`` parameter: ``bounds`` (conditions the method takes instead of dates) and the stream's
        `filters` entry, all of them."""
        user_filter = self.settings.filters.get(self.name)
        return {"filters": [*bounds, user_filter] if user_filter else bounds, "condition": "and"}

    # ---- records ----------------------------------------------------------------------

    def shaper(self) -> RecordShaper:
        """Shapes this stream's records; made at the first record, once the catalog's selection is known."""
        ascending = self.sort_field if self.sort_field is not None and self.sort_field in self.sortable else None
        # super(): the catalog's selection, not the fields asked for only to feed children or make keys
        keep = frozenset(super().requested_fields) | self.added
        paths = [*datetime_paths(self.schema["properties"]), *self.local_time_fields]
        return RecordShaper(paths, self.account.from_api, ascending, keep, self.account.customer_id)

    @override
    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any] | None:
        shaper = self._shaper
        if shaper is None:
            shaper = self._shaper = self.shaper()
        return shaper(row)

    # ---- bookmarks ----------------------------------------------------------------------

    @override
    def _increment_stream_state(self, latest_record: dict[str, Any], *, context: Context | None = None) -> None:
        # The SDK would move the bookmark on every record; ours moves when a window is complete (see
        # bookmarks.py), so that an interrupted run resumes from the last complete window.
        keeper = self.bookmarks
        if keeper is not None:
            value = latest_record.get(keeper.replication_key or "")
            if value is not None:
                keeper.offer(value)

    @override
    def compare_start_date(self, value: str, start_date_value: str) -> str:
        if self.bookmarks is None:
            return super().compare_start_date(value, start_date_value)
        return max(value, start_date_value, key=self.bookmarks.moment)

    def resume_point(self) -> dt.datetime | None:
        """Where this stream's reading starts in this run (None: not selected, or no bookmark)."""
        return self.bookmarks.start() if self.bookmarks is not None else None

    def commit_bookmark(self, window_end: dt.datetime | None) -> None:
        """A window is done: the bookmark moves (see BookmarkKeeper.commit)."""
        if self.bookmarks is not None:
            self.bookmarks.commit(window_end)

    def hold_finished(self) -> None:
        """The run stops for the daily limit (see BookmarkKeeper.hold_finished)."""
        if self.bookmarks is not None:
            self.bookmarks.hold_finished()

    # ---- children -----------------------------------------------------------------------

    def sync_child(self, child: Any, context: Context) -> None:
        """One batch for one child (a window, or a window's ids) in the child's state partition: this
        account."""
        began = time.monotonic()
        try:
            child.sync(context={**context, **self.account.scope})
        except (AbortedSyncFailedException, AbortedSyncPausedException):
            pass  # a dry run's record limit, as the SDK's own child sync treats it
        finally:
            self.tally.seconds -= time.monotonic() - began  # the child's time is the child's

    @override
    def generate_child_contexts(self, record: dict[str, Any], context: Context | None) -> Iterator[Context | None]:
        # Never one child sync per parent record (N+1): the feed hands batches (see children.py).
        return iter(())
