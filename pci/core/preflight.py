"""The preflight of every step that writes: folder writable, enough free space,
warehouse file intact, checked before anything is written.

The file layout the size check relies on: three 4 KiB headers, then
``total_blocks`` blocks of ``block_size`` bytes (``pragma_database_size()``), so an
intact file is at least ``3 * 4096 + total_blocks * block_size`` bytes long (a
longer file is not an error). A shorter one lost blocks its metadata points to.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from pci.core.errors import DiskFull, FolderNotWritable, WarehouseDamaged
from pci.core.faults import (BUSY_TEXTS, EMPTY, ERRNO_DISK_FULL, ERRNO_NOT_WRITABLE, HEADER_BYTES,
                             busy_from_duckdb, classify, free_bytes, raise_classified)
from pci.core.warehouse import quote_identifier

#: the free space every writing step needs at least, in MiB, unless env PCI_MIN_FREE_MB says
#: otherwise (0 disables the check). A floor, not an estimate: it refuses at once (exit 6,
#: retried) a run on a disk that is all but full, instead of failing half-way. A build
#: needs more: it writes the new pci_build before the old one's blocks are freed, about
#: the size of pci_build (75 MiB of a 184 MiB warehouse at 100,000 tenants, 14 months), so
#: set PCI_MIN_FREE_MB to that for production. A disk that fills up during a step is
#: still reported as DiskFull (classify()), and DuckDB rolls the step's transaction back.
DEFAULT_MIN_FREE_MB = 64
MIN_FREE_ENV = "PCI_MIN_FREE_MB"

#: the rolling scrub's budget (rows read per call, env PCI_SCRUB_ROWS): about 0.7 s on this
#: machine at full width, whatever the warehouse's size (see :func:`check_before_writing`)
DEFAULT_SCRUB_ROWS = 20_000_000
SCRUB_ROWS_ENV = "PCI_SCRUB_ROWS"

log = logging.getLogger(__name__)


def _size_problem(con, path: Path) -> str | None:
    """Why the file is shorter than its header says it is (None when it is not).

    The file must hold at least its header and every block in use. Blocks the
    header counts as free may be missing: DuckDB cuts free blocks off the end of
    the file, so ``total_blocks`` alone would call a healthy file truncated."""
    row = con.execute("SELECT block_size, total_blocks, free_blocks FROM pragma_database_size() "
                      "WHERE database_name = current_database()").fetchone()
    if not row or None in row:
        return None
    block_size, used = int(row[0]), int(row[1]) - int(row[2])
    need = HEADER_BYTES + used * block_size
    have = path.stat().st_size
    if have < need:
        return (f"the file is truncated: {have:,} bytes, but its header lists {used:,} "
                f"blocks in use of {block_size:,} bytes, which need {need:,} bytes")
    return None



@dataclass
class Preflight:
    """What :func:`check_before_writing` found (all checks passed)."""
    warehouse: Path
    free_bytes: int | None  # on the warehouse's device
    min_free_bytes: int  # the floor checked (0: not checked)
    file_bytes: int | None  # None: no warehouse file yet (a new warehouse)
    #: "new" (no file yet), "cheap", "rolling", "thorough", or "open here" (this process
    #: has the file open with another configuration: file checks skipped)
    level: str
    tables: int = 0
    blocks: int = 0
    seconds: dict = field(default_factory=dict)  # per check: folder, space, file, scan
    #: the rolling scrub's slices read by this call: ``(table, first rowid, last rowid)``
    scrubbed: list = field(default_factory=list)
    #: the rolling scrub completed a pass over every table with this call
    cycle_completed: bool = False


def min_free_bytes() -> int:
    """The free-space floor: env ``PCI_MIN_FREE_MB`` (MiB; 0 disables), default
    :data:`DEFAULT_MIN_FREE_MB`. A value that is not a whole number >= 0 is a
    usage error (``ValueError``)."""
    raw = os.environ.get(MIN_FREE_ENV, "").strip()
    if not raw:
        return DEFAULT_MIN_FREE_MB * 2**20
    try:
        mb = int(raw)
    except ValueError:
        mb = -1
    if mb < 0:
        raise ValueError(f"{MIN_FREE_ENV} must be a whole number of MiB (0 disables the "
                         f"free-space check), got {raw!r}")
    return mb * 2**20


def scrub_rows() -> int:
    """The rolling scrub's budget: env ``PCI_SCRUB_ROWS`` (rows, at least 1), default
    :data:`DEFAULT_SCRUB_ROWS`; a value that is not a whole number >= 1 is a usage error."""
    raw = os.environ.get(SCRUB_ROWS_ENV, "").strip()
    if not raw:
        return DEFAULT_SCRUB_ROWS
    try:
        rows = int(raw)
    except ValueError:
        rows = 0
    if rows < 1:
        raise ValueError(f"{SCRUB_ROWS_ENV} must be a whole number of rows >= 1, got {raw!r}")
    return rows


def scrub_state_path(warehouse: Path | str) -> Path:
    """Where the rolling scrub keeps its place: ``<warehouse>.scrub.json`` beside the file."""
    path = Path(warehouse).absolute()
    return path.with_name(path.name + ".scrub.json")


def check_before_writing(warehouse: Path | str, *, thorough: bool = False,
                         min_free: int | None = None, rolling: int | None = None) -> Preflight:
    """The preflight of every step that writes (land, build, publish, the
    analysts' copy): call it first, holding the warehouse lock
    (:class:`pci.core.locking.WarehouseLock`; this does not take it). It writes
    nothing to the warehouse file and leaves its bytes as they were.

    In order:

    1. **The folder** of the warehouse exists (it is created when missing) and is
       writable: a probe file ``.<name>.probe-<pid>`` is created, written (4 KiB,
       fsync) and removed. Permission bits do not stop root: a read-only mount
       does. Raises :class:`~pci.core.errors.FolderNotWritable` (or
       :class:`~pci.core.errors.DiskFull` when the probe cannot be written for lack of
       space).
    2. **Free space** on its device is at least ``min_free`` bytes (default
       :func:`min_free_bytes`: env ``PCI_MIN_FREE_MB``, 64 MiB; 0 disables).
       Raises :class:`~pci.core.errors.DiskFull` naming the path and the free MiB.
    3. **The warehouse file**, when it exists, is intact. The cheap level (every
       call) opens it read-only (DuckDB checks the main and database headers'
       magic and checksums, replays the WAL in memory and reads the catalog from
       its metadata blocks), checks that the file is as long as its block count
       says (``pragma_database_size``) and lists its tables. The thorough level
       (``thorough=True``: once per ``pci run``, or on demand) also reads every
       column of every table, so that DuckDB verifies the checksum of every data
       block, and looks up the smallest and largest key of every primary key
       (which loads the index blocks on those paths). Raises
       :class:`~pci.core.errors.WarehouseDamaged` naming the file, what is wrong and
       how to restore it; :class:`~pci.core.errors.WarehouseBusy` when another
       process has it open for writing.

    **The rolling level** (``rolling=N``: ``pci run``, once per run, with N =
    :func:`scrub_rows`) is the thorough level spread over runs at a cost that does
    not grow with the warehouse: each call reads every column of at most N rows
    (slices of ``rowid``), going on from where the previous call stopped (kept in
    :func:`scrub_state_path`, written only after the slices passed), table after
    table; the call that reaches the end of the last table also probes the indexes
    and starts the next pass. So every block of data that lives through a pass is
    read within it: a warehouse of R rows is read whole every ceil(R / N) runs (at
    1,000,000 tenants and 25 months, about 213 million rows: 11 runs), and
    ``python -m pci check`` reads it whole on demand. A block that no call has
    read yet is still verified by DuckDB whenever a step reads it; that step
    fails before its commit (:func:`classify`), so nothing published changes.

    What each level catches (measured by overwriting each block of a warehouse
    in turn, and in ``tests/faults/test_warehouse_faults.py``):

    * cheap: an empty file, a garbage or overwritten header, every truncation
      (at open, or by the size check when the cut spares the metadata), a
      corrupt metadata block, a corrupt WAL;
    * thorough, in addition: a corrupt data block (727 of the 737 blocks of the
      warehouse measured below), a corrupt block of a primary-key index on the
      paths to its extreme keys (at this size, every index block that a lookup
      reads). Index blocks off those paths are read by DuckDB when a write looks
      a key up; that write fails before it commits (:func:`classify` makes it
      :class:`~pci.core.errors.WarehouseDamaged`). Free blocks are not read (nothing
      reads them).

    Cost on a warehouse of 184 MiB (2,000 partners, 100,000 tenants, 14 months
    landed, 2 published; 49 tables, 737 blocks of 256 KiB), 2 cores shared with
    other work: cheap 0.04-0.18 s (median 0.05-0.08 s), thorough 1.4-2.9 s
    (median 1.6-2.3 s), nearly all of it the scan, which grows with the data.

    When this process already has the file open for writing, the checks run
    through that database instance, without the size check (its blocks in
    flight may not be written yet); with another configuration (the connection
    dbt keeps) the file checks are skipped (``level="open here"``): DuckDB
    verified it when that connection opened it.
    """
    path = Path(warehouse).absolute()
    folder = path.parent
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    _check_folder(path)
    seconds["folder"] = round(time.perf_counter() - t, 4)

    t = time.perf_counter()
    floor = min_free_bytes() if min_free is None else int(min_free)
    free = free_bytes(folder)
    if floor > 0 and free is not None and free < floor:
        raise DiskFull(path, free, detail=f"a writing step needs at least {floor / 2**20:.0f} MiB "
                                          f"({MIN_FREE_ENV}; 0 disables this check)")
    seconds["space"] = round(time.perf_counter() - t, 4)

    if path.is_dir():  # a Spark warehouse (pci.core.spark): its files are Spark's to check
        return Preflight(path, free, floor, None, "spark folder", seconds=seconds)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return Preflight(path, free, floor, None, "new", seconds=seconds)
    except OSError as exc:
        raise_classified(exc, path)
    level = "thorough" if thorough else "rolling" if rolling else "cheap"
    result = Preflight(path, free, floor, size, level, seconds=seconds)
    if size == 0:
        raise WarehouseDamaged(path, EMPTY)
    _check_file(path, result, thorough, None if thorough else rolling)
    return result


def _check_folder(path: Path) -> None:
    """The warehouse's folder exists (created when missing) and a file can be written there."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise_classified(exc, folder)
    probe = folder / f".{path.name}.probe-{os.getpid()}"
    fd = None
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, b"\0" * 4096)
        os.fsync(fd)
    except OSError as exc:
        reason = f"{exc.strerror or os.strerror(exc.errno)}"
        if exc.errno in ERRNO_DISK_FULL:
            raise DiskFull(path, free_bytes(folder),
                           detail=f"a 4 KiB test file could not be written there: {reason}") from exc
        if exc.errno in ERRNO_NOT_WRITABLE:
            raise FolderNotWritable(folder, detail=f"a test file could not be created there: "
                                                   f"{reason}") from exc
        raise_classified(exc, probe)
    finally:
        if fd is not None:
            os.close(fd)
        try:
            probe.unlink()
        except OSError:
            pass


def _open_for_check(path: Path):
    """``(connection, fresh)``: a read-only connection to check the file, ``fresh``
    when it is a database instance of its own (not one this process had open
    already). ``(None, False)`` when this process has the file open with another
    configuration (DuckDB verified it when that connection opened it)."""
    import duckdb  # noqa: PLC0415

    try:
        return duckdb.connect(str(path), read_only=True), True
    except duckdb.ConnectionException as exc:
        if "different configuration" not in str(exc):
            raise_classified(exc, path)
    except duckdb.Error as exc:
        if any(k in str(exc).lower() for k in BUSY_TEXTS):
            raise busy_from_duckdb(str(exc), path, opened_read_only=True) from exc
        raise_classified(exc, path)
    try:  # this process has it open for writing: join that instance (no second open of the file)
        return duckdb.connect(str(path)), False
    except duckdb.ConnectionException as exc:
        if "different configuration" in str(exc):
            return None, False
        raise_classified(exc, path)
    except duckdb.Error as exc:
        raise_classified(exc, path)


def _check_file(path: Path, result: Preflight, thorough: bool, rolling: int | None = None) -> None:
    import duckdb  # noqa: PLC0415

    t = time.perf_counter()
    con, fresh = _open_for_check(path)
    if con is None:
        result.level = "open here"
        return
    try:
        # a live instance of this process may have allocated blocks it has not written yet
        problem = _size_problem(con, path) if fresh else None
        if problem:
            raise WarehouseDamaged(path, problem)
        result.blocks = int(con.execute(
            "SELECT total_blocks FROM pragma_database_size() "
            "WHERE database_name = current_database()").fetchone()[0] or 0)
        tables = con.execute(
            "SELECT database_name, schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() AND NOT temporary "
            "ORDER BY schema_name, table_name").fetchall()
        result.tables = len(tables)
        result.seconds["file"] = round(time.perf_counter() - t, 4)
        if thorough:
            t = time.perf_counter()
            for db, schema, table in tables:
                name = ".".join(quote_identifier(p) for p in (db, schema, table))
                # every column of every row: DuckDB reads (and checksums) every data block
                con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {name}").fetchall()
            _probe_indexes(con)
            result.seconds["scan"] = round(time.perf_counter() - t, 4)
        elif rolling:
            t = time.perf_counter()
            _scrub(con, path, result, tables, rolling)
            result.seconds["scan"] = round(time.perf_counter() - t, 4)
    except duckdb.Error as exc:
        fault = classify(exc, path)
        if fault is None:
            raise
        raise fault from exc
    finally:
        con.close()


def _read_scrub_state(path: Path) -> dict:
    try:
        state = json.loads(scrub_state_path(path).read_text(encoding="utf-8"))
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: start a pass from the first table


def _scrub(con, path: Path, result: Preflight, tables: list, budget: int) -> None:
    """Read every column of the next ``budget`` rows (the rolling level), then keep the
    place reached. A slice that fails its checksum raises before the place moves."""
    names = [".".join(quote_identifier(p) for p in (db, schema, table)) for db, schema, table in tables]
    keys = [f"{schema}.{table}" for _, schema, table in tables]
    state = _read_scrub_state(path)
    at, rowid = state.get("table"), int(state.get("rowid") or 0)
    # the table the previous call stopped in, or the first after it (by name) when it is gone
    i = 0 if at is None else next((k for k, key in enumerate(keys) if key >= at), len(keys))
    if i >= len(keys) or keys[i] != at:
        rowid = 0

    def complete_pass() -> None:  # past the last table: the indexes, then the next pass
        _probe_indexes(con)
        result.cycle_completed = True
        state["passes"] = int(state.get("passes") or 0) + 1
        state["pass_completed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    left = budget  # rows still to read; a call ends with its budget or with its pass
    while left > 0 and i < len(keys):
        last = con.execute(f"SELECT max(rowid) FROM {names[i]}").fetchone()[0]
        if last is None or rowid > last:
            i, rowid = i + 1, 0
            continue
        upto = min(int(last), rowid + left - 1)
        con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {names[i]} "
                    f"WHERE rowid BETWEEN {rowid} AND {upto}").fetchall()
        result.scrubbed.append((keys[i], rowid, upto))
        left -= upto - rowid + 1
        i, rowid = (i + 1, 0) if upto == last else (i, upto + 1)
    if i >= len(keys):
        complete_pass()  # the last table read to its end: the next call starts the next pass
        i, rowid = 0, 0
    state.update({"table": keys[i] if keys else None, "rowid": rowid, "budget_rows": budget})
    target = scrub_state_path(path)
    tmp = target.with_name(target.name + ".tmp")
    try:  # the place only: a run that cannot keep it reads the same slices again next time
        tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        log.warning("the rolling scrub's place could not be kept in %s: %s", target, exc)
        try:
            tmp.unlink()
        except OSError:
            pass


def _probe_indexes(con) -> None:
    """Look up the smallest and the largest key of every primary key and unique
    constraint: DuckDB loads (and checksums) the index blocks on those paths
    (in a small index, all of them). A scan never reads index blocks."""
    constraints = con.execute(
        "SELECT schema_name, table_name, constraint_column_names FROM duckdb_constraints() "
        "WHERE database_name = current_database() "
        "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')").fetchall()
    for schema, table, columns in constraints:
        name = f"{quote_identifier(schema)}.{quote_identifier(table)}"
        cols = [quote_identifier(c) for c in columns]
        where = " AND ".join(f"{c} = ?" for c in cols)
        for direction in ("ASC", "DESC"):
            key = con.execute(f"SELECT {', '.join(cols)} FROM {name} WHERE "
                              f"{' AND '.join(f'{c} IS NOT NULL' for c in cols)} ORDER BY "
                              f"{', '.join(f'{c} {direction}' for c in cols)} LIMIT 1").fetchone()
            if key is not None:
                con.execute(f"SELECT count(*) FROM {name} WHERE {where}", list(key)).fetchall()

