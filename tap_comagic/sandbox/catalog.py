"""The report catalogue the simulator serves, read from ``reports.json``.

``reports.json`` is generated from the spec by ``tools/specdoc.py``; this module only reads it and adds
what the spec states outside its field tables: the filter and sort lists of the two v3 methods
(``get.sales_report``, ``get.api_requests_report``), whose tables carry no F/S/D flags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).resolve().parent / "reports.json"
# The reference tables and summary reports, generated from the public docs by ``tools/publicdocs.py``.
REFERENCE_PATH = CATALOG_PATH.with_name("reference.json")

# Report name (the method without "get." and "_report") -> the field its date range applies to.
DATE_FIELD: dict[str, str] = {
    "calls": "start_time",
    "call_legs": "start_time",
    "financial_call_legs": "start_time",
    "communications": "date_time",
    "goals": "date_time",
    "chats": "date_time",
    "chat_messages": "date_time",
    "offline_messages": "date_time",
    "visitor_sessions": "date_time",
    "sales": "date_time",
    "api_requests": "date_time",
}

# The v3 methods' own filter sections ("Параметры критериев фильтрации") and sort sections of the spec.
V3_FILTERS: dict[str, dict[str, tuple[str, ...]]] = {
    "get.sales_report": {
        "id": ("eq", "ne"), "site_id": ("eq", "ne"), "site_domain_name": ("eq", "ne", "co"),
        "campaign_id": ("eq", "ne"), "campaign_name": ("eq", "ne", "co"), "person_id": ("eq", "ne"),
        "visitor_id": ("eq", "ne"), "visitor_type": ("eq", "ne"), "visitor_city": ("eq", "ne", "co"),
        "visitor_country": ("eq", "ne", "co"), "visitor_region": ("eq", "ne", "co"),
        "visitor_first_campaign_id": ("eq", "ne"), "visitor_first_campaign_name": ("eq", "ne", "co"),
        "transaction_value": ("eq", "ne", "le", "lt", "gt", "ge"),
        "days_before_sale": ("eq", "ne", "le", "lt", "gt", "ge"),
        "visits_count": ("eq", "ne", "le", "lt", "gt", "ge"),
        "communication_type": ("eq", "ne"), "communication_id": ("eq", "ne"),
    },
    "get.api_requests_report": {
        "call_session_id": ("eq", "ne"), "type": ("eq", "ne"), "request_id": ("eq", "ne"),
        "ip_address": ("eq", "ne", "sw", "ew", "co"), "result": ("eq", "ne"), "method": ("eq", "ne", "co"),
        "error_mnemocode": ("eq", "ne"), "external_id": ("eq", "ne"),
    },
}
V3_SORTS: dict[str, tuple[str, ...]] = {
    "get.sales_report": ("site_id", "campaign_id", "person_id", "days_before_sale", "communication_type",
                         "visits_count", "transaction_value", "date_time"),
    "get.api_requests_report": ("date_time", "type", "ip_address", "result", "method", "error_mnemocode",
                                "external_id", "method_type", "component"),
}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # integer | number | string | boolean | date-time | date | array | object
    filterable: bool
    sortable: bool
    default: bool
    children: tuple[FieldSpec, ...] = ()
    public: bool = False  # listed by the public docs only: unknown to an account that knows the spec's fields


@dataclass(frozen=True)
class MethodSpec:
    method: str
    version: str
    status: str
    params: dict[str, str]
    required: tuple[str, ...]
    fields: tuple[FieldSpec, ...]

    @property
    def report(self) -> str:
        return self.method.removeprefix("get.").removesuffix("_report")

    @property
    def is_v3(self) -> bool:
        return self.version == "v3"

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def by_name(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    @cached_property
    def public_fields(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields if f.public)

    @property
    def default_fields(self) -> tuple[str, ...]:
        """The "returned by default" fields; every field when the spec flags none (financial summary, v3)."""
        flagged = tuple(f.name for f in self.fields if f.default)
        return flagged or self.field_names


def _field(raw: dict[str, Any]) -> FieldSpec:
    return FieldSpec(
        name=str(raw["name"]), type=str(raw["type"]), filterable=bool(raw.get("filterable")),
        sortable=bool(raw.get("sortable")), default=bool(raw.get("default")),
        children=tuple(_field(c) for c in raw.get("fields") or ()), public=bool(raw.get("public")),
    )


def load_catalog(path: Path = CATALOG_PATH) -> dict[str, MethodSpec]:
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, MethodSpec] = {}
    for method, m in raw.items():
        out[method] = MethodSpec(
            method=method, version=str(m["version"]), status=str(m["status"]),
            params={str(k): str(v) for k, v in m["params"].items()},
            required=tuple(str(r) for r in m["required"]),
            fields=tuple(_field(f) for f in m.get("fields") or ()),
        )
    return out


CATALOG: dict[str, MethodSpec] = {**load_catalog(), **load_catalog(REFERENCE_PATH)}
