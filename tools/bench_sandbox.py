"""Benchmark of the simulator (a script, not a test): ``python -m tools.bench_sandbox``.

Serves a 10,000-record calls page with every field and compares the time the server takes to deliver
it (measured by the client up to the last byte, without parsing) with the client's ``json.loads``.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from urllib.parse import urlsplit

from tap_comagic.sandbox import Sandbox, SandboxConfig
from tap_comagic.sandbox.catalog import CATALOG


def main(rounds: int = 5) -> None:
    cfg = SandboxConfig(days=5, calls_per_day=10_000)
    fields = list(CATALOG["get.calls_report"].field_names)
    with Sandbox(cfg) as sb:
        u = urlsplit(sb.url)
        conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "get.calls_report", "params": {
            "access_token": sb.api_key, "date_from": "2026-01-02 00:00:00", "date_till": "2026-01-03 23:59:59",
            "limit": 10_000, "offset": 5_000, "fields": fields}}).encode()

        def fetch() -> bytes:
            conn.request("POST", u.path, body=body, headers={"Content-Type": "application/json"})
            with conn.getresponse() as r:
                return r.read()

        t = time.perf_counter()
        raw = fetch()
        cold = time.perf_counter() - t
        serve, parse = [], []
        for _ in range(rounds):
            t = time.perf_counter()
            raw = fetch()
            serve.append(time.perf_counter() - t)
            t = time.perf_counter()
            doc = json.loads(raw)
            parse.append(time.perf_counter() - t)
        conn.close()
    assert len(doc["result"]["data"]) == 10_000
    s, p = statistics.median(serve), statistics.median(parse)
    print(f"page: 10000 calls x {len(fields)} fields, {len(raw) / 1e6:.1f} MB")
    print(f"server (first request, building the days): {cold:.3f} s")
    print(f"server (cached days, median of {rounds}): {s:.3f} s")
    print(f"client json.loads (median): {p:.3f} s")
    print(f"ratio parse / serve: {p / s:.1f}x")


if __name__ == "__main__":
    main()
