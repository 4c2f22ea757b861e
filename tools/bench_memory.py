"""The from-memory view of ``tools/bench_tap.py``: only the client's CPU is timed.

A loopback server (:class:`MemoryServer`) answers every JSON-RPC call from a cache of response bytes,
filled once by a warm pass through it to the simulator; the timed passes then read pages that cost
the server nothing to make (one ``sendall`` of bytes already rendered), so that what differs between
the tap and the plain loops is their own work per record. The simulator's view (section 1) hides
that work behind the simulator's own time, which the tap's parallel requests overlap.

Three clients read the same pages, interleaved round by round so that a busy moment of the shared
machine hits all three alike:

- the tap at its defaults (stdout to /dev/null);
- ``tools/bench_reference`` (plain ``requests`` + stdlib ``json``) replaying the requests the tap sent
  and writing the same RECORD lines;
- the same loop with msgspec decoding and encoding (``--msgspec``): what one Python process can do,
  the practical ceiling.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

# the parameters that name a page; the token and the request id do not change its answer
_UNKEYED = ("access_token",)


def cache_key(body: bytes) -> str:
    """The page a JSON-RPC request asks for: its method and parameters, less the token."""
    doc = json.loads(body)
    params = {k: v for k, v in (doc.get("params") or {}).items() if k not in _UNKEYED}
    return json.dumps([doc.get("method"), params], sort_keys=True)


@dataclass
class Counts:
    hits: int = 0
    misses: int = 0
    cached_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class MemoryServer:
    """Answers from memory what ``upstream`` answered once (a miss is forwarded and kept)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.cache: dict[str, bytes] = {}
        self.counts = Counts()
        self.missed: list[str] = []
        self.calls: list[dict[str, Any]] = []  # the calls kept, in the order first asked
        self.frozen = False  # past the warm pass: a miss is an error (the timed clients must read memory)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as against the real API

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = outer.answer(body)
                self.send_response(200 if answer is not None else 502)
                payload = answer if answer is not None else b"{}"
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def answer(self, body: bytes) -> bytes | None:
        key = cache_key(body)
        cached = self.cache.get(key)
        counts = self.counts
        if cached is not None:
            with counts.lock:
                counts.hits += 1
            return cached
        with counts.lock:
            counts.misses += 1
            if self.frozen:
                self.missed.append(key)
        if self.frozen:
            return None
        response = self._session.post(self.upstream, data=body, timeout=600,
                                      headers={"Content-Type": "application/json; charset=UTF-8"})
        if response.status_code != 200 or b'"error"' in response.content[:200]:
            return response.content  # not kept: an error is not a page
        self.cache[key] = response.content
        doc = json.loads(body)
        self.calls.append({"method": doc.get("method"), "params": doc.get("params") or {}})
        with counts.lock:
            counts.cached_bytes += len(response.content)
        return response.content

    def __enter__(self) -> MemoryServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Runs:
    """The walls (and CPU seconds) of one client's timed runs."""

    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    peaks_mb: list[float] = field(default_factory=list)  # each run's peak RSS

    @property
    def best(self) -> float:
        return min(self.walls)

    @property
    def spread(self) -> float:
        """Slowest over fastest run: how much the machine moved them."""
        return max(self.walls) / min(self.walls)

    def describe(self, records: int) -> str:
        walls = ", ".join(f"{w:.2f}" for w in self.walls)
        return (f"best {self.best:.2f} s ({records / self.best:,.0f} rec/s; CPU {min(self.cpus):.2f} s), "
                f"runs {walls} s, spread {self.spread:.2f}x; peak RSS up to {max(self.peaks_mb):.0f} MB")


def reference_command(url: str, key: str, requests_file: Path, msgspec: bool) -> list[str]:
    return [sys.executable, "-m", "tools.bench_reference", "--url", url, "--key", key, "--requests",
            str(requests_file), "--stream", "calls", *(["--msgspec"] if msgspec else [])]


def ratios(numerator: Runs, denominator: Runs, cpu: bool = False) -> list[float]:
    """Round by round: the denominator client's wall (or CPU seconds) over the numerator's (>1: the numerator
    is faster). CPU seconds move less with a busy neighbour on a shared machine; wall is what a user waits."""
    if cpu:
        return [d / n for n, d in zip(numerator.cpus, denominator.cpus, strict=True)]
    return [d / n for n, d in zip(numerator.walls, denominator.walls, strict=True)]


def summary(values: list[float]) -> str:
    return f"{', '.join(f'{v:.2f}' for v in values)} (median {statistics.median(values):.2f})"


def serve(days: int = 10) -> None:
    """``python -m tools.bench_memory``: a warmed from-memory server for profiling by hand; prints the tap's
    config and the plain loops' requests file, then serves until interrupted."""
    import tempfile
    import time

    from tap_comagic.sandbox import Sandbox, SandboxConfig
    from tests.tap_harness import select
    from tools import bench_tap as bench

    cfg = SandboxConfig(seed=1, start=bench.START, days=days, calls_per_day=bench.PER_DAY,
                        chats_per_day=bench.CHATS_PER_DAY)
    with tempfile.TemporaryDirectory() as tmpdir, Sandbox(cfg) as sim, MemoryServer(sim.url) as mem:
        tmp = Path(tmpdir)
        tap = bench.Tap(sim, tmp)
        config = {"api_url": mem.url, "access_token": sim.api_key, "start_date": bench.START,
                  "end_date": bench.day_end(days), "page_size": bench.PAGE}
        tap.sync(config, {"calls"})
        mem.frozen = True
        out = Path(tempfile.gettempdir()) / f"bench-memory-{mem._server.server_address[1]}"
        out.mkdir(exist_ok=True)
        (out / "config.json").write_text(json.dumps(config))
        (out / "catalog.json").write_text(json.dumps(select(copy_of(tap.catalog), {"calls"})))
        (out / "requests.json").write_text(json.dumps([c for c in mem.calls if c["method"] == "get.calls_report"]))
        print(f"serving at {mem.url}; files in {out}; key {sim.api_key}", flush=True)
        while True:
            time.sleep(3600)


def copy_of(value: Any) -> Any:
    return json.loads(json.dumps(value))


if __name__ == "__main__":
    serve()
