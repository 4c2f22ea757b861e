"""Input checks: the settings, the state, the catalog and unreadable JSON files, each refused in one line
that names what is wrong and what to do, before any request is made."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib import Catalog

from tap_comagic.context import ACCOUNT_COLUMN
from tap_comagic.errors import TapError
from tap_comagic.registry import STREAMS_BY_NAME
from tap_comagic.settings import Settings, parse_datetime_setting, parse_settings, schema_errors
from tap_comagic.shapes import load_schema


def json_kind(value: Any) -> str:
    """What JSON calls ``value``'s type, for messages."""
    if isinstance(value, bool):
        return "boolean"
    return {list: "list", str: "string", int: "number", float: "number", Decimal: "number",
            dict: "object"}.get(type(value), "null" if value is None else type(value).__name__)


def refuse(message: str) -> NoReturn:
    """Refuse the input in one line (the SDK's CLI prints it and exits 1)."""
    raise ConfigValidationError(message, errors=[message])


def settings_of(config: Mapping[str, Any], schema: dict[str, Any]) -> Settings:
    """The settings, checked against the schema (in our one-line form), then by the checks a schema cannot
    make."""
    try:
        errors = schema_errors(config, schema)
        if errors:
            raise TapError(errors[0])
        return parse_settings(config, schema["properties"], STREAMS_BY_NAME)
    except TapError as exc:
        refuse(str(exc))


def check_state_is_an_object(state: Any) -> None:
    """Refuse a state that is not a JSON object (the SDK would take a string for a file name)."""
    if state is not None and not isinstance(state, dict):
        refuse(f"the state is a JSON {json_kind(state)}, not an object: pass the state file the target last "
               "wrote, or none to start at `start_date`")


def check_bookmarks_shape(state: Mapping[str, Any]) -> None:
    """Refuse a state whose bookmarks are not objects."""
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        refuse(f"the state's `bookmarks` is a JSON {json_kind(bookmarks)}, not an object of stream name -> "
               "bookmark: fix it or delete it (streams then start at `start_date`)")
    for stream, bookmark in bookmarks.items():
        if not isinstance(bookmark, dict):
            refuse(f"the state's bookmark of stream `{stream}` is a JSON {json_kind(bookmark)}, not an object: fix "
                   "it or delete it (the stream then starts at `start_date`)")


def check_bookmark_values(state: Mapping[str, Any], zone: ZoneInfo) -> None:
    """Refuse a bookmark that is not a date-time, in one line naming its stream."""
    for stream, bookmark in (state.get("bookmarks") or {}).items():
        partitions = bookmark.get("partitions") if isinstance(bookmark, dict) else None
        for entry in [bookmark, *(partitions if isinstance(partitions, list) else [])]:
            value = entry.get("replication_key_value") if isinstance(entry, dict) else None
            if value is None:
                continue
            try:
                parse_datetime_setting("state", str(value), zone)
            except TapError:
                raise TapError(f"the state's bookmark of stream `{stream}` is not a date-time: {value!r}; fix it "
                               "or delete it from the state (the stream then starts at `start_date`)") from None


def check_catalog(catalog: Catalog | None) -> None:
    """Refuse a catalog naming a stream or field the tap does not have, in one line."""
    for entry in catalog.streams if catalog is not None else ():
        name = entry.tap_stream_id
        if name not in STREAMS_BY_NAME:
            raise TapError(f"the catalog names stream `{name}`, which tap-comagic does not have; run discovery "
                           "again (`--discover`)")
        properties = load_schema(name)[0]["properties"]
        keyed = bool(STREAMS_BY_NAME[name].declared_keys())
        if (keyed and ACCOUNT_COLUMN not in (entry.key_properties or ())) \
                or ACCOUNT_COLUMN not in entry.schema.to_dict().get("properties", {}):
            # without it, the rows of two accounts would share keys and merge in the target
            raise TapError(f"the catalog's stream `{name}` lacks `{ACCOUNT_COLUMN}` (in its schema and at the head "
                           "of its key_properties), which every record carries: run discovery again "
                           "(`--discover`)")
        for breadcrumb, meta in entry.metadata.items():
            if len(breadcrumb) == 2 and meta.selected and breadcrumb[1] not in properties \
                    and breadcrumb[1] != ACCOUNT_COLUMN:
                raise TapError(f"the catalog selects field `{breadcrumb[1]}` of stream `{name}`, which "
                               "tap-comagic does not have; deselect it or run discovery again")


def unreadable_input(argv: Sequence[str]) -> str:
    """Which input file of the command line is not valid JSON, in words ("an input file" if none can be
    named)."""
    for flag in ("--config", "--state", "--catalog"):
        if flag in argv and argv.index(flag) + 1 < len(argv):
            path = argv[argv.index(flag) + 1]
            try:
                with open(path, encoding="utf-8") as handle:
                    json.load(handle)
            except (OSError, json.JSONDecodeError):
                return f"the {flag.lstrip('-')} file {path}"
    return "an input file"
