"""The warehouse: the one module that opens it, and the SQL every other module shares.

This is the engine seam. Everything outside it speaks of schemas, tables and
months; only this module (with :mod:`pci.core.faults` and
:mod:`pci.core.preflight`, which check the file before a write) knows that the
warehouse is one DuckDB file:

* :func:`connect` opens it and turns DuckDB's failures into the faults of
  :mod:`pci.core.errors` (:class:`~pci.core.errors.WarehouseBusy` for DuckDB's
  lock error, :class:`~pci.core.errors.WarehouseDamaged`, :class:`~pci.core.errors.DiskFull`, ...);
* :func:`table_exists` and :func:`landed_months` read the catalog and the loads;
* :func:`quote_literal` and :func:`quote_identifier` quote SQL text.

A second engine plugs in here: the dbt profile's target chooses the engine of
the build (``profiles.yml``); the package's own reads and writes go through
these functions (docs/architecture.md, "The engine seam").
"""
from __future__ import annotations

import errno
import time
from datetime import date
from pathlib import Path

from pci.core.contract import LOADS_TABLE, RAW_SCHEMA
from pci.core.errors import WarehouseBusy, WarehouseDamaged
from pci.core.faults import EMPTY, HEADER_BYTES, busy_from_duckdb, classify, raise_classified


def connect(warehouse: Path | str, read_only: bool = False, *, wait: bool = False,
            timeout: float | None = None, poll: float = 1.0):
    """Open the DuckDB warehouse file; return the connection.

    * A path that does not exist is a new warehouse: opened for writing, DuckDB
      creates it (and this creates its folder). When that fails (a full disk),
      the file DuckDB left (0 bytes, or shorter than its headers) is removed, so
      that the next run does not find a damaged warehouse. Opened
      ``read_only``, it raises ``FileNotFoundError`` (nothing is created).
    * A file that exists but is empty (0 bytes) is a damaged warehouse, not a new
      one: :class:`~pci.core.errors.WarehouseDamaged`, decided here before DuckDB is
      asked (DuckDB 2.0.1 refuses it too, as "not a valid DuckDB database file").
    * Another process holding the file (a writer, or a read-only connection when
      we open for writing, e.g. an analyst's session):
      :class:`~pci.core.errors.WarehouseBusy` naming that process, the same message
      as when another run holds the lock file. ``wait=True`` retries every
      ``poll`` seconds until it is free (``timeout`` seconds at most, None =
      forever).
    * A file DuckDB cannot open because it is not a valid or complete database
      (garbage header, truncated before its metadata, a corrupt metadata block
      or WAL): :class:`~pci.core.errors.WarehouseDamaged`. Nothing was written to it.
    * No space left: :class:`~pci.core.errors.DiskFull`; read-only file system or
      permission denied: :class:`~pci.core.errors.FolderNotWritable`; another I/O
      error: :class:`~pci.core.errors.EnvironmentFault`.
    * Any other error is raised as DuckDB raised it.

    This does not check the file's length nor read its data blocks (a file cut
    short after its metadata opens fine): :func:`check_before_writing` is the
    check a writing step runs first, before it connects.
    """
    import duckdb  # noqa: PLC0415

    path = Path(warehouse)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = None
    except OSError as exc:
        raise_classified(exc, path)
    if size == 0:
        raise WarehouseDamaged(path, EMPTY)
    if size is None:
        if read_only:
            raise FileNotFoundError(errno.ENOENT, "no warehouse at this path (land an export "
                                    "first)", str(path))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise_classified(exc, path.parent)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as exc:
            fault = classify(exc, path)
            if size is None and not isinstance(fault, WarehouseBusy):
                _remove_failed_creation(path)
            if fault is None:
                raise
            if isinstance(fault, WarehouseBusy):
                fault = busy_from_duckdb(str(exc), path, opened_read_only=read_only)
            if isinstance(fault, WarehouseBusy) and wait and (
                    deadline is None or time.monotonic() < deadline):
                time.sleep(poll)
                continue
            raise fault from exc
    return con


#: the engines a warehouse can be on: a DuckDB file (the default) or a Spark warehouse folder
ENGINES = ("duckdb", "spark")


def open_warehouse(warehouse: Path | str, engine: str = "duckdb", read_only: bool = False):
    """A connection to the warehouse on ``engine``: DuckDB's (:func:`connect`), or a
    :class:`pci.core.spark.Connection` over the process's Spark session, which speaks
    the same ``execute(sql, params).fetchall()`` for the package's portable SQL."""
    if engine == "spark":
        from pci.core import spark  # noqa: PLC0415

        return spark.Connection(spark.session(warehouse))
    if engine != "duckdb":
        raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
    return connect(warehouse, read_only=read_only)


def workspace(memory_limit: str | None = None):
    """A DuckDB database in memory, for work that is not the warehouse's: the
    validation of an export and the audit of a built month when the warehouse is on
    Spark (:mod:`pci.core.spark`). ``memory_limit``: DuckDB's (it spills past it)."""
    import duckdb  # noqa: PLC0415

    con = duckdb.connect(":memory:")
    if memory_limit:
        con.execute(f"SET memory_limit = {quote_literal(memory_limit)}")
    return con


def _remove_failed_creation(path: Path) -> None:
    """Remove what a failed creation of a new database left (DuckDB 2.0.1 leaves a
    0-byte or headerless file on a full disk, which would look damaged later)."""
    try:
        if path.stat().st_size < HEADER_BYTES:  # a complete header is a valid, empty database
            path.unlink()
    except OSError:
        pass
    try:
        Path(f"{path}.wal").unlink()
    except OSError:
        pass


# ----------------------------------------------------------------------------- SQL helpers


def quote_literal(text: str) -> str:
    """``text`` as an SQL string literal: ``it's`` -> ``'it''s'``."""
    return "'" + str(text).replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier: ``a"b`` -> ``"a""b"``."""
    return '"' + str(name).replace('"', '""') + '"'


def table_exists(con, schema: str, table: str, catalog: str | None = None) -> bool:
    """Whether ``schema.table`` (a table or a view) exists; in ``catalog`` (an attached
    database's name) when given, else in any database the connection sees."""
    if getattr(con, "engine", "duckdb") == "spark":  # pci.core.spark.Connection: Spark's catalog
        return con.table_exists(schema, table)
    sql = ("SELECT count(*) FROM information_schema.tables "
           "WHERE table_schema = ? AND table_name = ?")
    params = [schema, table]
    if catalog is not None:
        sql += " AND table_catalog = ?"
        params.append(catalog)
    return bool(con.execute(sql, params).fetchone()[0])


def landed_months(con) -> list[date]:
    """The months with a current load in ``raw.loads``, oldest first; [] when the
    table does not exist (nothing was ever landed)."""
    if not table_exists(con, RAW_SCHEMA, LOADS_TABLE):
        return []
    rows = con.execute(f"SELECT DISTINCT export_month FROM {RAW_SCHEMA}.{LOADS_TABLE} "
                       "WHERE is_current ORDER BY export_month").fetchall()
    return [r[0] for r in rows]

