"""The kinds of failure the pipeline can meet, and the exit status of each.

Every command and every task of the DAG ends in one of these outcomes
(``docs/operations.md`` lists them with their messages and what to do):

====  ==================  ===========================================  ==================
exit  kind                what it means                                under Airflow
====  ==================  ===========================================  ==================
0     ok                  every month asked for was published
1     refused             the inputs at hand cannot be published        failed, no retry
                          (invalid export, not scorable, failed dbt
                          test or audit)
2     usage               a wrong argument, a missing folder or file
3     not ready           an export has no ``_manifest.json`` yet       the sensor waits
4     busy                another process holds the warehouse           retried
5     stale               ``--no-restate``: published months read       failed, no retry
                          superseded data and were left as they are
6     environment         the disk is full, the folder is not           retried
                          writable, another I/O error
7     damaged             the warehouse file is truncated or corrupt    failed, no retry
====  ==================  ===========================================  ==================

:class:`EnvironmentFault` and :class:`WarehouseDamaged` are raised by the
warehouse access (:mod:`pci.core.warehouse`) and by the steps that write files;
their messages name the path, what is wrong and what to do.
"""
from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_NOT_READY = 3
EXIT_BUSY = 4
EXIT_STALE = 5
EXIT_ENVIRONMENT = 6
EXIT_DAMAGED = 7


class Refusal(Exception):
    """The inputs at hand cannot be published, and running again will not change
    that (an invalid export, a month not scorable, a failed dbt test or audit, rows
    changed after the audit): exit 1, not retried. ``report`` explains it (text, or
    a report object whose ``str()`` is its text); nothing of the month was published.
    The steps' own refusals subclass it."""

    exit_status = EXIT_REFUSED
    retryable = False

    def __init__(self, report, message: str | None = None):
        self.report = report
        super().__init__(message if message is not None else str(report))


class NotReady(Exception):
    """An export folder has no ``_manifest.json`` yet: not an error, wait (exit 3)."""

    exit_status = EXIT_NOT_READY
    retryable = True


class PipelineFault(Exception):
    """A failure of the machine or of the warehouse file, not of the data."""

    exit_status = EXIT_ENVIRONMENT
    #: whether running again later may succeed (Airflow retries it)
    retryable = True


class EnvironmentFault(PipelineFault):
    """The environment failed (full disk, read-only folder, I/O error): retried."""

    def __init__(self, message: str, path: Path | str | None = None):
        self.path = Path(path) if path is not None else None
        super().__init__(message)


class DiskFull(EnvironmentFault):
    """No space left on the device that holds ``path``."""

    def __init__(self, path: Path | str, free_bytes: int | None = None, detail: str = ""):
        self.free_bytes = free_bytes
        free = f"{free_bytes / 2**20:.1f} MiB free" if free_bytes is not None else "free space unknown"
        super().__init__(
            f"no space left on the device holding {path} ({free}){': ' + detail if detail else ''}; "
            f"free some space there and run again (nothing published was changed)", path)


class FolderNotWritable(EnvironmentFault):
    """The folder of the warehouse (or of its reports) cannot be written."""

    def __init__(self, path: Path | str, detail: str = ""):
        super().__init__(
            f"cannot write in {path}{': ' + detail if detail else ''}; make the folder writable "
            f"(or choose another --warehouse) and run again (nothing published was changed)", path)


class WarehouseDamaged(PipelineFault):
    """The warehouse file is truncated or corrupt: nothing was written to it."""

    exit_status = EXIT_DAMAGED
    retryable = False

    def __init__(self, path: Path | str, detail: str):
        self.path = Path(path)
        super().__init__(
            f"the warehouse {path} is damaged ({detail}); nothing was written to it. "
            f"Restore it: move it aside and either put back a backup, or rebuild it from the "
            f"landing with `python -m pci run --month FIRST --through LAST` (the published "
            f"scores and their publication records of every month are also in the analysts' "
            f"copy, {Path(path).parent / 'analyst' / Path(path).name}); see docs/operations.md, "
            f"'A damaged warehouse'", )


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse: its lock file, or the DuckDB file itself.

    ``holder`` is what is known of that process (``pid``, ``command``, ``since``);
    ``detail`` is added after the holder (e.g. that it holds the DuckDB file
    read-only). The message always has the shape ``warehouse <path> is in use by
    process <pid> (<command>, since <time>)[<detail>]; wait for it to finish, or
    rerun with --wait`` ("another process" when the holder is unknown). Exit
    status 4; under Airflow the task is retried.
    """

    exit_status = EXIT_BUSY
    retryable = True

    def __init__(self, warehouse: Path, holder: dict | None, detail: str = ""):
        self.warehouse = Path(warehouse)
        self.holder = holder or {}
        self.detail = detail
        who = (f"process {self.holder.get('pid', '?')} "
               f"({self.holder.get('command', 'unknown command')}, "
               f"since {self.holder.get('since', '?')})") if self.holder else "another process"
        super().__init__(
            f"warehouse {self.warehouse} is in use by {who}{detail}; "
            f"wait for it to finish, or rerun with --wait")
