"""Validation and execution of report requests: parameters, fields, filter, sort, date windows, paging."""

from __future__ import annotations

import itertools
import random
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from .catalog import DATE_FIELD, V3_FILTERS, V3_SORTS, FieldSpec, MethodSpec
from .data import DAY, SALE_LOOKBACK_DAYS, TIMED, Bundle, Record, World, dumps
from .errors import ApiError
from .reference import METHODS as REFERENCE_METHODS
from .reference import rows as reference_rows

MAX_LIMIT = 10_000
MAX_OFFSET = 100_000
CHAT_MESSAGES_MAX_DAYS = 30
DT_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
V2_OPERATORS = frozenset(("=", "!=", "<", ">", "<=", ">=", "in", "not_in", "like", "ilike", "not_like",
                          "not_ilike", "is_null", "is_not_null", "overlap", "not_overlap"))
V3_OPERATORS = frozenset(("eq", "ne", "lt", "le", "gt", "ge", "co", "sw", "ew"))
V3_ALIASES = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
# Parameters the live API accepts beyond the spec's tables (api-facts.md, "Newer than the spec").
EXTRA_PARAMS: dict[str, dict[str, str]] = {
    "get.calls_report": {"include_ongoing_calls": "boolean"},
    "get.chat_messages_report": {"chat_ids": "array", "date_from": "iso8601", "date_till": "iso8601"},
}

COMMON_PARAMS = ("access_token", "user_id", "limit", "offset", "filter", "fields", "field", "sort", "date_from",
                 "date_till")

Predicate = Callable[[Record], bool]
Getter = Callable[[Record], Any]


@dataclass
class Query:
    spec: MethodSpec
    names: tuple[str, ...]
    limit: int
    offset: int
    date_from: str | None = None  # normalised "YYYY-MM-DD hh:mm:ss"
    date_till: str | None = None
    exclusive: bool = False
    predicate: Predicate | None = None
    sort: list[tuple[Getter, bool]] = field(default_factory=list)
    default_sort: bool = True  # no sort, or ascending on the date field only
    chat_ids: list[int] | None = None
    visitor_id: int | None = None
    year_month: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # a method's own parameters (site_id...)


# ---- parameter checks ---------------------------------------------------------------------------------
def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_type(name: str, kind: str, v: Any) -> None:
    ok = {
        "number": is_int(v), "string": isinstance(v, str), "array": isinstance(v, list),
        "object": isinstance(v, dict), "iso8601": isinstance(v, str), "boolean": isinstance(v, bool),
    }.get(kind, True)
    if not ok:
        raise ApiError("data_type_error", field=name, value=v, message=f"{name} must be of type {kind}")


def parse_dt(name: str, v: str, allow_date: bool = False, end_of_day: bool = False) -> datetime:
    text = v
    if allow_date and DATE_RE.fullmatch(v):
        text = v + (" 23:59:59" if end_of_day else " 00:00:00")
    if not DT_RE.fullmatch(text):
        raise ApiError("invalid_parameter_value", field=name, value=v,
                       message=f"{name} must be formatted YYYY-MM-DD hh:mm:ss")
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ApiError("invalid_parameter_value", field=name, value=v, message=f"{name} is not a valid date") from None


def add_months(d: datetime, n: int) -> datetime:
    m = d.month - 1 + n
    y, m = d.year + m // 12, m % 12 + 1
    last = (date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1)).day
    return d.replace(year=y, month=m, day=min(d.day, last))


def check_range(dfrom: datetime, dtill: datetime, max_days: int | None) -> None:
    if dfrom > dtill:
        raise ApiError("invalid_parameter_value", field="date_till", value=str(dtill),
                       message="date_till is earlier than date_from")
    too_long = (dtill - dfrom > timedelta(days=max_days)) if max_days else dtill > add_months(dfrom, 3)
    if too_long:
        raise ApiError("date_interval_limit_reached", field="date_till", value=str(dtill),
                       message=f"the date range is longer than {f'{max_days} days' if max_days else '3 months'}")


# ---- fields, filter, sort --------------------------------------------------------------------------------
def getters(spec: MethodSpec, unknown: frozenset[str] = frozenset()) -> dict[str, tuple[FieldSpec, Getter]]:
    """Field name -> (spec, getter). v3 reports also expose the sub-fields of their objects by plain name."""
    out: dict[str, tuple[FieldSpec, Getter]] = {}
    for f in spec.fields:
        if f.name not in unknown:
            out[f.name] = (f, _get(f.name))
    if spec.is_v3:
        for f in spec.fields:
            if f.type == "object":
                for c in f.children:
                    out.setdefault(c.name, (c, _get2(f.name, c.name)))
    return out


def _get(name: str) -> Getter:
    return lambda r: r[name]


def _get2(outer: str, inner: str) -> Getter:
    return lambda r: r[outer][inner]


def check_value(fs: FieldSpec, v: Any, where: str) -> None:
    t = fs.type
    ok = {
        "integer": is_int(v), "number": is_int(v) or isinstance(v, float),
        "boolean": isinstance(v, bool), "string": isinstance(v, str),
        "date-time": isinstance(v, str), "date": isinstance(v, str),
    }.get(t, True)
    if not ok:
        raise ApiError("data_type_error", field=where, value=v, message=f"{fs.name} takes values of type {t}")
    if t == "date-time" and not DT_RE.fullmatch(v):
        raise ApiError("invalid_parameter_value", field=where, value=v, message="expected YYYY-MM-DD hh:mm:ss")
    if t == "date" and not DATE_RE.fullmatch(v):
        raise ApiError("invalid_parameter_value", field=where, value=v, message="expected YYYY-MM-DD")


def like_regex(pattern: str, ci: bool) -> re.Pattern[str]:
    rx = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile(rx, re.S | (re.I if ci else 0))


def _leaf(spec: MethodSpec, node: dict[str, Any], gs: dict[str, tuple[FieldSpec, Getter]]) -> Predicate:
    for k in node:
        if k not in ("field", "operator", "value"):
            raise ApiError("unexpected_parameters", field=f"filter.{k}", value=node[k])
    for k in ("field", "operator"):
        if k not in node:
            raise ApiError("required_parameter_missed", field=f"filter.{k}")
        check_type(f"filter.{k}", "string", node[k])
    name: str = node["field"]
    op: str = node["operator"]
    if name not in gs:
        raise ApiError("unexpected_parameters", field=name, value=name, message=f"unknown filter field {name}")
    fs, get = gs[name]
    if spec.is_v3:
        allowed_ops = V3_FILTERS.get(spec.method, {}).get(name)
        if allowed_ops is None:
            raise ApiError("filter_prohibited", field=name, value=name)
        if op not in allowed_ops:
            raise ApiError("invalid_parameter_value", field="filter.operator", value=op,
                           message=f"operator {op} is not allowed for {name}")
        if op not in ("co", "sw", "ew"):
            op = V3_ALIASES[op]
    else:
        if not fs.filterable:
            raise ApiError("filter_prohibited", field=name, value=name)
        if op not in V2_OPERATORS:
            raise ApiError("invalid_parameter_value", field="filter.operator", value=op,
                           message=f"unknown operator {op}")
    if op in ("is_null", "is_not_null"):
        want_null = op == "is_null"
        return lambda r: (get(r) in (None, [])) == want_null
    if "value" not in node:
        raise ApiError("required_parameter_missed", field="filter.value")
    v = node["value"]
    if fs.type in ("array", "object"):
        if op not in ("overlap", "not_overlap"):
            raise ApiError("invalid_parameter_value", field="filter.operator", value=op,
                           message=f"{name} is an array: use overlap, not_overlap, is_null or is_not_null")
        if not isinstance(v, list) or not v:
            raise ApiError("data_type_error", field="filter.value", value=v, message="expected a non-empty array")
        wanted = set(v) if all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in v) else None
        if wanted is None:
            raise ApiError("data_type_error", field="filter.value", value=v)
        neg = op == "not_overlap"

        def overlap(r: Record) -> bool:
            items = get(r) or []
            hit = any((it in wanted) if not isinstance(it, dict) else any(
                x in wanted for x in it.values() if isinstance(x, (str, int))) for it in items)
            return bool(hit) != neg
        return overlap
    if op in ("overlap", "not_overlap"):
        raise ApiError("invalid_parameter_value", field="filter.operator", value=op,
                       message=f"{op} applies to arrays only")
    if op in ("in", "not_in"):
        if not isinstance(v, list) or not v:
            raise ApiError("data_type_error", field="filter.value", value=v, message="expected a non-empty array")
        for x in v:
            check_value(fs, x, "filter.value")
        vs = set(v)
        if op == "in":
            return lambda r: get(r) in vs
        return lambda r: (x := get(r)) is not None and x not in vs
    if op in ("like", "ilike", "not_like", "not_ilike", "co", "sw", "ew"):
        if not isinstance(v, str):
            raise ApiError("data_type_error", field="filter.value", value=v, message="expected a string")
        if fs.type != "string":
            raise ApiError("invalid_parameter_value", field="filter.operator", value=op,
                           message=f"{op} applies to string fields only")
        pattern = {"co": f"%{v}%", "sw": f"{v}%", "ew": f"%{v}"}.get(op, v)
        rx = like_regex(pattern, ci=op in ("ilike", "not_ilike"))
        neg = op.startswith("not_")
        return lambda r: (x := get(r)) is not None and (rx.fullmatch(x) is not None) != neg
    check_value(fs, v, "filter.value")
    if fs.type == "boolean" and op not in ("=", "!="):
        raise ApiError("invalid_parameter_value", field="filter.operator", value=op,
                       message="booleans compare with = and != only")
    if op == "=":
        return lambda r: (x := get(r)) is not None and x == v
    if op == "!=":
        return lambda r: (x := get(r)) is not None and x != v
    if op == "<":
        return lambda r: (x := get(r)) is not None and x < v
    if op == ">":
        return lambda r: (x := get(r)) is not None and x > v
    if op == "<=":
        return lambda r: (x := get(r)) is not None and x <= v
    return lambda r: (x := get(r)) is not None and x >= v


def compile_filter(spec: MethodSpec, node: Any, gs: dict[str, tuple[FieldSpec, Getter]],
                   depth: int = 0) -> Predicate:
    if not isinstance(node, dict):
        raise ApiError("data_type_error", field="filter", value=node, message="a filter is an object")
    if depth > 20:
        raise ApiError("invalid_parameter_value", field="filter", message="the filter is nested too deeply")
    if "filters" in node:
        for k in node:
            if k not in ("filters", "condition"):
                raise ApiError("unexpected_parameters", field=f"filter.{k}", value=node[k])
        subs, cond = node["filters"], node.get("condition", "and")
        if not isinstance(subs, list) or not subs:
            raise ApiError("invalid_parameter_value", field="filter.filters", value=subs,
                           message="filters must be a non-empty array")
        if cond not in ("and", "or"):
            raise ApiError("invalid_parameter_value", field="filter.condition", value=cond)
        preds = [compile_filter(spec, s, gs, depth + 1) for s in subs]
        if cond == "and":
            return lambda r: all(p(r) for p in preds)
        return lambda r: any(p(r) for p in preds)
    return _leaf(spec, node, gs)


def compile_sort(spec: MethodSpec, sort: Any, gs: dict[str, tuple[FieldSpec, Getter]]) -> list[tuple[str, bool]]:
    if not isinstance(sort, list):
        raise ApiError("data_type_error", field="sort", value=sort, message="sort is an array")
    out = []
    for s in sort:
        if not isinstance(s, dict):
            raise ApiError("data_type_error", field="sort", value=s)
        for k in s:
            if k not in ("field", "order"):
                raise ApiError("unexpected_parameters", field=f"sort.{k}", value=s[k])
        name, order = s.get("field"), s.get("order", "asc")
        if name is None:
            raise ApiError("required_parameter_missed", field="sort.field")
        if not isinstance(name, str) or name not in gs:
            raise ApiError("unexpected_parameters", field=str(name), value=name, message=f"unknown sort field {name}")
        sortable = name in V3_SORTS.get(spec.method, ()) if spec.is_v3 else gs[name][0].sortable
        if not sortable:
            raise ApiError("sort_prohibited", field=name, value=name)
        if order not in ("asc", "desc"):
            raise ApiError("invalid_parameter_value", field="sort.order", value=order)
        out.append((name, order == "desc"))
    return out


def sort_key(get: Getter) -> Callable[[Record], tuple[bool, Any]]:
    def key(r: Record) -> tuple[bool, Any]:
        v = get(r)
        return (v is None, v if v is not None else 0)
    return key


# ---- building a query from params ---------------------------------------------------------------------
def build_query(spec: MethodSpec, params: dict[str, Any], world: World, till_exclusive: bool,
                chat_ids_supported: bool, max_chat_ids: int, unknown: frozenset[str] = frozenset()) -> Query:
    """``unknown``: fields this account does not know (asked for, filtered or sorted on: unexpected_parameters)."""
    allowed = dict(spec.params)
    allowed.update(EXTRA_PARAMS.get(spec.method, {}))
    if spec.method == "get.chat_messages_report" and not chat_ids_supported:
        allowed.pop("chat_ids")
    for k, v in params.items():
        if k not in allowed:
            raise ApiError("unexpected_parameters", field=k, value=v, message=f"unexpected parameter {k}")
        check_type(k, allowed[k], v)
    required = [r for r in spec.required if r != "access_token"]
    if spec.method == "get.chat_messages_report":
        required = []
    for r in required:
        if r not in params:
            raise ApiError("required_parameter_missed", field=r, message=f"required parameter {r} is missed")
    gs = getters(spec, unknown)
    fields_param = "field" if spec.is_v3 else "fields"
    if fields_param in params:
        wanted = params[fields_param]
        if not wanted:
            raise ApiError("invalid_parameter_value", field=fields_param, value=wanted,
                           message="fields must not be empty")
        names: list[str] = []
        for n in wanted:
            if not isinstance(n, str):
                raise ApiError("data_type_error", field=fields_param, value=n)
            if n not in gs or n not in spec.by_name:
                raise ApiError("unexpected_parameters", field=n, value=n, message=f"unknown field {n}")
            if n not in names:
                names.append(n)
        name_tuple = tuple(names)
    else:
        name_tuple = tuple(n for n in spec.default_fields if n not in unknown)
    limit = params.get("limit", 100 if spec.is_v3 else 1000)
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError("invalid_parameter_value", field="limit", value=limit,
                       message=f"limit must be within 1..{MAX_LIMIT}")
    offset = params.get("offset", 0)
    if not 0 <= offset <= MAX_OFFSET:
        raise ApiError("invalid_parameter_value", field="offset", value=offset,
                       message=f"offset must be within 0..{MAX_OFFSET}")
    q = Query(spec=spec, names=name_tuple, limit=limit, offset=offset, exclusive=till_exclusive)
    flt = params.get("filter")
    if spec.is_v3:
        flt = _v3_dates(q, flt)
    elif "date_from" in params or "date_till" in params:
        for r in ("date_from", "date_till"):
            if r not in params:
                raise ApiError("required_parameter_missed", field=r)
        dfrom = parse_dt("date_from", params["date_from"])
        dtill = parse_dt("date_till", params["date_till"])
        check_range(dfrom, dtill, CHAT_MESSAGES_MAX_DAYS if spec.report == "chat_messages" else None)
        q.date_from, q.date_till = str(dfrom), str(dtill)
    if flt is not None:
        q.predicate = compile_filter(spec, flt, gs)
    if "sort" in params:
        keys = compile_sort(spec, params["sort"], gs)
        date_field = DATE_FIELD.get(spec.report)
        q.default_sort = not keys or keys == [(date_field, False)]
        q.sort = [(gs[n][1], desc) for n, desc in keys]
    q.extra = {k: v for k, v in params.items() if k not in COMMON_PARAMS}
    if spec.report == "chat_messages":
        _chat_params(q, params, max_chat_ids)
    if spec.report == "visitors":
        q.visitor_id = params["visitor_id"]
    if spec.report == "financial_summary":
        year, month = params["year"], params["month"]
        if not 1 <= month <= 12:
            raise ApiError("invalid_parameter_value", field="month", value=month, message="month is 1..12")
        if not 2000 <= year <= 2100:
            raise ApiError("invalid_parameter_value", field="year", value=year)
        q.year_month = (year, month)
    return q


def _chat_params(q: Query, params: dict[str, Any], max_chat_ids: int) -> None:
    has_id, has_ids = "chat_id" in params, "chat_ids" in params
    if has_id and has_ids:
        raise ApiError("invalid_parameter_value", field="chat_ids", message="pass chat_id or chat_ids, not both")
    if has_ids:
        ids = params["chat_ids"]
        if not ids or len(ids) > max_chat_ids:
            raise ApiError("invalid_parameter_value", field="chat_ids", value=len(ids),
                           message=f"chat_ids must hold 1..{max_chat_ids} ids")
        for i in ids:
            if not is_int(i):
                raise ApiError("data_type_error", field="chat_ids", value=i)
        q.chat_ids = list(ids)
    elif has_id:
        q.chat_ids = [params["chat_id"]]
    elif q.date_from is None:
        raise ApiError("required_parameter_missed", field="chat_id",
                       message="chat_id (or chat_ids, or date_from and date_till) is required")


def _v3_dates(q: Query, flt: Any) -> Any:
    """Take date_from/date_till (operator eq) out of a v3 filter; return the rest of the filter."""
    if flt is None:
        raise ApiError("required_parameter_missed", field="date_from",
                       message="filter must hold date_from and date_till")
    if not isinstance(flt, dict):
        raise ApiError("data_type_error", field="filter", value=flt)
    leaves = flt.get("filters") if "filters" in flt else [flt]
    if "filters" in flt and flt.get("condition", "and") != "and":
        raise ApiError("invalid_parameter_value", field="filter.condition", value=flt.get("condition"),
                       message="date_from and date_till must be joined with and")
    if not isinstance(leaves, list):
        raise ApiError("data_type_error", field="filter.filters", value=leaves)
    found: dict[str, datetime] = {}
    rest = []
    for leaf in leaves:
        if isinstance(leaf, dict) and leaf.get("field") in ("date_from", "date_till"):
            name = leaf["field"]
            if leaf.get("operator") != "eq":
                raise ApiError("invalid_parameter_value", field="filter.operator", value=leaf.get("operator"),
                               message=f"{name} takes the operator eq")
            v = leaf.get("value")
            if not isinstance(v, str):
                raise ApiError("data_type_error", field=name, value=v)
            found[name] = parse_dt(name, v, allow_date=True, end_of_day=name == "date_till")
        else:
            rest.append(leaf)
    for r in ("date_from", "date_till"):
        if r not in found:
            raise ApiError("required_parameter_missed", field=r, message=f"filter must hold {r}")
    check_range(found["date_from"], found["date_till"], None)
    q.date_from, q.date_till = str(found["date_from"]), str(found["date_till"])
    if not rest:
        return None
    return {"filters": rest, "condition": "and"}


# ---- execution ---------------------------------------------------------------------------------------
Ref = tuple[Bundle | None, str, int, Record]


def run(q: Query, world: World, reorder: random.Random | None = None, ties: bool = True,
        any_order: bool = False) -> tuple[int, list[bytes]]:
    """Total matching rows and the page's encoded records.

    ``reorder``: this request's draw for the rows whose order the query leaves open (see :func:`_reorder`).
    """
    report = q.spec.report
    if (reorder is None and report in TIMED and q.date_from is not None and q.predicate is None
            and q.default_sort and q.chat_ids is None):
        return _fast(q, world)
    refs = candidates(q, world)
    if q.predicate is not None:
        p = q.predicate
        refs = [ref for ref in refs if p(ref[3])]
    for get, desc in reversed(q.sort):
        key = sort_key(get)
        refs.sort(key=lambda ref: key(ref[3]), reverse=desc)
    if reorder is not None:
        refs = _reorder(q, refs, reorder, ties, any_order)
    page = refs[q.offset:q.offset + q.limit]
    out = []
    for b, rep, i, rec in page:
        if b is not None:
            out.append(b.encoded(rep, q.names, i))
        else:
            out.append(dumps({n: rec[n] for n in q.names}))
    return len(refs), out


def _reorder(q: Query, refs: list[Ref], rng: random.Random, ties: bool, any_order: bool) -> list[Ref]:
    """The rows in an order a database may give: ``any_order`` without a sort, else (``ties``) rows equal
    on every sort field (with no sort, on the report's date field) shuffled among themselves."""
    if not q.sort and any_order:
        rng.shuffle(refs)
        return refs
    if not ties:
        return refs
    keys: list[Callable[[Record], Any]]
    if q.sort:
        keys = [sort_key(get) for get, _ in q.sort]
    else:
        date_field = DATE_FIELD.get(q.spec.report, "date")
        keys = [lambda r: r.get(date_field)]
    out: list[Ref] = []
    for _, group in itertools.groupby(refs, key=lambda ref: tuple(k(ref[3]) for k in keys)):
        rows = list(group)
        rng.shuffle(rows)
        out.extend(rows)
    return out


def _day_bounds(q: Query, world: World) -> tuple[int, int, int, int]:
    assert q.date_from is not None
    assert q.date_till is not None
    lo = world.abs_of(q.date_from)
    hi = world.abs_of(q.date_till)
    return lo, hi, max(0, lo // DAY), min(world.config.days - 1, hi // DAY)


def _fast(q: Query, world: World) -> tuple[int, list[bytes]]:
    report = q.spec.report
    lo, hi, d0, d1 = _day_bounds(q, world)
    segs: list[tuple[int, int, int]] = []
    total = 0
    for day in range(d0, d1 + 1):
        arr = world.times(day)[report]
        base = day * DAY
        i0 = bisect_left(arr, lo - base)
        i1 = bisect_left(arr, hi - base) if q.exclusive else bisect_right(arr, hi - base)
        if i1 > i0:
            segs.append((day, i0, i1))
            total += i1 - i0
    out: list[bytes] = []
    skip, want = q.offset, q.limit
    for day, i0, i1 in segs:
        n = i1 - i0
        if skip >= n:
            skip -= n
            continue
        b = world.bundle(day)
        start = i0 + skip
        skip = 0
        stop = min(i1, start + want - len(out))
        out.extend(b.encoded_range(report, q.names, start, stop))
        if len(out) >= want:
            break
    return total, out


def in_range(q: Query, value: str) -> bool:
    assert q.date_from is not None
    assert q.date_till is not None
    if value < q.date_from:
        return False
    return value < q.date_till if q.exclusive else value <= q.date_till


def candidates(q: Query, world: World) -> list[Ref]:
    """Every record the query's non-filter parameters select, in the report's canonical order."""
    report = q.spec.report
    refs: list[Ref] = []
    if q.spec.method in REFERENCE_METHODS:
        return [(None, report, 0, r) for r in reference_rows(q.spec.method, world, q.extra, q.date_from, q.date_till)]
    if report == "visitors":
        assert q.visitor_id is not None
        rec = world.visitor_record(q.visitor_id)
        return [(None, report, 0, rec)] if rec is not None else []
    if report == "financial_summary":
        assert q.year_month is not None
        y, m = q.year_month
        first = date(y, m, 1).toordinal() - world.start_ord
        last = add_months(datetime(y, m, 1), 1).toordinal() - world.start_ord
        for day in range(max(0, first), min(world.config.days, last)):
            b = world.bundle(day)
            refs.extend((b, report, i, r) for i, r in enumerate(b.records[report]))
        return refs
    if report == "chat_messages" and q.chat_ids is not None:
        wanted = set(q.chat_ids)
        days = sorted({loc[0] for c in wanted if (loc := world.day_of_id("chats", c)) is not None})
        for day in days:
            b = world.bundle(day)
            for i, r in enumerate(b.records[report]):
                if r["chat_id"] in wanted and (q.date_from is None or in_range(q, r["date_time"])):
                    refs.append((b, report, i, r))
        refs.sort(key=lambda ref: (ref[3]["date_time"], ref[3]["chat_id"]))
        return refs
    date_field = DATE_FIELD[report]
    _, _, d0, d1 = _day_bounds(q, world)
    if report == "sales":
        d0 = max(0, d0 - SALE_LOOKBACK_DAYS)
    for day in range(d0, d1 + 1):
        b = world.bundle(day)
        for i, r in enumerate(b.records[report]):
            if in_range(q, r[date_field]):
                refs.append((b, report, i, r))
    if report == "sales":
        refs.sort(key=lambda ref: (ref[3]["date_time"], ref[3]["id"]))
    return refs
