"""Opening the warehouse, and telling the faults of the machine and of the file apart.

Every module that reads or writes the DuckDB warehouse goes through this one:

* :func:`connect` opens it and turns DuckDB's failures into the faults of
  :mod:`pci.errors` (and :class:`pci.locking.WarehouseBusy`);
* :func:`check_before_writing` is the preflight of every step that writes (land,
  build, publish, the analysts' copy): folder writable, enough free space,
  warehouse file intact, before anything is written;
* :func:`classify` maps any exception met while working (an ``OSError``, a DuckDB
  error, a failed dbt node's text, the Airflow metadata database's SQLite error)
  to the fault it stands for, or None;
* the SQL helpers the modules share: :func:`table_exists`, :func:`landed_months`,
  :func:`quote_literal`, :func:`quote_identifier`.

What DuckDB 2.0.1 does with each kind of file, and what this module makes of it
(measured on a 9 MiB and a 184 MiB warehouse; see
``tests/faults/test_warehouse_faults.py``):

* **does not exist**: opened for writing, DuckDB creates a new database (a new
  warehouse); read-only, ``Cannot open database … database does not exist``
  (here ``FileNotFoundError``).
* **0 bytes**: ``The file "…" exists, but it is not a valid DuckDB database
  file!`` -- DuckDB 2.0.1 does *not* take it for a new database. Here
  ``WarehouseDamaged`` ("the file is empty"), found before DuckDB is asked: a
  warehouse file is never empty, so an empty one was cut short or overwritten.
* **garbage, another format, the first 4 KiB overwritten**: the same "not a valid
  DuckDB database file" -> ``WarehouseDamaged``.
* **a database header overwritten**: ``Corrupt database file: computed checksum
  … in block at location 0|4096|8192`` at open -> ``WarehouseDamaged``.
* **truncated before its metadata** (every cut at 75 % of the size or less, down
  to 100 bytes, in both warehouses): ``Could not read enough bytes from file "…"``
  at open -> ``WarehouseDamaged`` ("truncated").
* **truncated after its metadata** (cuts at 90-99.9 %): opens, reads its catalog,
  and fails only when a table whose blocks were cut is read. Here the size check
  -> ``WarehouseDamaged`` ("… bytes, but its header lists N blocks …").
* **a data block overwritten** (a 4 KiB page of random bytes in the middle):
  opens and reads its catalog without error; reading the block fails with
  ``Corrupt database file: computed checksum … does not match stored checksum
  …``. Here the thorough check -> ``WarehouseDamaged``; the cheap check does not
  see it.
* **a metadata block overwritten**: fails at open (checksum) -> ``WarehouseDamaged``.
* **a primary-key index block overwritten**: nothing until a lookup reads it (a
  write checking the key, or the thorough check's lookups); that write fails
  before it commits -> ``WarehouseDamaged``.
* **its ``.wal`` overwritten**: ``Failure while replaying WAL file … Corrupt WAL
  file`` at open -> ``WarehouseDamaged`` naming the WAL. **Its ``.wal`` cut
  short**: the incomplete tail is ignored silently (not detectable).

The file layout the size check relies on: three 4 KiB headers, then
``total_blocks`` blocks of ``block_size`` bytes (``pragma_database_size()``), so an
intact file is at least ``3 * 4096 + total_blocks * block_size`` bytes long (a
longer file is not an error). A shorter one lost blocks its metadata points to.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pci.contract import LOADS_TABLE, RAW_SCHEMA
from pci.errors import DiskFull, EnvironmentFault, FolderNotWritable, PipelineFault, WarehouseDamaged
from pci.locking import WarehouseBusy, process_info

#: the free space every writing step needs at least, in MiB, unless env PCI_MIN_FREE_MB says
#: otherwise (0 disables the check). A floor, not an estimate: it refuses at once (exit 6,
#: retried) a run on a disk that is all but full, instead of failing half-way. A build
#: needs more: it writes the new pci_build before the old one's blocks are freed, about
#: the size of pci_build (75 MiB of a 184 MiB warehouse at 100,000 tenants, 14 months), so
#: set PCI_MIN_FREE_MB to that for production. A disk that fills up during a step is
#: still reported as DiskFull (classify()), and DuckDB rolls the step's transaction back.
DEFAULT_MIN_FREE_MB = 64
MIN_FREE_ENV = "PCI_MIN_FREE_MB"

#: DuckDB's file header: the main header and two database headers of 4 KiB each
_HEADER_BYTES = 3 * 4096

EMPTY = ("the file is empty (0 bytes): a warehouse file is never empty, it was cut short or "
         "overwritten (or a first run was killed while creating it: if nothing was ever landed "
         "here, delete it and run again)")

# ----------------------------------------------------------------------------- messages

# DuckDB names the file it failed on as: ... file "<path>" ...
_QUOTED_FILE = re.compile(r'''(?:file|database)\s+"([^"]+)"''', re.IGNORECASE)
# an OSError's text: [Errno 28] No space left on device: '<path>'
_ERRNO_FILE = re.compile(r"\[Errno \d+\][^:\n]*: '([^'\n]+)'")
_LOCK_PID = re.compile(r"\(PID (\d+)\)")
_LOCK_PROGRAM = re.compile(r"Conflicting lock is held in (.+?) \(PID \d+\)")

_BUSY = ("could not set lock on file", "conflicting lock is held")
_DISK_FULL = ("no space left on device", "database or disk is full", "disk quota exceeded")
_NOT_WRITABLE = ("read-only file system", "permission denied", "operation not permitted",
                 "attempt to write a readonly database")
_DAMAGED = ("corrupt database file", "does not match stored checksum",
            "not a valid duckdb database file", "could not read enough bytes from file",
            "corrupt wal file", "failure while replaying wal")
_IO_ERROR = ("input/output error", "disk i/o error")

_ERRNO_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_ERRNO_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}
_ERRNO_IO = {errno.EIO, errno.ENXIO, errno.ENODEV, errno.ESTALE, errno.EFBIG}


def _free_bytes(path: Path | str | None) -> int | None:
    """Free bytes on the device holding ``path`` (its nearest existing ancestor)."""
    if path is None:
        return None
    p = Path(path).absolute()
    for candidate in (p, *p.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def _warehouse_of(file: str | Path) -> Path:
    """The database a file named by DuckDB belongs to (its WAL belongs to the database)."""
    file = Path(file)
    return file.with_name(file.name[:-4]) if file.name.endswith(".wal") else file


def _chain(exc: BaseException):
    """``exc``, then its causes and contexts, then the members of exception groups."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]


def _texts(e: BaseException) -> list[str]:
    """The text an exception carries: its message, and a failed dbt build's node messages."""
    texts = [str(e)]
    failures = getattr(e, "failures", None)
    if isinstance(failures, (list, tuple)):
        texts += [str(f) for f in failures]
    return texts


def busy_from_duckdb(message: str, warehouse: Path | str,
                     opened_read_only: bool | None = None) -> WarehouseBusy:
    """:class:`WarehouseBusy` for DuckDB's lock error (``Could not set lock on file
    "…": Conflicting lock is held in <program> (PID <pid>)``), naming the holder's
    pid, command line and start time when the process is visible here (else the
    program DuckDB names).

    DuckDB 2.0.1 adds "you would be able to open this database in read-only
    mode" when the holder has the file open read-only: the message then says so
    (typically an analyst's session). Without it, a refused read-only open
    (``opened_read_only=True``) means the holder writes; otherwise the message
    says that it may be a read-only connection."""
    warehouse = Path(warehouse)
    pid = _LOCK_PID.search(message)
    holder = None
    if pid:
        holder = process_info(int(pid.group(1)))
        if holder is None:
            program = _LOCK_PROGRAM.search(message)
            holder = {"pid": int(pid.group(1)),
                      "command": program.group(1) if program else "unknown command", "since": "?"}
    copy = warehouse.parent / "analyst" / warehouse.name
    if "read-only mode" in message:
        detail = (f", which has the DuckDB file open read-only (a read-only connection of "
                  f"another process, e.g. an analyst's session: analysts should query the "
                  f"copy {copy} instead)")
    elif opened_read_only:
        detail = ", which has the DuckDB file open for writing (a DuckDB connection outside pci's lock)"
    else:
        detail = (", which has the DuckDB file open (a DuckDB connection outside pci's lock; "
                  f"it may be a read-only one, e.g. an analyst's session: analysts should "
                  f"query the copy {copy} instead)")
    return WarehouseBusy(warehouse, holder, detail=detail)


def classify(exc: BaseException, path: Path | str | None = None) -> BaseException | None:
    """The fault ``exc`` stands for, or None when it is not a fault of the machine
    or of the warehouse file.

    ``path`` is the warehouse (or the file being written) the caller was working
    on; the messages name the file the error itself names when it names one,
    else ``path``. Looks at ``exc``, its ``__cause__``/``__context__`` chain (so
    a rollback that failed while handling a full disk is still a full disk), the
    members of exception groups, and the node messages of a failed dbt build
    (``.failures``). A :class:`~pci.errors.PipelineFault` or
    :class:`~pci.locking.WarehouseBusy` in the chain is returned as it is.

    Returns:

    * :class:`~pci.locking.WarehouseBusy` for DuckDB's lock error ("Could not set
      lock on file", "Conflicting lock is held"), naming the holder's pid;
    * :class:`~pci.errors.DiskFull` for ``ENOSPC``/``EDQUOT``, "No space left on
      device", SQLite's "database or disk is full" (the Airflow metadata
      database), "Disk quota exceeded"; the message names the path and the free
      space on its device (``shutil.disk_usage``);
    * :class:`~pci.errors.FolderNotWritable` for ``EROFS``/``EACCES``/``EPERM``,
      "Read-only file system", "Permission denied", "Operation not permitted",
      SQLite's "attempt to write a readonly database"; names the folder;
    * :class:`~pci.errors.WarehouseDamaged` for "Corrupt database file", a
      checksum mismatch, "not a valid DuckDB database file", "Could not read
      enough bytes from file" (truncated), a corrupt WAL;
    * :class:`~pci.errors.EnvironmentFault` for other I/O errors (``EIO``,
      "Input/output error", SQLite's "disk I/O error").

    When several apply, the first of: busy, full disk, not writable, damaged,
    I/O error (a full disk can make DuckDB report more than the full disk; the
    next run's preflight tells whether the file was damaged).
    """
    links = list(_chain(exc))
    for e in links:
        if isinstance(e, (PipelineFault, WarehouseBusy)):
            return e
    for e in links:
        if isinstance(e, OSError) and e.errno is not None:
            fault = _from_errno(e, path)
            if fault is not None:
                return fault
    for kinds, make in ((_BUSY, _busy), (_DISK_FULL, _disk_full), (_NOT_WRITABLE, _not_writable),
                        (_DAMAGED, _damaged), (_IO_ERROR, _io_error)):
        for e in links:
            for text in _texts(e):
                low = text.lower()
                if any(k in low for k in kinds):
                    return make(text, path)
    return None


def _named_file(text: str) -> str | None:
    m = _QUOTED_FILE.search(text) or _ERRNO_FILE.search(text)
    return m.group(1) if m else None


def _line_with(text: str, needles) -> str:
    """The line of ``text`` that holds the matched message (dbt's text spans lines)."""
    for line in text.splitlines():
        if any(n in line.lower() for n in needles):
            return line.strip()
    text = text.strip()
    return text if len(text) <= 500 else text[:500] + " …"


def _raise_classified(exc: BaseException, path) -> None:
    """Raise the fault ``exc`` stands for (from ``exc``), else ``exc`` itself."""
    fault = classify(exc, path)
    if fault is None:
        raise exc
    raise fault from exc


def _from_errno(e: OSError, path) -> BaseException | None:
    file = e.filename or path
    reason = f"{e.strerror or os.strerror(e.errno)} (errno {errno.errorcode.get(e.errno, e.errno)})"
    if e.errno in _ERRNO_DISK_FULL:
        return DiskFull(file or "(path not reported)", _free_bytes(file), detail=reason)
    if e.errno in _ERRNO_NOT_WRITABLE:
        folder = Path(file).parent if file else "(path not reported)"
        return FolderNotWritable(folder, detail=f"{file}: {reason}" if file else reason)
    if e.errno in _ERRNO_IO:
        return EnvironmentFault(
            f"I/O error on {file or '(path not reported)'}: {reason}; check the disk and run "
            f"again (nothing published was changed)", file)
    return None


def _busy(text: str, path) -> WarehouseBusy:
    file = _named_file(text)
    return busy_from_duckdb(_line_with(text, _BUSY), _warehouse_of(file) if file else
                            (path or "(path not reported)"))


def _disk_full(text: str, path) -> DiskFull:
    file = _named_file(text) or path
    return DiskFull(file or "(path not reported)", _free_bytes(file),
                    detail=_line_with(text, _DISK_FULL))


def _not_writable(text: str, path) -> FolderNotWritable:
    file = _named_file(text) or path
    folder = Path(file).parent if file else "(path not reported)"
    return FolderNotWritable(folder, detail=_line_with(text, _NOT_WRITABLE))


def _damaged(text: str, path) -> WarehouseDamaged:
    file = _named_file(text)
    warehouse = _warehouse_of(file) if file else (Path(path) if path else Path("(path not reported)"))
    line = _line_with(text, _DAMAGED)
    low = line.lower()
    if "corrupt wal" in low or "replaying wal" in low:
        what = f"its write-ahead log {warehouse}.wal is corrupt: {line}"
    elif "could not read enough bytes" in low:
        what = f"the file is truncated: {line}"
    elif "not a valid duckdb database file" in low:
        what = f"the file is not a DuckDB database (empty, cut short or overwritten): {line}"
    else:
        what = f"a block of the file is corrupt: {line}"
    return WarehouseDamaged(warehouse, what)


def _io_error(text: str, path) -> EnvironmentFault:
    file = _named_file(text) or path
    return EnvironmentFault(f"I/O error on {file or '(path not reported)'}: "
                            f"{_line_with(text, _IO_ERROR)}; check the disk and run again "
                            f"(nothing published was changed)", file)


# ----------------------------------------------------------------------------- connect


def connect(warehouse: Path | str, read_only: bool = False, *, wait: bool = False,
            timeout: float | None = None, poll: float = 1.0):
    """Open the DuckDB warehouse file; return the connection.

    * A path that does not exist is a new warehouse: opened for writing, DuckDB
      creates it (and this creates its folder). When that fails (a full disk),
      the file DuckDB left (0 bytes, or shorter than its headers) is removed, so
      that the next run does not find a damaged warehouse. Opened
      ``read_only``, it raises ``FileNotFoundError`` (nothing is created).
    * A file that exists but is empty (0 bytes) is a damaged warehouse, not a new
      one: :class:`~pci.errors.WarehouseDamaged`, decided here before DuckDB is
      asked (DuckDB 2.0.1 refuses it too, as "not a valid DuckDB database file").
    * Another process holding the file (a writer, or a read-only connection when
      we open for writing, e.g. an analyst's session):
      :class:`~pci.locking.WarehouseBusy` naming that process, the same message
      as when another run holds the lock file. ``wait=True`` retries every
      ``poll`` seconds until it is free (``timeout`` seconds at most, None =
      forever).
    * A file DuckDB cannot open because it is not a valid or complete database
      (garbage header, truncated before its metadata, a corrupt metadata block
      or WAL): :class:`~pci.errors.WarehouseDamaged`. Nothing was written to it.
    * No space left: :class:`~pci.errors.DiskFull`; read-only file system or
      permission denied: :class:`~pci.errors.FolderNotWritable`; another I/O
      error: :class:`~pci.errors.EnvironmentFault`.
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
        _raise_classified(exc, path)
    if size == 0:
        raise WarehouseDamaged(path, EMPTY)
    if size is None:
        if read_only:
            raise FileNotFoundError(errno.ENOENT, "no warehouse at this path (land an export "
                                    "first)", str(path))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _raise_classified(exc, path.parent)
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


def _remove_failed_creation(path: Path) -> None:
    """Remove what a failed creation of a new database left (DuckDB 2.0.1 leaves a
    0-byte or headerless file on a full disk, which would look damaged later)."""
    try:
        if path.stat().st_size < _HEADER_BYTES:  # a complete header is a valid, empty database
            path.unlink()
    except OSError:
        pass
    try:
        Path(f"{path}.wal").unlink()
    except OSError:
        pass


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
    need = _HEADER_BYTES + used * block_size
    have = path.stat().st_size
    if have < need:
        return (f"the file is truncated: {have:,} bytes, but its header lists {used:,} "
                f"blocks in use of {block_size:,} bytes, which need {need:,} bytes")
    return None


# ----------------------------------------------------------------------------- preflight


@dataclass
class Preflight:
    """What :func:`check_before_writing` found (all checks passed)."""
    warehouse: Path
    free_bytes: int | None  # on the warehouse's device
    min_free_bytes: int  # the floor checked (0: not checked)
    file_bytes: int | None  # None: no warehouse file yet (a new warehouse)
    #: "new" (no file yet), "cheap", "thorough", or "open here" (this process has the
    #: file open with another configuration: file checks skipped)
    level: str
    tables: int = 0
    blocks: int = 0
    seconds: dict = field(default_factory=dict)  # per check: folder, space, file, scan


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


def check_before_writing(warehouse: Path | str, *, thorough: bool = False,
                         min_free: int | None = None) -> Preflight:
    """The preflight of every step that writes (land, build, publish, the
    analysts' copy): call it first, holding the warehouse lock
    (:class:`pci.locking.WarehouseLock`; this does not take it). It writes
    nothing to the warehouse file and leaves its bytes as they were.

    In order:

    1. **The folder** of the warehouse exists (it is created when missing) and is
       writable: a probe file ``.<name>.probe-<pid>`` is created, written (4 KiB,
       fsync) and removed. Permission bits do not stop root: a read-only mount
       does. Raises :class:`~pci.errors.FolderNotWritable` (or
       :class:`~pci.errors.DiskFull` when the probe cannot be written for lack of
       space).
    2. **Free space** on its device is at least ``min_free`` bytes (default
       :func:`min_free_bytes`: env ``PCI_MIN_FREE_MB``, 64 MiB; 0 disables).
       Raises :class:`~pci.errors.DiskFull` naming the path and the free MiB.
    3. **The warehouse file**, when it exists, is intact. The cheap level (every
       call) opens it read-only (DuckDB checks the main and database headers'
       magic and checksums, replays the WAL in memory and reads the catalog from
       its metadata blocks), checks that the file is as long as its block count
       says (``pragma_database_size``) and lists its tables. The thorough level
       (``thorough=True``: once per ``pci run``, or on demand) also reads every
       column of every table, so that DuckDB verifies the checksum of every data
       block, and looks up the smallest and largest key of every primary key
       (which loads the index blocks on those paths). Raises
       :class:`~pci.errors.WarehouseDamaged` naming the file, what is wrong and
       how to restore it; :class:`~pci.locking.WarehouseBusy` when another
       process has it open for writing.

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
      :class:`~pci.errors.WarehouseDamaged`). Free blocks are not read (nothing
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
    free = _free_bytes(folder)
    if floor > 0 and free is not None and free < floor:
        raise DiskFull(path, free, detail=f"a writing step needs at least {floor / 2**20:.0f} MiB "
                                          f"({MIN_FREE_ENV}; 0 disables this check)")
    seconds["space"] = round(time.perf_counter() - t, 4)

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return Preflight(path, free, floor, None, "new", seconds=seconds)
    except OSError as exc:
        _raise_classified(exc, path)
    result = Preflight(path, free, floor, size, "thorough" if thorough else "cheap", seconds=seconds)
    if size == 0:
        raise WarehouseDamaged(path, EMPTY)
    _check_file(path, result, thorough)
    return result


def _check_folder(path: Path) -> None:
    """The warehouse's folder exists (created when missing) and a file can be written there."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _raise_classified(exc, folder)
    probe = folder / f".{path.name}.probe-{os.getpid()}"
    fd = None
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, b"\0" * 4096)
        os.fsync(fd)
    except OSError as exc:
        reason = f"{exc.strerror or os.strerror(exc.errno)}"
        if exc.errno in _ERRNO_DISK_FULL:
            raise DiskFull(path, _free_bytes(folder),
                           detail=f"a 4 KiB test file could not be written there: {reason}") from exc
        if exc.errno in _ERRNO_NOT_WRITABLE:
            raise FolderNotWritable(folder, detail=f"a test file could not be created there: "
                                                   f"{reason}") from exc
        _raise_classified(exc, probe)
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
            _raise_classified(exc, path)
    except duckdb.Error as exc:
        if any(k in str(exc).lower() for k in _BUSY):
            raise busy_from_duckdb(str(exc), path, opened_read_only=True) from exc
        _raise_classified(exc, path)
    try:  # this process has it open for writing: join that instance (no second open of the file)
        return duckdb.connect(str(path)), False
    except duckdb.ConnectionException as exc:
        if "different configuration" in str(exc):
            return None, False
        _raise_classified(exc, path)
    except duckdb.Error as exc:
        _raise_classified(exc, path)


def _check_file(path: Path, result: Preflight, thorough: bool) -> None:
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
    except duckdb.Error as exc:
        fault = classify(exc, path)
        if fault is None:
            raise
        raise fault from exc
    finally:
        con.close()


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
