"""Records that keep their schema's promise, checked while they are decoded.

The fast path decodes a page straight into typed dictionaries built from the stream's JSON Schema
at run time (msgspec, in C): a page whose every value has its declared type costs no more than an
untyped decode, and fields not asked for are left out on the way. A page that fails that check is
decoded again untyped and conformed value by value (the slow path, only for such pages):

- lossless conversions are made quietly: a digit string where an integer is declared becomes the
  integer, a numeric string where a number is declared the number, a number, boolean or structure
  where a string is declared its JSON text, 0/1 or "true"/"false" where a boolean is declared the boolean;
- a value that has no faithful form in the declared type (``"abc"`` for an integer, say) becomes null,
  and a WARNING names the stream, the field and how many values of the page it concerned. Widening
  the declared type instead would give a target two types for one column, which most cannot store.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any, TypedDict, Union

import msgspec

_BAD: Any = object()  # no faithful form in the declared type
_INTEGER = re.compile(r"\s*-?\d+\s*")
Convert = Callable[[Any, Counter[str]], Any]


def load_schema(stream_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stream's JSON Schema and the spec flags kept beside it (``x-comagic``)."""
    text = (resources.files("tap_comagic") / "schemas" / f"{stream_name}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    flags: dict[str, Any] = schema.pop("x-comagic", {})
    return schema, flags


def _kinds(prop: dict[str, Any]) -> tuple[list[str], bool]:
    types = prop.get("type")
    kinds = [types] if isinstance(types, str) else list(types or [])
    return [k for k in kinds if k != "null"], "null" in kinds or not kinds


# ---- the fast path's types ------------------------------------------------------------------------------

def _python_type(prop: dict[str, Any], name: str) -> Any:
    kinds, nullable = _kinds(prop)
    parts: list[Any] = []
    for kind in kinds:
        if kind == "integer":
            parts.append(int)
        elif kind == "number":
            parts += [int, float]  # an integer stays one
        elif kind == "string":
            parts.append(str)
        elif kind == "boolean":
            parts.append(bool)
        elif kind == "array":
            parts.append(list[_python_type(prop.get("items") or {}, name)])  # type: ignore[misc]
        elif kind == "object" and prop.get("properties"):
            parts.append(_typed_dict(name, prop["properties"], prop["properties"]))
        elif kind == "object":
            parts.append(dict[str, Any])
        else:
            return Any
    if not parts:
        return Any
    if nullable:
        parts.append(None)
    unique = list(dict.fromkeys(parts))
    return Union[tuple(unique)] if len(unique) > 1 else unique[0]  # noqa: UP007 (built at run time)


def _typed_dict(name: str, properties: dict[str, Any], fields: Iterable[str]) -> Any:
    members: dict[str, Any] = {}
    for field in fields:
        if field not in properties:
            continue
        kind = _python_type(properties[field], field)
        try:
            msgspec.json.Decoder(kind)
        except TypeError:  # a union msgspec cannot decode (two object types, say): checked on the slow path
            kind = Any
        members[field] = kind
    return TypedDict(f"{name}_record", members, total=False)  # type: ignore[operator]


# ---- the slow path's conversions ------------------------------------------------------------------------

def _convert_one(kind: str, prop: dict[str, Any], path: str) -> Callable[[Any, Counter[str]], Any]:
    if kind == "integer":
        def integer(v: Any, bad: Counter[str]) -> Any:
            if isinstance(v, str) and _INTEGER.fullmatch(v):
                return int(v)
            if isinstance(v, float) and v.is_integer():
                return int(v)
            return v if type(v) is int else _BAD
        return integer
    if kind == "number":
        def number(v: Any, bad: Counter[str]) -> Any:
            if type(v) in (int, float):
                return v
            if isinstance(v, str):
                if _INTEGER.fullmatch(v):
                    return int(v)
                try:
                    x = float(v)
                except ValueError:
                    return _BAD
                return x if math.isfinite(x) else _BAD
            return _BAD
        return number
    if kind == "string":
        def string(v: Any, bad: Counter[str]) -> Any:
            return v if type(v) is str else msgspec.json.encode(v).decode()
        return string
    if kind == "boolean":
        def boolean(v: Any, bad: Counter[str]) -> Any:
            if type(v) is bool:
                return v
            if type(v) is int and v in (0, 1):
                return bool(v)
            if isinstance(v, str) and v.lower() in ("true", "false"):
                return v.lower() == "true"
            return _BAD
        return boolean
    if kind == "array":
        item = _converter(prop.get("items") or {}, path + "[]")

        def array(v: Any, bad: Counter[str]) -> Any:
            return [item(x, bad) for x in v] if type(v) is list else _BAD
        return array
    if kind == "object":
        members = {k: _converter(p, f"{path}.{k}") for k, p in (prop.get("properties") or {}).items()}

        def obj(v: Any, bad: Counter[str]) -> Any:
            if type(v) is not dict:
                return _BAD
            if not members:
                return v
            return {k: members[k](x, bad) for k, x in v.items() if k in members}
        return obj

    def anything(v: Any, bad: Counter[str]) -> Any:
        return v
    return anything


def _converter(prop: dict[str, Any], path: str) -> Convert:
    """The value in its declared type; one that has none becomes null and is counted under ``path``."""
    kinds, nullable = _kinds(prop)
    if not kinds:
        return lambda v, bad: v
    exact = {"integer": (int,), "number": (int, float), "string": (str,), "boolean": (bool,),
             "array": (list,), "object": (dict,)}
    plain = tuple(t for k in kinds if k not in ("array", "object") for t in exact.get(k, ()))
    steps = [_convert_one(k, prop, path) for k in kinds]

    def convert(v: Any, bad: Counter[str]) -> Any:
        if v is None and nullable:
            return None
        if type(v) in plain:
            return v
        for step in steps:
            out = step(v, bad)
            if out is not _BAD:
                return out
        bad[path] += 1
        return None
    return convert


class RecordDecoder:
    """A page's records, decoded and held to the declared types of the fields asked for."""

    def __init__(self, stream: str, schema: dict[str, Any], fields: Iterable[str], logger: logging.Logger) -> None:
        properties: dict[str, Any] = schema["properties"]
        fields = [f for f in fields if f in properties]
        self.stream = stream
        self.logger = logger
        self._fast = msgspec.json.Decoder(Union[list[_typed_dict(stream, properties, fields)], None])  # type: ignore[misc]  # noqa: UP007
        self._members = {f: _converter(properties[f], f) for f in fields}

    def __call__(self, raw: msgspec.Raw | None) -> list[dict[str, Any]]:
        if raw is None:
            return []
        # A page of 10,000 records is a million new objects: left to the cyclic garbage collector, they
        # are walked again and again by full collections (40% of the run). They hold no cycles, so
        # reference counting frees them; the collector is kept off them while decoding, then told to
        # leave them alone (unfrozen again at each window's end).
        collecting = gc.isenabled()
        gc.disable()
        try:
            try:
                rows = self._fast.decode(raw)
            except msgspec.ValidationError:
                rows = self._conform(msgspec.json.decode(raw))  # cannot fail: the envelope's decoder read it
        finally:
            if collecting:
                gc.freeze()
                gc.enable()
        return rows if isinstance(rows, list) else []

    def _conform(self, rows: Any) -> list[dict[str, Any]]:
        if not isinstance(rows, list):
            return []
        bad: Counter[str] = Counter()
        members = self._members
        out: list[dict[str, Any]] = []
        for row in rows:
            if type(row) is not dict:
                bad[""] += 1
                continue
            out.append({k: members[k](v, bad) for k, v in row.items() if k in members})
        for path, count in bad.items():
            if path:
                self.logger.warning("%s: %d value(s) of field `%s` in a page have no faithful form in its declared "
                                    "type; emitted as null", self.stream, count, path)
            else:
                self.logger.warning("%s: %d record(s) in a page are not JSON objects; left out", self.stream, count)
        return out
