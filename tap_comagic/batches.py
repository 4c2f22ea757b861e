"""BATCH messages (``batch_config``): the SDK's gzipped JSON Lines files of the very records the RECORD path
writes (``get_records`` then ``post_process``: types, time zones, ``customer_id``, key order), with the
state written so that it never covers a record that is in no file yet.

A STATE message may only follow the files of every record it covers. The SDK writes one after each file;
the tap's own, at each window's end, would come while the window's records may still wait in a file being
filled, and so would a child stream's, which carries its parent's bookmarks. In BATCH mode both wait for
the parent's next file (see :meth:`BatchFiles.writes_state`); a run that stops (the daily limit, a client
skipped) first writes the records read so far as a last file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from singer_sdk.batch import Batcher
from singer_sdk.streams import Stream
from typing_extensions import override

from tap_comagic.errors import StopRun

if TYPE_CHECKING:
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.helpers.types import Context


class BatchFiles(Stream):
    """The SDK's BATCH path, its files written before the state that covers them."""

    @override
    def get_batches(self, batch_config: BatchConfig, context: Context | None = None
                    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        stopped: list[StopRun] = []

        def records() -> Iterator[dict[str, Any]]:
            try:
                for record in self._sync_records(context, write_messages=False):
                    self.counted(record)
                    yield record
            except StopRun as stop:  # the records read so far go into a last file first
                stopped.append(stop)

        batcher = Batcher(tap_name=self.tap_name, stream_name=self.name, batch_config=batch_config)
        for manifest in batcher.get_batches(records=records()):
            yield batch_config.encoding, manifest
        if stopped:
            raise stopped[0]

    def counted(self, record: dict[str, Any]) -> None:
        """A record going into a file (the RECORD path counts its messages instead)."""

    @override
    def _write_state_message(self) -> None:
        if self.writes_state():
            super()._write_state_message()

    def writes_state(self) -> bool:
        """Whether this stream may write the state now: always with RECORD messages; with BATCH files only
        a stream without a parent (a child's state would carry its parent's bookmarks, whose records may
        still wait in the parent's unwritten file)."""
        return self.parent_stream_type is None or not self.config.get("batch_config")
