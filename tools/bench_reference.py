"""The reference loop of ``tools/bench_tap.py``: plain ``requests`` + standard ``json``, no SDK.

``python -m tools.bench_reference --url URL --key KEY --requests FILE --stream calls [--msgspec] > /dev/null``

Replays the JSON-RPC calls listed in FILE (the very requests the tap sent, as the simulator logged
them: ``[{"method": ..., "params": {...}}, ...]``), and for every row writes the Singer line
``{"type":"RECORD","stream":...,"record":...}`` to stdout after the same conversion the tap does:
"YYYY-MM-DD hh:mm:ss" date-times (top level and one level down, as the schema marks them) become
RFC 3339 with the account's offset, looked up once per local hour. ``--msgspec``: the same loop with
msgspec decoding each page (the cyclic garbage collector kept off its objects, as the tap does) and encoding
each line into one buffer, each body read in one piece rather than requests' 10 KiB chunks (as the tap
reads it): what one Python process can do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import sys
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import requests


def datetime_paths(stream: str) -> list[tuple[str, ...]]:
    text = (resources.files("tap_comagic") / "schemas" / f"{stream}.json").read_text("utf-8")
    paths: list[tuple[str, ...]] = []
    for name, prop in json.loads(text)["properties"].items():
        if prop.get("format") == "date-time":
            paths.append((name,))
        children = (prop.get("items") or prop).get("properties") or {}
        paths.extend((name, sub) for sub, sp in children.items() if sp.get("format") == "date-time")
    return paths


class Converter:
    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.offsets: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or len(value) != 19 or value[10] != " ":
            return value
        hour = value[:13]
        suffix = self.offsets.get(hour)
        if suffix is None:
            local = dt.datetime.fromisoformat(hour + ":00:00").replace(tzinfo=self.zone)
            minutes = int((local.utcoffset() or dt.timedelta(0)).total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            suffix = self.offsets[hour] = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        return f"{value[:10]}T{value[11:]}{suffix}"


def convert_row(row: dict[str, Any], paths: list[tuple[str, ...]], convert: Converter) -> None:
    for path in paths:
        if len(path) == 1:
            if path[0] in row:
                row[path[0]] = convert(row[path[0]])
            continue
        parent, key = path
        items = row.get(parent)
        if isinstance(items, dict):
            items = [items]
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and key in item:
                    item[key] = convert(item[key])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--requests", required=True, help="JSON file: the calls to replay, in order")
    ap.add_argument("--stream", required=True)
    ap.add_argument("--timezone", default="Europe/Moscow")
    ap.add_argument("--msgspec", action="store_true", help="decode and encode with msgspec")
    a = ap.parse_args(argv)
    with open(a.requests, encoding="utf-8") as fh:
        calls: list[dict[str, Any]] = json.load(fh)
    paths = datetime_paths(a.stream)
    convert = Converter(ZoneInfo(a.timezone))
    out = sys.stdout
    stream = a.stream
    session = requests.Session()
    headers = {"Content-Type": "application/json; charset=UTF-8"}
    count = 0
    if a.msgspec:
        import msgspec

        decode, encoder = msgspec.json.decode, msgspec.json.Encoder()
        line = bytearray()
        raw = out.buffer
    for i, call in enumerate(calls, 1):
        params = {**call["params"], "access_token": a.key}
        body = json.dumps({"jsonrpc": "2.0", "id": i, "method": call["method"], "params": params})
        response = session.post(a.url, data=body.encode(), headers=headers, timeout=300, stream=a.msgspec)
        response.raise_for_status()
        if a.msgspec:
            content = b"".join(response.iter_content(chunk_size=None))
            # as the tap does: a page's million new objects hold no cycles, so the cyclic collector is kept
            # off them while decoding (else its full collections walk them again and again)
            gc.disable()
            doc = decode(content)
            gc.freeze()
            gc.enable()
        else:
            doc = json.loads(response.content)
        if "error" in doc:
            raise SystemExit(f"reference: {call['method']} failed: {doc['error']}")
        if a.msgspec:
            for row in doc["result"].get("data") or []:
                convert_row(row, paths, convert)
                encoder.encode_into({"type": "RECORD", "stream": stream, "record": row}, line, -1)
                line.extend(b"\n")
                if len(line) > 1 << 16:
                    raw.write(line)
                    line.clear()
                count += 1
            del doc
            gc.unfreeze()
            continue
        for row in doc["result"].get("data") or []:
            convert_row(row, paths, convert)
            out.write(json.dumps({"type": "RECORD", "stream": stream, "record": row}))
            out.write("\n")
            count += 1
    if a.msgspec:
        raw.write(line)
    out.flush()
    print(f"reference: {count} records from {len(calls)} requests", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
