"""Print the row count of every table a Meltano run loaded into a DuckDB file (the README's quick start).

    .meltano/loaders/target-duckdb/venv/bin/python -m tools.demo_counts output/demo.duckdb

Runs with any Python that has ``duckdb`` (the target-duckdb plugin's own venv has it). Exits 1 when the
file holds no table or an empty one, so the quick start fails loudly rather than printing zeros.
"""

from __future__ import annotations

import sys

import duckdb


def counts(path: str) -> list[tuple[str, str, int]]:
    with duckdb.connect(path, read_only=True) as con:
        tables = con.execute(
            "SELECT table_catalog, table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' ORDER BY table_schema, table_name").fetchall()
        result = []
        for catalog, schema, table in tables:
            (n,) = con.execute(f'SELECT count(*) FROM "{catalog}"."{schema}"."{table}"').fetchone() or (0,)
            result.append((schema, table, int(n)))
        return result


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "output/demo.duckdb"
    rows = counts(path)
    width = max((len(f"{s}.{t}") for s, t, _ in rows), default=5)
    for schema, table, n in rows:
        print(f"{schema}.{table}".ljust(width), f"{n:>8}")
    if not rows or any(n == 0 for _, _, n in rows):
        print(f"{path}: no table, or an empty one", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
