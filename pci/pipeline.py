"""The DAG's task functions, and ``python -m pci run`` over a range of months.

``dags/pci_monthly.py`` is a thin Airflow DAG: each of its tasks calls one
function here with the score month and the two paths. The ``run`` command runs
that same DAG, in-process, once per month (``dag.test``) against a private
Airflow metadata database beside the warehouse, so a command-line run and a
scheduled run execute the same task code in the same order:

    wait_for_export -> land_and_validate -> build_month -> validate_mart -> publish -> report

Every task that touches the warehouse holds the warehouse lock
(:mod:`pci.locking`); the lock is re-entrant inside the ``run`` process.

Failures are of two kinds. A *refusal* (the export failed validation, the month
is not scorable, a dbt test or the mart audit failed, the built rows changed
after the audit) is final for the inputs at hand: the DAG fails the task
without retries. Anything else (a busy warehouse, an I/O error) is transient
and retried with exponential backoff.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from pci.contract import (BUILD_SCHEMA, LOADS_TABLE, MANIFEST, MONTH_RE, RAW_SCHEMA, add_months,
                          format_month, month_range, parse_month)
from pci.errors import (EXIT_BUSY, EXIT_NOT_READY, EXIT_OK, EXIT_REFUSED, EXIT_STALE, EXIT_USAGE,
                        EnvironmentFault, PipelineFault, Refusal, WarehouseDamaged)
from pci.locking import WarehouseBusy, WarehouseLock
from pci.terminal import for_terminal
from pci.warehouse import check_before_writing, classify, connect, table_exists

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LANDING = ROOT / "data" / "landing"
DEFAULT_WAREHOUSE = ROOT / "data" / "warehouse" / "pci.duckdb"
DAG_ID = "pci_monthly"
BUILD_STATE = "pci_build_state"  # table in pci_build: which months the last build holds



# --------------------------------------------------------------------------- errors

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
    becomes its :mod:`pci.errors` type or :class:`WarehouseBusy`; refusals and the
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


# --------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class Paths:
    landing: Path
    warehouse: Path


def _variable(name: str) -> str | None:
    try:
        from airflow.sdk import Variable  # noqa: PLC0415

        return Variable.get(name, default=None)
    except Exception:  # noqa: BLE001 - no Airflow context (CLI) or no such variable
        return None


def resolve_paths(conf: dict | None = None, use_variables: bool = True) -> Paths:
    """Landing dir and warehouse: run conf, then Airflow Variables ``pci_landing`` /
    ``pci_warehouse``, then env ``PCI_LANDING`` / ``PCI_WAREHOUSE``, then defaults."""
    conf = conf or {}
    variable = _variable if use_variables else (lambda name: None)
    landing = (conf.get("landing") or variable("pci_landing") or os.environ.get("PCI_LANDING")
               or DEFAULT_LANDING)
    warehouse = (conf.get("warehouse") or variable("pci_warehouse")
                 or os.environ.get("PCI_WAREHOUSE") or DEFAULT_WAREHOUSE)
    return Paths(Path(landing).resolve(), Path(warehouse).resolve())


def score_month_of(data_interval_start, params: dict | None = None) -> date:
    """The month a run scores: the ``score_month`` param when given (manual runs),
    else the month of the run's data interval start."""
    wanted = (params or {}).get("score_month")
    if wanted:
        return parse_month(str(wanted))
    if data_interval_start is None:
        raise ValueError("a run without data interval needs the score_month param (YYYY-MM)")
    return date(data_interval_start.year, data_interval_start.month, 1)


@contextmanager
def _writing(warehouse: Path, thorough: bool = False):
    """Hold the warehouse lock (re-entrant) and check, before anything is written,
    that the folder is writable, has space and that the warehouse file is intact
    (:func:`pci.warehouse.check_before_writing`)."""
    with WarehouseLock(warehouse):
        check_before_writing(Path(warehouse), thorough=thorough)
        yield


@contextmanager
def _opened(warehouse: Path, read_only: bool = False):
    con = connect(Path(warehouse), read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def reports_dir(warehouse: Path) -> Path:
    return Path(warehouse).parent / "reports"


def _write_report(warehouse: Path, name: str, payload: dict) -> Path:
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


# --------------------------------------------------------------------------- tasks

def export_ready(landing: Path, month: date) -> bool:
    """The sensor's test: the month's folder has its ``_manifest.json``."""
    return (Path(landing) / format_month(month) / MANIFEST).is_file()


def ready_folders(landing: Path, through: date) -> list[date]:
    """Months up to ``through`` whose export folder has a manifest, oldest first."""
    out = []
    if Path(landing).is_dir():
        for p in Path(landing).iterdir():
            if p.is_dir() and MONTH_RE.match(p.name) and (p / MANIFEST).is_file():
                m = parse_month(p.name)
                if m <= through:
                    out.append(m)
    return sorted(out)


def land_through(landing: Path, warehouse: Path, month: date, restate: bool = True) -> dict:
    """Land every ready export up to ``month`` that is not landed yet or whose
    manifest changed since it was landed, oldest first. Raises the landing
    module's ``ValidationFailed`` for the first invalid month.

    Then flags the published months that now read superseded data
    (``pci_score_publications.stale``, :func:`pci.publish.mark_stale`);
    ``restate`` lists those before ``month`` that this run republishes with
    ``month`` (none when ``restate`` is False). What stays stale after the run is
    read after its publication (:func:`publish`)."""
    from pci import landing as landing_mod  # noqa: PLC0415
    from pci.contract import ensure_raw_schema  # noqa: PLC0415
    from pci.publish import mark_stale  # noqa: PLC0415

    landed = []
    with _writing(warehouse):
        for m in ready_folders(landing, month):
            with _opened(warehouse) as con:
                ensure_raw_schema(con)
                needed = landing_mod.needs_landing(Path(landing), con, m)
            if needed:
                try:
                    landing_mod.land_month(Path(landing), Path(warehouse), m)
                except Exception as exc:  # noqa: BLE001
                    if is_refusal(exc):  # name the month; keep the landing report
                        raise MonthRefused("land_and_validate", m, refusal_report(exc)) from exc
                    raise
                landed.append(format_month(m))
        with _opened(warehouse) as con:
            stale = mark_stale(con)
    return {"score_month": format_month(month), "landed": landed,
            "restate": [format_month(m) for m in stale if m < month] if restate else []}


def _current_loads(con) -> list[list]:
    if not table_exists(con, RAW_SCHEMA, LOADS_TABLE):
        return []
    return [[format_month(m), lid] for m, lid in con.execute(
        "SELECT export_month, load_id FROM raw.loads WHERE is_current ORDER BY 1, 2").fetchall()]


def _build_state(con) -> dict | None:
    if not table_exists(con, BUILD_SCHEMA, BUILD_STATE):
        return None
    rows = con.execute(f"SELECT state FROM {BUILD_SCHEMA}.{BUILD_STATE}").fetchall()
    return json.loads(rows[0][0]) if rows else None


def _set_build_state(con, state: dict | None) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {BUILD_SCHEMA}")
    con.execute(f"CREATE TABLE IF NOT EXISTS {BUILD_SCHEMA}.{BUILD_STATE} (state VARCHAR)")
    con.execute(f"DELETE FROM {BUILD_SCHEMA}.{BUILD_STATE}")
    if state is not None:
        con.execute(f"INSERT INTO {BUILD_SCHEMA}.{BUILD_STATE} VALUES (?)", [json.dumps(state)])


def build_months(warehouse: Path, first: date, last: date, token: str | None = None) -> dict:
    """One ``dbt build`` of score months ``first … last`` into ``pci_build``.

    Raises ``NotScorable`` (scoring module) when a month lacks its inputs. The
    build is recorded in ``pci_build.pci_build_state`` with the loads it read and
    ``token``, so that a later task of the same ``run`` can use it (see
    :func:`build_month`)."""
    from pci import scoring  # noqa: PLC0415

    warehouse = Path(warehouse)
    with _writing(warehouse):
        with _opened(warehouse) as con:
            scoring.check_scorable(con, first, last)
            _set_build_state(con, None)  # a build killed half-way leaves no valid state
        started = time.monotonic()
        scoring.build(warehouse, first, last)  # needs the file free of our connections
        with _opened(warehouse) as con:
            state = {"first": format_month(first), "last": format_month(last), "token": token,
                     "loads": _current_loads(con)}
            _set_build_state(con, state)
    return {"first": format_month(first), "last": format_month(last),
            "seconds": round(time.monotonic() - started, 1), "reused": False}


def _months(month: date, restate) -> list[date]:
    """The months a DAG run publishes: the stale months it restates, then its own."""
    return sorted({*(parse_month(m) if isinstance(m, str) else m for m in restate or ()), month})


def _build_holds(state: dict | None, loads: list, months: list[date]) -> bool:
    return bool(state and state.get("loads") == loads
                and parse_month(state["first"]) <= months[0]
                and months[-1] <= parse_month(state["last"]))


def build_month(warehouse: Path, month: date, token: str | None = None, restate=()) -> dict:
    """Build the month (and the earlier stale months it restates) into ``pci_build``
    unless the ``run`` command that passed ``token`` already built a range holding
    them from the same loads. One dbt build covers them all."""
    warehouse = Path(warehouse)
    months = _months(month, restate)
    restated = [format_month(m) for m in months if m != month]
    if token:
        with WarehouseLock(warehouse), _opened(warehouse, read_only=True) as con:
            state = _build_state(con)
            loads = _current_loads(con)
        if state and state.get("token") == token and _build_holds(state, loads, months):
            return {"first": state["first"], "last": state["last"], "seconds": 0.0, "reused": True,
                    "restate": restated}
    return build_months(warehouse, months[0], month, token) | {"restate": restated}


def validate_mart(warehouse: Path, month: date, restate=()) -> dict:
    """Audit the built month, and each earlier stale month it restates (GX suite +
    structural checks). Returns the month's audited fingerprint, with the restated
    months' fingerprints under ``also``; raises :class:`AuditFailed` with the report
    otherwise. Each report is also written to
    ``<warehouse dir>/reports/mart-YYYY-MM-<time>.json``."""
    from pci.mart_validation import audit_month  # noqa: PLC0415

    warehouse = Path(warehouse)
    months = _months(month, restate)
    with _writing(warehouse):
        with _opened(warehouse, read_only=True) as con:
            state, loads = _build_state(con), _current_loads(con)
        if not _build_holds(state, loads, months):
            # another run replaced pci_build since build_month (each task holds the
            # lock only while it runs): audit a build of these months, never another one
            log.warning("pci_build no longer holds %s from the current loads: building it again",
                        ", ".join(format_month(m) for m in months))
            build_months(warehouse, months[0], month)
        with _opened(warehouse, read_only=True) as con:
            audits = [audit_month(con, m) for m in months]
    fingerprints = {}
    for audit in audits:
        m = audit.score_month
        path = _write_report(warehouse, f"mart-{format_month(m)}", audit.as_dict())
        if not audit.ok:
            raise AuditFailed("validate_mart", m, f"{audit.report()}\n(report: {path})")
        fingerprints[m] = audit.fingerprint
    return fingerprints[month] | {"also": [fingerprints[m] for m in months if m != month]}


def publish(warehouse: Path, month: date, run_id: str | None, audited: dict) -> dict:
    """Swap the audited month, and the earlier stale months audited with it
    (``audited["also"]``), into ``main`` in one transaction; then refresh the
    analysts' copy. The result is the month's publication, with the restated
    months' publications under ``restated``."""
    from pci.analyst_copy import refresh_copy  # noqa: PLC0415
    from pci.publish import publish_months, stale_months  # noqa: PLC0415

    warehouse = Path(warehouse)
    todo = [(parse_month(a["score_month"]), a) for a in audited.get("also", [])]
    todo.append((month, audited))
    with _writing(warehouse), _opened(warehouse) as con:
        results = publish_months(con, todo, run_id=run_id)
        stale = stale_months(con)
        # also when unchanged: a run killed after the commit may not have refreshed it.
        # A failed refresh is reported, never a refusal: the publication has committed.
        copy = refresh_copy(con, warehouse)
    own = results[-1].as_dict()
    own["analyst_copy"] = {"ok": copy.ok, "path": str(copy.path), "error": copy.error}
    own["restated"] = [r.as_dict() for r in results[:-1]]
    # what still reads superseded data after this publication (pci_score_publications.stale)
    own["stale_months"] = [format_month(m) for m in stale]
    return own


def _publication_text(pub: dict) -> str:
    rows = pub["rows"]
    what = (f"{rows} partners" if rows else
            "0 partners: the month's partners.csv lists no partner, so it has no score rows")
    if pub["status"] == "restated":
        what += f", {len(pub.get('changed_partners') or [])} changed"
    return f"{pub['score_month']}: {pub['status']} ({what})"


def _rerun_hint(months: list[str]) -> str:
    return f"python -m pci run --month {months[0]} --through {months[-1]} ..."


def report(warehouse: Path, month: date, landed: dict, built: dict, published: dict,
           run_id: str | None = None) -> dict:
    """The run's summary, logged and written to ``reports/run-YYYY-MM-<time>.json``
    (``run_id`` ties it to its DAG run: ``python -m pci run`` reads it from there).

    ``stale_months`` lists the published months that still read superseded data
    after this run: with ``restate`` (the default) only months after the score
    month can remain (their own runs restate them); with ``--no-restate`` the
    earlier ones too. They are flagged ``stale`` in ``pci_score_publications``."""
    lines = [_publication_text(p) for p in published.get("restated", [])]
    lines.append(_publication_text(published))
    text = "; ".join(lines)
    stale = published.get("stale_months", [])
    left = [m for m in stale if parse_month(m) <= month]
    later = [m for m in stale if parse_month(m) > month]
    if left:
        text += (f"; published months up to {format_month(month)} still read superseded data "
                 f"(left as they are: --no-restate; flagged stale in pci_score_publications): "
                 f"{', '.join(left)} - run them again ({_rerun_hint(left)})")
    if later:
        text += (f"; its inputs changed and later published months read them: {', '.join(later)} "
                 f"- run them again ({_rerun_hint(later)})")
    copy = published.get("analyst_copy") or {}
    if copy and not copy.get("ok"):
        text += f"; published, but the analysts' copy was not refreshed: {copy.get('error')}"
    summary = {"score_month": format_month(month), "run_id": run_id, "ok": True,
               "landed": landed.get("landed", []), "build": built, "publication": published,
               "restated_months": [p["score_month"] for p in published.get("restated", [])],
               "stale_months": stale, "stale_later_months": later, "text": text}
    path = _write_report(Path(warehouse), f"run-{format_month(month)}", summary)
    log.info("%s (report: %s)", text, path)
    return summary


def failure_status(exc: BaseException) -> int:
    """The exit status a failure of a step stands for (:mod:`pci.errors`)."""
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
        _write_report(Path(warehouse), f"failed-{format_month(month)}", payload)
    except OSError as err:
        log.error("could not write the failure report of %s: %s", format_month(month), err)
    return payload


def run_outcome(warehouse: Path, month: date, run_id: str) -> dict | None:
    """What the DAG run ``run_id`` of ``month`` wrote: its run report (success) or its
    failure report, newest first; None when it wrote neither."""
    folder = reports_dir(warehouse)
    for pattern in (f"run-{format_month(month)}-*.json", f"failed-{format_month(month)}-*.json"):
        for path in sorted(folder.glob(pattern), reverse=True):
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if payload.get("run_id") == run_id:
                return payload
    return None


# --------------------------------------------------------------------------- the run command

def airflow_env(warehouse: Path, airflow_home: Path | None = None) -> dict[str, str]:
    """The environment of the private Airflow used by ``run``: its metadata DB
    (SQLite) in ``<warehouse>.airflow/``, the repository's ``dags/`` folder, no examples."""
    warehouse = Path(warehouse).resolve()
    home = Path(airflow_home) if airflow_home else warehouse.with_name(warehouse.name + ".airflow")
    return {
        "AIRFLOW_HOME": str(home.resolve()),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{(home / 'airflow.db').resolve()}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("PCI_AIRFLOW_LOG_LEVEL", "WARNING"),
    }


def _airflow_db_ready(home: Path) -> bool:
    """Whether the private Airflow's SQLite database holds a migrated schema (a 0-byte
    or damaged file, or one whose migration was killed half-way, does not)."""
    import sqlite3  # noqa: PLC0415

    db = home / "airflow.db"
    if not db.is_file() or db.stat().st_size == 0:
        return False
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = con.execute("SELECT version_num FROM alembic_version").fetchall() \
                if "alembic_version" in names else []
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return bool(version) and {"dag_run", "task_instance", "dag"} <= names


def _prepare_airflow(env: dict[str, str]):
    """Point Airflow at the private home (before it is imported), migrate its DB
    when it is missing or not usable (the home is private to this warehouse and
    holds nothing else of value, so a damaged database is set aside and made
    anew), and return the DAG object from the repository's dags folder."""
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != env["AIRFLOW_HOME"]:
        log.warning("Airflow already imported with AIRFLOW_HOME=%s; using it",
                    os.environ.get("AIRFLOW_HOME"))
    else:
        os.environ.update(env)
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    from airflow.utils import db as airflow_db  # noqa: PLC0415

    if not _airflow_db_ready(home):
        for name in ("airflow.db", "airflow.db-wal", "airflow.db-shm", "airflow.db-journal"):
            path = home / name
            if path.exists():
                log.warning("the private Airflow database %s is not usable: set aside and made anew",
                            path)
                path.replace(path.with_name(path.name + ".damaged"))
        airflow_db.initdb()
    from airflow.dag_processing.dagbag import DagBag  # noqa: PLC0415

    bag = DagBag(dag_folder=str(ROOT / "dags" / "pci_monthly.py"))
    if bag.import_errors:
        raise RuntimeError(f"dags/pci_monthly.py does not import: {bag.import_errors}")
    return bag.dags[DAG_ID]


@dataclass
class MonthOutcome:
    month: date
    ok: bool
    text: str
    exit_status: int = EXIT_OK
    report: dict = field(default_factory=dict)
    task_states: dict = field(default_factory=dict)


def run_month_through_dag(dag, paths: Paths, month: date, token: str | None,
                          restate: bool = True) -> MonthOutcome:
    """One month through the DAG's own tasks, in-process (``dag.test``). The outcome
    is read from what the tasks wrote (:func:`run_outcome`): the run report, or the
    failure report of the task that stopped it."""
    from airflow.utils.state import DagRunState  # noqa: PLC0415

    # a manual run's data interval is the period before its logical date (the
    # timetable's infer_manual_data_interval): logical date = first of M+1 gives
    # data_interval_start = M, as the scheduled run of M has
    nxt = add_months(month, 1)
    logical = datetime(nxt.year, nxt.month, 1, tzinfo=timezone.utc)
    dr = dag.test(logical_date=logical, run_after=logical,
                  run_conf={"score_month": format_month(month), "landing": str(paths.landing),
                            "warehouse": str(paths.warehouse), "build_token": token,
                            "restate": restate, "fail_fast": True})
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    ok = dr.state == DagRunState.SUCCESS
    recorded = _RECORDED_FAILURES.pop(dr.run_id, None)  # also when its file could not be written
    written = run_outcome(paths.warehouse, month, dr.run_id) or recorded or {}
    if ok:
        return MonthOutcome(month, True, written.get("text", ""), EXIT_OK, written, states)
    text = written.get("text") or (f"{format_month(month)} failed; the DAG run wrote no report; "
                                   f"tasks: " + ", ".join(f"{k}={v}" for k, v in states.items()))
    return MonthOutcome(month, False, text, written.get("exit_status", EXIT_REFUSED), written, states)


def run_range(paths: Paths, first: date, last: date, airflow_home: Path | None = None,
              progress: bool = True, console=None, restate: bool = True) -> int:
    """The ``run`` command's work (the caller holds the warehouse lock).

    Lands every ready export up to ``last``; with ``restate`` (the default) every
    published month before ``first`` that now reads superseded data is built in
    the same dbt build and republished by the first month's DAG run, so no
    published month up to ``last`` is left stale. Without it they are named, flagged
    ``stale`` and the exit status is 5."""
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    out = console or Console()
    err = Console(stderr=True)
    months = month_range(first, last)
    # months before the first export that is not ready are run; then exit 3
    not_ready = next((m for m in months if not export_ready(paths.landing, m)), None)
    if not_ready is not None:
        months = [m for m in months if m < not_ready]

    def say_not_ready() -> int:
        err.print(f"[yellow]not ready[/]: {format_month(not_ready)} has no "
                  f"{paths.landing / format_month(not_ready) / MANIFEST} yet (the export is still "
                  f"being written); nothing of it was used")
        return EXIT_NOT_READY

    if not months:
        return say_not_ready()
    # once per run, the thorough check (every block read): a damaged warehouse is
    # refused before anything is written to it; each task repeats the cheap check
    with _writing(paths.warehouse, thorough=True):
        pass

    # 1. land every ready export up to the last month (oldest first)
    refused_landing: MonthRefused | None = None
    restated: list[date] = []
    try:
        landed = land_through(paths.landing, paths.warehouse, months[-1], restate)
        restated = [parse_month(m) for m in landed["restate"] if parse_month(m) < months[0]]
        if landed["landed"]:
            out.print(f"landed {', '.join(landed['landed'])}")
    except Exception as exc:  # noqa: BLE001
        if not is_refusal(exc):
            raise
        bad = exc.month if isinstance(exc, MonthRefused) else first
        refused_landing = exc if isinstance(exc, MonthRefused) else MonthRefused(
            "land_and_validate", bad, refusal_report(exc))
        months = [m for m in months if m < bad]

    # 2. a range is scored in one dbt build (with the earlier months it restates);
    #    each month is still audited and published by its own DAG run, in order
    token = uuid.uuid4().hex
    build_first = min([*restated, *months[:1]]) if months else None
    if months and (len(months) > 1 or restated):
        try:
            built = build_months(paths.warehouse, build_first, months[-1], token)
            out.print(f"built {format_month(build_first)} … {format_month(months[-1])} "
                      f"in one dbt build ({built['seconds']} s)")
        except Exception as exc:  # noqa: BLE001 - each month's own run reports it
            if not is_refusal(exc):
                raise
            token = None

    if months:  # the DAG has tasks for months from its start date on
        start = os.environ.get("PCI_START_MONTH")
        if not start or not MONTH_RE.match(start) or parse_month(start) > months[0]:
            os.environ["PCI_START_MONTH"] = format_month(months[0])
    dag = _prepare_airflow(airflow_env(paths.warehouse, airflow_home)) if months else None
    stale: list[str] = []
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn()]
    with Progress(*columns, console=out, disable=not progress, transient=False) as bar:
        job = bar.add_task("pci run", total=len(months))
        for m in months:
            bar.update(job, description=f"{format_month(m)} through {DAG_ID}")
            started = time.monotonic()
            outcome = run_month_through_dag(dag, paths, m, token, restate)
            took = time.monotonic() - started
            if not outcome.ok:
                word = "refused" if outcome.exit_status == EXIT_REFUSED else "failed"
                err.print(f"[red]{format_month(m)} {word}[/] ({took:.1f} s)")
                print(for_terminal(outcome.text), file=sys.stderr)
                return outcome.exit_status
            stale = outcome.report.get("stale_months", [])
            copy = (outcome.report.get("publication") or {}).get("analyst_copy") or {}
            if copy and not copy.get("ok"):  # published (exit 0), but say it where errors go
                print(for_terminal(f"warning: {format_month(m)} is published, but {copy.get('error')}"),
                      file=sys.stderr)
            bar.console.print(for_terminal(f"{outcome.text or format_month(m) + ': published'} "
                                           f"({took:.1f} s)"), soft_wrap=True, markup=False)
            bar.advance(job)
    if refused_landing is not None:
        err.print(f"[red]{format_month(refused_landing.month)} refused[/] at landing")
        print(for_terminal(refused_landing.report), file=sys.stderr)
        return EXIT_REFUSED
    if not_ready is not None:
        return say_not_ready()
    left = [m for m in stale if parse_month(m) <= last]
    if left:
        err.print(f"[yellow]stale[/]: published months up to {format_month(last)} read superseded "
                  f"data and were left as they are (--no-restate): {', '.join(left)}")
        return EXIT_STALE
    return EXIT_OK


def quiet_libraries() -> None:
    """Keep the command's output to its own progress and reports."""
    import warnings  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING)
    # a log handler that cannot write (its file on a full disk: dbt's, Airflow's task log)
    # must not print a traceback per record on standard error; the failure itself is reported
    logging.raiseExceptions = False
    for name in ("great_expectations", "great_expectations.data_context.types.base", "airflow", "dbt",
                 "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for module in ("fastapi", "airflow", "jwt", "great_expectations", "starlette"):
        warnings.filterwarnings("ignore", module=module)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--landing", type=Path, default=None,
                        help="landing folder with one YYYY-MM folder per export (env PCI_LANDING)")
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="DuckDB warehouse file (env PCI_WAREHOUSE)")
    parser.add_argument("--month", required=True, help="first score month, YYYY-MM")
    parser.add_argument("--through", default=None, help="last score month, YYYY-MM (default: --month)")
    parser.add_argument("--wait", action="store_true",
                        help="wait for another run holding the warehouse instead of failing (exit 4)")
    parser.add_argument("--airflow-home", type=Path, default=None,
                        help="the private Airflow home (default: <warehouse>.airflow beside the warehouse)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--no-restate", dest="restate", action="store_false",
                        help="do not republish earlier published months that read superseded data "
                             "(a month landed again): name them, flag them stale, exit 5")


def command(args) -> int:
    try:
        first = parse_month(args.month)
        last = parse_month(args.through) if args.through else first
    except ValueError as exc:
        print(f"usage error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if last < first:
        print(f"usage error: --through {args.through} is before --month {args.month}", file=sys.stderr)
        return EXIT_USAGE
    paths = resolve_paths({"landing": args.landing, "warehouse": args.warehouse},
                          use_variables=False)
    if not paths.landing.is_dir():
        print(f"usage error: the landing folder {paths.landing} does not exist", file=sys.stderr)
        return EXIT_USAGE
    os.environ["PCI_WAREHOUSE"] = str(paths.warehouse)
    os.environ["PCI_LANDING"] = str(paths.landing)
    quiet_libraries()
    try:
        with WarehouseLock(paths.warehouse, wait=args.wait):
            return run_range(paths, first, last, args.airflow_home, progress=not args.quiet,
                             restate=args.restate)
    except Exception as exc:  # noqa: BLE001 - the faults of the machine and of the file
        fault = as_fault(exc, paths.warehouse)
        if not isinstance(fault, (WarehouseBusy, PipelineFault)):
            raise
        print(f"error: {for_terminal(fault)}", file=sys.stderr)
        return failure_status(fault)
