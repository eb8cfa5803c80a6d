"""Refreshing the analysts' copy after a publication, and what a failed refresh
leaves: :func:`refresh_copy` never raises on a full disk or another I/O error;
it removes its temporary files, leaves the previous copy in place and writes
a marker beside it (``analyst/.<name>.refresh-failed.json``: when, why, what
the copy misses, how to complete it), which the readers warn about
(:mod:`pci.read.mart`). ``python -m pci refresh-copy`` completes it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pci.core.catalog import COMPLETE_WITH, INFO, MONTHS, copy_path, marker_path
from pci.core.contract import format_month
from pci.core.errors import EXIT_ENVIRONMENT
from pci.core.warehouse import quote_literal, table_exists
from pci.publish.analyst_copy import (is_disk_full, published_months, remove_leftovers, remove_marker,
                                      write_copy_and_swap)
from pci.read.mart import MartUnavailable


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
        months = write_copy_and_swap(con, warehouse)
    except MartUnavailable as exc:
        remove_marker(target)
        return CopyRefresh(True, target, None, f"nothing to copy to {target}: {exc}",
                           removed=removed)
    except (OSError, duckdb.Error) as exc:
        try:  # the temporary files of this attempt are gone (finally of write_copy_and_swap); be sure
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
    remove_marker(target)
    if months is None:
        action = f"wrote the analysts' copy {target} anew"
    elif months:
        action = (f"refreshed the analysts' copy {target}: rewrote "
                  f"{', '.join(format_month(m) for m in months)}")
    else:
        action = f"refreshed the analysts' copy {target}: no month changed"
    return CopyRefresh(True, target, None, action, months, removed)


def _describe(exc: BaseException, target: Path) -> tuple[str, str]:
    """(cause, why) of a failed refresh: 'disk-full', 'io' or 'duckdb'."""
    import shutil

    if is_disk_full(exc):
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
        published = published_months(con, con.execute("SELECT current_database()").fetchall()[0][0])
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


# --------------------------------------------------------------------------- CLI: refresh-copy

def configure(parser) -> None:
    parser.add_argument("--warehouse", required=True, type=Path,
                        help="the warehouse DuckDB file whose analysts' copy to refresh")
    parser.add_argument("--wait", action="store_true",
                        help="wait for a run holding the warehouse instead of exiting with 4")


def command(args) -> int:
    """``python -m pci refresh-copy``: complete a failed refresh of the analysts' copy.
    Exit statuses: 0 refreshed (or nothing to copy); 2 no such warehouse; 4 the
    warehouse is held by a run; 6 the refresh failed (disk full, another I/O error);
    7 the warehouse file is damaged."""
    import sys

    from pci.core.locking import command_under_lock
    from pci.core.terminal import for_terminal
    from pci.core.warehouse import connect

    def work() -> CopyRefresh:
        con = connect(Path(args.warehouse), read_only=True)
        try:
            return refresh_copy(con, Path(args.warehouse))
        finally:
            con.close()

    status, result = command_under_lock(Path(args.warehouse), args.wait, work)
    if result is None:
        return status
    if result.ok:
        print(for_terminal(result.summary()))
        return 0
    print(f"error: {for_terminal(result.summary())}", file=sys.stderr)
    return result.exit_status
