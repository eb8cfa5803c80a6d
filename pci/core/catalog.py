"""The published tables of ``main`` and their publication record: names,
columns, creation, and which months are stale.

* ``main.pci_monthly_scores``       the contract's mart (raw-exports.md, section 4)
* ``main.pci_metric_contributions`` why a partner got its points
* ``main.pci_next_month_projection`` the projection of M+1 made at M (never a score)
* ``main.pci_score_publications``   one row per publication of a month
* ``main.pci_score_publication_rows`` the month's score rows as each publication published them

The columns of the two marts are read from their dbt model contracts, the one
statement of them. Landing (:mod:`pci.land.landing`) flags the publications a
new load makes stale (:func:`mark_stale`); publication
(:mod:`pci.publish.publication`) writes the tables.
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import yaml

from pci.core.contract import LOADS_TABLE, RAW_SCHEMA, add_months, month_range
from pci.core.project import PROJECT_DIR
from pci.core.warehouse import table_exists


#: the contracts' engine-neutral type names (both engines read ``string``) as the
#: DuckDB warehouse names them
_DUCKDB_TYPES = {"STRING": "VARCHAR"}


def _mart_columns(model: str) -> tuple[tuple[str, str], ...]:
    """``(name, TYPE)`` of a mart's columns, in order, from its dbt model contract
    (``models/marts/<model>.yml``, enforced by dbt at every build), with DuckDB's type
    names (the contract's ``string`` is DuckDB's ``VARCHAR``)."""
    doc = yaml.safe_load((PROJECT_DIR / "models" / "marts" / f"{model}.yml").read_text(encoding="utf-8"))
    node = next(m for m in doc["models"] if m["name"] == model)
    return tuple((c["name"], _DUCKDB_TYPES.get(str(c["data_type"]).upper(), str(c["data_type"]).upper()))
                 for c in node["columns"])


PUBLISH_SCHEMA = "main"
SCORES = "pci_monthly_scores"
CONTRIBUTIONS = "pci_metric_contributions"
#: the next month's projection made at each score month (docs/rules.md), published with it
PROJECTION = "pci_next_month_projection"
PUBLICATIONS = "pci_score_publications"
PUBLICATION_ROWS = "pci_score_publication_rows"

#: the analysts' read-only copy of the published tables (pci.publish.analyst_copy writes
#: it, pci.read.mart reads it): <warehouse folder>/analyst/<warehouse name>, with two
#: tables of its own, and a marker beside it while its last refresh failed
COPY_DIR = "analyst"
INFO = "analyst_copy_info"
MONTHS = "analyst_copy_months"

#: the columns of pci_monthly_scores (the output contract, raw-exports.md section 4)
#: and of pci_metric_contributions, as their dbt model contracts state them
SCORE_COLUMNS = _mart_columns(SCORES)
CONTRIBUTION_COLUMNS = _mart_columns(CONTRIBUTIONS)
PROJECTION_COLUMNS = _mart_columns(PROJECTION)
SCORE_NAMES = tuple(c for c, _ in SCORE_COLUMNS)
CONTRIBUTION_NAMES = tuple(c for c, _ in CONTRIBUTION_COLUMNS)
PROJECTION_NAMES = tuple(c for c, _ in PROJECTION_COLUMNS)


def columns_sql(columns) -> str:
    """``name TYPE`` of (name, type) columns, for a CREATE TABLE."""
    return ",\n  ".join(f"{n} {t}" for n, t in columns)


def ensure_publish_schema(con) -> None:
    """Create the published tables if missing (idempotent)."""
    s = PUBLISH_SCHEMA
    con.execute(f"CREATE TABLE IF NOT EXISTS {s}.{SCORES} (\n  {columns_sql(SCORE_COLUMNS)},\n"
                f"  PRIMARY KEY (score_month, partner_id))")
    con.execute(f"CREATE TABLE IF NOT EXISTS {s}.{CONTRIBUTIONS} (\n  {columns_sql(CONTRIBUTION_COLUMNS)})")
    con.execute(f"CREATE TABLE IF NOT EXISTS {s}.{PROJECTION} (\n  {columns_sql(PROJECTION_COLUMNS)},\n"
                f"  PRIMARY KEY (score_month, partner_id))")
    # warehouses published when amounts had 4 decimals: widen, never round (raw-exports.md, section 2)
    amount_type = con.execute(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "AND column_name = 'amount'", [s, CONTRIBUTIONS]).fetchall()
    if amount_type and amount_type[0][0] != dict(CONTRIBUTION_COLUMNS)["amount"]:
        con.execute(f"ALTER TABLE {s}.{CONTRIBUTIONS} ALTER amount TYPE {dict(CONTRIBUTION_COLUMNS)['amount']}")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {s}.{PUBLICATIONS} (
  publication_id VARCHAR PRIMARY KEY,
  score_month DATE NOT NULL,
  published_at TIMESTAMP NOT NULL,
  run_id VARCHAR,
  input_load_ids VARCHAR NOT NULL,
  row_count INTEGER NOT NULL,
  scores_sha256 VARCHAR NOT NULL,
  contributions_sha256 VARCHAR NOT NULL,
  supersedes VARCHAR,
  changed_partners INTEGER NOT NULL,
  stale BOOLEAN NOT NULL DEFAULT false
)""")
    # warehouses published before the flag existed
    con.execute(f"ALTER TABLE {s}.{PUBLICATIONS} ADD COLUMN IF NOT EXISTS stale BOOLEAN DEFAULT false")
    con.execute(f"CREATE TABLE IF NOT EXISTS {s}.{PUBLICATION_ROWS} (\n"
                f"  publication_id VARCHAR NOT NULL,\n  {columns_sql(SCORE_COLUMNS)})")


def input_load_ids(con, month: date) -> list[str]:
    """The current loads of the months the score of ``month`` reads (M-12 … M)."""
    if not table_exists(con, RAW_SCHEMA, LOADS_TABLE):
        return []
    rows = con.execute(
        f"SELECT load_id FROM {RAW_SCHEMA}.{LOADS_TABLE} WHERE is_current "
        f"AND export_month BETWEEN ? AND ? ORDER BY export_month, load_id",
        [add_months(month, -12), month]).fetchall()
    return [r[0] for r in rows]


def latest_publication(con, month: date) -> dict | None:
    if not table_exists(con, PUBLISH_SCHEMA, PUBLICATIONS):
        return None
    rows = con.execute(
        f"SELECT publication_id, input_load_ids, scores_sha256, contributions_sha256, published_at "
        f"FROM {PUBLISH_SCHEMA}.{PUBLICATIONS} WHERE score_month = ? "
        f"ORDER BY published_at DESC, publication_id DESC LIMIT 1", [month]).fetchall()
    if not rows:
        return None
    pid, loads, s, c, at = rows[0]
    return {"publication_id": pid, "input_load_ids": json.loads(loads),
            "scores_sha256": s, "contributions_sha256": c, "published_at": at}


def published_months(con) -> list[date]:
    if not table_exists(con, PUBLISH_SCHEMA, PUBLICATIONS):
        return []
    return [r[0] for r in con.execute(
        f"SELECT DISTINCT score_month FROM {PUBLISH_SCHEMA}.{PUBLICATIONS} ORDER BY 1").fetchall()]


def _current_loads_by_month(con) -> dict[date, list[str]]:
    if not table_exists(con, RAW_SCHEMA, LOADS_TABLE):
        return {}
    out: dict[date, list[str]] = {}
    for m, lid in con.execute(f"SELECT export_month, load_id FROM {RAW_SCHEMA}.{LOADS_TABLE} "
                              f"WHERE is_current ORDER BY export_month, load_id").fetchall():
        out.setdefault(m, []).append(lid)
    return out


def stale_months(con) -> list[date]:
    """Published months whose latest publication read loads that are no longer the
    current ones (a month of its window ``M-12 … M`` was landed again since), oldest
    first. Such a month's published scores read superseded data."""
    if not table_exists(con, PUBLISH_SCHEMA, PUBLICATIONS):
        return []
    current = _current_loads_by_month(con)
    latest = con.execute(
        f"SELECT score_month, arg_max(input_load_ids, (published_at, publication_id)) "
        f"FROM {PUBLISH_SCHEMA}.{PUBLICATIONS} GROUP BY score_month ORDER BY score_month").fetchall()
    out = []
    for month, loads in latest:
        now = [lid for m in month_range(add_months(month, -12), month) for lid in current.get(m, [])]
        if json.loads(loads) != now:
            out.append(month)
    return out


def mark_stale(con) -> list[date]:
    """Set the ``stale`` flag of every month's latest publication to whether it reads
    superseded data (:func:`stale_months`); return those months. Called after every
    landing and publication, so that analysts see it in ``pci_score_publications``."""
    if not table_exists(con, PUBLISH_SCHEMA, PUBLICATIONS):
        return []
    ensure_publish_schema(con)
    return set_stale_flags(con)


def set_stale_flags(con) -> list[date]:
    stale = stale_months(con)
    latest = (f"publication_id IN (SELECT arg_max(publication_id, (published_at, publication_id)) "
              f"FROM {PUBLISH_SCHEMA}.{PUBLICATIONS} GROUP BY score_month)")
    con.execute(f"UPDATE {PUBLISH_SCHEMA}.{PUBLICATIONS} SET stale = (score_month IN "
                f"(SELECT unnest(?::DATE[]))) WHERE {latest} "
                f"AND stale IS DISTINCT FROM (score_month IN (SELECT unnest(?::DATE[])))",
                [stale, stale])
    return stale


def stale_later_months(con, month: date) -> list[date]:
    """Published months M' in M+1 … M+12 whose latest publication read inputs that
    are no longer the current loads (e.g. month M was landed again)."""
    return [m for m in stale_months(con) if month < m <= add_months(month, 12)]


# --------------------------------------------------------------------------- the analysts' copy

def copy_path(warehouse: Path) -> Path:
    """Where the read-only copy of ``warehouse`` lives: ``<folder>/analyst/<name>``."""
    warehouse = Path(warehouse)
    return warehouse.parent / COPY_DIR / warehouse.name


def marker_path(copy: Path) -> Path:
    """The file beside the copy saying that its last refresh failed:
    ``<folder>/analyst/.<name>.refresh-failed.json``."""
    copy = Path(copy)
    return copy.parent / f".{copy.name}.refresh-failed.json"


#: the command that completes a failed refresh of the copy
COMPLETE_WITH = "python -m pci refresh-copy --warehouse {warehouse}"
