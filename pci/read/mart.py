"""How the tools read the published mart: :func:`open_mart` opens the analysts'
read-only copy when there is one (it never waits for a run and never blocks
one), else the warehouse itself, read-only; :func:`read_mart` adds the fallback
to the warehouse for a month the copy does not have (yet). A copy whose last
refresh failed carries the marker :mod:`pci.publish.analyst_copy` wrote
(:func:`refresh_failure`), and the tools warn with :func:`stale_warning`.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pci.core.catalog import COMPLETE_WITH, COPY_DIR, INFO, PUBLICATIONS, SCORES, copy_path, marker_path
from pci.core.contract import format_month
from pci.core.errors import EXIT_BUSY, EXIT_REFUSED, EXIT_USAGE, PipelineFault, WarehouseBusy
from pci.core.warehouse import connect, table_exists


class MartUnavailable(RuntimeError):
    """The mart cannot be read; ``exit_status`` says why (2 no such file, 4 busy, 1 otherwise)."""

    def __init__(self, message: str, exit_status: int = EXIT_REFUSED):
        super().__init__(message)
        self.exit_status = exit_status


class MonthNotPublished(MartUnavailable):
    """The mart that was read has no rows for the month asked for."""


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
        con = connect(target, read_only=True)
    except WarehouseBusy as exc:
        raise MartUnavailable(
            f"{target} is being written by a run and has no analyst copy yet (expected at "
            f"{copy}, written after each publication); try again when the run has finished",
            EXIT_BUSY) from exc
    except (PipelineFault, duckdb.Error, OSError) as exc:
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
