"""Scoring: one ``dbt build`` over a range of score months.

``check_scorable(con, first, last)`` refuses a range in which a month is not
landed, or in which a month between the earliest landed month and a score
month is missing. ``build(warehouse, first, last)`` runs ``dbt build`` (seeds,
models, unit tests and data tests) in-process through ``dbtRunner`` with the
vars ``pci_first_score_month`` / ``pci_last_score_month``; the models land in
the ``pci_build`` schema of the warehouse.

Unit tests check the SQL against fixed inputs, so their verdict depends only on
the project's code: a build runs them when this warehouse has no record of
them passing for the project as it is now (``project_fingerprint``: the
models, macros, seeds, data tests, project file and dbt's version), and skips
them otherwise (``--exclude-resource-type unit_test``, as dbt advises for
production). ``PCI_DBT_UNIT_TESTS=always`` (or ``score --unit-tests always``)
runs them on every build. The seeds, the rule constants, are part of the same
fingerprint: a build loads and tests them when it runs the unit tests (or with
``full_refresh``, or when a seed table is missing), and otherwise leaves the
loaded ones as they are (``--exclude resource_type:seed`` with cautious indirect
selection: the seeds' own data tests are left out with them, the models' tests
that read a seed still run). Every other data test runs on every build.

CLI: ``python -m pci score --warehouse FILE --month YYYY-MM [--through YYYY-MM]``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pci.core.contract import BUILD_SCHEMA, add_months, format_month, month_range, parse_month
from pci.core.errors import EXIT_BUSY, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, PipelineFault, Refusal
from pci.core.faults import classify
from pci.core.project import PROJECT_DIR
from pci.core.warehouse import landed_months, open_warehouse, table_exists

#: repository root: the dbt project and profile live here
#: the mart built by dbt, in BUILD_SCHEMA
SCORES_MODEL = "pci_monthly_scores"
CONTRIBUTIONS_MODEL = "pci_metric_contributions"


class NotScorable(Refusal):
    """A month of the requested range cannot be scored."""


class BuildFailed(Refusal):
    """``dbt build`` did not succeed: a model or a test failed; ``failures`` lists the
    failed nodes. (A build that failed for a fault of the machine or of the file, a
    full disk or a lock held elsewhere, raises that fault instead.)"""

    def __init__(self, message: str, failures: list[str]):
        super().__init__(message)
        self.failures = failures


@dataclass
class BuildResult:
    warehouse: Path
    first: dt.date
    last: dt.date
    #: score month -> number of rows of pci_monthly_scores built for it
    rows_per_month: dict[dt.date, int] = field(default_factory=dict)
    #: dbt node unique_id -> status, for every node dbt ran
    node_statuses: dict[str, str] = field(default_factory=dict)
    target_path: Path | None = None
    #: whether the build ran the dbt unit tests (see the module's docstring)
    unit_tests_ran: bool = False
    #: whether the build loaded (and tested) the seeds (see the module's docstring)
    seeds_loaded: bool = True

    @property
    def months(self) -> list[dt.date]:
        return month_range(self.first, self.last)


def check_scorable(con, first: dt.date, last: dt.date) -> list[dt.date]:
    """Return the score months first..last, or raise NotScorable naming why.

    A month M can be scored when M is landed and no month between the earliest
    landed month and M is missing.
    """
    if first.day != 1 or last.day != 1:
        raise NotScorable(f"score months must be first days of months, got {first} .. {last}")
    if last < first:
        raise NotScorable(f"the range is empty: {format_month(first)} is after {format_month(last)}")
    landed = landed_months(con)
    if not landed:
        raise NotScorable("no month is landed in the warehouse: land an export first")
    landed_set = set(landed)
    months = month_range(first, last)
    not_landed = [m for m in months if m not in landed_set]
    if not_landed:
        shown = ", ".join(format_month(m) for m in not_landed[:5])
        raise NotScorable(
            f"cannot score {format_month(first)}..{format_month(last)}: "
            f"{len(not_landed)} month(s) not landed: {shown}"
            f"{' ...' if len(not_landed) > 5 else ''}")
    missing = [m for m in month_range(landed[0], last) if m not in landed_set]
    if missing:
        shown = ", ".join(format_month(m) for m in missing[:5])
        raise NotScorable(
            f"cannot score {format_month(first)}..{format_month(last)}: "
            f"{len(missing)} month(s) between the earliest landed month "
            f"{format_month(landed[0])} and {format_month(last)} are not landed: {shown}"
            f"{' ...' if len(missing) > 5 else ''}")
    return months


def default_target_path(warehouse: Path) -> Path:
    """dbt's target folder for a warehouse: beside it, one per warehouse file."""
    warehouse = Path(warehouse).resolve()
    return warehouse.with_name(warehouse.name + ".dbt-target")


def _release_dbt_connection() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process.

    dbt-duckdb caches one DuckDB instance per process across invocations; left
    open it would hold the warehouse file (no other process could open it) and
    refuse connections with another configuration in this process.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
    if env is not None:
        env.close()  # closes the database: no gc.collect() needed (it cost ~1 s a build)


UNIT_TESTS_PASSED = "pci_unit_tests_passed"  # table in BUILD_SCHEMA
UNIT_TEST_MODES = ("changed", "always")
_PROJECT_PARTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "tests/dbt")


def project_fingerprint() -> str:
    """SHA-256 of the dbt project's files (paths and contents) and dbt's version."""
    import hashlib

    from dbt.version import __version__ as dbt_version

    h = hashlib.sha256(f"dbt-core {dbt_version}\n".encode())
    for part in _PROJECT_PARTS:
        root = PROJECT_DIR / part
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            h.update(f.relative_to(PROJECT_DIR).as_posix().encode() + b"\0")
            h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def seed_names() -> list[str]:
    """The project's seeds (its rule constants), one table each in the build schema."""
    return sorted(p.stem for p in (PROJECT_DIR / "seeds").glob("*.csv"))


def unit_tests_passed(con, fingerprint: str) -> bool:
    """Whether this warehouse recorded a build whose unit tests passed on ``fingerprint``."""
    return table_exists(con, BUILD_SCHEMA, UNIT_TESTS_PASSED) and bool(con.execute(
        f"SELECT count(*) FROM {BUILD_SCHEMA}.{UNIT_TESTS_PASSED} WHERE project_sha256 = ?",
        [fingerprint]).fetchall()[0][0])


def record_unit_tests_passed(con, fingerprint: str, count: int) -> None:
    # SQL both engines read (STRING is DuckDB's VARCHAR; Spark has no NOT NULL on Parquet)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {BUILD_SCHEMA}")
    con.execute(f"CREATE TABLE IF NOT EXISTS {BUILD_SCHEMA}.{UNIT_TESTS_PASSED} "
                "(project_sha256 STRING, unit_tests INTEGER, passed_at TIMESTAMP)")
    con.execute(f"INSERT INTO {BUILD_SCHEMA}.{UNIT_TESTS_PASSED} "
                "SELECT CAST(? AS STRING), CAST(? AS INTEGER), CAST(? AS TIMESTAMP)",
                [fingerprint, count, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)])


def unit_test_mode(mode: str | None = None) -> str:
    mode = (mode or os.environ.get("PCI_DBT_UNIT_TESTS") or "changed").strip().lower()
    if mode not in UNIT_TEST_MODES:
        raise ValueError(f"unit test mode must be one of {', '.join(UNIT_TEST_MODES)}, got {mode!r} "
                         "(PCI_DBT_UNIT_TESTS / --unit-tests)")
    return mode


SCORE_REQUEST = "pci_score_request"  # table in BUILD_SCHEMA: the range of the build


def write_score_request(con, first: dt.date, last: dt.date, fingerprint: str) -> None:
    """The build's score range (and the project it is built with), read by the models."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {BUILD_SCHEMA}")
    # drop and create: Spark replaces only v2 (Delta, Iceberg) tables
    con.execute(f"DROP TABLE IF EXISTS {BUILD_SCHEMA}.{SCORE_REQUEST}")
    con.execute(f"CREATE TABLE {BUILD_SCHEMA}.{SCORE_REQUEST} AS "
                "SELECT CAST(? AS DATE) AS first_score_month, CAST(? AS DATE) AS last_score_month, "
                "CAST(? AS STRING) AS project_sha256", [first, last, fingerprint])


def _failures(result) -> tuple[list[str], dict[str, str]]:
    failures: list[str] = []
    statuses: dict[str, str] = {}
    run_results = getattr(getattr(result, "result", None), "results", None) or []
    for r in run_results:
        status = str(getattr(r.status, "value", r.status))
        uid = r.node.unique_id
        statuses[uid] = status
        if status in ("error", "fail", "runtime error"):
            msg = (r.message or "").strip().replace("\n", " ")
            failures.append(f"{uid}: {status}: {msg[:400]}")
        elif status == "skipped":
            failures.append(f"{uid}: skipped (an upstream node failed)")
    return failures, statuses


def build(warehouse: Path, first: dt.date, last: dt.date, *,
          target_path: Path | None = None, quiet: bool = True,
          unit_tests: str | None = None, full_refresh: bool = False,
          engine: str = "duckdb") -> BuildResult:
    """Run one ``dbt build`` for score months first..last into ``pci_build``.

    Raises NotScorable before running dbt when the range cannot be scored, and
    BuildFailed (listing the failed nodes) when any node of the build fails.
    No Python DuckDB connection is held while dbt runs. ``engine="spark"``: the
    warehouse is a Spark warehouse folder and dbt runs the ``spark`` target in this
    process, on the session of :mod:`pci.core.spark`.
    """
    from dbt.cli.main import dbtRunner

    warehouse = Path(warehouse).resolve()
    if not (warehouse / "metastore_db" if engine == "spark" else warehouse).exists():
        raise NotScorable(f"warehouse {warehouse} does not exist: land an export first")
    mode = unit_test_mode(unit_tests)
    fingerprint = project_fingerprint()
    # opened for writing (as dbt will): a warehouse another process holds, even
    # read-only, is refused here as busy, before dbt writes anything
    con = open_warehouse(warehouse, engine)
    try:
        check_scorable(con, first, last)
        run_unit_tests = mode == "always" or not unit_tests_passed(con, fingerprint)
        load_seeds = run_unit_tests or full_refresh or not all(
            table_exists(con, BUILD_SCHEMA, seed) for seed in seed_names())
        write_score_request(con, first, last, fingerprint)
    finally:
        con.close()

    target = Path(target_path).resolve() if target_path else default_target_path(warehouse)
    target.mkdir(parents=True, exist_ok=True)
    args = ["build",
            "--project-dir", str(PROJECT_DIR),
            "--profiles-dir", str(PROJECT_DIR),
            "--target-path", str(target),
            "--log-path", str(target / "logs")]
    if engine == "spark":
        args += ["--target", "spark"]
    if full_refresh:
        args.append("--full-refresh")
    if not run_unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    if not load_seeds:  # loaded and tested by an earlier build of this very project
        args += ["--exclude", "resource_type:seed", "--indirect-selection", "cautious"]
    # dbt's partial parsing reuses the last parse kept in the target folder; after the
    # project itself changed (files moved, a seed added) parse it whole once
    parsed_for = target / "pci_project.sha256"
    if not parsed_for.is_file() or parsed_for.read_text(encoding="utf-8").strip() != fingerprint:
        args.append("--no-partial-parse")
    args += ["--no-use-colors"]
    if quiet:
        args.insert(0, "--quiet")
    saved = os.environ.get("PCI_WAREHOUSE")
    os.environ["PCI_WAREHOUSE"] = str(warehouse)
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    try:
        result = dbtRunner().invoke(args)
    finally:
        if engine == "duckdb":
            _release_dbt_connection()
        if saved is None:
            os.environ.pop("PCI_WAREHOUSE", None)
        else:
            os.environ["PCI_WAREHOUSE"] = saved
    failures, statuses = _failures(result)
    if not result.success or failures:
        if not failures and result.exception is not None:
            failures = [f"dbt: {result.exception}"]
        shown = "\n  ".join(failures[:20]) or "dbt reported failure without node results"
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        failed = BuildFailed(
            f"dbt build for {format_month(first)}..{format_month(last)} failed "
            f"({len(failures)} node(s)):\n  {shown}{more}\n"
            f"dbt log: {target / 'logs' / 'dbt.log'}", failures)
        fault = classify(failed, warehouse)  # a full disk, a lock held elsewhere: not a refusal
        if fault is not None:
            raise fault from failed
        raise failed

    parsed_for.write_text(fingerprint + "\n", encoding="utf-8")
    out = BuildResult(warehouse, first, last, node_statuses=statuses, target_path=target,
                      unit_tests_ran=run_unit_tests, seeds_loaded=load_seeds)
    ran = sum(1 for uid in statuses if uid.startswith("unit_test."))
    if run_unit_tests and ran:
        con = open_warehouse(warehouse, engine)
        try:
            record_unit_tests_passed(con, fingerprint, ran)
        finally:
            con.close()
    con = open_warehouse(warehouse, engine, read_only=True)
    try:
        rows = con.execute(
            f"SELECT score_month, count(*) FROM {BUILD_SCHEMA}.{SCORES_MODEL} "
            "GROUP BY score_month ORDER BY score_month").fetchall()
    finally:
        con.close()
    counts = {m: n for m, n in rows}
    out.rows_per_month = {m: counts.get(m, 0) for m in month_range(first, last)}
    return out


# ---------------------------------------------------------------- CLI


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warehouse", required=True, type=Path,
                        help="the warehouse: a DuckDB file, or with --engine spark a Spark warehouse folder")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                        help="the engine of the warehouse (default duckdb)")
    parser.add_argument("--month", required=True, help="first score month, YYYY-MM")
    parser.add_argument("--through", help="last score month, YYYY-MM (default: --month)")
    parser.add_argument("--verbose", action="store_true", help="show dbt's own output")
    parser.add_argument("--unit-tests", choices=UNIT_TEST_MODES, default=None,
                        help="run the dbt unit tests always, or only when the project changed since "
                             "they last passed on this warehouse (default; env PCI_DBT_UNIT_TESTS)")
    parser.add_argument("--full-refresh", action="store_true",
                        help="rebuild the month-partitioned models from the raw tables instead of "
                             "deriving only the months whose loads changed (same rows)")


def command(args: argparse.Namespace) -> int:
    from pci.core.errors import WarehouseBusy  # noqa: PLC0415
    from pci.core.locking import WarehouseLock

    try:
        first = parse_month(args.month)
        last = parse_month(args.through) if args.through else first
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    engine = getattr(args, "engine", "duckdb")
    if not (Path(args.warehouse) / "metastore_db" if engine == "spark" else Path(args.warehouse)).exists():
        print(f"error: the warehouse {Path(args.warehouse).resolve()} does not exist "
              f"(land an export first: python -m pci land|run ...)", file=sys.stderr)
        return EXIT_USAGE
    try:
        with WarehouseLock(args.warehouse):
            result = build(args.warehouse, first, last, quiet=not args.verbose,
                           unit_tests=args.unit_tests, full_refresh=args.full_refresh, engine=engine)
    except NotScorable as exc:
        print(f"not scorable: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:  # noqa: BLE001 - a failed build, or a fault of the machine or file
        fault = exc if isinstance(exc, (WarehouseBusy, PipelineFault)) else classify(exc, args.warehouse)
        if fault is not None:
            print(f"error: {fault}", file=sys.stderr)
            return EXIT_BUSY if isinstance(fault, WarehouseBusy) else fault.exit_status
        if isinstance(exc, BuildFailed):
            print(str(exc), file=sys.stderr)
            return EXIT_REFUSED
        raise
    print(f"scored {format_month(first)}..{format_month(last)} into {BUILD_SCHEMA}.{SCORES_MODEL} "
          f"(unit tests {'run' if result.unit_tests_ran else 'skipped: they passed on this project before'})")
    for month, n in result.rows_per_month.items():
        print(f"  {format_month(month)}: {n} rows")
    return EXIT_OK


__all__ = ["NotScorable", "BuildFailed", "BuildResult", "check_scorable", "build",
           "landed_months", "default_target_path", "add_months"]
