"""Integrity of the Airflow DAG pci_monthly (dags/pci_monthly.py)."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pendulum
import pytest

ROOT = Path(__file__).resolve().parents[1]
DAG_FILE = ROOT / "dags" / "pci_monthly.py"
TASKS = ["wait_for_export", "land_and_validate", "build_month", "validate_mart", "publish", "report"]


def dag_module():
    """dags/pci_monthly.py as a module (as the dag-processor loads it, by path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pci_monthly_dag", DAG_FILE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(scope="module")
def dag(bag):
    return bag.dags["pci_monthly"]


def test_dag_folder_imports_cleanly(bag):
    assert bag.import_errors == {}
    assert list(bag.dags) == ["pci_monthly"]


def test_import_does_no_work(tmp_path):
    """Parsing the file opens no warehouse, reads no landing and imports none of
    the heavy libraries or the pipeline."""
    code = textwrap.dedent(f"""
        import json, runpy, sys
        runpy.run_path({str(DAG_FILE)!r})
        heavy = sorted(m for m in ("duckdb", "dbt", "great_expectations", "pandas", "pci.orchestrate.tasks",
                                   "pci.land.landing", "pci.score.scoring") if m in sys.modules)
        print(json.dumps(heavy))
    """)
    env = dict(os.environ, PCI_LANDING=str(tmp_path / "landing"),
               PCI_WAREHOUSE=str(tmp_path / "wh" / "pci.duckdb"), AIRFLOW_HOME=str(tmp_path / "af"))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []
    assert not (tmp_path / "wh").exists() and not (tmp_path / "landing").exists()


def test_tasks_and_dependencies(dag):
    assert sorted(dag.task_ids) == sorted(TASKS)
    down = {t.task_id: set(t.downstream_task_ids) for t in dag.tasks}
    assert down["wait_for_export"] == {"land_and_validate"}
    assert down["land_and_validate"] == {"build_month", "report"}
    assert down["build_month"] == {"validate_mart", "report"}
    assert down["validate_mart"] == {"publish"}
    assert down["publish"] == {"report"}
    assert down["report"] == set()
    # the linear order the spec asks for
    order = [t.task_id for t in dag.topological_sort()]
    assert order == TASKS


def test_run_policy(dag):
    assert dag.max_active_runs == 1
    assert dag.catchup is True
    sensor = dag.get_task("wait_for_export")
    assert sensor.mode == "reschedule" and sensor.timeout > sensor.poke_interval > 0
    for tid in TASKS[1:]:
        t = dag.get_task(tid)
        assert t.retries >= 1 and t.retry_exponential_backoff, tid


def _timetable(dag):
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(dag.timetable)


def test_the_run_after_2021_09_01_scores_2021_08(dag):
    from airflow.timetables.base import DataInterval, TimeRestriction

    from pci.orchestrate.tasks import score_month_of

    tt = _timetable(dag)
    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=True)
    first = tt.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert first.run_after == pendulum.datetime(2021, 9, 1, tz="UTC")
    assert first.data_interval.start == pendulum.datetime(2021, 8, 1, tz="UTC")
    assert score_month_of(first.data_interval.start) == dt.date(2021, 8, 1)
    nxt = tt.next_dagrun_info(last_automated_data_interval=first.data_interval, restriction=restriction)
    assert nxt.run_after == pendulum.datetime(2021, 10, 1, tz="UTC")
    assert score_month_of(nxt.data_interval.start) == dt.date(2021, 9, 1)
    # a manual run triggered on 2021-09-01 (without score_month) scores August, the month just ended
    manual = tt.infer_manual_data_interval(run_after=pendulum.datetime(2021, 9, 1, tz="UTC"))
    assert manual == DataInterval(pendulum.datetime(2021, 8, 1, tz="UTC"), pendulum.datetime(2021, 9, 1, tz="UTC"))
    assert score_month_of(manual.start) == dt.date(2021, 8, 1)


def test_score_month_param_overrides_and_is_validated(dag):
    from airflow.sdk.definitions.param import ParamValidationError

    from pci.orchestrate.tasks import score_month_of

    start = pendulum.datetime(2021, 8, 1, tz="UTC")
    assert score_month_of(start, {"score_month": "2022-03"}) == dt.date(2022, 3, 1)
    assert score_month_of(start, {"score_month": None}) == dt.date(2021, 8, 1)
    param = dag.params.get_param("score_month")
    assert param.resolve("2022-03") == "2022-03"
    for bad in ("2022-3", "2022-13", "march"):
        with pytest.raises(ParamValidationError):
            param.resolve(bad)


def _task_context(tmp_path, conf=None):
    from types import SimpleNamespace

    conf = {"warehouse": str(tmp_path / "wh" / "pci.duckdb"), "landing": str(tmp_path), **(conf or {})}
    return {"dag_run": SimpleNamespace(conf=conf), "params": {}, "run_id": "scheduled__test",
            "data_interval_start": pendulum.datetime(2021, 8, 1, tz="UTC")}


def test_refusals_fail_without_retry_and_other_errors_are_retried(tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    from pci.orchestrate.outcomes import AuditFailed, run_outcome

    mod = dag_module()
    month = dt.date(2021, 8, 1)

    def failing(exc):
        @mod.fails_cleanly("validate_mart")
        def task_function(**context):
            raise exc
        return task_function

    refusal = failing(AuditFailed("validate_mart", month, "points out of range"))
    with pytest.raises(AirflowFailException, match="2021-08 refused at validate_mart") as err:
        refusal(**_task_context(tmp_path))
    assert "points out of range" in str(err.value)
    # what `pci run` reads back: the failure report of this DAG run
    written = run_outcome(tmp_path / "wh" / "pci.duckdb", month, "scheduled__test")
    assert written["kind"] == "refused" and written["exit_status"] == 1
    assert "points out of range" in written["text"]
    # anything else is raised as it is, for Airflow to retry ...
    with pytest.raises(OSError):
        failing(OSError("disk hiccup"))(**_task_context(tmp_path))
    # ... except in a `pci run`, which reports it at once
    with pytest.raises(AirflowFailException, match="disk hiccup"):
        failing(OSError("disk hiccup"))(**_task_context(tmp_path, {"fail_fast": True}))


def test_paths_come_from_conf_then_env_then_defaults(monkeypatch, tmp_path):
    from pci.orchestrate.tasks import DEFAULT_WAREHOUSE, resolve_paths

    monkeypatch.delenv("PCI_LANDING", raising=False)
    monkeypatch.delenv("PCI_WAREHOUSE", raising=False)
    assert resolve_paths({}, use_variables=False).warehouse == DEFAULT_WAREHOUSE
    monkeypatch.setenv("PCI_WAREHOUSE", str(tmp_path / "env.duckdb"))
    assert resolve_paths({}, use_variables=False).warehouse == tmp_path / "env.duckdb"
    assert resolve_paths({"warehouse": str(tmp_path / "c.duckdb")}).warehouse == tmp_path / "c.duckdb"


def test_each_task_pushes_its_result_as_one_xcom(dag):
    """A ``-> dict`` TaskFlow task would push every key of its result as an XCom of its
    own besides the whole (40 requests to the execution API a month, about 0.4 s);
    the tasks read each other's whole result only."""
    for tid in TASKS[1:]:
        assert dag.get_task(tid).multiple_outputs is False, tid


def test_publish_declares_the_published_mart_as_its_asset(dag):
    outlets = dag.get_task("publish").outlets
    assert [getattr(o, "uri", None) for o in outlets] == ["pci://warehouse/main/pci_monthly_scores"]
    assert all(not dag.get_task(t).outlets for t in TASKS if t != "publish")


def test_restate_param_defaults_to_true_and_the_run_conf_wins(dag, tmp_path):
    mod = dag_module()
    assert dag.params.get_param("restate").value is True
    context = _task_context(tmp_path)
    context["params"] = {"restate": True}
    assert mod._restate(context) is True
    context["params"] = {"restate": False}
    assert mod._restate(context) is False
    assert mod._restate(_task_context(tmp_path, {"restate": False}) | {"params": {"restate": True}}) is False


def test_full_refresh_param_defaults_to_false_and_the_run_conf_wins(dag, tmp_path):
    mod = dag_module()
    assert dag.params.get_param("full_refresh").value is False
    context = _task_context(tmp_path)
    assert mod._full_refresh(context) is False
    context["params"] = {"full_refresh": True}
    assert mod._full_refresh(context) is True
    assert mod._full_refresh(_task_context(tmp_path, {"full_refresh": False})
                             | {"params": {"full_refresh": True}}) is False
    assert mod._full_refresh(_task_context(tmp_path, {"full_refresh": True})) is True
