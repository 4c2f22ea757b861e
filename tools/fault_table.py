"""Print, per fault kind, what was injected and retried and whether anything was lost or duplicated.

Run with ``python -m tools.fault_table [runs per kind]``; not a test module (pytest does not collect it).
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from tests.reliability_helpers import FAULT_KINDS, FaultRun, fault_run


def table(runs_per_kind: int = 3) -> list[tuple[str, int, int, int, int, int, int]]:
    rows = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for kind in FAULT_KINDS:
            results: list[FaultRun] = list(pool.map(lambda seed, k=kind: fault_run(k, seed),
                                                    range(1, runs_per_kind + 1)))
            rows.append((kind, sum(r.injected for r in results), sum(r.retried for r in results),
                         sum(r.comparison.records for r in results), sum(r.comparison.lost for r in results),
                         sum(r.comparison.duplicates for r in results),
                         sum(1 for r in results if r.returncode != 0)))
    return rows


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    head = ("fault kind", "injected", "retried", "records", "lost", "duplicates", "failed runs")
    print(f"{runs} seeded runs per kind")
    print(" | ".join(f"{h:>14}" for h in head))
    bad = False
    for row in table(runs):
        print(" | ".join(f"{v:>14}" for v in row))
        bad = bad or row[4] != 0 or row[6] != 0
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
