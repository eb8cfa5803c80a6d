"""Audit and publication of built score months when the warehouse is on Apache Spark.

The same write-audit-publish as on DuckDB (:mod:`pci.publish.audit`,
:mod:`pci.publish.publication`), with the DuckDB code itself deciding, on a
**workspace** (:func:`pci.core.warehouse.workspace`, DuckDB in memory) that holds
copies of the month's rows made through Arrow (:func:`pci.core.spark.to_workspace`):

* :func:`audit_month_spark` copies the month's rows of the three marts of
  ``pci_build`` and the month's ``raw.partners`` into a workspace, under the same
  names, and runs the unchanged :func:`pci.publish.audit.audit_month` on it: the
  same verdicts, reports and fingerprints as DuckDB computes on the same rows.
  Every column is cast to the type of its dbt contract on the way (a no-op on a
  build that honours the contract), so the fingerprint does not depend on the
  engine. The workspace is in memory, so a failed GX suite writes no Data Docs
  (the report lists every failure, with counts and examples). ``raw.loads`` is not
  copied: the audit does not read it.
* :func:`publish_months_spark` publishes audited months into the Spark database
  ``main``:

  - ``pci_monthly_scores``, ``pci_metric_contributions``, ``pci_next_month_projection``:
    Parquet, partitioned by ``score_month``, the columns of the dbt contracts
    (:mod:`pci.core.catalog`);
  - ``pci_score_publications`` (one row per publication, the columns of the DuckDB
    table) and ``pci_score_publication_rows`` (partitioned by ``score_month``):
    the history, append-only.

  The decision is :func:`pci.publish.publication.publish_months` itself, run on a
  workspace holding the months' built rows, their ``raw.partners``, ``raw.loads``,
  every publication record, the published projection of the months and, as the
  months' published scores, the rows their latest publication recorded. So the
  fingerprint is checked again against the rows now in ``pci_build`` (a mismatch
  raises :class:`~pci.publish.publication.PublishError` before anything is written
  to Spark), and the status (``published``, ``restated``, ``unchanged``), the
  changed partners, ``supersedes``, the publication id, the input loads and the
  later months left stale are exactly DuckDB's. Then, for each month not
  ``unchanged``, Spark writes, in this order:

  1. the marts: ``INSERT OVERWRITE TABLE main.<mart> PARTITION (score_month = DATE
     'M') SELECT … FROM pci_build.<mart> WHERE score_month = DATE 'M'``: a static
     partition, so that a month with no rows empties it (the catalog keeps the
     partition; Spark 4.0 deletes its folder when it held rows). A dynamic overwrite
     (``partitionOverwriteMode: dynamic``, the session's) would leave the old rows;
  2. the month's score rows into ``pci_score_publication_rows``;
  3. last, the record: the new rows of ``pci_score_publications``.

  **Spark has no transaction across tables** (each statement commits its own
  files). A reader may see a month's new scores beside its old contributions while
  step 1 runs, and months of one call are not switched together. A process that
  dies before step 3 leaves marts that no publication records (a first
  publication: a month the reader refuses as unpublished) and perhaps history rows
  of an id that has no record (leftovers: a reader of the history joins the rows to
  their record); nothing else. Running the same publication again repairs it: the
  workspace compares the build with the rows the *latest record* published, not
  with the marts, so the month is republished (status, changed partners and record
  as they should have been) and the marts are overwritten with the same rows.
  (Should the build be changed back to the recorded rows, with the same loads, before
  that run, the month is ``unchanged`` and its marts keep the unrecorded rows: run
  the publication that died again, not another one.)

* Staleness: Parquet has no UPDATE, so the ``stale`` column of a record keeps
  the value it had when written (false) and :func:`stale_months_spark` computes the
  stale months on read, with :func:`pci.core.catalog.stale_months` on a workspace.

One writer at a time: the warehouse lock (and Derby's embedded metastore) ensures
that nothing changes ``pci_build`` between the check of the fingerprint and the
writes.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

from pci.core.catalog import (CONTRIBUTION_COLUMNS, CONTRIBUTIONS, PROJECTION, PROJECTION_COLUMNS,
                              PUBLICATION_ROWS, PUBLICATIONS, PUBLISH_SCHEMA, SCORE_COLUMNS, SCORES,
                              ensure_publish_schema, latest_publication, stale_months)
from pci.core.contract import BUILD_SCHEMA, FILES_BY_NAME, LINEAGE_COLUMNS, LOADS_TABLE, RAW_SCHEMA
from pci.core.spark import (LOADS_COLUMNS, create_table_sql, quote_identifier, session, spark_type,
                            table_exists, to_workspace)
from pci.core.warehouse import workspace
from pci.publish.audit import MartAudit, audit_month
from pci.publish.publication import PublishError, PublishResult, publish_months

__all__ = ["audit_month_spark", "publish_months_spark", "stale_months_spark",
           "ensure_publish_schema_spark", "PublishError"]

MONTH = "score_month"
#: the three marts, published together
MARTS = ((SCORES, SCORE_COLUMNS), (CONTRIBUTIONS, CONTRIBUTION_COLUMNS),
         (PROJECTION, PROJECTION_COLUMNS))
#: main.pci_score_publications, as pci.core.catalog.ensure_publish_schema creates it on DuckDB
PUBLICATION_COLUMNS = (
    ("publication_id", "VARCHAR"), ("score_month", "DATE"), ("published_at", "TIMESTAMP"),
    ("run_id", "VARCHAR"), ("input_load_ids", "VARCHAR"), ("row_count", "INTEGER"),
    ("scores_sha256", "VARCHAR"), ("contributions_sha256", "VARCHAR"), ("supersedes", "VARCHAR"),
    ("changed_partners", "INTEGER"), ("stale", "BOOLEAN"))
PUBLICATION_ROW_COLUMNS = (("publication_id", "VARCHAR"), *SCORE_COLUMNS)
PARTNER_COLUMNS = tuple((c.name, c.duckdb_type)
                        for c in (*FILES_BY_NAME["partners"].columns, *LINEAGE_COLUMNS))
_VIEW = "_pci_new_publications"


# ----------------------------------------------------------------------------- SQL text

def _month(month: date) -> str:
    return f"DATE '{month.isoformat()}'"


def _months_in(months) -> str:
    return ", ".join(_month(m) for m in months)


def _literal(text: str) -> str:
    """A Spark SQL string literal (backslash escapes, Spark's default)."""
    return "'" + str(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _select(columns, skip: str | None = None, *, workspace_types: bool = False) -> str:
    """The columns cast to their contract types (``TIMESTAMP_NTZ`` for a workspace:
    DuckDB's TIMESTAMP has no time zone; the session's is UTC)."""
    out = []
    for name, duckdb_type in columns:
        if name == skip:
            continue
        t = spark_type(duckdb_type)
        if workspace_types and t == "TIMESTAMP":
            t = "TIMESTAMP_NTZ"
        out.append(f"CAST({quote_identifier(name)} AS {t}) AS {quote_identifier(name)}")
    return ", ".join(out)


def _copy(spark, ws, schema: str, table: str, columns, where: str = "true") -> bool:
    """``schema.table``'s rows matching ``where`` into the workspace (False: no table)."""
    if not table_exists(spark, schema, table):
        return False
    to_workspace(spark, ws, schema, table, f"SELECT {_select(columns, workspace_types=True)} "
                                           f"FROM {schema}.{table} WHERE {where}")
    return True


def _copy_built(spark, ws, months) -> None:
    """The months' rows of the built marts and of the partners of their exports."""
    for table, columns in MARTS:
        _copy(spark, ws, BUILD_SCHEMA, table, columns, f"{MONTH} IN ({_months_in(months)})")
    _copy(spark, ws, RAW_SCHEMA, "partners", PARTNER_COLUMNS,
          f"export_month IN ({_months_in(months)})")


def _copy_record(spark, ws) -> None:
    """Every publication record and every load (both one row per month or publication)."""
    _copy(spark, ws, PUBLISH_SCHEMA, PUBLICATIONS, PUBLICATION_COLUMNS)
    _copy(spark, ws, RAW_SCHEMA, LOADS_TABLE, LOADS_COLUMNS)


# ----------------------------------------------------------------------------- the audit

def audit_month_spark(warehouse: Path | str, month: date) -> MartAudit:
    """:func:`pci.publish.audit.audit_month` of ``month`` in the Spark warehouse
    ``warehouse``, on a workspace copy of the month's rows; never raises on bad data."""
    spark = session(warehouse)
    ws = workspace()
    try:
        _copy_built(spark, ws, [month])
        return audit_month(ws, month)
    finally:
        ws.close()


# ----------------------------------------------------------------------------- publication

def ensure_publish_schema_spark(spark) -> None:
    """The database ``main`` and its five published tables (idempotent)."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {PUBLISH_SCHEMA}")
    for table, columns in MARTS:
        spark.sql(create_table_sql(PUBLISH_SCHEMA, table, columns, partition_by=MONTH))
    spark.sql(create_table_sql(PUBLISH_SCHEMA, PUBLICATIONS, PUBLICATION_COLUMNS))
    spark.sql(create_table_sql(PUBLISH_SCHEMA, PUBLICATION_ROWS, PUBLICATION_ROW_COLUMNS,
                               partition_by=MONTH))


def _published_workspace(spark, months):
    """A workspace for :func:`pci.publish.publication.publish_months`: the months'
    built rows and partners, the loads, every record, the months' published
    projection, and as their published scores the rows of their latest record."""
    ws = workspace()
    _copy_built(spark, ws, months)
    _copy_record(spark, ws)
    previous = {m: p["publication_id"] for m in months if (p := latest_publication(ws, m))}
    if previous:  # (a month published for the first time has no published rows)
        where = f"{MONTH} IN ({_months_in(previous)})"
        _copy(spark, ws, PUBLISH_SCHEMA, PROJECTION, PROJECTION_COLUMNS, where)
        to_workspace(spark, ws, "recorded", SCORES,
                     f"SELECT {_select(SCORE_COLUMNS, workspace_types=True)} "
                     f"FROM {PUBLISH_SCHEMA}.{PUBLICATION_ROWS} WHERE {where} AND publication_id "
                     f"IN ({', '.join(_literal(p) for p in previous.values())})")
    ensure_publish_schema(ws)  # the other published tables, with DuckDB's DDL
    if previous:
        names = ", ".join(n for n, _ in SCORE_COLUMNS)
        ws.execute(f"INSERT INTO {PUBLISH_SCHEMA}.{SCORES} ({names}) "
                   f"SELECT {names} FROM recorded.{SCORES}")
    return ws


def publish_months_spark(warehouse: Path | str, audited_months: list[tuple[date, dict]],
                         run_id: str | None) -> list[PublishResult]:
    """Publish the audited months (``[(month, fingerprint)]``) into the Spark database
    ``main`` (see the module's docstring); the results of
    :func:`pci.publish.publication.publish_months`. Raises
    :class:`~pci.publish.publication.PublishError` with nothing written when a month
    cannot be published (its built rows changed after the audit, ...)."""
    spark = session(warehouse)
    for table in (SCORES, CONTRIBUTIONS):
        if not table_exists(spark, BUILD_SCHEMA, table):
            raise PublishError(f"{BUILD_SCHEMA}.{table} does not exist: build the month first")
    ensure_publish_schema_spark(spark)
    months = sorted({m for m, _ in audited_months})
    if not months:
        return []
    ws = _published_workspace(spark, months)
    try:
        results = publish_months(ws, audited_months, run_id=run_id)
        new = [r for r in results if r.status != "unchanged"]
        if new:
            _write(spark, ws, new)
    finally:
        ws.close()
    return results


def _write(spark, ws, new: list[PublishResult]) -> None:
    """The Spark statements of the publications ``new``: marts, history rows, records."""
    marts = [(t, c) for t, c in MARTS if t != PROJECTION or table_exists(spark, BUILD_SCHEMA, t)]
    for r in new:
        for table, columns in marts:
            spark.sql(f"INSERT OVERWRITE TABLE {PUBLISH_SCHEMA}.{table} "
                      f"PARTITION ({MONTH} = {_month(r.score_month)}) "
                      f"SELECT {_select(columns, skip=MONTH)} FROM {BUILD_SCHEMA}.{table} "
                      f"WHERE {MONTH} = {_month(r.score_month)}")
    for r in new:
        spark.sql(f"INSERT INTO {PUBLISH_SCHEMA}.{PUBLICATION_ROWS} "
                  f"SELECT :publication_id AS publication_id, {_select(SCORE_COLUMNS, skip=MONTH)}, "
                  f"{MONTH} FROM {BUILD_SCHEMA}.{SCORES} WHERE {MONTH} = {_month(r.score_month)}",
                  args={"publication_id": r.publication_id})
    # the record, last: the workspace's new rows (published_at as text, read back in
    # the session's time zone, UTC, as DuckDB wrote it)
    names = ", ".join("CAST(published_at AS VARCHAR) AS published_at" if n == "published_at" else n
                      for n, _ in PUBLICATION_COLUMNS)
    arrow = ws.sql(f"SELECT {names} FROM {PUBLISH_SCHEMA}.{PUBLICATIONS} "
                   f"WHERE list_contains(?, publication_id)",
                   params=[[r.publication_id for r in new]]).to_arrow_table()
    spark.createDataFrame(arrow).createOrReplaceTempView(_VIEW)
    try:
        spark.sql(f"INSERT INTO {PUBLISH_SCHEMA}.{PUBLICATIONS} "
                  f"SELECT {_select(PUBLICATION_COLUMNS)} FROM {_VIEW}")
    finally:
        spark.catalog.dropTempView(_VIEW)


# ----------------------------------------------------------------------------- staleness

def stale_months_spark(spark) -> list[date]:
    """The published months whose latest publication read loads that are no longer
    the current ones (:func:`pci.core.catalog.stale_months`), oldest first."""
    if not table_exists(spark, PUBLISH_SCHEMA, PUBLICATIONS):
        return []
    ws = workspace()
    try:
        _copy_record(spark, ws)
        return stale_months(ws)
    finally:
        ws.close()
