"""Derive the schemas of the reference and summary streams from the public CoMagic docs.

The public docs (the ``comagic/comagic.github.io`` site, pages ``data_api/<section>/<method>/index.html``)
describe each method twice: a table of fields (type, filterable, sortable, returned by default) and a
JSON example of the answer, which alone shows how objects nest. This module reads both from a local
checkout and writes the project's own derived files (never the docs' text):

- ``tap_comagic/schemas/<stream>.json`` for every stream of :data:`METHODS`;
- ``tap_comagic/sandbox/reference.json``, the simulator's catalogue of these methods.

Run it again when the docs change::

    python -m tools.publicdocs <checkout of comagic/comagic.github.io>

(any directory holding ``data_api/<section>/<method>/index.html``). From a bare mirror of the docs
repository, where ``git archive`` may fail on a missing object, extract the pages one by one::

    for f in $(git --git-dir=MIRROR ls-tree -r --name-only HEAD data_api | grep index.html); do
        mkdir -p "OUT/$(dirname "$f")" && git --git-dir=MIRROR show "HEAD:$f" > "OUT/$f"; done
"""

from __future__ import annotations

import html
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.specdoc import scalar_schema

ROOT = Path(__file__).resolve().parent.parent

# stream -> (docs page, API method). The order is the order of the tap's stream list.
METHODS: dict[str, tuple[str, str]] = {
    "account": ("account/get_account", "get.account"),
    "sites": ("site/get_sites", "get.sites"),
    "site_blocks": ("site/get_site_blocks", "get.site_blocks"),
    "campaigns": ("campaign/get_campaigns", "get.campaigns"),
    "virtual_numbers": ("vn/get_virtual_numbers", "get.virtual_numbers"),
    "employees": ("employee/get_employees", "get.employees"),
    "employee_groups": ("employee/get_group_employees", "get.group_employees"),
    "tags": ("tag/get_tags", "get.tags"),
    "statuses": ("employee/get_statuses", "get.statuses"),
    "scenarios": ("scenario/get_scenarios", "get.scenarios"),
    "campaign_daily_stat": ("report/get_campaign_daily_stat", "get.campaign_daily_stat"),
    "ct_summary": ("report/get_ct_summary_report", "get.ct_summary_report"),
    "ct_ac_summary": ("report/get_ct_ac_summary_report", "get.ct_ac_summary_report"),
    "employee_stat": ("employee/get_employee_stat", "get.employee_stat"),
    # the source model (sources, their channels and groups, costs entered by hand)
    "sources": ("source/source/get_sources", "get.sources"),
    "source_channels": ("source/channel/get_sources_channels", "get.sources_channels"),
    "source_groups": ("source/group/get_sources_groups", "get.sources_groups"),
    "source_costs": ("source/source/get_source_costs", "get.source_costs"),
    # names of the ids the reports and the other tables hold
    "events": ("event/get_events", "get.events"),
    "employee_positions": ("employee/get_employee_positions", "get.employee_positions"),
    "schedules": ("schedule/get_schedules", "get.schedules"),
    "offline_message_user_fields": ("communication/get_offline_message_user_fields",
                                    "get.offline_message_user_fields"),
    "deal_user_fields": ("ca_deal/get_deal_user_fields", "get.deal_user_fields"),
    "lead_user_fields": ("ca_lead/get_lead_user_fields", "get.lead_user_fields"),
    "chat_channels": ("report/get_chat_channels_report", "get.chat_channels"),
    # deals and leads: funnels, stages and every stage each deal passed through
    "sales_funnels": ("ca_sales_funnel/get_sales_funnel", "get.sales_funnel"),
    "lead_funnel_stages": ("ca_lead/get_lead_funnel_stages", "get.lead_funnel_stages"),
    "deals_history": ("ca_deal/get_deals_history", "get.deals_history"),
}
# Columns the tap adds: to summaries that the API returns as totals over the requested window, the day
# read (one day per request), and for a per-site report the site asked for; to campaign_daily_stat a
# key that is never null (its ad group, keyword and ad ids are null outside ad systems).
ADDED: dict[str, list[tuple[str, str]]] = {
    "campaign_daily_stat": [("ad_key", "string")],
    "ct_summary": [("date", "date")],
    "ct_ac_summary": [("date", "date"), ("site_id", "integer")],
    "employee_stat": [("date", "date")],
    # costs are a total over the requested range, read one day per request; a cost entered for no site
    # has a null site_id, which a key may not hold: site_key is the site's id, 0 for none
    "source_costs": [("date", "date"), ("site_key", "integer")],
}
# Spellings the examples get wrong and the tables right.
EXAMPLE_ALIASES = {"campain_id": "campaign_id", "tag_employee_full": "tag_employee_full_name"}
METHOD_ALIASES = {"employee_groups": {"phone_number": "phone_numbers"},
                  # the example of get.lead_funnel_stages calls `sort` what its table (and the API) calls `order`
                  "lead_funnel_stages": {"sort": "order"}}
# Typos that make an example invalid JSON: (wrong, right). get.sources closes static_parameters twice.
EXAMPLE_FIXES: dict[str, tuple[str, str]] = {"sources": ("]]\n", "]\n")}
# Rows the example lacks that still belong to the container they follow (see _nest): the dynamic call
# tracking's share of visitors who see its numbers, a setting of that tracking as its description says.
NESTED_BEYOND_EXAMPLE: dict[str, dict[str, str]] = {"campaigns": {"coverage_visitors": "dynamic_call_tracking"}}
# Numbers that hold money, ratios or ratings (fractional); any other number is an id, a count or seconds.
FRACTIONAL = ("cost", "costs", "cost_sum", "charge", "budget", "ratio", "rating", "raiting", "coverage_visitors",
              "revenue")
# Money the docs declare string (campaign_daily_stat.cost_sum): a number, as every other amount.
MONEY_STRINGS = ("cost_sum",)
# Arrays of scalars whose example shows no item: the word for the items, from the allowed values the
# table lists (get.schedules' days: day numbers, counts of days in a cycle).
ARRAY_ITEMS: dict[str, dict[str, str]] = {"schedules": {"days": "number"}}
# Parameters every method takes whatever its table lists (the token; the client's user for agents).
COMMON_PARAMS = {"access_token": "string"}


@dataclass
class Row:
    name: str
    declared: str
    allowed: str = ""
    filterable: bool = False
    sortable: bool = False
    default: bool = False
    children: list[Row] = field(default_factory=list)
    items: str = ""  # an array of scalars: the example's word for its items
    free_form: str = ""  # an object with free keys ({"string": "number"}): the word for its values

    @property
    def json_type(self) -> str:
        return json_type(self.name, self.declared, self.allowed)


@dataclass
class Method:
    stream: str
    method: str
    params: dict[str, str]
    required: list[str]
    fields: list[Row]


def json_type(name: str, declared: str, allowed: str = "") -> str:
    """The JSON type the tap and the simulator use, by the same rules as the report schemas."""
    d = declared.lower().replace("sting", "string")
    if d in ("array", "object", "boolean"):
        return d
    if "phone_number" in name and not name.endswith("_id"):
        return "string"  # digit strings on the live API, whatever the docs say
    if d in ("number", "id", "integer"):
        return "number" if name.endswith(FRACTIONAL) else "integer"
    if d == "string" and name in MONEY_STRINGS:
        return "number"
    if d == "iso8601":
        return "date" if allowed.strip().upper() == "YYYY-MM-DD" else "date-time"
    return "string"


# ---- reading one page ------------------------------------------------------------------------------

def _text(cell: str) -> str:
    cell = re.sub(r"<pre>.*?</pre>", " ", cell, flags=re.S)
    cell = re.sub(r"<li>", ", ", cell)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split()).strip(", ")


def _tables(page: str) -> list[list[list[str]]]:
    """Rows of cell texts of every table of the article. A row is what ends with ``</tr>``: a page may lose
    a row's opening ``<tr>`` (get.sources' static_parameters), never its cells."""
    return [[cells for chunk in re.split(r"</tr>", m.group(1))
             if (cells := [_text(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", chunk, re.S)])]
            for m in re.finditer(r"<table>(.*?)</table>", page, re.S)]


def _example(page: str, fix: tuple[str, str] | None = None) -> dict[str, Any]:
    """The first record of the answer's JSON example: name -> type word, object or [object]."""
    head = re.search(r"<h[1-6][^>]*>JSON структура ответа</h[1-6]>", page)
    if head is None:
        return {}
    code = re.search(r"<code[^>]*>(.*?)</code>", page[head.end():], re.S)
    assert code is not None
    text = html.unescape(code.group(1))
    doc = json.loads(text.replace(*fix) if fix else text)
    result = doc["result"]
    data = result.get("data") if isinstance(result, dict) else result  # one page puts the list at result
    return dict(data[0]) if isinstance(data, list) and data else {}


def _flag(cell: str) -> bool:
    return cell.strip().lower() == "да"


def _rows(table: list[list[str]]) -> list[Row]:
    header: list[str] = []
    out: list[Row] = []
    for cells in table:
        if cells and cells[0].startswith("Назван"):
            header = [c.lower() for c in cells]
            continue
        if len(cells) < 2 or not re.fullmatch(r"[a-z_0-9]+", cells[0]):
            continue  # a group heading (one cell across the table)
        get = dict(zip(header, cells, strict=False))
        out.append(Row(name=cells[0], declared=cells[1] or "string", allowed=get.get("допустимые значения", ""),
                       filterable=_flag(get.get("фильтрация", "")), sortable=_flag(get.get("сортировка", "")),
                       default=_flag(get.get("ответ по умолчанию", ""))))
    return out


def _shape_names(shape: Any) -> set[str]:
    if isinstance(shape, list):
        return _shape_names(shape[0]) if shape and isinstance(shape[0], dict) else set()
    if isinstance(shape, dict):
        return set(shape)
    return set()


def _everywhere(shape: Any) -> set[str]:
    names = set(_shape_names(shape))
    inner = shape[0] if isinstance(shape, list) and shape else shape
    if isinstance(inner, dict):
        for v in inner.values():
            names |= _everywhere(v)
    return names


def _child_shape(shape: Any, name: str) -> Any:
    inner = shape[0] if isinstance(shape, list) and shape else shape
    if not isinstance(inner, dict):
        return None
    for k, v in inner.items():
        if k == name:
            return v
    return None


def _word(value: Any) -> str:
    return value if isinstance(value, str) else "array" if isinstance(value, list) else "object"


def _nest(rows: list[Row], example: dict[str, Any], kept: dict[str, str] | None = None,
          items: dict[str, str] | None = None) -> list[Row]:
    """Put each table row inside the object or array the example shows it in.

    Rows come in the example's nesting order: a row the innermost open container's example holds goes
    in it; else the containers close down to the one that holds it, or the earlier container that does
    opens again. A row the example places nowhere yet stays where it stands. A row the example lacks
    entirely is a field of the record, not of the open container: the example lists each container's
    members, while the tables put such record fields right after a container (sites.state after
    widget_link, scenarios.operations after campaigns) or even among its rows (campaigns.static_utm_*,
    which appear only when named in ``fields``, a list of the record's fields). ``kept`` names the few
    rows (row -> container) that do belong to the container they follow. Fields only the example shows
    are added from it.
    """
    root = Row("", "object")
    everywhere = _everywhere(example)
    shapes: dict[int, Any] = {id(root): example}
    stack: list[Row] = [root]
    for row in rows:
        if row.name not in everywhere and len(stack) > 1 and (kept or {}).get(row.name) != stack[-1].name:
            stack = [root]
        elif row.name in everywhere and not _takes(stack[-1], row.name, shapes):
            # close containers until one holds it, or reopen the earlier one that does; else it stays
            holders = [i for i, node in enumerate(stack) if _takes(node, row.name, shapes)]
            stack = stack[:holders[-1] + 1] if holders else _path_to(root, row.name, shapes) or stack
        parent = stack[-1]
        parent.children.append(row)
        sub = _child_shape(shapes[id(parent)], row.name)
        if row.json_type in ("array", "object") and _shape_names(sub):
            if isinstance(sub, dict) and set(sub) == {"string"}:
                row.free_form = str(sub["string"])  # a map: keys are data, not names
                continue
            shapes[id(row)] = sub
            stack.append(row)
        elif row.json_type == "array" and isinstance(sub, list) and sub and isinstance(sub[0], str):
            row.items = sub[0]
        elif row.json_type == "array" and row.name in (items or {}):
            row.items = (items or {})[row.name]
    _add_example_only(root, example)
    _drop_repeats(root)
    return root.children


def _drop_repeats(node: Row) -> None:
    """A row the table lists twice in one object (get.deals_history's source) is one field."""
    first: dict[str, Row] = {}
    for c in node.children:
        first.setdefault(c.name, c)
    node.children = list(first.values())
    for child in node.children:
        _drop_repeats(child)


def _takes(node: Row, name: str, shapes: dict[int, Any]) -> bool:
    """The container's example holds the name, and no row has taken that place yet."""
    return name in _shape_names(shapes[id(node)]) and all(c.name != name for c in node.children)


def _path_to(node: Row, name: str, shapes: dict[int, Any]) -> list[Row] | None:
    """The open path from ``node`` to the container whose example holds ``name``, if built yet."""
    if _takes(node, name, shapes):
        return [node]
    for child in node.children:
        if id(child) in shapes:
            path = _path_to(child, name, shapes)
            if path is not None:
                return [node, *path]
    return None


def _rename(shape: Any, aliases: dict[str, str]) -> Any:
    if isinstance(shape, list):
        return [_rename(v, aliases) for v in shape]
    if isinstance(shape, dict):
        return {aliases.get(k, k): _rename(v, aliases) for k, v in shape.items()}
    return shape


def _add_example_only(node: Row, shape: Any) -> None:
    inner = shape[0] if isinstance(shape, list) and shape else shape
    if not isinstance(inner, dict):
        return
    known = {c.name: c for c in node.children}
    for key, value in inner.items():
        child = known.get(key)
        if child is None:
            child = Row(key, _word(value))
            if isinstance(value, list) and value and isinstance(value[0], str):
                child.items = value[0]
            node.children.append(child)
        if isinstance(value, dict) and set(value) == {"string"}:
            child.free_form = str(value["string"])
        elif isinstance(value, (dict, list)):
            _add_example_only(child, value)


def read_method(checkout: Path, stream: str) -> Method:
    page_path, method = METHODS[stream]
    page = (checkout / "data_api" / page_path / "index.html").read_text(encoding="utf-8")
    page = page[page.find("<article"):]
    tables = _tables(page)
    about = {r[0]: r[1] for rows in tables[:1] for r in rows if len(r) >= 2}
    params: dict[str, str] = dict(COMMON_PARAMS)
    required: list[str] = ["access_token"]
    fields: list[Row] = []
    for rows in tables:
        header = [c.lower() for c in rows[0]] if rows else []
        if "обязательный" in header:  # the request's parameters
            for cells in rows[1:]:
                get = dict(zip(header, cells, strict=False))
                if re.fullmatch(r"[a-z_]+", cells[0]):
                    params[cells[0]] = cells[1]
                    if _flag(get.get("обязательный", "")) and cells[0] not in required:
                        required.append(cells[0])
        elif "фильтрация" in header:  # the answer's fields
            fields = _rows(rows)
    # "Партнёр" (partner) is the docs' other word for an agent (get.schedules lists user_id beside it)
    agents = any(w in about.get("Кому доступен", "Агент") for w in ("Агент", "Партнёр"))
    if agents:
        params.setdefault("user_id", "number")
    if "limit" in params:  # a listing method: the common paging, filter, sort and fields parameters
        params.update({k: v for k, v in (("offset", "number"), ("filter", "object"), ("fields", "array"),
                                         ("sort", "array")) if k not in params})
    example = _rename(_example(page, EXAMPLE_FIXES.get(stream)), {**EXAMPLE_ALIASES, **METHOD_ALIASES.get(stream, {})})
    return Method(stream, method, params, required,
                  _nest(fields, example, NESTED_BEYOND_EXAMPLE.get(stream), ARRAY_ITEMS.get(stream)))


# ---- derived files ---------------------------------------------------------------------------------

def _schema(row: Row) -> dict[str, Any]:
    t = row.json_type
    if t == "array":
        if row.children:
            return {"type": ["array", "null"], "items": _object(row.children)}
        word = json_type(row.name, row.items) if row.items and row.items != "array" else "string"
        return {"type": ["array", "null"], "items": {"type": [word, "null"]}}
    if t == "object":
        if row.free_form:
            value = json_type(row.name + "_value", row.free_form)
            return {"type": ["object", "null"], "additionalProperties": {"type": [value, "null"]}}
        return _object(row.children)
    return scalar_schema(t)


def _object(children: list[Row]) -> dict[str, Any]:
    return {"type": ["object", "null"], "properties": {c.name: _schema(c) for c in children}}


def schema_for(m: Method) -> dict[str, Any]:
    props = {f.name: _schema(f) for f in m.fields}
    for name, kind in ADDED.get(m.stream, []):
        props[name] = scalar_schema(kind)
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": props,
        "x-comagic": {
            "method": m.method,
            "params": sorted(m.params),
            "filterable": [f.name for f in m.fields if f.filterable],
            "sortable": [f.name for f in m.fields if f.sortable],
            "added": [name for name, _ in ADDED.get(m.stream, [])],
        },
    }


def _sandbox_field(row: Row) -> dict[str, Any]:
    d: dict[str, Any] = {"name": row.name, "type": row.json_type, "filterable": row.filterable,
                         "sortable": row.sortable, "default": row.default}
    if row.children:
        d["fields"] = [_sandbox_field(c) for c in row.children]
    return d


def write_derived(checkout: Path) -> list[Path]:
    written: list[Path] = []
    catalogue: dict[str, Any] = {}
    for stream in METHODS:
        m = read_method(checkout, stream)
        catalogue[m.method] = {"version": "v2", "status": "available", "params": m.params,
                               "required": m.required, "fields": [_sandbox_field(f) for f in m.fields]}
        path = ROOT / "tap_comagic" / "schemas" / f"{stream}.json"
        path.write_text(json.dumps(schema_for(m), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    path = ROOT / "tap_comagic" / "sandbox" / "reference.json"
    path.write_text(json.dumps(catalogue, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0)
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tools.publicdocs <checkout of comagic/comagic.github.io>")
    if not (Path(sys.argv[1]) / "data_api").is_dir():
        sys.exit(f"{sys.argv[1]}: no data_api/ directory here; give a checkout of comagic/comagic.github.io")
    for p in write_derived(Path(sys.argv[1])):
        print(p.relative_to(ROOT))
