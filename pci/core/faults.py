"""What a failure stands for: the faults of the machine and of the warehouse file.

:func:`classify` maps any exception met while working (an ``OSError``, a DuckDB
error, a failed dbt node's text, the Airflow metadata database's SQLite error)
to the fault of :mod:`pci.core.errors` it stands for, or None;
:func:`busy_from_duckdb` builds the :class:`~pci.core.errors.WarehouseBusy` of
DuckDB's lock error, naming the process that holds the file
(:func:`process_info`).

What DuckDB 2.0.1 does with each kind of file, and what
:mod:`pci.core.warehouse` and :mod:`pci.core.preflight` make of it (measured on
a 9 MiB and a 184 MiB warehouse; see ``tests/faults/test_warehouse_faults.py``):

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
"""
from __future__ import annotations

import errno
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from pci.core.errors import (DiskFull, EnvironmentFault, FolderNotWritable, PipelineFault, WarehouseBusy,
                             WarehouseDamaged)

#: DuckDB's file header: the main header and two database headers of 4 KiB each
HEADER_BYTES = 3 * 4096

EMPTY = ("the file is empty (0 bytes): a warehouse file is never empty, it was cut short or "
         "overwritten (or a first run was killed while creating it: if nothing was ever landed "
         "here, delete it and run again)")

# DuckDB names the file it failed on as: ... file "<path>" ...
_QUOTED_FILE = re.compile(r'''(?:file|database)\s+"([^"]+)"''', re.IGNORECASE)
# an OSError's text: [Errno 28] No space left on device: '<path>'
_ERRNO_FILE = re.compile(r"\[Errno \d+\][^:\n]*: '([^'\n]+)'")
_LOCK_PID = re.compile(r"\(PID (\d+)\)")
_LOCK_PROGRAM = re.compile(r"Conflicting lock is held in (.+?) \(PID \d+\)")

BUSY_TEXTS = ("could not set lock on file", "conflicting lock is held")
_DISK_FULL = ("no space left on device", "database or disk is full", "disk quota exceeded")
_NOT_WRITABLE = ("read-only file system", "permission denied", "operation not permitted",
                 "attempt to write a readonly database")
_DAMAGED = ("corrupt database file", "does not match stored checksum",
            "not a valid duckdb database file", "could not read enough bytes from file",
            "corrupt wal file", "failure while replaying wal")
_IO_ERROR = ("input/output error", "disk i/o error")

ERRNO_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
ERRNO_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}
_ERRNO_IO = {errno.EIO, errno.ENXIO, errno.ENODEV, errno.ESTALE, errno.EFBIG}


def free_bytes(path: Path | str | None) -> int | None:
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
    (``.failures``). A :class:`~pci.core.errors.PipelineFault` or
    :class:`~pci.core.errors.WarehouseBusy` in the chain is returned as it is.

    Returns:

    * :class:`~pci.core.errors.WarehouseBusy` for DuckDB's lock error ("Could not set
      lock on file", "Conflicting lock is held"), naming the holder's pid;
    * :class:`~pci.core.errors.DiskFull` for ``ENOSPC``/``EDQUOT``, "No space left on
      device", SQLite's "database or disk is full" (the Airflow metadata
      database), "Disk quota exceeded"; the message names the path and the free
      space on its device (``shutil.disk_usage``);
    * :class:`~pci.core.errors.FolderNotWritable` for ``EROFS``/``EACCES``/``EPERM``,
      "Read-only file system", "Permission denied", "Operation not permitted",
      SQLite's "attempt to write a readonly database"; names the folder;
    * :class:`~pci.core.errors.WarehouseDamaged` for "Corrupt database file", a
      checksum mismatch, "not a valid DuckDB database file", "Could not read
      enough bytes from file" (truncated), a corrupt WAL;
    * :class:`~pci.core.errors.EnvironmentFault` for other I/O errors (``EIO``,
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
    for kinds, make in ((BUSY_TEXTS, _busy), (_DISK_FULL, _disk_full), (_NOT_WRITABLE, _not_writable),
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


def raise_classified(exc: BaseException, path) -> None:
    """Raise the fault ``exc`` stands for (from ``exc``), else ``exc`` itself."""
    fault = classify(exc, path)
    if fault is None:
        raise exc
    raise fault from exc


def _from_errno(e: OSError, path) -> BaseException | None:
    file = e.filename or path
    reason = f"{e.strerror or os.strerror(e.errno)} (errno {errno.errorcode.get(e.errno, e.errno)})"
    if e.errno in ERRNO_DISK_FULL:
        return DiskFull(file or "(path not reported)", free_bytes(file), detail=reason)
    if e.errno in ERRNO_NOT_WRITABLE:
        folder = Path(file).parent if file else "(path not reported)"
        return FolderNotWritable(folder, detail=f"{file}: {reason}" if file else reason)
    if e.errno in _ERRNO_IO:
        return EnvironmentFault(
            f"I/O error on {file or '(path not reported)'}: {reason}; check the disk and run "
            f"again (nothing published was changed)", file)
    return None


def _busy(text: str, path) -> WarehouseBusy:
    file = _named_file(text)
    return busy_from_duckdb(_line_with(text, BUSY_TEXTS), _warehouse_of(file) if file else
                            (path or "(path not reported)"))


def _disk_full(text: str, path) -> DiskFull:
    file = _named_file(text) or path
    return DiskFull(file or "(path not reported)", free_bytes(file),
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

def process_info(pid: int) -> dict | None:
    """``{"pid", "command", "since"}`` of a running process, read from ``/proc``
    (None when it is not visible from here: ended, or in another PID namespace)."""
    try:
        raw = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    command = " ".join(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)
    since = "?"
    try:
        # field 22 of stat (after the parenthesised command name): start time in clock
        # ticks after boot; the boot time is the btime line of /proc/stat
        fields = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        started = boot + ticks / os.sysconf("SC_CLK_TCK")
        since = datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds")
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    return {"pid": int(pid), "command": command[:300] or "?", "since": since}
