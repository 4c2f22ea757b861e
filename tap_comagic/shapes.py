"""Records that keep their schema's promise, checked while they are decoded.

A page comes as its records' JSON, split by the parse that reads the answer's envelope (``api.Data``),
and each record is decoded when it is read (:class:`Rows`), straight into a typed dictionary built from
the stream's JSON Schema at run time (msgspec, in C): a record whose every value has its declared type
costs no more than an untyped decode, and fields not asked for are left out on the way. A record that
fails that check is decoded again untyped and conformed value by value (the slow path, only for such
records):

- lossless conversions are made quietly: a digit string where an integer is declared becomes the
  integer, a numeric string where a number is declared the number, a number, boolean or structure
  where a string is declared its JSON text, 0/1 or "true"/"false" where a boolean is declared the boolean;
- a value that has no faithful form in the declared type (``"abc"`` for an integer, say) becomes null,
  and a WARNING names the stream, the field and how many values of the page it concerned. Widening
  the declared type instead would give a target two types for one column, which most cannot store.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import resources
from typing import Any, TypedDict, Union, overload

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
    """A page's records, held to the declared types of the fields asked for: :class:`Rows`."""

    def __init__(self, stream: str, schema: dict[str, Any], fields: Iterable[str], logger: logging.Logger) -> None:
        properties: dict[str, Any] = schema["properties"]
        fields = [f for f in fields if f in properties]
        self.stream = stream
        self.logger = logger
        self._fast = msgspec.json.Decoder(_typed_dict(stream, properties, fields))
        self._members = {f: _converter(properties[f], f) for f in fields}

    def __call__(self, data: Any) -> Rows:
        """A page's records from the answer's ``data``: its items' JSON (see api.Data); no list, no records."""
        items: list[msgspec.Raw] = data if isinstance(data, list) else []
        objects = [item for item in items if memoryview(item)[0] == _OPEN_BRACE]
        if len(objects) < len(items):
            self.logger.warning("%s: %d record(s) in a page are not JSON objects; left out", self.stream,
                                len(items) - len(objects))
        return Rows(objects, self)

    def one(self, raw: msgspec.Raw, bad: Counter[str]) -> dict[str, Any]:
        """One record (a JSON object): typed at once, or conformed value by value, counting in ``bad``."""
        try:
            row: dict[str, Any] = self._fast.decode(raw)
            return row
        except msgspec.ValidationError:
            members = self._members
            return {k: members[k](v, bad) for k, v in msgspec.json.decode(raw).items() if k in members}

    def warn(self, bad: Counter[str]) -> None:
        for path, count in bad.items():
            self.logger.warning("%s: %d value(s) of field `%s` in a page have no faithful form in its declared "
                                "type; emitted as null", self.stream, count, path)


_OPEN_BRACE = ord("{")  # a Raw item spans its value exactly: an object starts with the brace


class Rows(Sequence[dict[str, Any]]):
    """A page's records, each decoded when it is read. A page of 10,000 calls is 37 MB of JSON and 100 MB
    of decoded records: held as JSON it costs one copy, not both, and each record is decoded while the
    memory it is written from is still in the processor's cache (faster than decoding the page at once).
    A complete iteration reports the values it had to null, once per page; reading by index, or an iteration
    stopped early (a look at a page's first rows), reports nothing, so that no value is counted twice."""

    def __init__(self, items: list[msgspec.Raw], decoder: RecordDecoder) -> None:
        self._items = items
        self._decoder = decoder

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        one, ignored = self._decoder.one, Counter[str]()
        if isinstance(index, slice):
            return [one(item, ignored) for item in self._items[index]]
        return one(self._items[index], ignored)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        one, bad = self._decoder.one, Counter[str]()
        for item in self._items:
            yield one(item, bad)
        self._decoder.warn(bad)
