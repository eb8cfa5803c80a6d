"""``python -m pci run``: a range of months through the DAG's own tasks.

The run command runs the DAG of ``dags/pci_monthly.py``, in-process, once per
month (``dag.test``) against a private Airflow metadata database beside the
warehouse, and reads each month's outcome from what its tasks wrote (the run
report, or the failure report of the task that stopped it: see
:func:`pci.orchestrate.outcomes.run_outcome`). The tie is one-way: the tasks know
nothing of this module.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from pci.core.contract import MANIFEST, MONTH_RE, add_months, format_month, month_range, parse_month
from pci.core.errors import (EXIT_NOT_READY, EXIT_OK, EXIT_REFUSED, EXIT_STALE, EXIT_USAGE, PipelineFault,
                             WarehouseBusy)
from pci.core.locking import WarehouseLock
from pci.core.preflight import scrub_rows
from pci.core.project import PROJECT_DIR
from pci.core.terminal import for_terminal
from pci.orchestrate.outcomes import (MonthRefused, as_fault, failure_status, is_refusal, refusal_report,
                                      run_outcome)
from pci.orchestrate.tasks import (DAG_ID, Paths, build_months, export_ready, land_through, resolve_paths,
                                   writing)

log = logging.getLogger(__name__)


def airflow_env(warehouse: Path, airflow_home: Path | None = None) -> dict[str, str]:
    """The environment of the private Airflow used by ``run``: its metadata DB
    (SQLite) in ``<warehouse>.airflow/``, the repository's ``dags/`` folder, no examples."""
    warehouse = Path(warehouse).resolve()
    home = Path(airflow_home) if airflow_home else warehouse.with_name(warehouse.name + ".airflow")
    return {
        "AIRFLOW_HOME": str(home.resolve()),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
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

    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags" / "pci_monthly.py"))
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
                          restate: bool = True, full_refresh: bool = False,
                          refresh_copy: bool = True) -> MonthOutcome:
    """One month through the DAG's own tasks, in-process (``dag.test``). The outcome
    is read from what the tasks wrote (:func:`run_outcome`): the run report, or the
    failure report of the task that stopped it. ``refresh_copy`` false: its
    publication leaves the analysts' copy to a later month's run."""
    from airflow.utils.state import DagRunState  # noqa: PLC0415

    # a manual run's data interval is the period before its logical date (the
    # timetable's infer_manual_data_interval): logical date = first of M+1 gives
    # data_interval_start = M, as the scheduled run of M has
    nxt = add_months(month, 1)
    logical = datetime(nxt.year, nxt.month, 1, tzinfo=timezone.utc)
    dr = dag.test(logical_date=logical, run_after=logical,
                  run_conf={"score_month": format_month(month), "landing": str(paths.landing),
                            "warehouse": str(paths.warehouse), "engine": paths.engine,
                            "build_token": token,
                            "restate": restate, "full_refresh": full_refresh, "fail_fast": True,
                            "refresh_copy": refresh_copy})
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    ok = dr.state == DagRunState.SUCCESS
    written = run_outcome(paths.warehouse, month, dr.run_id) or {}
    if ok:
        return MonthOutcome(month, True, written.get("text", ""), EXIT_OK, written, states)
    text = written.get("text") or (f"{format_month(month)} failed; the DAG run wrote no report; "
                                   f"tasks: " + ", ".join(f"{k}={v}" for k, v in states.items()))
    return MonthOutcome(month, False, text, written.get("exit_status", EXIT_REFUSED), written, states)


def run_range(paths: Paths, first: date, last: date, airflow_home: Path | None = None,
              progress: bool = True, console=None, restate: bool = True,
              full_refresh: bool = False, full_check: bool = False) -> int:
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
    # once per run, before anything is written: the rolling scrub (the next slice of
    # every block, at a cost that does not grow with the warehouse), or with full_check
    # every block; each task repeats the cheap check
    with writing(paths.warehouse, thorough=full_check, rolling=None if full_check else scrub_rows()):
        pass

    # 1. land every ready export up to the last month (oldest first)
    refused_landing: MonthRefused | None = None
    restated: list[date] = []
    try:
        landed = land_through(paths.landing, paths.warehouse, months[-1], restate, engine=paths.engine)
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
            built = build_months(paths.warehouse, build_first, months[-1], token, full_refresh,
                                 engine=paths.engine)
            full_refresh = False  # done: the months' runs reuse this build
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
        for n, m in enumerate(months):
            bar.update(job, description=f"{format_month(m)} through {DAG_ID}")
            started = time.monotonic()
            # the analysts' copy once per range: by the last month's run (a refresh copies
            # the whole copy file, which grows with every month published)
            outcome = run_month_through_dag(dag, paths, m, token, restate, full_refresh,
                                            refresh_copy=m == months[-1])
            full_refresh = False  # once
            took = time.monotonic() - started
            if not outcome.ok:
                word = "refused" if outcome.exit_status == EXIT_REFUSED else "failed"
                err.print(f"[red]{format_month(m)} {word}[/] ({took:.1f} s)")
                print(for_terminal(outcome.text), file=sys.stderr)
                if n and paths.engine == "duckdb":  # the months before it are published
                    _refresh_copy_after_stop(paths)
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


def _refresh_copy_after_stop(paths: Paths) -> None:
    """A range stopped at a month: the analysts' copy gets the months published before it."""
    from pci.orchestrate.tasks import refresh_analyst_copy  # noqa: PLC0415

    try:
        copy = refresh_analyst_copy(paths.warehouse)
    except Exception as exc:  # noqa: BLE001 - the month's own failure is what the run reports
        copy = {"ok": False, "error": str(exc)}
    if not copy.get("ok"):
        print(for_terminal(f"warning: the analysts' copy was not refreshed: {copy.get('error')}"),
              file=sys.stderr)


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
                        help="the warehouse: a DuckDB file, or with --engine spark a Spark warehouse "
                             "folder (env PCI_WAREHOUSE)")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default=None,
                        help="the engine of the warehouse (env PCI_ENGINE; default duckdb): spark runs "
                             "the build on a Spark session (docs/scale-out.md)")
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
    parser.add_argument("--full-refresh", action="store_true",
                        help="rebuild the month-partitioned models from the raw tables (the DAG's "
                             "full_refresh param) instead of deriving only the months whose loads changed")
    parser.add_argument("--full-check", action="store_true",
                        help="read every block of the warehouse before the run (as python -m pci check "
                             "does) instead of the next PCI_SCRUB_ROWS rows of the rolling scrub")


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
    try:
        scrub_rows()  # env PCI_SCRUB_ROWS
    except ValueError as exc:
        print(f"usage error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    paths = resolve_paths({"landing": args.landing, "warehouse": args.warehouse,
                           "engine": getattr(args, "engine", None)}, use_variables=False)
    if not paths.landing.is_dir():
        print(f"usage error: the landing folder {paths.landing} does not exist", file=sys.stderr)
        return EXIT_USAGE
    os.environ["PCI_WAREHOUSE"] = str(paths.warehouse)
    os.environ["PCI_LANDING"] = str(paths.landing)
    os.environ["PCI_ENGINE"] = paths.engine
    quiet_libraries()
    try:
        with WarehouseLock(paths.warehouse, wait=args.wait):
            return run_range(paths, first, last, args.airflow_home, progress=not args.quiet,
                             restate=args.restate, full_refresh=args.full_refresh,
                             full_check=args.full_check)
    except Exception as exc:  # noqa: BLE001 - the faults of the machine and of the file
        fault = as_fault(exc, paths.warehouse)
        if not isinstance(fault, (WarehouseBusy, PipelineFault)):
            raise
        print(f"error: {for_terminal(fault)}", file=sys.stderr)
        return failure_status(fault)
