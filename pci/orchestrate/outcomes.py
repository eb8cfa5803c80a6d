"""What a DAG run's tasks leave behind, and what a failure stands for.

Each run of a month ends in a report in ``<warehouse dir>/reports/``: the run
report ``run-YYYY-MM-<time>.json`` written by the last task
(:func:`pci.orchestrate.tasks.report`), or the failure report
``failed-YYYY-MM-<time>.json`` written by :func:`record_failure` for the task
that stopped it. ``python -m pci run`` reads the month's outcome back with
:func:`run_outcome`, by the DAG run's id.

Failures are of two kinds. A *refusal* (:class:`~pci.core.errors.Refusal`: the
export failed validation, the month is not scorable, a dbt test or the mart
audit failed) is final for the inputs at hand: the DAG fails the task without
retries. Anything else (a busy warehouse, an I/O error) is transient and
retried, except a damaged warehouse (exit 7), which needs an operator.
"""
from __future__ import annotations

import json
import logging
from datetime import date, datetime, timezone
from pathlib import Path

from pci.core.contract import format_month
from pci.core.errors import (EXIT_BUSY, EXIT_REFUSED, EnvironmentFault, PipelineFault, Refusal, WarehouseBusy,
                             WarehouseDamaged)
from pci.core.faults import classify

log = logging.getLogger(__name__)


class MonthRefused(Refusal):
    """A month cannot be published with the inputs at hand (not retried): a refusal
    of one of its steps, named with the step and the month."""

    def __init__(self, step: str, month: date, report: str):
        self.step, self.month = step, month
        super().__init__(report, f"{format_month(month)} refused at {step}:\n{report}")


class AuditFailed(MonthRefused):
    """The built month broke a check of the audit."""


def as_fault(exc: BaseException, warehouse: Path | None = None) -> BaseException:
    """``exc`` as the failure it stands for: an error of the machine or of the
    warehouse file met anywhere (an ``OSError``, a DuckDB or SQLite error: a full
    disk, a read-only folder, DuckDB's lock held by another process, a damaged file)
    becomes its :mod:`pci.core.errors` type or :class:`WarehouseBusy`; refusals and the
    faults already named are returned as they are, and so is anything else.
    Validation and audit reports are never read for such text (a value in an
    export may say anything)."""
    if isinstance(exc, (Refusal, PipelineFault, WarehouseBusy)):
        return exc
    return classify(exc, warehouse) or exc


def is_refusal(exc: BaseException) -> bool:
    """True for failures that a retry cannot fix (bad inputs, failed tests or audit)."""
    return isinstance(exc, Refusal)


def is_retryable(exc: BaseException) -> bool:
    """Whether Airflow should retry a task that raised ``exc``: not for refusals
    and a damaged warehouse; yes for a busy warehouse, a full disk, I/O errors."""
    exc = as_fault(exc)
    return exc.retryable if isinstance(exc, (Refusal, PipelineFault)) else True


def refusal_report(exc: Refusal) -> str:
    """The text that explains a refusal: the validation or audit report."""
    return str(exc.report)


# --------------------------------------------------------------------------- reports

def reports_dir(warehouse: Path) -> Path:
    return Path(warehouse).parent / "reports"


def write_report(warehouse: Path, name: str, payload: dict) -> Path:
    out = reports_dir(warehouse)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = out / f"{name}-{stamp}.json"
    try:
        path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    except OSError:
        try:  # leave no empty or partial report (a full disk): readers would skip it anyway
            path.unlink()
        except OSError:
            pass
        raise
    return path


def failure_status(exc: BaseException) -> int:
    """The exit status a failure of a step stands for (:mod:`pci.core.errors`)."""
    exc = as_fault(exc)
    if is_refusal(exc):
        return EXIT_REFUSED
    if isinstance(exc, WarehouseBusy):
        return EXIT_BUSY
    if isinstance(exc, PipelineFault):
        return exc.exit_status
    return EXIT_REFUSED


#: the failure of each DAG run recorded in this process, by run id: ``pci run`` (whose
#: DAG runs are in-process) reads it when the report file could not be written (a full disk)
_RECORDED_FAILURES: dict[str, dict] = {}


def record_failure(warehouse: Path, month: date, step: str, exc: BaseException,
                   run_id: str | None) -> dict:
    """Write what stopped a DAG run's task to ``reports/failed-YYYY-MM-<time>.json``
    (``python -m pci run`` reads it by ``run_id``; the same text is the task's error
    in the Airflow log). A report that cannot be written (a full disk) is logged, and
    kept in memory for a ``pci run`` of this process."""
    exc = as_fault(exc, warehouse)
    kind = ("refused" if is_refusal(exc) else "busy" if isinstance(exc, WarehouseBusy)
            else "damaged" if isinstance(exc, WarehouseDamaged)
            else "environment" if isinstance(exc, EnvironmentFault) else "error")
    text = (refusal_report(exc) if kind == "refused" else str(exc) if kind != "error"
            else f"{type(exc).__name__}: {exc}")
    payload = {"score_month": format_month(month), "run_id": run_id, "ok": False, "step": step,
               "kind": kind, "exit_status": failure_status(exc),
               "text": f"{format_month(month)} {'refused' if kind == 'refused' else 'failed'} "
                       f"at {step}:\n{text}"}
    if run_id:
        _RECORDED_FAILURES[run_id] = payload
    try:
        write_report(Path(warehouse), f"failed-{format_month(month)}", payload)
    except OSError as err:
        log.error("could not write the failure report of %s: %s", format_month(month), err)
    return payload


def run_outcome(warehouse: Path, month: date, run_id: str) -> dict | None:
    """What the DAG run ``run_id`` of ``month`` wrote: its run report (success) or its
    failure report, newest first; a failure whose report could not be written (a
    full disk) when the run was in this process; None when there is neither."""
    folder = reports_dir(warehouse)
    for pattern in (f"run-{format_month(month)}-*.json", f"failed-{format_month(month)}-*.json"):
        for path in sorted(folder.glob(pattern), reverse=True):
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if payload.get("run_id") == run_id:
                _RECORDED_FAILURES.pop(run_id, None)
                return payload
    return _RECORDED_FAILURES.pop(run_id, None)  # its failure report could not be written
