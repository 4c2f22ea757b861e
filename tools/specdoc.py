"""Read the report tables of the CoMagic spec (``../shared/spec/reports-api.flat.md``) and the
field lists of the public docs (``../shared/spec/public-docs-fields.md``).

The spec lives beside the project on developer machines and in CI, never in a user's
clone: tests that need it skip when :data:`SPEC_PATH` is absent.  Running this module
(``python -m tools.specdoc``) regenerates the project's own derived files from it:
``tap_comagic/schemas/<stream>.json`` and ``tap_comagic/sandbox/reports.json``: the spec's
fields plus the fields the public docs list and the spec lacks (the spec wins on a field both
list; the others are marked ``public_docs_only``).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = ROOT.parent / "shared" / "spec"
SPEC_PATH = SPEC_DIR / "reports-api.flat.md"
PUBLIC_PATH = SPEC_DIR / "public-docs-fields.md"
# The reports whose public field lists extend the spec's; the file's other sections are not ours.
PUBLIC_METHODS = ("get.communications_report", "get.calls_report", "get.call_legs_report", "get.goals_report",
                  "get.chats_report", "get.chat_messages_report", "get.offline_messages_report",
                  "get.visitor_sessions_report")
SKIP_REASON = f"the CoMagic spec is not beside the project ({SPEC_DIR}): it exists only on developer machines and in CI"

# Spellings the spec's tables get right and its JSON examples get wrong (see shared/spec/README.md).
EXAMPLE_ALIASES = {"tag_employee_full": "tag_employee_full_name", "scenarion_id": "scenario_id",
                   "scenarion_name": "scenario_name"}
# Number fields that hold money or ratings (may be fractional); every other number is an id, count or seconds.
MONEY_SUFFIXES = ("cost", "charge", "cost_per_minute", "fee", "services", "changes", "transaction_value",
                  "rating", "raiting")


@dataclass
class Field:
    name: str
    declared: str  # the spec's own type word: number, string, iso8601, enum, array, object, boolean, id
    allowed: str = ""
    filterable: bool = False
    sortable: bool = False
    default: bool = False
    children: list[Field] = field(default_factory=list)
    public: bool = False  # listed by the public docs only, not by the spec
    as_string: bool = False  # the docs say number and string at once: numbers are turned into strings
    description_hint: str = ""  # the row's description: says "seconds" where the type word does not

    @property
    def json_type(self) -> str:
        """The JSON type the tap and the simulator use (the spec's word, resolved)."""
        d, name = self.declared, self.name
        if d in ("array", "object", "boolean"):
            return d
        if "phone_number" in name:
            return "string"  # digit strings on the live API, whatever the table says
        if d in ("number", "id"):
            return "number" if name.endswith(MONEY_SUFFIXES) else "integer"
        if name == "duration" and d == "string" and "секунд" in self.allowed + self.description_hint:
            return "integer"
        if d == "iso8601" or (name.endswith("date_time") and "HH:MM:SS" in self.allowed.upper()):
            return "date" if self.allowed.strip().upper() == "YYYY-MM-DD" else "date-time"
        return "string"


@dataclass
class Report:
    method: str
    version: str
    status: str
    params: dict[str, str]  # request parameter -> declared type
    required: list[str]
    fields: list[Field]


def _cells(line: str) -> list[str]:
    return [c.strip().strip("`").strip() for c in line.split("|")]


def _example_item(block: str) -> dict[str, Any]:
    doc = json.loads(block)
    data = doc["result"].get("data")
    if isinstance(data, list) and data:
        return dict(data[0])
    return {}


def parse(text: str) -> dict[str, Report]:
    sections = re.split(r"\n(?=## )", text)
    reports: dict[str, Report] = {}
    for sec in sections:
        m = re.search(r"^Метод \| `([a-z_.]+)`", sec, re.M)
        if not m:
            continue
        method = m.group(1)
        found = re.search(r"^Версия API \| (\S+)", sec, re.M)
        version = found.group(1) if found else "v2"
        status = "deferred" if "ОТЛОЖЕН" in sec.splitlines()[0] else (
            "not implemented" if re.search(r"^Статус \| не реализован", sec, re.M) else "available")
        parts = re.split(r"\n### ", sec)
        params: dict[str, str] = {}
        required: list[str] = []
        table: list[str] = []
        example: dict[str, Any] = {}
        for part in parts:
            head, _, body = part.partition("\n")
            if head.startswith("Параметры запроса"):
                for line in body.splitlines():
                    c = _cells(line)
                    if len(c) >= 3 and re.fullmatch(r"[a-z_]+", c[0]):
                        params[c[0]] = c[1]
                        if c[2] == "да":
                            required.append(c[0])
            elif head.startswith("Параметры ответа"):
                table = body.splitlines()
            elif head.startswith("JSON структура ответа"):
                block = body.split("```json", 1)[1].split("```", 1)[0]
                example = _example_item(block)
        example = {EXAMPLE_ALIASES.get(k, k): v for k, v in example.items()}
        reports[method] = Report(method, version, status, params, required, _fields(table))
        _nest(reports[method], example)
    return reports


def _fields(lines: list[str]) -> list[Field]:
    """Rows in order; a line without '|' (a group heading) is kept as a row declared "heading"."""
    out: list[Field] = []
    header: list[str] = []
    for line in lines:
        if "|" not in line:
            if line.strip() and out:
                out.append(Field("", "heading"))
            continue
        c = _cells(line)
        if c[0] in ("Название", "") or set(c[0]) <= set(":-"):
            if c[0] == "Название":
                header = c
            continue
        if not re.fullmatch(r"[a-z_]+", c[0]):
            continue
        get = dict(zip(header, c, strict=False))  # rows may lack trailing cells
        out.append(Field(
            name=c[0], declared=c[1] or "string", allowed=get.get("Допустимые значения", ""),
            filterable=get.get("Фильтрация") == "да", sortable=get.get("Сортировка") == "да",
            default=get.get("Ответ по умолчанию") == "да", description_hint=get.get("Описание", "")))
    return out


def _nest(report: Report, example: dict[str, Any]) -> None:
    """Attach the rows that follow an array/object row to it, as its sub-fields.

    A sub-field is a row after the container, before the next heading, whose name the
    JSON example does not show at the top level.
    """
    top: list[Field] = []
    container: Field | None = None
    for f in report.fields:
        if f.declared == "heading":
            container = None
            continue
        if container is not None and f.name not in example:
            container.children.append(f)
            continue
        container = f if f.declared in ("array", "object") else None
        top.append(f)
    report.fields = top


def load() -> dict[str, Report]:
    return parse(SPEC_PATH.read_text(encoding="utf-8"))


_PUBLIC_ROW = re.compile(r"^- `([a-z_]+)`: (.+?)(?: \[([FSD]+)\])?(?: \(table says (\w+)\))?$")


def _public_type(text: str) -> tuple[str, list[Field]]:
    """A docs type word: ``number``, ``array``, ``array[{a:number, b:string}]``, ``object{a:enum}``."""
    m = re.fullmatch(r"(array|object)\[?\{(.*)\}\]?", text)
    if not m:
        return ("string" if text == "sting" else text), []  # "sting": the docs' typo
    children = []
    for part in m.group(2).split(","):
        name, _, kind = part.strip().partition(":")
        children.append(Field(name.strip(), _public_type(kind.strip())[0]))
    return m.group(1), children


def parse_public(text: str) -> dict[str, list[Field]]:
    """The public docs' fields of :data:`PUBLIC_METHODS`, in the docs' order (their JSON shapes: the
    lists counted there; the "table only" remarks are left out)."""
    out: dict[str, list[Field]] = {}
    for sec in re.split(r"\n(?=### )", text):
        m = re.match(r"### `([a-z_.]+)`", sec)
        if not m or m.group(1) not in PUBLIC_METHODS:
            continue
        fields: list[Field] = []
        for line in sec.splitlines():
            row = _PUBLIC_ROW.match(line)
            if not row:
                continue
            name, shape, flags, table = row.groups()
            declared, children = _public_type(shape)
            # the docs disagree with themselves (goals.ext_id): a string holds either answer
            either = {declared, table} == {"string", "number"}
            fields.append(Field(name, "string" if either else declared, filterable="F" in (flags or ""),
                                sortable="S" in (flags or ""), default="D" in (flags or ""),
                                children=children, public=True, as_string=either))
        out[m.group(1)] = fields
    return out


def load_merged() -> dict[str, Report]:
    """The spec's reports, each with the public docs' fields it lacks added after their neighbour in
    the docs' order (the spec wins on a field both list)."""
    reports = load()
    public = parse_public(PUBLIC_PATH.read_text(encoding="utf-8"))
    for method, extra in public.items():
        report = reports[method]
        merged = list(report.fields)
        index = {f.name: i for i, f in enumerate(merged)}
        anchor = -1
        for f in extra:
            if f.name in index:
                anchor = index[f.name]
                continue
            anchor += 1
            merged.insert(anchor, f)
            index = {g.name: i for i, g in enumerate(merged)}
        report.fields = merged
    return reports


def stream_name(method: str) -> str:
    return method.removeprefix("get.").removesuffix("_report")


# ---- derived files ---------------------------------------------------------------------

def _json_schema(f: Field) -> dict[str, Any]:
    t = f.json_type
    if t == "array":
        if f.children:
            items: dict[str, Any] = _object(f.children)
        elif f.name.endswith("_ids"):
            items = {"type": ["integer", "null"]}  # visitor_ids: ids
        else:
            items = {"type": ["string", "null"]}  # attributes, call_records, emails...: strings
        return {"type": ["array", "null"], "items": items}
    if t == "object":
        return _object(f.children)
    return scalar_schema(t)


def scalar_schema(json_type: str) -> dict[str, Any]:
    """A property of a scalar type; dates travel as strings with a format, as the tap reads them. Shared with
    tools/publicdocs.py so that both generators write dates alike."""
    if json_type in ("date-time", "date"):
        return {"type": ["string", "null"], "format": json_type}
    return {"type": [json_type, "null"]}


def _object(children: list[Field]) -> dict[str, Any]:
    return {"type": ["object", "null"], "properties": {c.name: _json_schema(c) for c in children}}


def schema_for(report: Report) -> dict[str, Any]:
    flags: dict[str, Any] = {
        "filterable": [f.name for f in report.fields if f.filterable],
        "sortable": [f.name for f in report.fields if f.sortable],
    }
    public = [f.name for f in report.fields if f.public]
    if public:
        flags["public_docs_only"] = public
    as_string = [f.name for f in report.fields if f.as_string]
    if as_string:
        flags["as_string"] = as_string
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {f.name: _json_schema(f) for f in report.fields},
        "x-comagic": flags,
    }


def _sandbox_field(f: Field) -> dict[str, Any]:
    d: dict[str, Any] = {"name": f.name, "type": f.json_type, "filterable": f.filterable,
                         "sortable": f.sortable, "default": f.default}
    if f.public:
        d["public"] = True
    if f.children:
        d["fields"] = [_sandbox_field(c) for c in f.children]
    return d


def write_derived() -> list[Path]:
    reports = load_merged()
    written: list[Path] = []
    sandbox: dict[str, Any] = {}
    for method, rep in reports.items():
        sandbox[method] = {"version": rep.version, "status": rep.status, "params": rep.params,
                           "required": rep.required, "fields": [_sandbox_field(f) for f in rep.fields]}
        if not method.startswith("get."):
            continue
        path = ROOT / "tap_comagic" / "schemas" / f"{stream_name(method)}.json"
        path.write_text(json.dumps(schema_for(rep), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    path = ROOT / "tap_comagic" / "sandbox" / "reports.json"
    path.write_text(json.dumps(sandbox, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(path)
    return written


if __name__ == "__main__":
    for p in write_derived():
        print(p.relative_to(ROOT))
    sys.exit(0)
