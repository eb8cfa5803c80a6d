"""Landing an export month into the DuckDB warehouse (the step of `python -m pci land`,
:mod:`pci.land.command`; on Spark: :mod:`pci.land.spark_landing`).

``land_month(landing_dir, warehouse, month)`` is the whole step (the Airflow
task calls the same function):

1. ``<landing>/<YYYY-MM>/_manifest.json`` missing: the export is still being
   written; :class:`NotReady` (exit 3), nothing is touched.
2. The same manifest (sha256 of its bytes) is already the month's current
   load: nothing to do (status ``unchanged``).
3. Validation (:mod:`pci.land.files`, :mod:`pci.land.parsing`, :mod:`pci.land.expectations`): the manifest (a file, manifest or
   month folder that is a link out of the landing folder is refused unread;
   the pass that checks a file's sha256 also counts its line ends); each CSV
   read by DuckDB's CSV reader (header read first to learn the column order;
   every column read as VARCHAR, then parsed with explicit rules and bounds);
   the contract's rules of section 3 by the Great Expectations suites in
   ``expectations/`` (screened in SQL; a file the screen flags is run by its GX
   checkpoint in chunks of rows); the rules across files in SQL. Any violation,
   including a file DuckDB cannot read (mixed line ends, broken quoting, bytes
   that are not UTF-8): :class:`ValidationFailed` (exit 1) with the report, nothing
   loaded.
4. The load, in one DuckDB transaction: the month's earlier rows (if any)
   move from ``raw.<file>`` to ``raw_archive.<file>``, the new rows go into
   ``raw.<file>`` with ``export_month`` and ``load_id``, and ``raw.loads``
   gets the new load as the month's current one.

The validation report of the last attempt of a month is written to
``<warehouse dir>/validation/<YYYY-MM>.json`` (passed or failed).

The warehouse is held for the whole step through :mod:`pci.core.locking`
(``<warehouse>.lock``); a warehouse locked by another process gives
``WarehouseBusy`` (exit 4), also when DuckDB itself reports the file as held.
Before anything is written, :func:`pci.core.preflight.check_before_writing` checks the
folder, the free space and the file (a damaged warehouse is never written to).
In the load's transaction, the published months whose window reads the month are
flagged ``stale`` (:func:`pci.core.catalog.mark_stale`).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from pci.core import errors
from pci.core.catalog import mark_stale
from pci.core.contract import (ARCHIVE_SCHEMA, FILES, LOADS_TABLE, MANIFEST, MONTH_RE, RAW_SCHEMA,
                               ensure_raw_schema, format_month, parse_month)
from pci.core.locking import WarehouseLock
from pci.core.preflight import check_before_writing
from pci.core.warehouse import connect, table_exists
from pci.land import expectations, files, parsing, violations
from pci.land.staging import STAGE, STAGE_TEXT, stage_file

log = logging.getLogger(__name__)


#: where the validation report of a month is written, relative to the warehouse's folder
REPORT_DIR = "validation"



class NotReady(errors.NotReady):
    """The export folder has no ``_manifest.json`` yet (or does not exist)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        super().__init__(f"export {self.folder} is not ready: no {MANIFEST} "
                         f"(the export is still being written); nothing was landed")


class ValidationFailed(errors.Refusal):
    """The export broke the contract; ``.report`` (a :class:`pci.land.violations.Report`)
    says how. Nothing was loaded."""

    def __init__(self, report: violations.Report, report_path: Path | None = None):
        self.report_path = report_path
        super().__init__(report, report.format_text())


@dataclass
class LandResult:
    month: dt.date
    status: str  # "landed" (first load), "replaced" (an earlier load archived), "unchanged"
    load_id: str
    manifest_sha256: str
    rows: dict[str, int] = field(default_factory=dict)  # file name -> rows loaded
    warnings: list[str] = field(default_factory=list)
    extra_columns: dict[str, list[str]] = field(default_factory=dict)  # file name -> ignored columns
    replaced_load_id: str | None = None
    report_path: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # per phase: validate, load
    #: the engine whose validation passed the export: ``duckdb`` (the reference), or
    #: ``spark`` (the Spark landing's screen, :mod:`pci.land.spark_validation`)
    validated_by: str = "duckdb"

    @property
    def already_landed(self) -> bool:
        return self.status == "unchanged"


# --------------------------------------------------------------------------- helpers


def _as_month(month: dt.date | str) -> dt.date:
    if isinstance(month, dt.datetime):
        month = month.date()
    if isinstance(month, dt.date):
        return month.replace(day=1)
    return parse_month(month)


def report_path(warehouse: Path, month: dt.date | str) -> Path:
    """``<warehouse dir>/validation/<YYYY-MM>.json``."""
    return Path(warehouse).resolve().parent / REPORT_DIR / f"{format_month(_as_month(month))}.json"


#: what manifest_sha256 gives for a manifest (or month folder) that is a link out
#: of the landing folder: never a load's checksum, so the month is landed (refused)
LINK_OUTSIDE = "link-outside-the-landing-folder"


def manifest_sha256(folder: Path) -> str:
    """sha256 of the month's ``_manifest.json`` (the landing folder is the folder's parent)."""
    path = Path(folder) / MANIFEST
    if files.outside_landing(path, Path(folder).parent):
        return LINK_OUTSIDE  # not read (see files.check_manifest)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _current_load(con, month: dt.date) -> tuple[str, str] | None:
    """(load_id, manifest_sha256) of the month's current load, or None."""
    if not table_exists(con, RAW_SCHEMA, LOADS_TABLE):
        return None
    rows = con.execute(
        f"SELECT load_id, manifest_sha256 FROM {RAW_SCHEMA}.{LOADS_TABLE} "
        f"WHERE export_month = ? AND is_current ORDER BY landed_at DESC LIMIT 1",
        [month]).fetchall()
    return (rows[0][0], rows[0][1]) if rows else None


def needs_landing(landing_dir: Path, con, month: dt.date | str) -> bool:
    """Ready (has a manifest) and either not landed or landed from another manifest."""
    m = _as_month(month)
    folder = Path(landing_dir) / format_month(m)
    if not (folder / MANIFEST).is_file():
        return False
    current = _current_load(con, m)
    return current is None or current[1] != manifest_sha256(folder)


def ready_months(landing_dir: Path, through: dt.date | str) -> list[dt.date]:
    """The months up to ``through`` whose export folder has a manifest, oldest first."""
    last = _as_month(through)
    landing = Path(landing_dir)
    if not landing.is_dir():
        return []
    return sorted(parse_month(p.name) for p in landing.iterdir()
                  if p.is_dir() and MONTH_RE.match(p.name) and (p / MANIFEST).is_file()
                  and parse_month(p.name) <= last)


def ready_export(landing_dir: Path, month: dt.date | str) -> tuple[dt.date, Path, str]:
    """(the month, its export folder, its manifest's sha256); :class:`NotReady`
    when the folder has no manifest yet."""
    m = _as_month(month)
    folder = Path(landing_dir) / format_month(m)
    if not (folder / MANIFEST).is_file():
        raise NotReady(folder)
    return m, folder, manifest_sha256(folder)


def validate_or_refuse(con, folder: Path, month: dt.date, warehouse: Path):
    """:func:`validate_export`, its report written beside the warehouse
    (:func:`report_path`); :class:`ValidationFailed` when it found a violation.
    Returns (report, rows per file, extra columns per file, report path)."""
    report, _manifest, counts, extra = validate_export(con, folder, month)
    path = report.write_json(report_path(warehouse, month))
    if not report.ok:
        raise ValidationFailed(report, path)
    return report, counts, extra, path


def validate_export(con, folder: Path, month: dt.date) -> tuple[violations.Report, dict, dict, dict]:
    """Validate the export in ``folder`` into temp tables of ``con``.

    Returns (report, manifest, rows per file, extra columns per file); on a
    clean report the typed rows are in the temp tables ``_land_<file>``.
    """
    report = violations.Report(format_month(month), str(folder))
    scans: dict[str, files.FileScan] = {}
    manifest, viol, warn = files.check_manifest(folder, month, scans=scans)
    report.violations += viol
    report.warnings += warn
    counts: dict[str, int] = {}
    extra: dict[str, list[str]] = {}
    if report.violations:
        return report, manifest, counts, extra

    staged = [f for f in FILES
              if stage_file(con, folder, f, report, counts, extra, scans.get(f.filename))]
    report.violations += files.check_row_counts(manifest, counts)
    for f in staged:
        report.violations += parsing.check_parse(con, f, STAGE_TEXT.format(f.name))
    if report.violations:
        return report, manifest, counts, extra

    for f in FILES:
        con.execute(f"DROP TABLE IF EXISTS {STAGE.format(f.name)}")
        con.execute(f"CREATE TEMP TABLE {STAGE.format(f.name)} AS "
                    f"SELECT {parsing.typed_select(f)} FROM {STAGE_TEXT.format(f.name)}")
        con.execute(f"DROP TABLE {STAGE_TEXT.format(f.name)}")
    tables = {f.name: STAGE.format(f.name) for f in FILES}
    report.violations += expectations.run_suites(con, tables, month)
    report.violations += parsing.cross_file_checks(con, tables)
    return report, manifest, counts, extra


# --------------------------------------------------------------------------- load


def _load(con, month: dt.date, sha: str, counts: dict[str, int]) -> tuple[str, str | None]:
    """Move the month's earlier load to the archive and insert the staged rows, atomically."""
    con.execute("BEGIN TRANSACTION")
    try:
        ensure_raw_schema(con)
        previous = _current_load(con, month)
        seq = con.execute(f"SELECT count(*) FROM {RAW_SCHEMA}.{LOADS_TABLE} WHERE export_month = ?",
                          [month]).fetchall()[0][0] + 1
        load_id = f"{format_month(month)}-{seq:03d}-{sha[:12]}"
        for f in FILES:
            con.execute(f"INSERT INTO {ARCHIVE_SCHEMA}.{f.name} "
                        f"SELECT * FROM {RAW_SCHEMA}.{f.name} WHERE export_month = ?", [month])
            con.execute(f"DELETE FROM {RAW_SCHEMA}.{f.name} WHERE export_month = ?", [month])
            cols = ", ".join(f'"{c}"' for c in f.column_names)
            con.execute(f"INSERT INTO {RAW_SCHEMA}.{f.name} ({cols}, export_month, load_id) "
                        f"SELECT {cols}, ?, ? FROM {STAGE.format(f.name)}", [month, load_id])
        con.execute(f"UPDATE {RAW_SCHEMA}.{LOADS_TABLE} SET is_current = false "
                    f"WHERE export_month = ? AND is_current", [month])
        con.execute(f"INSERT INTO {RAW_SCHEMA}.{LOADS_TABLE} VALUES (?, ?, ?, ?, true, ?)",
                    [load_id, month, sha, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
                     json.dumps(counts, sort_keys=True)])
        # in the load's transaction: a process killed after the commit must not leave the
        # published months whose window reads the month flagged as reading current data
        mark_stale(con)
        con.execute("COMMIT")
    except BaseException as exc:
        try:
            con.execute("ROLLBACK")
        except Exception as rollback_error:  # noqa: BLE001
            # the transaction is already gone (e.g. the disk is full): the
            # failure that ended it is the one to report, not the rollback's
            log.warning("rollback after a failed load of %s: %s", format_month(month),
                        rollback_error)
            exc.add_note(f"(the rollback failed too: {rollback_error})")
        raise
    return load_id, previous[0] if previous else None


def _drop_staged(con) -> None:
    """Drop the landing's temporary tables (a connection kept for the next month)."""
    for f in FILES:
        for t in (STAGE, STAGE_TEXT, "_land_rej_{}", "_land_scan_{}"):
            con.execute(f"DROP TABLE IF EXISTS temp.{t.format(f.name)}")


def land_month(landing_dir: Path, warehouse: Path, month: dt.date | str, *,
               wait: bool = False, con=None) -> LandResult:
    """Validate the export of ``month`` and load it (see the module's docstring).

    Raises :class:`NotReady`, :class:`ValidationFailed` or
    :class:`pci.core.errors.WarehouseBusy`. ``wait=True`` waits for the
    warehouse lock instead of failing at once. ``con``: an open connection to
    ``warehouse`` to land through (a range of months in one process: one
    connection, and one GX context, :class:`pci.land.expectations._GX`); it is
    left open, without the month's temporary tables.
    """
    m, folder, sha = ready_export(landing_dir, month)
    warehouse = Path(warehouse).resolve()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with WarehouseLock(warehouse, wait=wait):
        check_before_writing(warehouse)
        own = con is None
        con = connect(warehouse) if own else con
        failed = True
        try:
            current = _current_load(con, m)
            if current and current[1] == sha:
                log.info("export %s: manifest unchanged, already landed as %s",
                         format_month(m), current[0])
                failed = False
                return LandResult(m, "unchanged", current[0], sha)
            t0 = time.perf_counter()
            report, counts, extra, path = validate_or_refuse(con, folder, m, warehouse)
            t1 = time.perf_counter()
            load_id, previous = _load(con, m, sha, counts)  # flags the months it made stale
            t2 = time.perf_counter()
            failed = False
        finally:
            if own:
                con.close()
            elif failed:  # the month's error is what the caller needs (a full disk, a refusal)
                with contextlib.suppress(Exception):
                    _drop_staged(con)
            else:
                _drop_staged(con)
    status = "replaced" if previous else "landed"
    log.info("export %s: %s as %s (%d rows; validated in %.1fs, loaded in %.1fs)",
             format_month(m), status, load_id, sum(counts.values()), t1 - t0, t2 - t1)
    return LandResult(m, status, load_id, sha, counts, report.warnings, extra, previous, path,
                      {"validate": round(t1 - t0, 3), "load": round(t2 - t1, 3)})
