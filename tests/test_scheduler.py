"""pci_monthly under a real Airflow: scheduler + dag-processor + api-server (LocalExecutor,
SQLite metadata DB) in a temporary AIRFLOW_HOME.

1. ``airflow backfill create`` for two months of a small generated world: both
   runs succeed and the mart holds both months.
2. A month whose export lands late: the sensor waits (up_for_reschedule) until
   the manifest appears, then the run succeeds.

The metadata DB is read directly (sqlite3, read-only) to follow the runs.
"""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Airflow:
    def __init__(self, home: Path, landing: Path, warehouse: Path):
        port = _free_port()
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": "pci-scheduler-test-secret",
            "AIRFLOW__API__SECRET_KEY": "pci-scheduler-test-secret",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "GX_ANALYTICS_ENABLED": "False",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            # no scheduled runs (the DAG's catchup would run every month since 2021-07):
            # only the backfills of the tests run
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "600",
            "PCI_START_MONTH": "2021-07",
            "PCI_EXPORT_POKE_SECONDS": "5",
            "PCI_EXPORT_TIMEOUT_SECONDS": "900",
            "PCI_LANDING": str(landing),
            "PCI_WAREHOUSE": str(warehouse),
        })
        self.procs: list[subprocess.Popen] = []
        self.logs = home / "component-logs"

    def cli(self, *args, timeout=300, attempts=1) -> subprocess.CompletedProcess:
        for attempt in range(attempts):
            res = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True,
                                 timeout=timeout, cwd=ROOT)
            if res.returncode == 0 or "database is locked" not in res.stderr:
                break
            time.sleep(2)
        return res

    def backfill(self, first: str, last: str) -> None:
        # one month at a time, oldest first (a backfill's own limit defaults to 10 runs)
        res = self.cli("backfill", "create", "--dag-id", "pci_monthly", "--from-date", first,
                       "--to-date", last, "--max-active-runs", "1", attempts=5)
        assert res.returncode == 0, res.stderr[-3000:]

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        res = self.cli("db", "migrate", timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        # write-ahead log: the components and the test's readers do not lock each other out
        con = sqlite3.connect(self.home / "airflow.db")
        con.execute("PRAGMA journal_mode=WAL")
        con.close()
        for component in (["api-server"], ["dag-processor"], ["scheduler"]):
            out = open(self.logs / f"{component[0]}.log", "w")
            self.procs.append(subprocess.Popen([AIRFLOW, *component], env=self.env, stdout=out,
                                               stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True))

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def query(self, sql: str, params=()) -> list:
        con = sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()

    def wait_for(self, what: str, check, timeout: float) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            for p in self.procs:
                assert p.poll() is None, f"{p.args} ended: see {self.logs}"
            time.sleep(3)
        raise AssertionError(f"timed out waiting for {what}; logs in {self.logs}\n{self.diagnostics()}")

    def runs(self) -> list:
        return self.query("SELECT run_id, state, run_type, data_interval_start FROM dag_run "
                          "WHERE dag_id = 'pci_monthly' ORDER BY logical_date")

    def task_states(self, run_id: str) -> dict:
        return dict(self.query("SELECT task_id, state FROM task_instance WHERE dag_id = 'pci_monthly' "
                               "AND run_id = ?", (run_id,)))

    def diagnostics(self) -> str:
        lines = [f"runs: {self.runs()}"]
        for run_id, *_ in self.runs():
            lines.append(f"  {run_id}: {self.task_states(run_id)}")
        for log in sorted(self.logs.glob("*.log")):
            lines.append(f"--- {log.name} (tail)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(lines)


@pytest.fixture
def world(tmp_path):
    from pci.core.contract import parse_month
    from tools.generate import generate

    landing = tmp_path / "landing"
    generate(landing, parse_month("2021-06"), 4, 8, 160, 5, progress=False)
    wh = tmp_path / "wh" / "pci.duckdb"
    af = Airflow(tmp_path / "airflow", landing, wh)
    af.start()
    try:
        af.wait_for("the DAG to be parsed", lambda: af.query(
            "SELECT 1 FROM serialized_dag WHERE dag_id = 'pci_monthly'"), 300)
        yield af, landing, wh
    finally:
        af.stop()


def _published_months(wh: Path) -> list[str]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return [r[0] for r in con.execute(
            "SELECT DISTINCT strftime(score_month, '%Y-%m') FROM main.pci_monthly_scores ORDER BY 1").fetchall()]
    finally:
        con.close()


def _backfill_runs_done(af: Airflow, n: int):
    runs = [r for r in af.runs() if r[2] == "backfill"]
    if len(runs) == n and all(r[1] in ("success", "failed") for r in runs):
        return runs
    return None


def test_backfill_of_two_months_under_the_scheduler(world):
    af, landing, wh = world
    af.backfill("2021-07-01", "2021-08-01")
    runs = af.wait_for("both backfill runs to finish", lambda: _backfill_runs_done(af, 2), 900)
    assert [r[1] for r in runs] == ["success", "success"], af.diagnostics()
    assert [str(r[3])[:7] for r in runs] == ["2021-07", "2021-08"]
    for run_id, *_ in runs:
        assert set(af.task_states(run_id).values()) == {"success"}
    assert _published_months(wh) == ["2021-07", "2021-08"]


def test_a_late_export_keeps_the_sensor_waiting_then_succeeds(world):
    af, landing, wh = world
    manifest = landing / "2021-07" / "_manifest.json"
    held = manifest.read_bytes()
    manifest.unlink()  # the export of 2021-07 is still being written
    af.backfill("2021-07-01", "2021-07-01")

    def sensor_rescheduled():
        runs = [r for r in af.runs() if r[2] == "backfill"]
        return runs and af.task_states(runs[0][0]).get("wait_for_export") == "up_for_reschedule" and runs[0]

    run = af.wait_for("the sensor to wait (up_for_reschedule)", sensor_rescheduled, 600)
    states = af.task_states(run[0])
    assert states.get("land_and_validate") is None  # not started while the export is incomplete
    assert not wh.exists() or _published_months(wh) == []
    manifest.write_bytes(held)  # the export is complete
    runs = af.wait_for("the run to finish", lambda: _backfill_runs_done(af, 1), 900)
    assert runs[0][1] == "success", af.diagnostics()
    assert _published_months(wh) == ["2021-07"]


def test_a_new_users_path_to_the_scheduler(tmp_path):
    """docs/operations.md, 'Running the scheduler': airflow db migrate, airflow dags
    reserialize, airflow dags list, airflow dags test pci_monthly 2021-09-01 (which
    scores 2021-08, the month of its data interval), with nothing else running."""
    from pci.core.contract import parse_month
    from tools.generate import generate

    landing = tmp_path / "landing"
    generate(landing, parse_month("2021-06"), 3, 8, 160, 5, progress=False)
    wh = tmp_path / "wh" / "pci.duckdb"
    af = Airflow(tmp_path / "airflow", landing, wh)
    af.home.mkdir(parents=True)
    for args in (["db", "migrate"], ["dags", "reserialize"]):
        res = af.cli(*args, timeout=600)
        assert res.returncode == 0, (args, res.stderr[-3000:])
    res = af.cli("dags", "list")
    assert res.returncode == 0 and "pci_monthly" in res.stdout, res.stderr[-3000:]
    res = af.cli("dags", "test", "pci_monthly", "2021-09-01", timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert _published_months(wh) == ["2021-08"]
