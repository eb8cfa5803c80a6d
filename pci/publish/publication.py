"""Write, audit, publish: move one built score month from ``pci_build`` into ``main``.

dbt builds into ``pci_build`` (write). The month is then audited: the dbt data
and unit tests ran in the build, and :mod:`pci.publish.audit` runs the Great
Expectations suite ``expectations/pci_monthly_scores.json`` plus the structural
checks on the month's rows (audit). Only then :func:`publish_month` swaps the
month's rows into the published tables in ONE DuckDB transaction (publish):

* ``main.pci_monthly_scores``       the contract's mart (raw-exports.md, section 4)
* ``main.pci_metric_contributions`` why a partner got its points
* ``main.pci_next_month_projection`` the projection of M+1 made at M, published with M
* ``main.pci_score_publications``   one row per publication of a month
* ``main.pci_score_publication_rows`` the month's score rows as each publication published them

A reader sees a month's old rows or its new rows, never a mix: DuckDB commits
the delete and the insert together, and a process killed before the commit
leaves the previous state (the write-ahead log of an uncommitted transaction is
discarded on the next open).

Publishing a month whose built rows and input loads are identical to its latest
publication changes nothing and records no new publication (the result says
``unchanged``). A month published again with different inputs is a
restatement: the result names the later published months whose trailing window
(``M' - 12 … M'``) contains the month and whose own publication used inputs that
are no longer current, so they can be run again.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from pci.core.catalog import (CONTRIBUTION_NAMES, CONTRIBUTIONS, PROJECTION, PROJECTION_NAMES,
                              PUBLICATION_ROWS, PUBLICATIONS, PUBLISH_SCHEMA, SCORE_NAMES, SCORES,
                              ensure_publish_schema, input_load_ids, latest_publication, set_stale_flags,
                              stale_later_months)
from pci.core.contract import BUILD_SCHEMA, RAW_SCHEMA, format_month
from pci.core.errors import Refusal
from pci.core.warehouse import table_exists


class PublishError(Refusal):
    """The month cannot be published (nothing was changed)."""


@dataclass
class PublishResult:
    score_month: date
    status: str  # "published" (first time), "restated", or "unchanged"
    publication_id: str | None
    rows: int
    input_load_ids: list[str]
    changed_partners: list[str] = field(default_factory=list)
    stale_later_months: list[date] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{format_month(self.score_month)}: {self.status}, {self.rows} partner rows"
        if self.status == "restated":
            text += f", {len(self.changed_partners)} partner rows changed"
        if self.stale_later_months:
            text += ("; later published months to run again (their window contains it): "
                     + ", ".join(format_month(m) for m in self.stale_later_months))
        return text

    def as_dict(self) -> dict:
        return {
            "score_month": format_month(self.score_month),
            "status": self.status,
            "publication_id": self.publication_id,
            "rows": self.rows,
            "input_load_ids": self.input_load_ids,
            "changed_partners": self.changed_partners,
            "stale_later_months": [format_month(m) for m in self.stale_later_months],
        }


def _rows_sha256(con, schema: str, table: str, names, month: date) -> tuple[str, int]:
    """A digest of the month's rows in ``schema.table``: SHA-256 of the row count and
    the sum of DuckDB's 64-bit hash of every row, so the rows are compared where they
    are, without sorting or fetching them (676k contribution rows a month at medium
    scale). Any changed, added or removed row changes it; the order of rows does not."""
    cols = ", ".join(names)
    n, total = con.execute(
        f"SELECT count(*), coalesce(sum(hash({cols})), 0) FROM {schema}.{table} "
        f"WHERE score_month = ?", [month]).fetchall()[0]
    return hashlib.sha256(f"{n}:{total}".encode()).hexdigest(), int(n)


def fingerprint(con, month: date, schema: str = BUILD_SCHEMA) -> dict:
    """Checksums of the month's score, contribution and projection rows in ``schema``
    (``projection_sha256`` None where the schema has no projection table)."""
    scores, n = _rows_sha256(con, schema, SCORES, SCORE_NAMES, month)
    contrib, m = _rows_sha256(con, schema, CONTRIBUTIONS, CONTRIBUTION_NAMES, month)
    projection = (_rows_sha256(con, schema, PROJECTION, PROJECTION_NAMES, month)[0]
                  if table_exists(con, schema, PROJECTION) else None)
    return {"score_month": format_month(month), "scores_sha256": scores, "rows": n,
            "contributions_sha256": contrib, "contribution_rows": m, "projection_sha256": projection}


def _export_partner_count(con, month: date) -> int | None:
    """Partners in the month's current export (None when raw.partners is absent)."""
    if not table_exists(con, RAW_SCHEMA, "partners"):
        return None
    return con.execute(f"SELECT count(*) FROM {RAW_SCHEMA}.partners WHERE export_month = ?",
                       [month]).fetchall()[0][0]


def publish_month(con, month: date, *, run_id: str | None, audited: dict) -> PublishResult:
    """Swap the built rows of ``month`` into ``main`` in one transaction.

    ``audited`` is the fingerprint the audit step computed
    (:func:`fingerprint`); the rows are published only if the built rows still
    match it, so exactly what was audited is what gets published.
    """
    return publish_months(con, [(month, audited)], run_id=run_id)[0]


def publish_months(con, audited_months: list[tuple[date, dict]], *,
                   run_id: str | None) -> list[PublishResult]:
    """Publish several audited months in ONE transaction (a restatement republishes
    a month and the later months whose window reads it together: a reader never
    sees some of them restated and others not). Raises :class:`PublishError`
    (nothing changed) when any month cannot be published.

    A month may have zero rows: a month whose export lists no partner is published
    with ``row_count`` 0 (raw-exports.md, section 4 gives such a month no rows).
    """
    ensure_publish_schema(con)
    for table in (SCORES, CONTRIBUTIONS):
        if not table_exists(con, BUILD_SCHEMA, table):
            raise PublishError(f"{BUILD_SCHEMA}.{table} does not exist: build the month first")
    pending = []
    con.execute("BEGIN TRANSACTION")
    try:
        for month, audited in audited_months:
            pending.append(_publish_one(con, month, run_id, audited))
        if any(r.status != "unchanged" for r in pending):
            set_stale_flags(con)
            con.execute("COMMIT")
        else:
            con.execute("ROLLBACK")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - already rolled back / connection gone
            pass
        raise
    for r in pending:
        r.stale_later_months = stale_later_months(con, r.score_month)
    return pending


def _publish_one(con, month: date, run_id: str | None, audited: dict) -> PublishResult:
    """The statements of one month's publication, inside the caller's transaction."""
    now = fingerprint(con, month)
    if (now["scores_sha256"], now["contributions_sha256"]) != (
            audited.get("scores_sha256"), audited.get("contributions_sha256")) or (
            audited.get("projection_sha256", now["projection_sha256"]) != now["projection_sha256"]):
        raise PublishError(
            f"{format_month(month)}: the rows in {BUILD_SCHEMA} changed after the audit "
            f"(audited {audited.get('rows')} rows, {audited.get('scores_sha256', '')[:12]}; "
            f"found {now['rows']} rows, {now['scores_sha256'][:12]}); run the month again")
    if now["rows"] == 0 and _export_partner_count(con, month) != 0:
        raise PublishError(f"{format_month(month)}: no rows built for the month, "
                           f"whose export lists partners")
    loads = input_load_ids(con, month)
    prev = latest_publication(con, month)
    if (prev is not None and prev["input_load_ids"] == loads
            and prev["scores_sha256"] == now["scores_sha256"]
            and prev["contributions_sha256"] == now["contributions_sha256"]
            and now["projection_sha256"] in (
                None, _rows_sha256(con, PUBLISH_SCHEMA, PROJECTION, PROJECTION_NAMES, month)[0])):
        return PublishResult(month, "unchanged", prev["publication_id"], now["rows"], loads)
    changed = [r[0] for r in con.execute(
        f"""SELECT partner_id FROM (
              (SELECT {', '.join(SCORE_NAMES)} FROM {BUILD_SCHEMA}.{SCORES} WHERE score_month = $1
               EXCEPT SELECT {', '.join(SCORE_NAMES)} FROM {PUBLISH_SCHEMA}.{SCORES} WHERE score_month = $1)
              UNION
              (SELECT {', '.join(SCORE_NAMES)} FROM {PUBLISH_SCHEMA}.{SCORES} WHERE score_month = $1
               EXCEPT SELECT {', '.join(SCORE_NAMES)} FROM {BUILD_SCHEMA}.{SCORES} WHERE score_month = $1)
            ) GROUP BY partner_id ORDER BY partner_id""", [month]).fetchall()]
    pub_id = uuid.uuid4().hex
    published = [(SCORES, SCORE_NAMES), (CONTRIBUTIONS, CONTRIBUTION_NAMES)]
    if now["projection_sha256"] is not None:  # the projection made at the month, with it
        published.append((PROJECTION, PROJECTION_NAMES))
    for table, names in published:
        cols = ", ".join(names)
        con.execute(f"DELETE FROM {PUBLISH_SCHEMA}.{table} WHERE score_month = ?", [month])
        con.execute(f"INSERT INTO {PUBLISH_SCHEMA}.{table} ({cols}) "
                    f"SELECT {cols} FROM {BUILD_SCHEMA}.{table} WHERE score_month = ?", [month])
    con.execute(
        f"INSERT INTO {PUBLISH_SCHEMA}.{PUBLICATIONS} (publication_id, score_month, published_at, "
        f"run_id, input_load_ids, row_count, scores_sha256, contributions_sha256, supersedes, "
        f"changed_partners, stale) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, false)",
        [pub_id, month, datetime.now(timezone.utc).replace(tzinfo=None), run_id,
         json.dumps(loads), now["rows"], now["scores_sha256"], now["contributions_sha256"],
         prev["publication_id"] if prev else None, len(changed) if prev else 0])
    cols = ", ".join(SCORE_NAMES)
    con.execute(f"INSERT INTO {PUBLISH_SCHEMA}.{PUBLICATION_ROWS} (publication_id, {cols}) "
                f"SELECT ?, {cols} FROM {BUILD_SCHEMA}.{SCORES} WHERE score_month = ?",
                [pub_id, month])
    return PublishResult(month, "restated" if prev else "published", pub_id, now["rows"], loads,
                         changed if prev else [])
