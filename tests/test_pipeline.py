"""`python -m pci run`: locking, readiness, refusals, rerun identity, restatement, kill safety.

The end-to-end cases run the real command in a subprocess over a tiny landing
written with tests/support/exports.py (three partners a month), through the
DAG's own tasks (dag.test) and a real dbt build.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from pci.core.errors import WarehouseBusy
from pci.core.locking import WarehouseLock, lock_path, read_holder

ROOT = Path(__file__).resolve().parents[1]


def env() -> dict:
    e = dict(os.environ)
    e.pop("AIRFLOW_HOME", None)  # `run` sets up its own Airflow home beside the warehouse
    e.pop("AIRFLOW__CORE__DAGS_FOLDER", None)
    e.update(GX_ANALYTICS_ENABLED="False", DBT_SEND_ANONYMOUS_USAGE_STATS="False",
             AIRFLOW__CORE__LOAD_EXAMPLES="False", PYTHONPATH=str(ROOT))
    return e


def pci_run(landing, warehouse, month, through=None, *extra, timeout=900):
    cmd = [sys.executable, "-m", "pci", "run", "--landing", str(landing), "--warehouse", str(warehouse),
           "--month", month, "--quiet", *extra]
    if through:
        cmd += ["--through", through]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env(), cwd=ROOT)


def hold_lock(warehouse: Path, seconds: float) -> subprocess.Popen:
    """A separate process holding the warehouse lock; returns once it holds it."""
    code = textwrap.dedent(f"""
        import sys, time
        from pci.core.locking import WarehouseLock
        with WarehouseLock({str(warehouse)!r}):
            print("held", flush=True)
            time.sleep({seconds})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


# ------------------------------------------------------------------ locking

def test_lock_is_exclusive_across_processes_and_names_the_holder(tmp_path):
    wh = tmp_path / "w.duckdb"
    holder = hold_lock(wh, 60)
    try:
        with pytest.raises(WarehouseBusy) as err:
            WarehouseLock(wh).acquire()
        assert f"process {holder.pid}" in str(err.value)
        assert read_holder(wh)["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the lock of the killed holder: no stale lock
    with WarehouseLock(wh):
        assert read_holder(wh)["pid"] == os.getpid()
    assert lock_path(wh).exists()


def test_lock_is_reentrant_in_one_process(tmp_path):
    wh = tmp_path / "w.duckdb"
    with WarehouseLock(wh):
        with WarehouseLock(wh):  # a task of an in-process run takes it again
            pass
        # still held after the inner release: another process is refused
        code = (f"import sys; from pci.core.locking import WarehouseLock, "
                f"WarehouseBusy\ntry:\n WarehouseLock({str(wh)!r}).acquire()\nexcept WarehouseBusy:\n sys.exit(4)")
        assert subprocess.run([sys.executable, "-c", code]).returncode == 4


def test_second_run_fails_fast_with_exit_4_naming_the_holder(tmp_path):
    wh = tmp_path / "w.duckdb"
    landing = tmp_path / "landing"
    landing.mkdir()
    holder = hold_lock(wh, 120)
    try:
        res = pci_run(landing, wh, "2021-08")
        assert res.returncode == 4, res.stderr
        assert f"process {holder.pid}" in res.stderr and "--wait" in res.stderr
        assert not wh.exists()  # nothing was touched
    finally:
        holder.kill()
        holder.wait()


def test_run_with_wait_waits_for_the_holder(tmp_path):
    wh = tmp_path / "w.duckdb"
    landing = tmp_path / "landing"
    landing.mkdir()
    holder = hold_lock(wh, 3)
    try:
        res = pci_run(landing, wh, "2021-08", None, "--wait")
        # it got the lock once the holder ended, then found no export: not ready (3), not busy (4)
        assert res.returncode == 3, res.stderr
        assert "not ready" in res.stderr and "2021-08" in res.stderr
        assert holder.poll() is not None
    finally:
        holder.kill()
        holder.wait()


def test_usage_errors_exit_2(tmp_path):
    res = pci_run(tmp_path, tmp_path / "w.duckdb", "2021-13")
    assert res.returncode == 2 and "2021-13" in res.stderr
    res = pci_run(tmp_path, tmp_path / "w.duckdb", "2021-08", "2021-07")
    assert res.returncode == 2 and "before" in res.stderr


# ------------------------------------------------------------------ end to end (real dbt, dag.test)

from tests.support.exports import minimal_valid_tables, write_export  # noqa: E402

JUL, AUG, SEP = "2021-07", "2021-08", "2021-09"


def mart(warehouse: Path) -> dict:
    """Everything published, read through a read-only connection."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        q = lambda sql: con.execute(sql).fetchall()  # noqa: E731
        return {
            "scores": q("SELECT * FROM main.pci_monthly_scores ORDER BY score_month, partner_id"),
            "contributions": q("SELECT * FROM main.pci_metric_contributions ORDER BY ALL"),
            "publications": q("SELECT publication_id, strftime(score_month, '%Y-%m'), input_load_ids, "
                              "row_count, supersedes, changed_partners FROM main.pci_score_publications "
                              "ORDER BY published_at"),
            "history": q("SELECT count(*) FROM main.pci_score_publication_rows")[0][0],
        }
    finally:
        con.close()


def month_tables(month: str) -> dict:
    """minimal_valid_tables; its billing line ids repeat every month, as the
    contract allows (line_id is the key of one month's file)."""
    return minimal_valid_tables(month)


def scores_of(m: dict, month: str) -> list:
    return [r for r in m["scores"] if r[0].strftime("%Y-%m") == month]


def generated_world(tmp_path: Path) -> Path:
    from pci.core.contract import parse_month
    from tools.generate import generate

    landing = tmp_path / "landing"
    generate(landing, parse_month("2021-06"), 4, 8, 160, 3, progress=False)
    return landing


@pytest.fixture(scope="module")
def published_world(tmp_path_factory):
    """A generated world (2021-06 … 2021-09), 2021-07 … 2021-08 run and published."""
    base = tmp_path_factory.mktemp("world")
    landing = generated_world(base)
    wh = base / "wh" / "pci.duckdb"
    res = pci_run(landing, wh, JUL, AUG)
    assert res.returncode == 0, res.stderr[-3000:]
    return base


def copy_world(src: Path, dst: Path) -> tuple[Path, Path]:
    import shutil

    shutil.copytree(src, dst / "w")
    return dst / "w" / "landing", dst / "w" / "wh" / "pci.duckdb"


@pytest.mark.slow
def test_run_publishes_each_month_through_the_dag(published_world):
    from pci.core.catalog import SCORE_COLUMNS

    wh = published_world / "wh" / "pci.duckdb"
    m = mart(wh)
    assert len(scores_of(m, JUL)) == 8 and len(scores_of(m, AUG)) == 8
    assert [p[1] for p in m["publications"]] == [JUL, AUG]
    assert m["history"] == 16
    con = duckdb.connect(str(wh), read_only=True)
    cols = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE "
                       "table_schema = 'main' AND table_name = 'pci_monthly_scores' "
                       "ORDER BY ordinal_position").fetchall()
    # the months of the range come from one build, but each month was audited and published
    # by its own DAG run (whose run id is recorded)
    runs = con.execute("SELECT run_id FROM main.pci_score_publications ORDER BY score_month").fetchall()
    con.close()
    assert [tuple(c) for c in cols] == list(SCORE_COLUMNS)
    assert all(r[0].startswith("manual__") for r in runs) and runs[0] != runs[1]
    # 2021-06 was landed (its window) but not scored; 2021-09 (after the range) not landed
    con = duckdb.connect(str(wh), read_only=True)
    landed = [r[0].strftime("%Y-%m") for r in con.execute(
        "SELECT DISTINCT export_month FROM raw.loads ORDER BY 1").fetchall()]
    con.close()
    assert landed == ["2021-06", JUL, AUG]
    reports = sorted(p.name for p in (wh.parent / "reports").iterdir())
    assert any(r.startswith("mart-2021-07") for r in reports) and any(r.startswith("run-2021-08") for r in reports)
    # the range was scored by one dbt build that both months' build_month tasks reused
    runs = [json.loads(p.read_text()) for p in sorted((wh.parent / "reports").glob("run-*.json"))]
    builds = [r["build"] for r in runs]
    assert [(b["first"], b["last"], b["reused"]) for b in builds] == [(JUL, AUG, True)] * 2
    # the analysts' copy was refreshed once for the range, by the last month's run
    copies = [r["publication"]["analyst_copy"] for r in runs]
    assert copies[0] == {"ok": True, "deferred": True}
    assert copies[1]["ok"] and copies[1]["path"] == str(wh.parent / "analyst" / wh.name)
    con = duckdb.connect(copies[1]["path"], read_only=True)
    held = [r[0].strftime("%Y-%m") for r in con.execute(
        "SELECT score_month FROM analyst_copy_months ORDER BY 1").fetchall()]
    con.close()
    assert held == [JUL, AUG]
    assert not (wh.parent / f"{wh.name}.scrub.json").exists(), "a new warehouse has nothing to scrub"


@pytest.mark.slow
def test_demo_runs_the_latest_three_months_and_prints_the_scores(published_world, tmp_path):
    landing, wh = copy_world(published_world, tmp_path)
    res = subprocess.run([sys.executable, "-m", "pci", "demo", "--landing", str(landing),
                          "--warehouse", str(wh)], capture_output=True, text=True, timeout=900,
                         env=env(), cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "PCI scores 2021-09" in res.stdout
    m = mart(wh)
    assert [p[1] for p in m["publications"]] == [JUL, AUG, SEP]  # 07-08 unchanged, 09 new
    for row in scores_of(m, SEP):  # every partner of the latest month, with its score and level
        line = next(line for line in res.stdout.splitlines() if f" {row[1]} " in line)
        assert f"{row[16]:.2f}" in line and row[17] in line


@pytest.mark.slow
def test_rerun_with_unchanged_inputs_leaves_the_mart_identical(published_world, tmp_path):
    landing, wh = copy_world(published_world, tmp_path)
    before = mart(wh)
    res = pci_run(landing, wh, JUL, AUG)
    assert res.returncode == 0, res.stderr[-3000:]
    assert mart(wh) == before  # same rows, no new publication
    # a warehouse this small is read whole by every run's rolling scrub before it writes
    place = json.loads((wh.parent / f"{wh.name}.scrub.json").read_text())
    assert place["passes"] == 1 and place["rowid"] == 0


@pytest.mark.slow
def test_refused_month_stops_the_run_and_keeps_earlier_months(published_world, tmp_path):
    landing, wh = copy_world(published_world, tmp_path)
    before = mart(wh)
    # 2021-09 arrives broken: one billing line of an unknown type
    folder = landing / SEP
    text = (folder / "billing_lines.csv").read_text().splitlines()
    header = text[0].split(",")
    row = text[1].split(",")
    row[header.index("line_type")] = "REFUND"
    (folder / "billing_lines.csv").write_text("\n".join([text[0], ",".join(row), *text[2:]]) + "\n")
    from tests.support.exports import write_manifest

    write_manifest(folder)
    res = pci_run(landing, wh, AUG, SEP)
    assert res.returncode == 1
    assert "2021-09" in res.stderr and "billing_lines" in res.stderr and "line_type" in res.stderr
    after = mart(wh)
    assert after["scores"] == before["scores"] and after["publications"] == before["publications"]


def test_month_not_ready_exits_3(tmp_path):
    landing = tmp_path / "landing"
    write_export(landing, JUL, minimal_valid_tables(JUL), manifest=False)
    res = pci_run(landing, tmp_path / "wh" / "pci.duckdb", JUL)
    assert res.returncode == 3 and "not ready" in res.stderr


@pytest.mark.slow
def test_restatement_after_a_corrected_export_names_later_months(tmp_path):
    """2021-07 is landed again with a corrected billing line: its rerun restates it,
    names 2021-08 (whose window contains July) and rerunning 2021-08 restates it too."""
    landing = tmp_path / "landing"
    for m in (JUL, AUG):
        write_export(landing, m, month_tables(m))
    wh = tmp_path / "wh" / "pci.duckdb"
    res = pci_run(landing, wh, JUL, AUG)
    assert res.returncode == 0, res.stderr[-3000:]
    before = mart(wh)

    tables = month_tables(JUL)
    tables["billing_lines"][0]["amount_usd"] = "30000.00"  # P001's CSP charge of July, corrected
    write_export(landing, JUL, tables)
    res = pci_run(landing, wh, JUL)
    assert res.returncode == 0, res.stderr[-3000:]
    after = mart(wh)
    changed = {r[1] for r in set(scores_of(after, JUL)) ^ set(scores_of(before, JUL))}
    assert changed == {"P001"}
    assert scores_of(after, AUG) == scores_of(before, AUG)  # August is not rerun by itself
    restated = after["publications"][-1]
    assert restated[1] == JUL and restated[4] == before["publications"][0][0] and restated[5] == 1
    run_report = json.loads(sorted((wh.parent / "reports").glob("run-2021-07-*.json"))[-1].read_text())
    assert run_report["publication"]["status"] == "restated"
    assert run_report["publication"]["stale_later_months"] == [AUG]
    assert "2021-08" in run_report["text"]
    assert "later published months read them: 2021-08" in " ".join(res.stdout.split())  # says it too

    res = pci_run(landing, wh, AUG)
    assert res.returncode == 0, res.stderr[-3000:]
    final = mart(wh)
    aug_changed = {r[1] for r in set(scores_of(final, AUG)) ^ set(scores_of(before, AUG))}
    assert aug_changed == {"P001"}  # July's revenue is in August's trailing window
    assert [p[1] for p in final["publications"]] == [JUL, AUG, JUL, AUG]
    assert final["history"] == 4 * 3  # every publication kept with its rows


KILLER = textwrap.dedent("""
    import os, signal, sys, threading
    point, args = sys.argv[1], sys.argv[2:]
    from pci.orchestrate import tasks as pipeline
    from pci.score import scoring

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "after_landing":
        pipeline.build_months = lambda *a, **k: die()
    elif point == "during_dbt":
        real_build = scoring.build
        def build(*a, **k):
            threading.Timer(2.0, die).start()
            return real_build(*a, **k)
        scoring.build = build
    elif point == "before_commit":
        real_connect = pipeline.connect
        class Killing:
            def __init__(self, con): self.con = con
            def execute(self, sql, *a):
                if sql.strip().upper() == "COMMIT":
                    die()
                return self.con.execute(sql, *a)
            def __getattr__(self, name): return getattr(self.con, name)
        pipeline.connect = lambda *a, **k: Killing(real_connect(*a, **k))
    from pci.cli import main
    sys.exit(main(["run", *args]))
""").format(root=str(ROOT))


@pytest.mark.slow
def test_kill_at_any_point_leaves_published_months_intact_and_the_next_run_completes(published_world, tmp_path):
    landing, wh = copy_world(published_world, tmp_path)
    before = mart(wh)
    # a corrected 2021-08 export arrives: the run restates August and scores September
    folder = landing / AUG
    lines = (folder / "seat_snapshots.csv").read_text().splitlines()
    header = lines[0].split(",")
    bumped = []
    for line in lines[1:]:
        cells = line.split(",")
        cells[header.index("paid_seats")] = str(int(cells[header.index("paid_seats")]) + 1)
        bumped.append(",".join(cells))
    (folder / "seat_snapshots.csv").write_text("\n".join([lines[0], *bumped]) + "\n")
    from tests.support.exports import write_manifest

    write_manifest(folder)
    args = ["--landing", str(landing), "--warehouse", str(wh), "--month", AUG, "--through", SEP, "--quiet"]
    for point in ("after_landing", "during_dbt", "before_commit"):
        proc = subprocess.run([sys.executable, "-c", KILLER, point, *args], capture_output=True, text=True,
                              timeout=900, env=env(), cwd=ROOT)
        assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr[-3000:])
        now = mart(wh)  # readable; every published month unchanged; September absent
        assert now["scores"] == before["scores"], point
        assert now["publications"] == before["publications"], point
        assert scores_of(now, SEP) == []
    res = pci_run(landing, wh, AUG, SEP)
    assert res.returncode == 0, res.stderr[-3000:]
    final = mart(wh)
    assert scores_of(final, JUL) == scores_of(before, JUL)
    assert len(scores_of(final, SEP)) == 8
    assert [p[1] for p in final["publications"]] == [JUL, AUG, AUG, SEP]


@pytest.mark.slow
def test_audit_rebuilds_the_month_when_another_run_replaced_the_build(published_world, tmp_path):
    """Under the scheduler each task holds the lock only while it runs: if another run
    rebuilt pci_build for other months between build_month and validate_mart, the
    audit builds the month again instead of auditing (or refusing) the wrong build."""
    from pci.core.contract import parse_month
    from pci.orchestrate import tasks as pipeline

    landing, wh = copy_world(published_world, tmp_path)
    before = mart(wh)
    pipeline.build_months(wh, parse_month(JUL), parse_month(JUL))  # the other run: July only
    con = duckdb.connect(str(wh), read_only=True)
    built = [r[0].strftime("%Y-%m") for r in con.execute(
        "SELECT DISTINCT score_month FROM pci_build.pci_monthly_scores").fetchall()]
    con.close()
    assert built == [JUL]
    audited = pipeline.validate_mart(wh, parse_month(AUG))
    assert audited["score_month"] == AUG and audited["rows"] == 8
    result = pipeline.publish(wh, parse_month(AUG), "manual__test", audited)
    assert result["status"] == "unchanged"  # same inputs, same rows as published before
    assert mart(wh) == before


@pytest.mark.slow
def test_a_range_runs_the_ready_months_then_exits_3_at_the_first_export_not_ready(published_world, tmp_path):
    landing, wh = copy_world(published_world, tmp_path)
    (landing / SEP / "_manifest.json").unlink()  # September is still being written
    res = pci_run(landing, wh, AUG, SEP)
    assert res.returncode == 3
    assert "not ready" in res.stderr and "2021-09" in res.stderr
    m = mart(wh)
    assert scores_of(m, SEP) == [] and len(scores_of(m, AUG)) == 8
    con = duckdb.connect(str(wh), read_only=True)
    landed = [r[0].strftime("%Y-%m") for r in con.execute(
        "SELECT DISTINCT export_month FROM raw.loads ORDER BY 1").fetchall()]
    con.close()
    assert SEP not in landed
