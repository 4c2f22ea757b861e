"""STATE messages in a run of many clients.

``python -m tools.bench_many_clients 40`` serves an agent with 40 small clients (20 days, one-day windows, the
default streams) and, after an untimed run that makes the simulator build every client's data, runs the tap
over all of them twice: writing the state after every window, then through the tap's WindowStates gate. It
prints wall time, records, and the count and size of the STATE messages.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from tap_comagic.sandbox import CustomerConfig, CustomerUser, Sandbox, SandboxConfig

# the gate opened wide: every window's state is written, however dear
EVERY_WINDOW = "import tap_comagic.context as c; c.WindowStates.__init__.__defaults__ = (c.time.monotonic, 0.02, 1e9);"
RUN_TAP = "import sys; from tap_comagic.tap import main; sys.argv = ['tap-comagic', '--config', sys.argv[1]]; main()"


def agency(clients: int) -> SandboxConfig:
    base = SandboxConfig(days=20, calls_per_day=5, chats_per_day=1, goals_per_day=2, offline_messages_per_day=1,
                         visitor_sessions_per_day=2, api_requests_per_day=1)
    customers = tuple(
        CustomerConfig(id=6000 + i, name=f"client {i}", account=replace(base, seed=100 + i, api_keys=(f"key-{i}",)),
                       users=(CustomerUser(id=80000 + i, login=f"user-{i}", name="API"),))
        for i in range(clients))
    return replace(base, customers=customers, agent_api_keys=("agent-key",))


def run(sandbox: Sandbox, clients: int, gated: bool) -> str:
    config = {"api_url": sandbox.url, "access_token": "agent-key", "customers": "all", "start_date": "2026-01-01",
              "end_date": "2026-01-20 23:59:59", "window_days": 1}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        began = time.monotonic()
        out = subprocess.run([sys.executable, "-c", ("" if gated else EVERY_WINDOW) + RUN_TAP, str(path)],
                             capture_output=True, text=True, check=False)
        wall = time.monotonic() - began
    lines = out.stdout.splitlines()
    states = [line for line in lines if line.startswith('{"type":"STATE"')]
    records = sum(1 for line in lines if line.startswith('{"type":"RECORD"'))
    megabytes = sum(map(len, states)) / 1e6
    return (f"{clients} clients, {'gate' if gated else 'every window'}: wall {wall:.1f} s, {records:,} records, "
            f"{len(states):,} STATE messages ({megabytes:.1f} MB), exit {out.returncode}")


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    with Sandbox(agency(clients)) as sandbox:
        run(sandbox, clients, gated=True)  # the first run's wall would include the simulator building the data
        for gated in (False, True):
            print(run(sandbox, clients, gated), flush=True)


if __name__ == "__main__":
    main()
