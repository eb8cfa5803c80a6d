"""What a warehouse has published, for tests that check it survives a fault.

``fingerprint(warehouse)`` is a row fingerprint of every published table
(scores, contributions, publications with their history rows): two calls give
the same value exactly when the same rows are published. It opens the file
read-only and closes it again.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

PUBLISHED = {
    "pci_monthly_scores": "score_month, partner_id",
    "pci_metric_contributions": "ALL",
    "pci_score_publications": "published_at, publication_id",
    "pci_score_publication_rows": "ALL",
}


def published_rows(warehouse: Path) -> dict[str, list[tuple]]:
    """Every row of every published table that exists, in a stable order."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        return {t: con.execute(f"SELECT * FROM main.{t} ORDER BY {order}").fetchall()
                for t, order in PUBLISHED.items() if t in present}
    finally:
        con.close()


def fingerprint(warehouse: Path) -> dict[str, str]:
    """table -> SHA-256 of its rows (see :func:`published_rows`)."""
    return {t: hashlib.sha256(repr(rows).encode()).hexdigest()
            for t, rows in published_rows(warehouse).items()}


def scores(warehouse: Path) -> dict[str, list[tuple]]:
    """The published scores and contributions, every column, by month (YYYY-MM)."""
    rows = published_rows(warehouse)
    out: dict[str, list[tuple]] = {}
    for table in ("pci_monthly_scores", "pci_metric_contributions"):
        for r in rows.get(table, []):
            out.setdefault(f"{table} {r[0]:%Y-%m}", []).append(r)
    return out
