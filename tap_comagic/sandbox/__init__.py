"""A local simulator of the CoMagic Data API v2.0 (JSON-RPC over HTTP), strict like the real one.

It imports nothing from the tap. Data is deterministic from ``SandboxConfig.seed`` and generated lazily
per day; faults come on demand through :class:`Faults`; :meth:`Sandbox.truth` is the ground truth.

Decisions where the spec is silent or inconsistent:

- ``date_till`` is inclusive unless ``SandboxConfig.till_exclusive``; ``truth()`` is always inclusive.
- Without ``fields`` only the spec's "returned by default" fields come back; a report whose table flags
  none (financial summary, the v3 reports) returns all its fields.
- Default order: the report's date field, then its key (id; for call legs id; for chat messages chat id).
  Sorting is stable: ties keep that order. Nulls sort last ascending, first descending (as PostgreSQL).
  ``SandboxConfig.reorder_ties`` gives tied rows a new order on each request, ``unsorted_any_order`` any
  order to a request without ``sort``, as a database answering LIMIT/OFFSET may.
- Filter comparisons with a null field are false (SQL). Array fields take ``overlap``/``not_overlap``/
  ``is_null``/``is_not_null`` only; objects in an array match when any of their values is listed.
- An unknown field in ``fields``, ``filter`` or ``sort`` is ``unexpected_parameters`` (``data.field`` names
  it); a known field that may not be filtered or sorted is ``filter_prohibited``/``sort_prohibited``.
- ``limit_exceeded`` carries ``error.data.metadata.limits`` with the seconds until the reset.
- v3 reports (sales, api_requests) require ``date_from`` and ``date_till`` (operator ``eq``) at the top
  level of ``filter`` (a leaf, or an ``and`` tree), accept dates with or without the time, filter with
  ``eq ne lt le gt ge co sw ew`` on the fields their spec section lists; sales answers with ``meta_data``.
- ``set.visitor_communication`` takes the type as ``cummunication_type`` (the spec's table) or
  ``communication_type`` (its example).
"""

from __future__ import annotations

from .config import DEFAULT_API_KEY, DEFAULT_LOGIN, DEFAULT_PASSWORD, Faults, SandboxConfig
from .server import Clock, LoggedRequest, Sandbox

__all__ = ["DEFAULT_API_KEY", "DEFAULT_LOGIN", "DEFAULT_PASSWORD", "Clock", "Faults", "LoggedRequest", "Sandbox",
           "SandboxConfig"]
