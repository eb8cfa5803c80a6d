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
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from pci.contract import BUILD_SCHEMA, MANIFEST, MONTH_RE, add_months, format_month, month_range, parse_month
from pci.locking import EXIT_BUSY, WarehouseBusy, WarehouseLock

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LANDING = ROOT / "data" / "landing"
DEFAULT_WAREHOUSE = ROOT / "data" / "warehouse" / "pci.duckdb"
DAG_ID = "pci_monthly"
BUILD_STATE = "pci_build_state"  # table in pci_build: which months the last build holds

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NOT_READY = 0, 1, 2, 3


# --------------------------------------------------------------------------- errors

class MonthRefused(RuntimeError):
    """A month cannot be published with the inputs at hand (not retried)."""

    def __init__(self, step: str, month: date, report: str):
        self.step, self.month, self.report = step, month, report
        super().__init__(f"{format_month(month)} refused at {step}:\n{report}")


class AuditFailed(MonthRefused):
    pass


def _refusal_types() -> tuple[type, ...]:
    types: list[type] = [MonthRefused]
    from pci.publish import PublishError  # noqa: PLC0415

    types.append(PublishError)
    for module, names in (("pci.landing", ("ValidationFailed",)),
                          ("pci.scoring", ("NotScorable", "BuildFailed"))):
        try:
            mod = __import__(module, fromlist=list(names))
        except ImportError:
            continue
        types += [getattr(mod, n) for n in names if isinstance(getattr(mod, n, None), type)]
    return tuple(types)


def is_refusal(exc: BaseException) -> bool:
    """True for failures that a retry cannot fix (bad inputs, failed tests or audit)."""
    return isinstance(exc, _refusal_types())


def refusal_report(exc: BaseException) -> str:
    if isinstance(exc, MonthRefused):
        return exc.report
    report = getattr(exc, "report", None)
    if report is None:
        return str(exc)
    if hasattr(report, "render"):
        return str(report.render())
    if hasattr(report, "format_text"):
        return str(report.format_text())
    if hasattr(report, "to_text"):
        return str(report.to_text())
    return str(report)


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


def _connect(warehouse: Path, read_only: bool = False):
    import duckdb  # noqa: PLC0415

    warehouse.parent.mkdir(parents=True, exist_ok=True)
    if read_only and not warehouse.exists():
        read_only = False
    return duckdb.connect(str(warehouse), read_only=read_only)


def reports_dir(warehouse: Path) -> Path:
    return Path(warehouse).parent / "reports"


def _write_report(warehouse: Path, name: str, payload: dict) -> Path:
    out = reports_dir(warehouse)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = out / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
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


def land_through(landing: Path, warehouse: Path, month: date) -> dict:
    """Land every ready export up to ``month`` that is not landed yet or whose
    manifest changed since it was landed, oldest first. Raises the landing
    module's ``ValidationFailed`` for the first invalid month."""
    from pci import landing as landing_mod  # noqa: PLC0415
    from pci.contract import ensure_raw_schema  # noqa: PLC0415

    landed = []
    with WarehouseLock(warehouse):
        for m in ready_folders(landing, month):
            con = _connect(warehouse)
            try:
                ensure_raw_schema(con)
                needed = landing_mod.needs_landing(Path(landing), con, m)
            finally:
                con.close()
            if needed:
                try:
                    landing_mod.land_month(Path(landing), Path(warehouse), m)
                except Exception as exc:  # noqa: BLE001
                    if is_refusal(exc):  # name the month; keep the landing report
                        raise MonthRefused("land_and_validate", m, refusal_report(exc)) from exc
                    raise
                landed.append(format_month(m))
    return {"score_month": format_month(month), "landed": landed}


def _current_loads(con) -> list[list]:
    from pci.publish import _table_exists  # noqa: PLC0415

    if not _table_exists(con, "raw", "loads"):
        return []
    return [[format_month(m), lid] for m, lid in con.execute(
        "SELECT export_month, load_id FROM raw.loads WHERE is_current ORDER BY 1, 2").fetchall()]


def _build_state(con) -> dict | None:
    from pci.publish import _table_exists  # noqa: PLC0415

    if not _table_exists(con, BUILD_SCHEMA, BUILD_STATE):
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
    with WarehouseLock(warehouse):
        con = _connect(warehouse)
        try:
            scoring.check_scorable(con, first, last)
            _set_build_state(con, None)  # a build killed half-way leaves no valid state
        finally:
            con.close()
        started = time.monotonic()
        scoring.build(warehouse, first, last)  # needs the file free of our connections
        con = _connect(warehouse)
        try:
            state = {"first": format_month(first), "last": format_month(last), "token": token,
                     "loads": _current_loads(con)}
            _set_build_state(con, state)
        finally:
            con.close()
    return {"first": format_month(first), "last": format_month(last),
            "seconds": round(time.monotonic() - started, 1), "reused": False}


def build_month(warehouse: Path, month: date, token: str | None = None) -> dict:
    """Build the month into ``pci_build`` unless the ``run`` command that passed
    ``token`` already built a range holding it from the same loads."""
    warehouse = Path(warehouse)
    if token:
        with WarehouseLock(warehouse):
            con = _connect(warehouse)
            try:
                state = _build_state(con)
                loads = _current_loads(con)
            finally:
                con.close()
        if (state and state.get("token") == token and state.get("loads") == loads
                and parse_month(state["first"]) <= month <= parse_month(state["last"])):
            return {"first": state["first"], "last": state["last"], "seconds": 0.0, "reused": True}
    return build_months(warehouse, month, month, token)


def validate_mart(warehouse: Path, month: date) -> dict:
    """Audit the built month (GX suite + structural checks). Returns the audited
    fingerprint; raises :class:`AuditFailed` with the report otherwise. The report
    is also written to ``<warehouse dir>/reports/mart-YYYY-MM-<time>.json``."""
    from pci.mart_validation import audit_month  # noqa: PLC0415

    warehouse = Path(warehouse)
    with WarehouseLock(warehouse):
        con = _connect(warehouse)
        try:
            state, loads = _build_state(con), _current_loads(con)
        finally:
            con.close()
        if not (state and state.get("loads") == loads
                and parse_month(state["first"]) <= month <= parse_month(state["last"])):
            # another run replaced pci_build since build_month (each task holds the
            # lock only while it runs): audit a build of this month, never another one
            log.warning("pci_build no longer holds %s from the current loads: building it again",
                        format_month(month))
            build_months(warehouse, month, month)
        con = _connect(warehouse)
        try:
            audit = audit_month(con, month)
        finally:
            con.close()
    path = _write_report(warehouse, f"mart-{format_month(month)}", audit.as_dict())
    if not audit.ok:
        raise AuditFailed("validate_mart", month, f"{audit.report()}\n(report: {path})")
    return audit.fingerprint


def publish(warehouse: Path, month: date, run_id: str | None, audited: dict) -> dict:
    """Swap the audited month into ``main`` (one transaction), then refresh the
    analysts' copy when that module is present."""
    from pci.publish import after_publication, publish_month  # noqa: PLC0415

    warehouse = Path(warehouse)
    with WarehouseLock(warehouse):
        con = _connect(warehouse)
        try:
            result = publish_month(con, month, run_id=run_id, audited=audited)
            # also when unchanged: a run killed after the commit may not have refreshed it
            after_publication(con, warehouse)
        finally:
            con.close()
    return result.as_dict()


def report(warehouse: Path, month: date, landed: dict, built: dict, published: dict) -> dict:
    """The run's summary, logged and written to ``reports/run-YYYY-MM-<time>.json``."""
    text = f"{format_month(month)}: {published['status']} ({published['rows']} partners)"
    if published.get("stale_later_months"):
        stale = published["stale_later_months"]
        text += (f"; its inputs changed and later published months read them: {', '.join(stale)} "
                 f"- run them again (python -m pci run --month {stale[0]} --through {stale[-1]} ...)")
    summary = {"score_month": format_month(month), "landed": landed.get("landed", []),
               "build": built, "publication": published, "text": text}
    path = _write_report(Path(warehouse), f"run-{format_month(month)}", summary)
    log.info("%s (report: %s)", text, path)
    LAST_REPORT[format_month(month)] = text
    return summary


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


def _prepare_airflow(env: dict[str, str]):
    """Point Airflow at the private home (before it is imported), migrate its DB
    once, and return the DAG object from the repository's dags folder."""
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != env["AIRFLOW_HOME"]:
        log.warning("Airflow already imported with AIRFLOW_HOME=%s; using it",
                    os.environ.get("AIRFLOW_HOME"))
    else:
        os.environ.update(env)
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    from airflow.utils import db as airflow_db  # noqa: PLC0415

    stamp = Path(os.environ["AIRFLOW_HOME"]) / ".pci-db-migrated"
    if not stamp.exists():
        airflow_db.initdb()
        stamp.write_text(datetime.now(timezone.utc).isoformat(), encoding="utf-8")
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
    task_states: dict = field(default_factory=dict)


#: set by the DAG's tasks when they refuse a month, read by ``run`` after ``dag.test``
LAST_REFUSAL: dict[str, str] = {}
#: set by the report task, read by ``run`` after ``dag.test``
LAST_REPORT: dict[str, str] = {}


def run_month_through_dag(dag, paths: Paths, month: date, token: str | None) -> MonthOutcome:
    """One month through the DAG's own tasks, in-process (``dag.test``)."""
    from airflow.utils.state import DagRunState  # noqa: PLC0415

    LAST_REFUSAL.clear()
    LAST_REPORT.clear()
    # a manual run's data interval is the period before its logical date (the
    # timetable's infer_manual_data_interval): logical date = first of M+1 gives
    # data_interval_start = M, as the scheduled run of M has
    nxt = add_months(month, 1)
    logical = datetime(nxt.year, nxt.month, 1, tzinfo=timezone.utc)
    dr = dag.test(logical_date=logical, run_after=logical,
                  run_conf={"score_month": format_month(month), "landing": str(paths.landing),
                            "warehouse": str(paths.warehouse), "build_token": token})
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    ok = dr.state == DagRunState.SUCCESS
    if ok:
        text = LAST_REPORT.get(format_month(month), "")
    else:
        text = LAST_REFUSAL.get(format_month(month)) or (
            "the DAG run failed; tasks: " + ", ".join(f"{k}={v}" for k, v in states.items()))
    return MonthOutcome(month, ok, text, states)


def run_range(paths: Paths, first: date, last: date, airflow_home: Path | None = None,
              progress: bool = True, console=None) -> int:
    """The ``run`` command's work (the caller holds the warehouse lock)."""
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

    # 1. land every ready export up to the last month (oldest first)
    refused_landing: MonthRefused | None = None
    try:
        landed = land_through(paths.landing, paths.warehouse, months[-1])["landed"]
        if landed:
            out.print(f"landed {', '.join(landed)}")
    except Exception as exc:  # noqa: BLE001
        if not is_refusal(exc):
            raise
        bad = exc.month if isinstance(exc, MonthRefused) else first
        refused_landing = exc if isinstance(exc, MonthRefused) else MonthRefused(
            "land_and_validate", bad, refusal_report(exc))
        months = [m for m in months if m < bad]

    # 2. a range is scored in one dbt build; each month is still audited and
    #    published by its own DAG run, in order
    token = uuid.uuid4().hex
    if len(months) > 1:
        try:
            built = build_months(paths.warehouse, months[0], months[-1], token)
            out.print(f"built {format_month(months[0])} … {format_month(months[-1])} "
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
    status = EXIT_OK
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn()]
    with Progress(*columns, console=out, disable=not progress, transient=False) as bar:
        job = bar.add_task("pci run", total=len(months))
        for m in months:
            bar.update(job, description=f"{format_month(m)} through {DAG_ID}")
            started = time.monotonic()
            outcome = run_month_through_dag(dag, paths, m, token)
            took = time.monotonic() - started
            if not outcome.ok:
                err.print(f"[red]{format_month(m)} refused[/] ({took:.1f} s)")
                print(outcome.text, file=sys.stderr)
                return EXIT_REFUSED
            bar.console.print(f"{outcome.text or format_month(m) + ': published'} ({took:.1f} s)",
                              soft_wrap=True)
            bar.advance(job)
    if refused_landing is not None:
        err.print(f"[red]{format_month(refused_landing.month)} refused[/] at landing")
        print(refused_landing.report, file=sys.stderr)
        return EXIT_REFUSED
    if not_ready is not None:
        return say_not_ready()
    return status


def quiet_libraries() -> None:
    """Keep the command's output to its own progress and reports."""
    import warnings  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING)
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
    os.environ["PCI_WAREHOUSE"] = str(paths.warehouse)
    os.environ["PCI_LANDING"] = str(paths.landing)
    quiet_libraries()
    try:
        with WarehouseLock(paths.warehouse, wait=args.wait):
            return run_range(paths, first, last, args.airflow_home, progress=not args.quiet)
    except WarehouseBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BUSY
