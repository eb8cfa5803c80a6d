"""Landing a month's export into a Spark warehouse (the second engine).

A Spark warehouse is a folder ``W`` (:mod:`pci.core.spark`): ``raw.<file>`` and
``raw_archive.<file>`` are Parquet tables partitioned by ``export_month``,
``raw.loads`` a small unpartitioned Parquet table. ``land_month(landing_dir, W,
month)`` behaves as :func:`pci.land.landing.land_month` does on DuckDB:

1. no ``_manifest.json``: :class:`~pci.land.landing.NotReady`, nothing touched;
2. the same manifest (sha256) is already the month's current load in
   ``raw.loads``: status ``unchanged``, nothing written;
3. validation: the export read by Spark and screened (:func:`pci.land.spark_validation.screen_month`:
   Spark's CSV reader, the rules in Spark SQL, the GX suites through GX's Spark
   datasource), each file's typed rows written by Spark as Parquet to the staging
   folder ``W/handoff/<YYYY-MM>/<file>/``. A month the screen passes is valid
   (its report, passed, is written to :func:`pci.land.landing.report_path`,
   ``<W's parent>/validation/<YYYY-MM>.json``). A month it does not pass is
   validated by the DuckDB landing's own code (:func:`pci.land.landing.validate_export`)
   on an in-memory DuckDB *workspace* (:func:`pci.core.warehouse.workspace`): the same
   GX suites, cross-file rules, report and refusal
   (:class:`~pci.land.landing.ValidationFailed`: nothing written to Spark); when
   that passes it (the screen errs on the safe side: a quoted line break, say),
   DuckDB writes its typed rows to the staging folder instead (the contract's
   columns, in the contract's order). ``LandResult.validated_by`` says which;
4. the load, in this order:

   a. the typed rows are in the staging folder (step 3);
   b. per file: when the month has a current load, its rows (that ``load_id``)
      are appended to ``raw_archive.<file>``, unless a killed earlier attempt
      archived them already; then ``INSERT OVERWRITE TABLE raw.<file> PARTITION
      (export_month = DATE '<month>')`` from the staged Parquet with the new
      ``load_id`` (a static partition: a file without rows leaves the month's
      partition empty);
   c. **last**, ``raw.loads`` is rewritten whole (Parquet cannot be updated):
      the old rows, the month's earlier loads no longer current, plus the new
      load as the current one. This write is the commit point: a run killed
      before it leaves the month's earlier load current in ``raw.loads`` (and
      ``raw.<file>`` possibly holding some files of the new export); the next
      run sees a manifest that is not the current load's, and lands the month
      again, from the start. ``raw.loads`` is rewritten by deleting its files
      then writing the new ones: a kill inside that write (a second or two)
      loses its rows, and every month is then landed again.
   d. the staging folder is removed (also after a failure).

``load_id`` is the DuckDB landing's: ``<YYYY-MM>-<seq:03d>-<sha256[:12]>``, seq
the month's number of loads so far + 1; ``landed_at`` is UTC (naive);
``file_rows`` the JSON of rows per file. The warehouse lock
(:class:`pci.core.locking.WarehouseLock`, ``W.lock`` beside the folder) is held
for the whole step; Spark has no transactions, so the lock is what keeps a
second writer out, and readers of ``raw`` see a month's new rows file by file.
The DuckDB-only steps of the DuckDB landing (the preflight of the DuckDB file,
flagging stale publications) are not done here.

Also: :func:`current_load` and :func:`needs_landing` (as the DuckDB landing's, over
a Spark session), and :func:`land_through`, every ready export up to a month that
is not landed or whose manifest changed, oldest first (a refused month raises).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import time
from pathlib import Path

from pci.core.contract import (ARCHIVE_SCHEMA, FILES, LOADS_TABLE, MANIFEST, RAW_SCHEMA,
                               format_month)
from pci.core.locking import WarehouseLock
from pci.core.spark import LOADS_COLUMNS, ensure_raw_schema, quote_identifier, session, table_exists
from pci.core.warehouse import quote_literal, workspace
from pci.land import spark_validation, violations
from pci.land.landing import (LandResult, _as_month, manifest_sha256, ready_export, ready_months,
                              report_path, validate_or_refuse)
from pci.land.staging import STAGE

log = logging.getLogger(__name__)

#: the staging folder of a month's typed rows (Parquet), inside the warehouse folder
HANDOFF_DIR = "handoff"

_LOADS = f"{RAW_SCHEMA}.{LOADS_TABLE}"
_ensured: set[str] = set()  # the Spark applications whose raw schema this process ensured


def _date(month: dt.date) -> str:
    return f"DATE '{month.isoformat()}'"


def _loads_rows(spark) -> list[tuple]:
    """Every row of raw.loads ([] before the first load), ``landed_at`` as a naive UTC
    datetime (the session's time zone is UTC; TIMESTAMP_NTZ keeps Python's local
    time zone out of it). One query: the table has a row per load ever made."""
    if not table_exists(spark, RAW_SCHEMA, LOADS_TABLE):
        return []
    return [tuple(r) for r in spark.sql(
        f"SELECT load_id, export_month, manifest_sha256, CAST(landed_at AS TIMESTAMP_NTZ), "
        f"is_current, file_rows FROM {_LOADS}").collect()]


def _current(loads: list[tuple], month: dt.date) -> tuple[str, str] | None:
    """(load_id, manifest_sha256) of the month's current load among the rows ``loads``."""
    current = [r for r in loads if r[1] == month and r[4]]
    if not current:
        return None
    latest = max(current, key=lambda r: r[3])
    return latest[0], latest[2]


def _needs(landing_dir: Path, loads: list[tuple], month: dt.date) -> bool:
    folder = Path(landing_dir) / format_month(month)
    if not (folder / MANIFEST).is_file():
        return False
    current = _current(loads, month)
    return current is None or current[1] != manifest_sha256(folder)


def current_load(spark, month: dt.date | str) -> tuple[str, str] | None:
    """(load_id, manifest_sha256) of the month's current load, or None."""
    return _current(_loads_rows(spark), _as_month(month))


def needs_landing(landing_dir: Path, spark, month: dt.date | str) -> bool:
    """Ready (has a manifest) and either not landed or landed from another manifest."""
    return _needs(landing_dir, _loads_rows(spark), _as_month(month))


def _ensure_raw_schema(spark) -> None:
    """:func:`pci.core.spark.ensure_raw_schema`, once per Spark application (21
    catalog calls: seconds on the embedded metastore)."""
    app = spark.sparkContext.applicationId
    if app not in _ensured:
        ensure_raw_schema(spark)
        _ensured.add(app)


def _hand_off(ws, folder: Path) -> dict[str, Path]:
    """Write each file's staged typed rows (a table of the workspace ``ws``) as
    ``<folder>/<file>/rows.parquet``; file name -> its folder."""
    shutil.rmtree(folder, ignore_errors=True)  # what a killed earlier attempt left
    out = {}
    for f in FILES:
        d = folder / f.name
        d.mkdir(parents=True)
        cols = ", ".join(f'"{c}"' for c in f.column_names)
        ws.execute(f"COPY (SELECT {cols} FROM {STAGE.format(f.name)}) "
                   f"TO {quote_literal(str(d / 'rows.parquet'))} (FORMAT parquet)")
        out[f.name] = d
    return out


def _write_loads(spark, rows: list[tuple]) -> None:
    """Rewrite raw.loads whole with ``rows`` (``landed_at`` naive UTC)."""
    from pyspark.sql.types import (BooleanType, DateType, StringType, StructField,  # noqa: PLC0415
                                   StructType, TimestampNTZType)

    types = {"VARCHAR": StringType(), "DATE": DateType(), "TIMESTAMP": TimestampNTZType(),
             "BOOLEAN": BooleanType()}
    schema = StructType([StructField(n, types[t]) for n, t in LOADS_COLUMNS])
    spark.createDataFrame(rows, schema).createOrReplaceTempView("_pci_new_loads")
    try:
        cols = ", ".join(f"CAST({quote_identifier(n)} AS TIMESTAMP)" if t == "TIMESTAMP"
                         else quote_identifier(n) for n, t in LOADS_COLUMNS)
        spark.sql(f"INSERT OVERWRITE TABLE {_LOADS} SELECT {cols} FROM _pci_new_loads")
    finally:
        spark.catalog.dropTempView("_pci_new_loads")


def _archived(spark, month: dt.date, load_id: str) -> set[str]:
    """The files whose rows of load ``load_id`` are in ``raw_archive`` already (a
    killed earlier attempt archived them); one query for the ten tables."""
    where = f"export_month = {_date(month)} AND load_id = {quote_literal(load_id)}"
    rows = spark.sql(" UNION ALL ".join(
        f"SELECT {quote_literal(f.name)} AS file, count(*) AS n FROM {ARCHIVE_SCHEMA}.{f.name} "
        f"WHERE {where}" for f in FILES)).collect()
    return {r[0] for r in rows if r[1]}


def _replace_file(spark, f, month: dt.date, load_id: str, rows: Path, previous: str | None) -> None:
    """Step 4b for the file ``f``: the rows of load ``previous`` (when given) appended
    to ``raw_archive``, then the month's partition of ``raw`` overwritten with the
    hand-off Parquet in the folder ``rows``."""
    cols = ", ".join(quote_identifier(c) for c in f.column_names)
    at = _date(month)
    if previous:
        spark.sql(f"INSERT INTO {ARCHIVE_SCHEMA}.{f.name} ({cols}, load_id, export_month) "
                  f"SELECT {cols}, load_id, export_month FROM {RAW_SCHEMA}.{f.name} "
                  f"WHERE export_month = {at} AND load_id = {quote_literal(previous)}")
    spark.sql(f"INSERT OVERWRITE TABLE {RAW_SCHEMA}.{f.name} PARTITION (export_month = {at}) "
              f"SELECT {cols}, {quote_literal(load_id)} FROM parquet.{quote_identifier(str(rows))}")


def _load(spark, dirs: dict[str, Path], month: dt.date, sha: str, counts: dict[str, int],
          loads: list[tuple]) -> tuple[str, str | None]:
    """Steps 4b-4c of the module's docstring (``dirs``: file name -> the Parquet folder
    of its typed rows; ``loads``: the rows of raw.loads); (load_id, replaced load_id or None)."""
    _ensure_raw_schema(spark)
    previous = (_current(loads, month) or (None,))[0]
    seq = sum(1 for r in loads if r[1] == month) + 1
    load_id = f"{format_month(month)}-{seq:03d}-{sha[:12]}"
    archived = _archived(spark, month, previous) if previous else set()
    for f in FILES:
        _replace_file(spark, f, month, load_id, dirs[f.name],
                      None if f.name in archived else previous)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    _write_loads(spark, [(*r[:4], r[4] and r[1] != month, r[5]) for r in loads]
                 + [(load_id, month, sha, now, True, json.dumps(counts, sort_keys=True))])
    return load_id, previous


def _validate(spark, folder: Path, month: dt.date, warehouse: Path, handoff: Path):
    """Step 3 of the module's docstring: (report, rows per file, extra columns, report
    path, the Parquet folder of each file's typed rows, what validated the month:
    ``spark`` or ``duckdb``). Raises :class:`~pci.land.landing.ValidationFailed`."""
    screen = spark_validation.screen_month(spark, folder, month, handoff)
    if screen.ok:
        report = violations.Report(format_month(month), str(folder), warnings=screen.warnings)
        path = report.write_json(report_path(warehouse, month))
        return report, screen.counts, screen.extra_columns, path, screen.staged, "spark"
    log.info("export %s: the Spark screen left it to the reference validation: %s",
             format_month(month), "; ".join(screen.flagged))
    ws = workspace()
    try:
        report, counts, extra, path = validate_or_refuse(ws, folder, month, warehouse)
        log.warning("export %s: the Spark screen did not pass it (%s) but the reference "
                    "validation did: DuckDB's reading of it is landed",
                    format_month(month), "; ".join(screen.flagged))
        return report, counts, extra, path, _hand_off(ws, handoff), "duckdb"
    finally:
        ws.close()


def land_month(landing_dir: Path, warehouse: Path, month: dt.date | str, *,
               wait: bool = False) -> LandResult:
    """Validate the export of ``month`` and load it into the Spark warehouse folder
    ``warehouse`` (see the module's docstring). Raises :class:`NotReady`,
    :class:`ValidationFailed` or :class:`pci.core.errors.WarehouseBusy`;
    ``wait=True`` waits for the warehouse lock instead of failing at once."""
    m, folder, sha = ready_export(landing_dir, month)
    warehouse = Path(warehouse).resolve()
    with WarehouseLock(warehouse, wait=wait):
        spark = session(warehouse)
        loads = _loads_rows(spark)
        current = _current(loads, m)
        if current and current[1] == sha:
            log.info("export %s: manifest unchanged, already landed as %s", format_month(m), current[0])
            return LandResult(m, "unchanged", current[0], sha)
        handoff = warehouse / HANDOFF_DIR / format_month(m)
        try:
            t0 = time.perf_counter()
            report, counts, extra, path, dirs, by = _validate(spark, folder, m, warehouse, handoff)
            t1 = time.perf_counter()
            load_id, previous = _load(spark, dirs, m, sha, counts, loads)
            t2 = time.perf_counter()
        finally:
            shutil.rmtree(handoff, ignore_errors=True)
            try:
                handoff.parent.rmdir()  # the hand-off folder itself, when no other month's is left
            except OSError:
                pass
    status = "replaced" if previous else "landed"
    log.info("export %s: %s as %s on Spark (%d rows; validated on %s in %.1fs, loaded in %.1fs)",
             format_month(m), status, load_id, sum(counts.values()), by, t1 - t0, t2 - t1)
    return LandResult(m, status, load_id, sha, counts, report.warnings, extra, previous, path,
                      {"validate": round(t1 - t0, 3), "load": round(t2 - t1, 3)}, by)


def land_through(landing_dir: Path, warehouse: Path, month: dt.date | str) -> list[str]:
    """Land every ready export up to ``month`` that is not landed yet or whose
    manifest changed since, oldest first; the months landed (``YYYY-MM``). A
    refused month raises :class:`ValidationFailed` (the months before it stay
    landed)."""
    warehouse = Path(warehouse).resolve()
    landed = []
    with WarehouseLock(warehouse):  # for the whole range (re-entrant for land_month)
        loads = _loads_rows(session(warehouse))  # one query for the range
        for m in ready_months(landing_dir, month):
            if _needs(landing_dir, loads, m):
                land_month(landing_dir, warehouse, m)
                landed.append(format_month(m))
    return landed
