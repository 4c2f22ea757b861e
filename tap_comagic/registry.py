"""Every stream of the tap, in catalog order: the reports, then the reference tables and summaries.

Kept apart from both stream modules, which it imports, so that either of them imports on its own.
"""

from __future__ import annotations

from tap_comagic.reference_streams import REFERENCE_STREAMS
from tap_comagic.streams import REPORT_STREAMS, ReportStream

STREAMS: list[type[ReportStream]] = [*REPORT_STREAMS, *REFERENCE_STREAMS]
STREAMS_BY_NAME: dict[str, type[ReportStream]] = {str(vars(s)["name"]): s for s in STREAMS}
