"""The analysts' read-only copy of the published mart, and how the tools open the mart.

DuckDB lets one process write a database file, and a read-only connection from
another process fails while that writer holds it (and, the other way round, a
reader holding the file makes a run that wants to write it fail). So analysts
do not query the warehouse: after every publication the publication step calls
:func:`publish_read_only_copy` with its open connection, which writes the
published tables into a second DuckDB file built under a temporary name in the
same folder and then swapped in with ``os.replace`` (atomic on POSIX):

    <warehouse folder>/analyst/<warehouse name>      e.g. data/warehouse/analyst/pci.duckdb

A query opens the copy read-only (``duckdb.connect(path, read_only=True)``), never
waits for a run and never blocks one. A reader that has the copy open while a
newer one is swapped in keeps reading the version it opened (the old file stays
alive until its last reader closes it); the next connection sees the new one.
Each copy is one consistent state of the published tables: the publication's
transaction has committed before the copy is taken.

The copy holds, in its default schema:

* ``pci_monthly_scores``, ``pci_metric_contributions`` — as published, same columns and types
* ``pci_score_publications`` — when the warehouse has it
* ``partners`` — partner_id, partner_name, country, export_month (from ``raw.partners``), when present
* ``pci_metrics``, ``pci_levels`` — the rule tables (metric, threshold, max points; level, min score),
  see :func:`pci.explain.load_metrics`
* ``analyst_copy_info`` — one row: when the copy was taken, from which warehouse, its months
* ``analyst_copy_months`` — which publication each month of the copy holds (when the
  warehouse records publications); a refresh rewrites only the months whose latest
  publication differs

:func:`open_mart` is how ``explain`` and ``report`` read: the copy when it exists,
else the warehouse itself, read-only; :func:`read_mart` adds the fallback to the
warehouse for a month the copy does not have (yet).
"""
from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

COPY_DIR = "analyst"
SCORES = "pci_monthly_scores"
CONTRIBUTIONS = "pci_metric_contributions"
PUBLICATIONS = "pci_score_publications"
INFO = "analyst_copy_info"
MONTHS = "analyst_copy_months"

#: exit statuses (docs/architecture.md)
EXIT_REFUSED, EXIT_USAGE, EXIT_BUSY = 1, 2, 4


class MartUnavailable(RuntimeError):
    """The mart cannot be read; ``exit_status`` says why (2 no such file, 4 busy, 1 otherwise)."""

    def __init__(self, message: str, exit_status: int = EXIT_REFUSED):
        super().__init__(message)
        self.exit_status = exit_status


class MonthNotPublished(MartUnavailable):
    """The mart that was read has no rows for the month asked for."""


def copy_path(warehouse: Path) -> Path:
    """Where the read-only copy of ``warehouse`` lives: ``<folder>/analyst/<name>``."""
    warehouse = Path(warehouse)
    return warehouse.parent / COPY_DIR / warehouse.name


def _exists(con, catalog: str, schema: str, table: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_catalog = ? AND table_schema = ? AND table_name = ?",
        [catalog, schema, table]).fetchall()[0][0])


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _published_months(con, src: str) -> dict | None:
    """score_month -> the id of its latest publication; None without publication records."""
    if not _exists(con, src, "main", PUBLICATIONS):
        return None
    return dict(con.execute(
        f"SELECT score_month, arg_max(publication_id, published_at) "
        f"FROM {_q(src)}.main.{PUBLICATIONS} GROUP BY score_month").fetchall())


def _months_to_copy(con, alias: str, published: dict) -> list | None:
    """The months whose rows in the attached previous copy ``alias`` differ from the
    warehouse's publications (changed, new or withdrawn); None when the previous
    copy does not say which publication each month holds (copy it all)."""
    for table in (MONTHS, SCORES, CONTRIBUTIONS):
        if not _exists(con, alias, "main", table):
            return None
    copied = dict(con.execute(f"SELECT score_month, publication_id FROM {alias}.main.{MONTHS}").fetchall())
    return sorted(m for m in set(published) | set(copied) if published.get(m) != copied.get(m))


def publish_read_only_copy(con, warehouse: Path) -> Path:
    """Write the published tables of ``con`` (the writer's open connection to
    ``warehouse``) to the analysts' copy, atomically; return the copy's path.

    Call it after the publication's transaction committed. Raises
    :class:`MartUnavailable` when the warehouse has no published scores.

    The copy records which publication each month holds (``analyst_copy_months``).
    When the previous copy has that record, the new copy starts as a file copy of
    it and only the months whose latest publication differs are rewritten, so a
    month's refresh costs that month's rows plus a file copy, not a rewrite of
    every published month. Otherwise every table is written anew.
    """
    import shutil

    target = copy_path(warehouse)
    target.parent.mkdir(parents=True, exist_ok=True)
    src = con.execute("SELECT current_database()").fetchall()[0][0]
    if not _exists(con, src, "main", SCORES):
        raise MartUnavailable(f"{warehouse}: main.{SCORES} does not exist: nothing is published yet")
    token = uuid.uuid4().hex[:12]
    tmp = target.parent / f".{target.name}.{token}.tmp"
    alias = f"pci_analyst_copy_{token}"
    attached = False
    published = _published_months(con, src)
    try:
        months = None
        if published is not None and target.is_file():
            shutil.copyfile(target, tmp)
            con.execute(f"ATTACH {_sql_str(str(tmp))} AS {alias}")
            attached = True
            months = _months_to_copy(con, alias, published)
            if months is None:  # an older copy: start from an empty file
                con.execute(f"DETACH {alias}")
                attached = False
                tmp.unlink()
        if not attached:
            con.execute(f"ATTACH {_sql_str(str(tmp))} AS {alias}")
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
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass
    return target


def _write_copy(con, src: str, alias: str, warehouse: Path, months: list | None,
                published: dict | None) -> None:
    """Write the copy's tables into ``alias``: all of them (``months`` None), or
    only the rows of ``months`` plus the small tables (one transaction)."""
    from pci.explain import load_levels, load_metrics  # the rule tables

    s = f"{_q(src)}.main"
    if months is None:
        con.execute(f"CREATE TABLE {alias}.main.{SCORES} AS "
                    f"SELECT * FROM {s}.{SCORES} ORDER BY score_month, partner_id")
        if _exists(con, src, "main", CONTRIBUTIONS):
            con.execute(f"CREATE TABLE {alias}.main.{CONTRIBUTIONS} AS "
                        f"SELECT * FROM {s}.{CONTRIBUTIONS} ORDER BY score_month, partner_id, metric")
        else:  # same columns as the mart (docs/architecture.md), empty
            con.execute(f"""CREATE TABLE {alias}.main.{CONTRIBUTIONS} (
                score_month DATE, partner_id VARCHAR, metric VARCHAR, contributor_kind VARCHAR,
                contributor_id VARCHAR, tenant_id VARCHAR, subscription_id VARCHAR,
                event_month DATE, detail VARCHAR, amount DECIMAL(38,4))""")
    con.execute("BEGIN TRANSACTION")
    try:
        if months:
            listed = ", ".join(f"DATE '{m.isoformat()}'" for m in months)
            for table, order in ((SCORES, "score_month, partner_id"),
                                 (CONTRIBUTIONS, "score_month, partner_id, metric")):
                con.execute(f"DELETE FROM {alias}.main.{table} WHERE score_month IN ({listed})")
                con.execute(f"INSERT INTO {alias}.main.{table} SELECT * FROM {s}.{table} "
                            f"WHERE score_month IN ({listed}) ORDER BY {order}")
        for table in (PUBLICATIONS, "partners", "pci_metrics", "pci_levels", INFO, MONTHS):
            con.execute(f"DROP TABLE IF EXISTS {alias}.main.{table}")
        if _exists(con, src, "main", PUBLICATIONS):
            con.execute(f"CREATE TABLE {alias}.main.{PUBLICATIONS} AS SELECT * FROM {s}.{PUBLICATIONS}")
        if _exists(con, src, "raw", "partners"):
            con.execute(f"CREATE TABLE {alias}.main.partners AS SELECT partner_id, partner_name, "
                        f"country, export_month FROM {_q(src)}.raw.partners "
                        f"ORDER BY export_month, partner_id")
        con.execute(f"CREATE TABLE {alias}.main.pci_metrics (metric VARCHAR, metric_number INTEGER, "
                    f"label VARCHAR, unit VARCHAR, threshold DECIMAL(18,4), max_points INTEGER)")
        con.executemany(f"INSERT INTO {alias}.main.pci_metrics VALUES (?, ?, ?, ?, ?, ?)",
                        [[m.key, m.number, m.label, m.unit, m.threshold, int(m.max_points)]
                         for m in load_metrics()])
        con.execute(f"CREATE TABLE {alias}.main.pci_levels (level VARCHAR, min_score DECIMAL(5,2))")
        con.executemany(f"INSERT INTO {alias}.main.pci_levels VALUES (?, ?)",
                        [[lv.name, lv.min_score] for lv in load_levels()])
        con.execute(
            f"CREATE TABLE {alias}.main.{INFO} AS SELECT ?::TIMESTAMP AS copied_at, "
            f"?::VARCHAR AS warehouse, count(DISTINCT score_month)::INTEGER AS score_months, "
            f"min(score_month) AS first_score_month, max(score_month) AS last_score_month "
            f"FROM {s}.{SCORES}",
            [dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), str(Path(warehouse).resolve())])
        if published is not None:
            con.execute(f"CREATE TABLE {alias}.main.{MONTHS} (score_month DATE, publication_id VARCHAR)")
            if published:
                con.executemany(f"INSERT INTO {alias}.main.{MONTHS} VALUES (?, ?)",
                                sorted(published.items()))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class Mart:
    """An open, read-only connection to the published tables."""
    con: duckdb.DuckDBPyConnection
    path: Path
    kind: str  # "copy" or "warehouse"

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Mart":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def has_table(self, schema: str, table: str) -> bool:
        catalog = self.con.execute("SELECT current_database()").fetchall()[0][0]
        return _exists(self.con, catalog, schema, table)

    def partner_names(self, month: dt.date) -> dict[str, str]:
        """partner_id -> partner_name as of the latest export up to ``month`` ({} if unknown)."""
        for schema, table in (("main", "partners"), ("raw", "partners")):
            if self.has_table(schema, table):
                rows = self.con.execute(
                    f"SELECT partner_id, arg_max(partner_name, export_month) FROM {schema}.{table} "
                    f"WHERE export_month <= ? GROUP BY partner_id", [month]).fetchall()
                return {p: n for p, n in rows if n}
        return {}


def _connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def open_mart(path: Path, source: str = "auto") -> Mart:
    """Open the published mart for reading.

    ``path`` is the warehouse file, or the copy itself. ``source``: ``auto`` reads
    the analysts' copy of the warehouse when there is one (so it never waits for
    or blocks a run), else the warehouse read-only; ``copy`` requires the copy;
    ``warehouse`` reads the warehouse file read-only.
    """
    path = Path(path)
    if source not in ("auto", "copy", "warehouse"):
        raise ValueError(f"source must be auto, copy or warehouse, not {source!r}")
    copy = copy_path(path)
    if source in ("auto", "copy") and copy.is_file():
        target, kind = copy, "copy"
    elif source == "copy":
        raise MartUnavailable(
            f"no analyst copy at {copy}: it is written by each publication of {path}", EXIT_USAGE)
    elif path.is_file():
        target, kind = path, ("copy" if path.parent.name == COPY_DIR else "warehouse")
    else:
        raise MartUnavailable(f"no warehouse at {path} (and no analyst copy at {copy})", EXIT_USAGE)
    try:
        con = _connect_read_only(target)
    except duckdb.Error as exc:
        if "lock" in str(exc).lower():
            raise MartUnavailable(
                f"{target} is being written by a run and has no analyst copy yet (expected at "
                f"{copy}, written after each publication); try again when the run has finished",
                EXIT_BUSY) from exc
        raise MartUnavailable(f"cannot open {target}: {exc}") from exc
    mart = Mart(con, target, kind)
    if not mart.has_table("main", SCORES):
        mart.close()
        raise MartUnavailable(f"{target}: no published scores (table main.{SCORES} is missing)")
    return mart


def copied_at(mart: Mart) -> str:
    if mart.kind != "copy" or not mart.has_table("main", INFO):
        return ""
    rows = mart.con.execute(f"SELECT copied_at FROM main.{INFO}").fetchall()
    return f"{rows[0][0]:%Y-%m-%d %H:%M} UTC" if rows else ""


def read_mart(path: Path, source: str, read):
    """``read(mart)`` on the mart :func:`open_mart` chooses. When ``source`` is
    ``auto``, the copy was read and ``read`` raised :class:`MonthNotPublished`
    (a month published after the copy was taken, should its refresh have failed),
    the warehouse itself is read instead when it can be opened."""
    with open_mart(path, source) as mart:
        try:
            return read(mart)
        except MonthNotPublished as exc:
            if not (source == "auto" and mart.kind == "copy" and mart.path != Path(path)):
                raise
            first, when = exc, copied_at(mart)
    try:
        with open_mart(path, "warehouse") as mart:
            return read(mart)
    except MonthNotPublished:
        raise first from None
    except MartUnavailable as exc:
        raise MonthNotPublished(
            f"{first} (read from the analysts' copy taken {when}; the warehouse itself could not "
            f"be read: {exc})") from None
