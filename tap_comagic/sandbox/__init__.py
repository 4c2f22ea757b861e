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
- The reference methods (``get.sites``, ``get.campaigns``, ``get.employees``...) and the summary reports
  (``get.campaign_daily_stat``, ``get.ct_summary_report``, ``get.ct_ac_summary_report``,
  ``get.employee_stat``) follow ``reference.json`` (from the public docs) and ``reference.py``; the reports
  draw their ids from that reference data. ``SandboxConfig.call_center=False`` disables
  ``get.employee_stat`` (``method_component_disabled``).
- The source model, goal definitions, positions, schedules, custom fields, chat channels, funnels and the
  deals' stage history (``get.sources``... ``get.source_costs``, ``get.events``, ``get.deals_history``)
  come from ``attribution.py``: every id the reports hold is a row there, deals move through their stages
  over the data period. ``SandboxConfig.call_tracking_3=False`` disables the source model's methods.
- ``set.visitor_communication`` takes the type as ``cummunication_type`` (the spec's table) or
  ``communication_type`` (its example).

An agency (partner) is simulated by ``agency.py`` when ``SandboxConfig.customers`` lists clients
(``agency_demo()`` is a ready one, ``--agency`` on the command line): a token of ``agent_api_keys`` or a
login of ``agent_users`` is the agent. ``get.customers`` lists its clients but the archived ones,
``get.customer_users`` their users (filter ``customer_id``); a non-agent token gets ``forbidden`` there.
Every client method the agent calls needs ``user_id`` (one of those users; the v3 reports and
``set.visitor_communication`` take ``customer_id`` instead) and is answered from that client's own account
(``CustomerConfig.account``: data, time zone, components, minute/day limits; ``get.account`` gives the
client id as ``app_id``), after the client's flags: ``ip_not_whitelisted`` (agent calls only), then
``account_inactive`` (also archived clients), then ``forbidden`` (the user's ``forbidden_methods``).
A client's own API key reads its account without ``user_id``. Decisions where the docs are silent: a
user_id of no client of the agent is ``invalid_parameter_value``; ``get.account`` from an agent needs a
``user_id`` like every client method; the agent's own calls count on the configured account's limits.
``truth``, ``add_late_records`` and ``change_old_records`` take ``customer_id``; the request log names it.
"""

from __future__ import annotations

from .agency import CustomerConfig, CustomerUser, agency_demo
from .config import DEFAULT_API_KEY, DEFAULT_LOGIN, DEFAULT_PASSWORD, Faults, SandboxConfig
from .server import Clock, LoggedRequest, Sandbox

__all__ = ["DEFAULT_API_KEY", "DEFAULT_LOGIN", "DEFAULT_PASSWORD", "Clock", "CustomerConfig", "CustomerUser", "Faults",
           "LoggedRequest", "Sandbox", "SandboxConfig", "agency_demo"]
