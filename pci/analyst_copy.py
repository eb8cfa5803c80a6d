"""The analysts' read-only copy of the published mart, and how the tools open the mart.

DuckDB lets one process write a database file, and a read-only connection from
another process fails while that writer holds it (and, the other way round, a
reader holding the file makes a run that wants to write it fail). So analysts
do not query the warehouse: after every publication the publication step calls
:func:`refresh_copy` (or :func:`publish_read_only_copy`, which raises what the
other returns) with its open connection, which writes the published tables into
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

* ``pci_monthly_scores``, ``pci_metric_contributions`` — as published, same columns and types
* ``pci_score_publications`` — when the warehouse has it
* ``partners`` — partner_id, partner_name, country, export_month (from ``raw.partners``), when present
* ``pci_metrics``, ``pci_levels`` — the rule tables (metric, threshold, max points; level, min score),
  see :mod:`pci.rules`
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

:func:`open_mart` is how ``explain`` and ``report`` read: the copy when it exists,
else the warehouse itself, read-only; :func:`read_mart` adds the fallback to the
warehouse for a month the copy does not have (yet).
"""
from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pci.contract import format_month
from pci.errors import EXIT_ENVIRONMENT
from pci.warehouse import quote_identifier, quote_literal, table_exists

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


def _published_months(con, src: str) -> dict | None:
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
    for table in (MONTHS, SCORES, CONTRIBUTIONS):
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
    _refresh(con, warehouse)
    _remove_marker(target)
    return target


def _refresh(con, warehouse: Path) -> list | None:
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
    published = _published_months(con, src)
    months = None
    try:
        if published is not None and target.is_file():
            shutil.copyfile(target, tmp)
            try:
                con.execute(f"ATTACH {quote_literal(str(tmp))} AS {alias} (READ_WRITE)")
                attached = True
            except duckdb.Error as exc:
                if _disk_full(exc):
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


# --------------------------------------------------------------------------- refresh, and its failure

#: what :func:`refresh_copy` tells to complete a failed refresh
COMPLETE_WITH = "python -m pci refresh-copy --warehouse {warehouse}"


@dataclass
class CopyRefresh:
    """What :func:`refresh_copy` did.

    ``ok`` False: the copy was not refreshed (it still holds the state of its last
    refresh); ``error`` then says where, why and how to complete it, and ``marker``
    is the file beside the copy that tells the readers so.
    """
    ok: bool
    path: Path                      # the copy
    error: str | None = None
    action: str = ""                # what it did, one line
    months: list | None = None      # the months rewritten; None: written whole (or nothing)
    removed: list[Path] = field(default_factory=list)  # leftovers of earlier refreshes removed
    cause: str | None = None        # "disk-full", "io" or "duckdb" when not ok
    marker: Path | None = None      # written on failure (None: could not be written)

    @property
    def exit_status(self) -> int:
        return 0 if self.ok else EXIT_ENVIRONMENT

    def summary(self) -> str:
        text = self.action if self.ok else f"analysts' copy not refreshed: {self.error}"
        if self.removed:
            text += (f" (removed {len(self.removed)} temporary "
                     f"file{'s' if len(self.removed) != 1 else ''} of an earlier refresh)")
        return text


def marker_path(copy: Path) -> Path:
    """The file beside the copy saying that its last refresh failed:
    ``<folder>/analyst/.<name>.refresh-failed.json``."""
    copy = Path(copy)
    return copy.parent / f".{copy.name}.refresh-failed.json"


def refresh_copy(con, warehouse: Path) -> CopyRefresh:
    """Refresh the analysts' copy of ``warehouse`` from ``con``, the writer's open
    connection (call it after the publication's transaction committed, holding the
    warehouse lock). Never raises for an ``OSError`` or a DuckDB error of the copy
    (a full disk, a folder that cannot be written, an I/O error): the publication
    stays committed, and the failure is returned, not raised.

    First removes the temporary files that earlier failed or killed refreshes left.
    On success removes the failure marker and returns ``ok=True`` with what it did
    (the months rewritten). A warehouse without published scores is not a failure
    (nothing to copy). On failure removes its temporary files, writes the marker
    beside the copy (:func:`marker_path`: when, why, which warehouse, how to
    complete it) and returns ``ok=False`` with a message naming the copy, the cause
    (e.g. "no space left on the device holding …, N MiB free") and the command that
    completes it (the next run does too).
    """
    warehouse = Path(warehouse)
    target = copy_path(warehouse)
    removed: list[Path] = []
    try:
        removed = remove_leftovers(target)
        months = _refresh(con, warehouse)
    except MartUnavailable as exc:
        _remove_marker(target)
        return CopyRefresh(True, target, None, f"nothing to copy to {target}: {exc}",
                           removed=removed)
    except (OSError, duckdb.Error) as exc:
        try:  # the temporary files of this attempt are gone (finally of _refresh); be sure
            removed += [p for p in remove_leftovers(target) if p not in removed]
        except OSError:
            pass
        cause, why = _describe(exc, target)
        held = ("the copy still holds the state of its last refresh and misses the publications "
                "made since" if target.is_file() else
                "there is no copy yet (explain and report read the warehouse itself while no run "
                "holds it)")
        error = (f"the analysts' copy {target} was not refreshed: {why}. The publication itself "
                 f"is committed in {warehouse}; {held}. "
                 f"{'Free some space there, then run' if cause == 'disk-full' else 'Run'} "
                 f"`{COMPLETE_WITH.format(warehouse=warehouse)}` to complete it "
                 f"(the next run also does)")
        marker = _write_marker(con, warehouse, target, error, cause, why)
        if marker is None:
            error += f" [the marker {marker_path(target)} could not be written either]"
        return CopyRefresh(False, target, error, "not refreshed", None, removed, cause, marker)
    _remove_marker(target)
    if months is None:
        action = f"wrote the analysts' copy {target} anew"
    elif months:
        action = (f"refreshed the analysts' copy {target}: rewrote "
                  f"{', '.join(format_month(m) for m in months)}")
    else:
        action = f"refreshed the analysts' copy {target}: no month changed"
    return CopyRefresh(True, target, None, action, months, removed)


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return "no space left" in text or "disk quota exceeded" in text or "disk is full" in text


def _describe(exc: BaseException, target: Path) -> tuple[str, str]:
    """(cause, why) of a failed refresh: 'disk-full', 'io' or 'duckdb'."""
    import shutil

    if _disk_full(exc):
        try:
            free = f"{shutil.disk_usage(target.parent).free / 2**20:.1f} MiB free"
        except OSError:
            free = "free space unknown"
        return "disk-full", f"no space left on the device holding {target.parent} ({free})"
    if isinstance(exc, OSError):
        where = exc.filename or target.parent
        return "io", f"{exc.strerror or exc} ({where})"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ("io" if isinstance(exc, duckdb.IOException) else "duckdb"), first


def _copy_state(con, target: Path) -> tuple[str | None, dict]:
    """When the copy at ``target`` was taken, and score_month -> publication id it holds
    (best effort: (None, {}) when it cannot be read)."""
    if not target.is_file():
        return None, {}
    alias = f"pci_analyst_copy_read_{uuid.uuid4().hex[:8]}"
    try:
        con.execute(f"ATTACH {quote_literal(str(target))} AS {alias} (READ_ONLY)")
    except duckdb.Error:
        return None, {}
    try:
        taken, held = None, {}
        if table_exists(con, "main", INFO, alias):
            rows = con.execute(f"SELECT copied_at FROM {alias}.main.{INFO}").fetchall()
            taken = f"{rows[0][0]:%Y-%m-%d %H:%M} UTC" if rows and rows[0][0] else None
        if table_exists(con, "main", MONTHS, alias):
            held = dict(con.execute(
                f"SELECT score_month, publication_id FROM {alias}.main.{MONTHS}").fetchall())
        return taken, held
    except duckdb.Error:
        return None, {}
    finally:
        try:
            con.execute(f"DETACH {alias}")
        except duckdb.Error:
            pass


def _write_marker(con, warehouse: Path, target: Path, error: str, cause: str,
                  why: str) -> Path | None:
    """Write the failure marker (atomically); when even that fails (the disk is still
    full), leave at least an empty marker file. Returns its path, None if neither worked."""
    marker = marker_path(target)
    taken, held = _copy_state(con, target)
    missing = []
    try:
        published = _published_months(con, con.execute("SELECT current_database()").fetchall()[0][0])
        if published is not None and (held or not target.is_file()):
            missing = sorted(m for m in set(published) | set(held) if published.get(m) != held.get(m))
    except duckdb.Error:
        pass
    info = {
        "failed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "warehouse": str(Path(warehouse).resolve()),
        "copy": str(target),
        "copy_exists": target.is_file(),
        "copy_taken_at": taken,
        "cause": cause,
        "why": why,
        "error": error,
        "months_missing": [format_month(m) for m in missing],
        "complete_with": COMPLETE_WITH.format(warehouse=warehouse),
        "note": "the copy misses the publications made since it was taken; the next run "
                "or the command above refreshes it and removes this file",
    }
    tmp = marker.with_name(marker.name + ".tmp")
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, marker)
        return marker
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
    try:  # an empty marker takes no data block: it still says that the copy is out of date
        with open(marker, "a", encoding="utf-8"):
            pass
        return marker
    except OSError:
        return None


def _remove_marker(target: Path) -> None:
    try:
        marker_path(target).unlink()
    except FileNotFoundError:
        pass


def refresh_failure(copy: Path) -> dict | None:
    """What the marker beside the copy says (None: its last refresh did not fail).
    An empty or unreadable marker gives its modification time as ``failed_at``."""
    marker = marker_path(copy)
    try:
        text = marker.read_text(encoding="utf-8")
        mtime = dt.datetime.fromtimestamp(marker.stat().st_mtime, dt.timezone.utc)
    except FileNotFoundError:
        return None
    except OSError:
        return {"failed_at": None, "marker": str(marker)}
    try:
        info = json.loads(text)
        if not isinstance(info, dict):
            raise ValueError
    except ValueError:
        info = {}
    info.setdefault("failed_at", mtime.isoformat(timespec="seconds"))
    info["marker"] = str(marker)
    return info


def stale_warning(mart: "Mart", warehouse: Path | None = None) -> str | None:
    """The warning to show when ``mart`` is a copy whose last refresh failed (else None):
    when it failed, why, what the copy misses, and how to complete it."""
    info = mart.refresh_failed
    if not info:
        return None
    when = info.get("failed_at") or "at an unknown time"
    try:
        when = f"{dt.datetime.fromisoformat(when).astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
    except (TypeError, ValueError):
        pass
    text = f"the analysts' copy {mart.path} is out of date: its refresh failed {when}"
    if info.get("why"):
        text += f" ({info['why']})"
    taken = copied_at(mart)
    text += f"; it holds the publications up to {taken}" if taken else ""
    text += " and misses those made since"
    if info.get("months_missing"):
        text += f" (months {', '.join(info['months_missing'])})"
    where = info.get("warehouse") or warehouse or mart.path.parent.parent / mart.path.name
    text += (f". Complete it with `{COMPLETE_WITH.format(warehouse=where)}`"
             f" (the next run also does)")
    return text


def _write_copy(con, src: str, alias: str, warehouse: Path, months: list | None,
                published: dict | None) -> None:
    """Write the copy's tables into ``alias``: all of them (``months`` None), or
    only the rows of ``months`` plus the small tables (one transaction)."""
    from pci import rules  # noqa: PLC0415 - the rule tables, read from the seeds

    s = f"{quote_identifier(src)}.main"
    if months is None:
        con.execute(f"CREATE TABLE {alias}.main.{SCORES} AS "
                    f"SELECT * FROM {s}.{SCORES} ORDER BY score_month, partner_id")
        if table_exists(con, "main", CONTRIBUTIONS, src):
            con.execute(f"CREATE TABLE {alias}.main.{CONTRIBUTIONS} AS "
                        f"SELECT * FROM {s}.{CONTRIBUTIONS} ORDER BY score_month, partner_id, metric")
        else:  # same columns as the mart (docs/architecture.md), empty
            con.execute(f"""CREATE TABLE {alias}.main.{CONTRIBUTIONS} (
                score_month DATE, partner_id VARCHAR, metric VARCHAR, contributor_kind VARCHAR,
                contributor_id VARCHAR, tenant_id VARCHAR, subscription_id VARCHAR,
                event_month DATE, detail VARCHAR, amount DECIMAL(38,6))""")
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


@dataclass
class Mart:
    """An open, read-only connection to the published tables."""
    con: duckdb.DuckDBPyConnection
    path: Path
    kind: str  # "copy" or "warehouse"
    #: a copy whose last refresh failed: what its marker says (:func:`refresh_failure`)
    refresh_failed: dict | None = None

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Mart":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def has_table(self, schema: str, table: str) -> bool:
        catalog = self.con.execute("SELECT current_database()").fetchall()[0][0]
        return table_exists(self.con, schema, table, catalog)

    def partner_names(self, month: dt.date) -> dict[str, str]:
        """partner_id -> partner_name as of the latest export up to ``month`` ({} if unknown)."""
        for schema, table in (("main", "partners"), ("raw", "partners")):
            if self.has_table(schema, table):
                rows = self.con.execute(
                    f"SELECT partner_id, arg_max(partner_name, export_month) FROM {schema}.{table} "
                    f"WHERE export_month <= ? GROUP BY partner_id", [month]).fetchall()
                return {p: n for p, n in rows if n}
        return {}

    def publication(self, month: dt.date) -> dict | None:
        """The latest publication of ``month`` (publication_id, published_at, row_count),
        None when the mart records none for it (or records no publications)."""
        if not self.has_table("main", PUBLICATIONS):
            return None
        rows = self.con.execute(
            f"SELECT publication_id, published_at, row_count FROM main.{PUBLICATIONS} "
            f"WHERE score_month = ? ORDER BY published_at DESC, publication_id DESC LIMIT 1",
            [month]).fetchall()
        if not rows:
            return None
        return dict(zip(("publication_id", "published_at", "row_count"), rows[0]))

    def empty_months(self) -> list[dt.date]:
        """The months published with no partner rows (their latest publication has
        ``row_count`` 0: the month's partners export held no partner)."""
        if not self.has_table("main", PUBLICATIONS):
            return []
        return [r[0] for r in self.con.execute(
            f"SELECT score_month FROM main.{PUBLICATIONS} GROUP BY score_month "
            f"HAVING arg_max(row_count, (published_at, publication_id)) = 0 "
            f"AND score_month NOT IN (SELECT DISTINCT score_month FROM main.{SCORES}) "
            f"ORDER BY score_month").fetchall()]

    def score_months(self) -> list[str]:
        """The published score months as ``YYYY-MM``, those published with no partners
        marked so (for the messages naming what there is)."""
        with_rows = [r[0] for r in self.con.execute(
            f"SELECT DISTINCT score_month FROM main.{SCORES}").fetchall()]
        empty = self.empty_months()
        return [format_month(m) + (" (no partners)" if m in empty else "")
                for m in sorted(set(with_rows) | set(empty))]


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
    mart = Mart(con, target, kind, refresh_failure(target) if kind == "copy" else None)
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
            first, when, stale = exc, copied_at(mart), stale_warning(mart)
    try:
        with open_mart(path, "warehouse") as mart:
            return read(mart)
    except MonthNotPublished:
        raise first from None
    except MartUnavailable as exc:
        raise MonthNotPublished(
            f"{first} (read from the analysts' copy taken {when}; the warehouse itself could not "
            f"be read: {exc})" + (f". Note: {stale}" if stale else "")) from None


# --------------------------------------------------------------------------- CLI: refresh-copy

def configure(parser) -> None:
    parser.add_argument("--warehouse", required=True, type=Path,
                        help="the warehouse DuckDB file whose analysts' copy to refresh")
    parser.add_argument("--wait", action="store_true",
                        help="wait for a run holding the warehouse instead of exiting with 4")


def command(args) -> int:
    """``python -m pci refresh-copy``: complete a failed refresh of the analysts' copy.
    Exit statuses: 0 refreshed (or nothing to copy); 2 no such warehouse; 4 the
    warehouse is held by a run; 6 the refresh failed (disk full, another I/O error)."""
    import sys

    from pci.errors import EXIT_BUSY as BUSY
    from pci.errors import EXIT_DAMAGED, EXIT_USAGE as USAGE
    from pci.locking import WarehouseBusy, WarehouseLock
    from pci.terminal import for_terminal

    warehouse = Path(args.warehouse)
    if not warehouse.is_file():
        print(f"error: no warehouse at {for_terminal(warehouse)}", file=sys.stderr)
        return USAGE
    try:
        with WarehouseLock(warehouse, wait=args.wait):
            try:
                con = duckdb.connect(str(warehouse), read_only=True)
            except duckdb.Error as exc:
                text = str(exc)
                if "lock" in text.lower():
                    print(f"error: {for_terminal(warehouse)} is open in another process: "
                          f"{for_terminal(text)}", file=sys.stderr)
                    return BUSY
                status = EXIT_DAMAGED if ("not a valid duckdb" in text.lower()
                                          or "corrupt" in text.lower()) else EXIT_ENVIRONMENT
                print(f"error: cannot open {for_terminal(warehouse)}: {for_terminal(text)}",
                      file=sys.stderr)
                return status
            try:
                result = refresh_copy(con, warehouse)
            finally:
                con.close()
    except WarehouseBusy as exc:
        print(f"error: {for_terminal(exc)}", file=sys.stderr)
        return BUSY
    except OSError as exc:  # the lock file itself cannot be written (a full or read-only folder)
        print(f"error: cannot take the lock of {for_terminal(warehouse)}: {for_terminal(exc)}",
              file=sys.stderr)
        return EXIT_ENVIRONMENT
    if result.ok:
        print(for_terminal(result.summary()))
        return 0
    print(f"error: {for_terminal(result.summary())}", file=sys.stderr)
    return result.exit_status
