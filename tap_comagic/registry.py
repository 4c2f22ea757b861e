"""Every stream of the tap, in catalog order: the reports, then the reference tables and summaries."""

from __future__ import annotations

from tap_comagic.base import ApiStream
from tap_comagic.streams import REFERENCE_STREAMS, REPORT_STREAMS, SOURCE_AND_DEAL_STREAMS

STREAMS: list[type[ApiStream]] = [*REPORT_STREAMS, *REFERENCE_STREAMS, *SOURCE_AND_DEAL_STREAMS]
STREAMS_BY_NAME: dict[str, type[ApiStream]] = {str(vars(s)["name"]): s for s in STREAMS}
