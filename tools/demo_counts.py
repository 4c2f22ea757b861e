"""Print the row count of every table a Meltano run loaded into a DuckDB file (the README's quick start),
and, where a table holds several accounts (agency mode), the rows of each (`customer_id`).

    .meltano/loaders/target-duckdb/venv/bin/python -m tools.demo_counts output/demo.duckdb

Runs with any Python that has ``duckdb`` (the target-duckdb plugin's own venv has it). Exits 1 when the
file holds no table or an empty one, so the quick start fails loudly rather than printing zeros.
"""

from __future__ import annotations

import sys

import duckdb


def counts(path: str) -> list[tuple[str, str, int, list[tuple[int, int]]]]:
    """(schema, table, rows, [(customer_id, rows)] when the table holds more than one account)."""
    with duckdb.connect(path, read_only=True) as con:
        tables = con.execute(
            "SELECT table_catalog, table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' ORDER BY table_schema, table_name").fetchall()
        result = []
        for catalog, schema, table in tables:
            name = f'"{catalog}"."{schema}"."{table}"'
            columns = {r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()}
            per_account: list[tuple[int, int]] = []
            if "customer_id" in columns:
                per_account = [(int(c), int(n)) for c, n in con.execute(
                    f"SELECT customer_id, count(*) FROM {name} GROUP BY 1 ORDER BY 1").fetchall()]
            total = sum(n for _, n in per_account) if per_account else int(
                (con.execute(f"SELECT count(*) FROM {name}").fetchone() or (0,))[0])
            result.append((schema, table, total, per_account if len(per_account) > 1 else []))
        return result


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "output/demo.duckdb"
    rows = counts(path)
    width = max((len(f"{s}.{t}") for s, t, _, _ in rows), default=5)
    for schema, table, n, per_account in rows:
        accounts = "  ".join(f"{c}: {k}" for c, k in per_account)
        print(f"{schema}.{table}".ljust(width), f"{n:>8}", f"  {accounts}" if accounts else "")
    if not rows or any(n == 0 for _, _, n, _ in rows):
        print(f"{path}: no table, or an empty one", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
