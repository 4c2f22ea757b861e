"""BATCH messages (``batch_config``): the SDK's gzipped JSON Lines files of the very records the RECORD path
writes (``get_records`` then ``post_process``: types, time zones, ``customer_id``, key order), with the
state written so that it never covers a record that is in no file yet.

JSON Lines files are written by :class:`JsonLinesFiles`, a batcher of the SDK's kind (``BaseBatcher``) that
encodes each record as it comes with the RECORD path's msgspec encoder and compresses at level 3. The
SDK's own (simplejson, gzip level 9, each file's records first held in a list) took five times the CPU
of ours and held a decoded page's worth of records (100 MB at 10,000 calls); its files and ours read
alike. Other formats (parquet) go to the SDK's batcher.

A STATE message may only follow the files of every record it covers. The SDK writes one after each file;
the tap's own, at each window's end, would come while the window's records may still wait in a file being
filled, and so would a child stream's, which carries its parent's bookmarks. In BATCH mode both wait for
the parent's next file (see :meth:`BatchFiles.writes_state`); a run that stops (the daily limit, a client
skipped) first writes the records read so far as a last file.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from singer_sdk.batch import BaseBatcher, Batcher
from singer_sdk.streams import Stream
from typing_extensions import override

from tap_comagic.errors import StopRun
from tap_comagic.output import CHUNK, NEWLINE, record_encoder

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

        kind = JsonLinesFiles if batch_config.encoding.format == "jsonl" else Batcher
        batcher = kind(tap_name=self.tap_name, stream_name=self.name, batch_config=batch_config)
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


COMPRESS_LEVEL = 3  # a third of level 9's size again costs six times the CPU (measured on `calls`)


class JsonLinesFiles(BaseBatcher):
    """Files of ``batch_size`` records each, one JSON object a line, gzipped when the encoding says so."""

    @override
    def get_batches(self, records: Iterator[dict[str, Any]]) -> Iterator[list[str]]:
        storage = self.batch_config.storage
        gzipped = self.batch_config.encoding.compression == "gzip"
        name = f"{storage.prefix or ''}{self.tap_name}--{self.stream_name}-{uuid.uuid4()}"
        encode = record_encoder()
        size = max(1, self.batch_config.batch_size)
        rows = iter(records)
        for number in itertools.count(1):
            first = next(rows, None)
            if first is None:
                return
            filename = f"{name}-{number}.json" + (".gz" if gzipped else "")
            # Compressed in memory, then written at once: a file left open while the records come would be
            # lost, since a child stream writes its own files meanwhile, and the SDK's storage commits and
            # ends one shared fsspec transaction per file written.
            data = io.BytesIO()
            with (gzip.GzipFile(fileobj=data, mode="wb", compresslevel=COMPRESS_LEVEL) if gzipped
                  else contextlib.nullcontext(data)) as out:
                line = bytearray()
                for record in itertools.chain([first], itertools.islice(rows, size - 1)):
                    encode(record, line, -1)
                    line.append(NEWLINE)
                    if len(line) >= CHUNK:
                        out.write(line)
                        line.clear()
                out.write(line)
            with storage.open(filename, "wb") as file:
                file.write(data.getbuffer())
            yield [storage.get_url(filename)]
