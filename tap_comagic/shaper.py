"""A decoded row as a stream emits it (per record: only cheap work).

The decoder (:mod:`tap_comagic.shapes`) already holds every value to its declared type. What is left is
the account's time: the API writes naive "YYYY-MM-DD hh:mm:ss" in the account's zone, records carry the
offset too (:mod:`tap_comagic.timezones`), the repeated autumn hour told apart where the report is read in
ascending order of a field; then only the selected fields are kept, and the account's id is added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tap_comagic.context import ACCOUNT_COLUMN
from tap_comagic.timezones import AscendingFolds, FromApi

Row = dict[str, Any]
Convert = Callable[[Any], Any]
Path = tuple[str, ...]


def date_time_output(from_api: FromApi, ascending_field: str | None) -> tuple[Convert, Convert]:
    """How the API's date-times are written into records: (any value, a value of ``ascending_field``, the
    field the report is read in ascending order of, whose repeated hour can be told apart)."""
    return from_api, AscendingFolds(from_api, ascending_field)


def datetime_paths(properties: dict[str, Any], prefix: Path = ()) -> list[Path]:
    """The paths of the schema's date-time fields, nested objects and arrays of objects included."""
    paths: list[Path] = []
    for name, prop in properties.items():
        if prop.get("format") == "date-time":
            paths.append((*prefix, name))
        children = (prop.get("items") or prop).get("properties") or {}
        paths.extend(datetime_paths(children, (*prefix, name)))
    return paths


def _convert_nested(value: Any, path: Path, convert: Convert) -> None:
    if isinstance(value, list):
        for item in value:
            _convert_nested(item, path, convert)
    elif isinstance(value, dict) and path[0] in value:
        if len(path) == 1:
            value[path[0]] = convert(value[path[0]])
        else:
            _convert_nested(value[path[0]], path[1:], convert)


class RecordShaper:
    """Shapes rows in place: date-times (``paths``) converted, fields outside ``keep`` dropped (a field the
    live API added, say: the catalog promises the selected ones), the account column added."""

    def __init__(self, paths: Iterable[Path], from_api: FromApi, ascending_field: str | None,
                 keep: frozenset[str], account_id: Any) -> None:
        self.convert, self.ascending = date_time_output(from_api, ascending_field)
        self.ascending_field = ascending_field
        self.top = [p[0] for p in paths if len(p) == 1]
        self.nested = [p for p in paths if len(p) > 1]
        self.keep = keep
        self.account_id = account_id

    def __call__(self, row: Row) -> Row:
        convert, ascending, field = self.convert, self.ascending, self.ascending_field
        for key in self.top:
            if key in row:
                row[key] = ascending(row[key]) if key == field else convert(row[key])
        for path in self.nested:
            items = row.get(path[0])
            if items is not None:
                _convert_nested(items, path[1:], convert)
        keep = self.keep
        if not keep.issuperset(row):
            for key in [k for k in row if k not in keep]:
                del row[key]
        row[ACCOUNT_COLUMN] = self.account_id
        return row
