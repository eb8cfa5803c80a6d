"""The analysts' read-only copy of the published mart, and how the tools open the mart.

DuckDB lets one process write a database file, and a read-only connection from
another process fails while that writer holds it (and, the other way round, a
reader holding the file makes a run that wants to write it fail). So analysts
do not query the warehouse: after every publication the publication step calls
:func:`refresh_copy` (or :func:`publish_read_only_copy`, which raises what the
other returns) with its open connection (``pci run`` over a range: once, after
the range's last month), which writes the published tables into
a second DuckDB file built under a temporary name in the same folder
(``.<name>.<hex>.tmp``) and then swapped in with ``os.replace`` (atomic on POSIX):

    <warehouse folder>/analyst/<warehouse name>      e.g. data/warehouse/analyst/pci.duckdb

A query opens the copy read-only (``duckdb.connect(path, read_only=True)``), never
waits for a run and never blocks one. A reader that has the copy open while a
newer one is swapped in keeps reading the version it opened (the old file stays
alive until its last reader closes it); the next connection sees the new one.
Each copy is one consistent state of the published tables: the publication's
transaction has committed before the copy is taken.

The copy holds, in its default schema:

* ``pci_monthly_scores``, ``pci_metric_contributions``, ``pci_next_month_projection`` — as
  published, same columns and types
* ``pci_score_publications`` — when the warehouse has it
* ``partners`` — partner_id, partner_name, country, export_month (from ``raw.partners``), when present
* ``pci_metrics``, ``pci_levels`` — the rule tables (metric, threshold, max points; level, min score),
  see :mod:`pci.core.rules`
* ``analyst_copy_info`` — one row: when the copy was taken, from which warehouse, its months
* ``analyst_copy_months`` — which publication each month of the copy holds (when the
  warehouse records publications); a refresh rewrites only the months whose latest
  publication differs

**A refresh that fails** (a full disk, a folder that cannot be written, another I/O
error) does not undo the publication, which committed before: :func:`refresh_copy`
removes its temporary files, leaves the previous copy in place and writes a marker
beside it, ``analyst/.<name>.refresh-failed.json`` (when, why, what the copy misses,
how to complete it), and returns the failure instead of raising it. The next refresh
(the next run, or ``python -m pci refresh-copy --warehouse W``) first removes the
temporary files earlier refreshes left (failed or killed), and on success removes the
marker. ``explain`` and ``report`` warn while the marker is there.

How ``explain`` and ``report`` read the copy (or the warehouse, when there is no
copy) is :mod:`pci.read.mart`; the copy's layout is :mod:`pci.core.catalog`.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from pathlib import Path

import duckdb

from pci.core import rules
from pci.core.catalog import (CONTRIBUTION_COLUMNS, CONTRIBUTIONS, INFO, MONTHS, PROJECTION, PROJECTION_COLUMNS,
                              PUBLICATIONS, SCORES, columns_sql, copy_path, marker_path)
from pci.core.errors import DiskFull
from pci.core.faults import classify
from pci.core.warehouse import quote_identifier, quote_literal, table_exists
from pci.read.mart import MartUnavailable


def published_months(con, src: str) -> dict | None:
    """score_month -> the id of its latest publication; None without publication records."""
    if not table_exists(con, "main", PUBLICATIONS, src):
        return None
    return dict(con.execute(
        f"SELECT score_month, arg_max(publication_id, published_at) "
        f"FROM {quote_identifier(src)}.main.{PUBLICATIONS} GROUP BY score_month").fetchall())


def _months_to_copy(con, alias: str, published: dict) -> list | None:
    """The months whose rows in the attached previous copy ``alias`` differ from the
    warehouse's publications (changed, new or withdrawn); None when the previous
    copy does not say which publication each month holds (copy it all)."""
    for table in (MONTHS, SCORES, CONTRIBUTIONS, PROJECTION):
        if not table_exists(con, "main", table, alias):
            return None
    copied = dict(con.execute(f"SELECT score_month, publication_id FROM {alias}.main.{MONTHS}").fetchall())
    return sorted(m for m in set(published) | set(copied) if published.get(m) != copied.get(m))


def copy_leftovers(target: Path) -> list[Path]:
    """The temporary files of earlier refreshes of the copy ``target`` (failed or killed):
    ``.<name>.<hex>.tmp``, its ``.wal``, and a half-written marker."""
    folder = Path(target).parent
    if not folder.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(Path(target).name)}\.[0-9a-f]+\.tmp(?:\.wal)?$")
    marker_tmp = marker_path(target).name + ".tmp"
    return sorted(p for p in folder.iterdir()
                  if (pattern.match(p.name) or p.name == marker_tmp) and not p.is_dir())


def remove_leftovers(target: Path) -> list[Path]:
    """Remove :func:`copy_leftovers` and return what was removed. Only the writer of
    the warehouse refreshes its copy (the caller holds the warehouse lock), so no
    other refresh is using them."""
    removed = []
    for leftover in copy_leftovers(target):
        try:
            leftover.unlink()
            removed.append(leftover)
        except FileNotFoundError:
            pass
    return removed


def publish_read_only_copy(con, warehouse: Path) -> Path:
    """Write the published tables of ``con`` (the writer's open connection to
    ``warehouse``) to the analysts' copy, atomically; return the copy's path.

    Call it after the publication's transaction committed. Raises
    :class:`MartUnavailable` when the warehouse has no published scores, and the
    error of a failed write (``OSError``, ``duckdb.Error``) after removing its
    temporary files; :func:`refresh_copy` is the same without raising for those.

    The copy records which publication each month holds (``analyst_copy_months``).
    When the previous copy has that record, the new copy starts as a file copy of
    it and only the months whose latest publication differs are rewritten, so a
    month's refresh costs that month's rows plus a file copy, not a rewrite of
    every published month. Otherwise every table is written anew.
    """
    target = copy_path(warehouse)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    write_copy_and_swap(con, warehouse)
    remove_marker(target)
    return target


def write_copy_and_swap(con, warehouse: Path) -> list | None:
    """Write and swap in the copy; return the months rewritten (None: written whole)."""
    import shutil

    target = copy_path(warehouse)
    target.parent.mkdir(parents=True, exist_ok=True)
    src = con.execute("SELECT current_database()").fetchall()[0][0]
    if not table_exists(con, "main", SCORES, src):
        raise MartUnavailable(f"{warehouse}: main.{SCORES} does not exist: nothing is published yet")
    token = uuid.uuid4().hex[:12]
    tmp = target.parent / f".{target.name}.{token}.tmp"
    alias = f"pci_analyst_copy_{token}"
    attached = False
    published = published_months(con, src)
    months = None
    try:
        if published is not None and target.is_file():
            shutil.copyfile(target, tmp)
            try:
                con.execute(f"ATTACH {quote_literal(str(tmp))} AS {alias} (READ_WRITE)")
                attached = True
            except duckdb.Error as exc:
                if is_disk_full(exc):
                    raise
                _unlink(tmp)  # the previous copy cannot be read: write it whole
            if attached:
                months = _months_to_copy(con, alias, published)
                if months is None:  # an older copy: start from an empty file
                    con.execute(f"DETACH {alias}")
                    attached = False
                    _unlink(tmp)
        if not attached:
            con.execute(f"ATTACH {quote_literal(str(tmp))} AS {alias} (READ_WRITE)")
            attached = True
        _write_copy(con, src, alias, warehouse, months, published)
        con.execute(f"DETACH {alias}")
        attached = False
        os.replace(tmp, target)
    finally:
        if attached:
            try:
                con.execute(f"DETACH {alias}")
            except duckdb.Error:
                pass
        _unlink(tmp)
    return months


def _unlink(tmp: Path) -> None:
    """Remove a temporary database file and its write-ahead log, if there."""
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        try:
            leftover.unlink()
        except FileNotFoundError:
            pass


def _write_copy(con, src: str, alias: str, warehouse: Path, months: list | None,
                published: dict | None) -> None:
    """Write the copy's tables into ``alias``: all of them (``months`` None), or
    only the rows of ``months`` plus the small tables (one transaction)."""

    s = f"{quote_identifier(src)}.main"
    if months is None:
        con.execute(f"CREATE TABLE {alias}.main.{SCORES} AS "
                    f"SELECT * FROM {s}.{SCORES} ORDER BY score_month, partner_id")
        if table_exists(con, "main", CONTRIBUTIONS, src):
            con.execute(f"CREATE TABLE {alias}.main.{CONTRIBUTIONS} AS "
                        f"SELECT * FROM {s}.{CONTRIBUTIONS} ORDER BY score_month, partner_id, metric")
        else:  # same columns as the mart (its dbt contract), empty
            con.execute(f"CREATE TABLE {alias}.main.{CONTRIBUTIONS} ({columns_sql(CONTRIBUTION_COLUMNS)})")
        if table_exists(con, "main", PROJECTION, src):
            con.execute(f"CREATE TABLE {alias}.main.{PROJECTION} AS "
                        f"SELECT * FROM {s}.{PROJECTION} ORDER BY score_month, partner_id")
        else:  # a warehouse published before projections were: same columns, empty
            con.execute(f"CREATE TABLE {alias}.main.{PROJECTION} ({columns_sql(PROJECTION_COLUMNS)})")
    con.execute("BEGIN TRANSACTION")
    try:
        if months:
            listed = ", ".join(f"DATE '{m.isoformat()}'" for m in months)
            for table, order in ((SCORES, "score_month, partner_id"),
                                 (CONTRIBUTIONS, "score_month, partner_id, metric"),
                                 (PROJECTION, "score_month, partner_id")):
                if not table_exists(con, "main", table, src):  # published before projections were
                    continue
                con.execute(f"DELETE FROM {alias}.main.{table} WHERE score_month IN ({listed})")
                con.execute(f"INSERT INTO {alias}.main.{table} SELECT * FROM {s}.{table} "
                            f"WHERE score_month IN ({listed}) ORDER BY {order}")
        for table in (PUBLICATIONS, "partners", "pci_metrics", "pci_levels", INFO, MONTHS):
            con.execute(f"DROP TABLE IF EXISTS {alias}.main.{table}")
        if table_exists(con, "main", PUBLICATIONS, src):
            con.execute(f"CREATE TABLE {alias}.main.{PUBLICATIONS} AS SELECT * FROM {s}.{PUBLICATIONS}")
        if table_exists(con, "raw", "partners", src):
            con.execute(f"CREATE TABLE {alias}.main.partners AS SELECT partner_id, partner_name, "
                        f"country, export_month FROM {quote_identifier(src)}.raw.partners "
                        f"ORDER BY export_month, partner_id")
        con.execute(f"CREATE TABLE {alias}.main.pci_metrics (metric VARCHAR, metric_number INTEGER, "
                    f"label VARCHAR, unit VARCHAR, threshold DECIMAL(18,4), max_points INTEGER)")
        con.executemany(f"INSERT INTO {alias}.main.pci_metrics VALUES (?, ?, ?, ?, ?, ?)",
                        [[m.key, m.number, m.label, m.unit, m.threshold, int(m.max_points)]
                         for m in rules.metrics()])
        con.execute(f"CREATE TABLE {alias}.main.pci_levels (level VARCHAR, min_score DECIMAL(5,2))")
        con.executemany(f"INSERT INTO {alias}.main.pci_levels VALUES (?, ?)",
                        [[lv.name, lv.min_score] for lv in rules.levels()])
        # the score months: those with rows, and those published with no partner rows
        months_sql = f"SELECT score_month FROM {s}.{SCORES}"
        if table_exists(con, "main", PUBLICATIONS, src):
            months_sql += f" UNION SELECT score_month FROM {s}.{PUBLICATIONS}"
        con.execute(
            f"CREATE TABLE {alias}.main.{INFO} AS SELECT ?::TIMESTAMP AS copied_at, "
            f"?::VARCHAR AS warehouse, count(DISTINCT score_month)::INTEGER AS score_months, "
            f"min(score_month) AS first_score_month, max(score_month) AS last_score_month "
            f"FROM ({months_sql})",
            [dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), str(Path(warehouse).resolve())])
        if published is not None:
            con.execute(f"CREATE TABLE {alias}.main.{MONTHS} (score_month DATE, publication_id VARCHAR)")
            if published:
                con.executemany(f"INSERT INTO {alias}.main.{MONTHS} VALUES (?, ?)",
                                sorted(published.items()))
        con.execute("COMMIT")
    except BaseException:
        try:  # keep the error that stopped the copy (a full disk), not one of the rollback
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise


def remove_marker(target: Path) -> None:
    """Remove the marker of a failed refresh beside the copy ``target`` (if any)."""
    try:
        marker_path(target).unlink()
    except FileNotFoundError:
        pass


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the device is full (:func:`pci.core.faults.classify`)."""
    return isinstance(classify(exc), DiskFull)
