"""One writer per warehouse: an exclusive lock file beside the DuckDB file.

``<warehouse>.lock`` is locked with ``fcntl.flock`` (exclusive, non-blocking by
default). The lock belongs to the open file, so it is released by the kernel
when the holding process ends, also on ``kill -9``: a stale lock file never
blocks a later run. The file's content names the holder (pid, command line,
start time) so that a refused run can say who holds the warehouse.

The lock is re-entrant inside one process: the ``run`` command holds it for
the whole run, and the DAG's tasks it runs in-process take it again without
blocking themselves.

A warehouse is also "busy" when another process has the DuckDB file itself
open, even read-only (an analyst's session): DuckDB then refuses to open it for
writing. :func:`pci.core.warehouse.connect` turns that refusal into the same
:class:`WarehouseBusy`, naming the process DuckDB reports.

Taking the lock creates ``<warehouse>.lock`` (and the warehouse's folder when it
is missing). When that fails because of the machine, :meth:`WarehouseLock.acquire`
raises the fault of :mod:`pci.core.errors` instead of the ``OSError``:
:class:`~pci.core.errors.FolderNotWritable` (read-only file system, permission
denied), :class:`~pci.core.errors.DiskFull` (no space left, naming the free space),
:class:`~pci.core.errors.EnvironmentFault` (another I/O error). Nothing was locked
then.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from pci.core.errors import WarehouseBusy
from pci.core.faults import classify

_held: dict[str, list] = {}  # lock path -> [fd, depth]
_guard = threading.Lock()




def lock_path(warehouse: Path) -> Path:
    warehouse = Path(warehouse)
    return warehouse.with_name(warehouse.name + ".lock")


def read_holder(warehouse: Path) -> dict | None:
    """What the lock file says about its holder (None when unreadable or empty)."""
    try:
        text = lock_path(warehouse).read_text(encoding="utf-8").strip()
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None


class WarehouseLock:
    """Context manager holding the exclusive lock of ``warehouse``.

    ``wait=False`` raises :class:`WarehouseBusy` at once when another process
    holds it; ``wait=True`` blocks until it is free (``timeout`` seconds at
    most, None = forever).
    """

    def __init__(self, warehouse: Path, wait: bool = False, timeout: float | None = None,
                 poll: float = 0.5):
        self.warehouse = Path(warehouse).resolve()
        self.path = lock_path(self.warehouse)
        self.wait = wait
        self.timeout = timeout
        self.poll = poll

    def acquire(self) -> None:
        """Take the lock (again, when this process holds it already).

        Raises :class:`WarehouseBusy` when another process holds it (after
        ``timeout`` with ``wait=True``); :class:`~pci.core.errors.FolderNotWritable`,
        :class:`~pci.core.errors.DiskFull` or :class:`~pci.core.errors.EnvironmentFault`
        when the lock file cannot be created or written. Nothing is held after
        an exception.
        """
        key = str(self.path)
        with _guard:
            if key in _held:
                _held[key][1] += 1
                return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            _raise_fault(exc, self.path)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not self.wait or (deadline is not None and time.monotonic() >= deadline):
                    holder = read_holder(self.warehouse)
                    os.close(fd)
                    raise WarehouseBusy(self.warehouse, holder) from None
                time.sleep(self.poll)
        info = {"pid": os.getpid(), "command": " ".join(sys.argv)[:300],
                "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError as exc:  # e.g. no space left for the holder's line: give the lock back
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            _raise_fault(exc, self.path)
        with _guard:
            _held[key] = [fd, 1]

    def release(self) -> None:
        key = str(self.path)
        with _guard:
            entry = _held.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _held[key]
        fd = entry[0]
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> "WarehouseLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _raise_fault(exc: OSError, path: Path):
    """Raise the :mod:`pci.core.errors` fault an ``OSError`` on the lock file stands
    for, or the ``OSError`` itself when it is not a fault of the machine."""
    fault = classify(exc, path)
    if fault is None:
        raise exc
    raise fault from exc


def is_held_here(warehouse: Path) -> bool:
    """True when this process holds the lock of ``warehouse``."""
    return str(lock_path(Path(warehouse).resolve())) in _held


def command_under_lock(warehouse: Path, wait: bool, work):
    """A command's work on an existing warehouse file, holding its lock: ``(0, work())``,
    or ``(exit status, None)`` after saying why on standard error: 2 no such file,
    4 held by a run (without ``wait``) or open elsewhere, 6 an environment fault (the lock
    file cannot be written), 7 a damaged file."""
    from pci.core.errors import EXIT_ENVIRONMENT, EXIT_USAGE, PipelineFault  # noqa: PLC0415
    from pci.core.terminal import for_terminal  # noqa: PLC0415

    warehouse = Path(warehouse)
    if not warehouse.is_file():
        print(f"error: no warehouse at {for_terminal(warehouse)}", file=sys.stderr)
        return EXIT_USAGE, None
    try:
        with WarehouseLock(warehouse, wait=wait):
            return 0, work()
    except (WarehouseBusy, PipelineFault) as exc:  # busy 4, environment 6, damaged 7
        print(f"error: {for_terminal(exc)}", file=sys.stderr)
        return exc.exit_status, None
    except OSError as exc:  # the lock file itself cannot be written (a full or read-only folder)
        print(f"error: cannot take the lock of {for_terminal(warehouse)}: {for_terminal(exc)}",
              file=sys.stderr)
        return EXIT_ENVIRONMENT, None
