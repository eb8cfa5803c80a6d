"""pci.score.scoring: refusing months that cannot be scored, and the dbt build itself."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from reference_scoring import build_world

from pci.core.contract import ensure_raw_schema
from pci.score import scoring

ROOT = Path(__file__).resolve().parents[1]
FIRST = dt.date(2021, 1, 1)


def _landed(con, months):
    ensure_raw_schema(con)
    for m in months:
        con.execute("INSERT INTO raw.loads VALUES (?, ?, ?, ?, ?, ?)",
                    [f"load-{m}", m, "0" * 64, dt.datetime(2022, 1, 1), True, "{}"])


# ------------------------------------------------------------ check_scorable


def test_check_scorable_accepts_a_contiguous_range():
    con = duckdb.connect()
    _landed(con, [dt.date(2021, 1, 1), dt.date(2021, 2, 1), dt.date(2021, 3, 1)])
    assert scoring.check_scorable(con, dt.date(2021, 2, 1), dt.date(2021, 3, 1)) == [
        dt.date(2021, 2, 1), dt.date(2021, 3, 1)]


def test_check_scorable_refuses_a_month_that_is_not_landed():
    con = duckdb.connect()
    _landed(con, [dt.date(2021, 1, 1), dt.date(2021, 2, 1)])
    with pytest.raises(scoring.NotScorable) as err:
        scoring.check_scorable(con, dt.date(2021, 2, 1), dt.date(2021, 4, 1))
    assert "2 month(s) not landed: 2021-03, 2021-04" in str(err.value)


def test_check_scorable_refuses_a_missing_month_in_the_middle():
    con = duckdb.connect()
    _landed(con, [dt.date(2021, 1, 1), dt.date(2021, 2, 1), dt.date(2021, 4, 1)])
    with pytest.raises(scoring.NotScorable) as err:
        scoring.check_scorable(con, dt.date(2021, 4, 1), dt.date(2021, 4, 1))
    msg = str(err.value)
    assert "earliest landed month 2021-01" in msg and "not landed: 2021-03" in msg


def test_check_scorable_ignores_superseded_loads_and_refuses_empty_warehouse():
    con = duckdb.connect()
    ensure_raw_schema(con)
    con.execute("INSERT INTO raw.loads VALUES ('old', DATE '2021-01-01', 'x', now(), false, '{}')")
    with pytest.raises(scoring.NotScorable, match="no month is landed"):
        scoring.check_scorable(con, dt.date(2021, 1, 1), dt.date(2021, 1, 1))
    _landed(con, [dt.date(2021, 1, 1)])
    with pytest.raises(scoring.NotScorable, match="range is empty"):
        scoring.check_scorable(con, dt.date(2021, 2, 1), dt.date(2021, 1, 1))


def test_build_refuses_before_running_dbt(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    _landed(con, [dt.date(2021, 1, 1)])
    con.close()
    with pytest.raises(scoring.NotScorable, match="2021-02"):
        scoring.build(warehouse, dt.date(2021, 2, 1), dt.date(2021, 2, 1))
    assert not scoring.default_target_path(warehouse).exists()


def test_cli_refuses_a_month_that_is_not_landed(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    _landed(con, [dt.date(2021, 1, 1)])
    con.close()
    proc = subprocess.run(
        [sys.executable, "-m", "pci", "score", "--warehouse", str(warehouse),
         "--month", "2021-01", "--through", "2021-02"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "not landed: 2021-02" in proc.stderr


# ------------------------------------------------------------ the dbt build


def _copy(warehouse: Path, tmp_path: Path) -> Path:
    """A private copy of the module's warehouse, for tests that build into it."""
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(warehouse, copy)
    return copy


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory):
    """A small world scored for its last three months through the CLI."""
    warehouse = tmp_path_factory.mktemp("scoring") / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    try:
        build_world(con, first=FIRST, n_months=14, n_partners=6, n_tenants=30, seed=99)
    finally:
        con.close()
    proc = subprocess.run(
        [sys.executable, "-m", "pci", "score", "--warehouse", str(warehouse),
         "--month", "2021-12", "--through", "2022-02"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "PCI_WAREHOUSE": "/nonexistent/ignored.duckdb"})
    return warehouse, proc


@pytest.mark.dbt
def test_cli_score_builds_and_prints_rows_per_month(built_warehouse):
    warehouse, proc = built_warehouse
    assert proc.returncode == 0, proc.stderr
    con = duckdb.connect(str(warehouse), read_only=True)
    counts = dict(con.execute("SELECT score_month, count(*) FROM pci_build.pci_monthly_scores "
                              "GROUP BY 1").fetchall())
    partners = dict(con.execute("SELECT export_month, count(*) FROM raw.partners "
                                "GROUP BY 1").fetchall())
    con.close()
    assert sorted(counts) == [dt.date(2021, 12, 1), dt.date(2022, 1, 1), dt.date(2022, 2, 1)]
    for month, n in counts.items():
        assert n == partners[month]
        assert f"{month:%Y-%m}: {n} rows" in proc.stdout


@pytest.mark.dbt
def test_build_ran_unit_tests_and_data_tests_and_all_passed(built_warehouse):
    warehouse, _ = built_warehouse
    results = json.loads((scoring.default_target_path(warehouse) / "run_results.json").read_text())
    by_type: dict[str, list[str]] = {}
    for r in results["results"]:
        kind = r["unique_id"].split(".")[0]
        by_type.setdefault(kind, []).append(r["status"])
    assert len(by_type["unit_test"]) >= 25
    assert len(by_type["test"]) >= 50
    seeds = sorted(p.stem for p in (ROOT / "seeds").glob("*.csv"))
    assert len(by_type["seed"]) == len(seeds) == 6, seeds  # every rule table is loaded
    for kind, statuses in by_type.items():
        bad = [s for s in statuses if s not in ("success", "pass", "no-op")]
        assert not bad, f"{kind}: {bad}"
    names = {r["unique_id"] for r in results["results"]}
    for name in ("test_d1_association_ending_on_eom_is_in_effect",
                 "test_d2_osu_cpor_does_not_block_dpor_revenue", "test_d3_score_80_is_gold",
                 "test_d4_two_developers_reach_full_points",
                 "test_d5_revenue_credited_to_billing_month_partners",
                 "test_d6_loss_debits_only_add_holders_within_12_months",
                 "test_d7_exam_expiring_on_eom_is_not_active",
                 "test_d8_deployment_counts_distinct_production_tenants",
                 "test_d9_baseline_uses_associations_at_m_minus_12"):
        assert any(uid.endswith("." + name) for uid in names), name
    assert any(uid.endswith("assert_contributions_sum_to_metric_values") for uid in names)


@pytest.mark.dbt
def test_mart_has_the_contract_columns_and_types(built_warehouse):
    warehouse, _ = built_warehouse
    con = duckdb.connect(str(warehouse), read_only=True)
    cols = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = 'pci_build' AND table_name = 'pci_monthly_scores' "
                       "ORDER BY ordinal_position").fetchall()
    con.close()
    points = [(f"points_{m}", "DECIMAL(5,2)") for m in (
        "net_new_revenue", "net_customer_adds", "functional_consultants", "developers",
        "new_deployments", "mau_growth")]
    assert cols == [
        ("score_month", "DATE"), ("partner_id", "VARCHAR"),
        ("net_new_revenue_usd", "DECIMAL(18,2)"), ("net_customer_adds", "INTEGER"),
        ("functional_consultants", "INTEGER"), ("developers", "INTEGER"),
        ("new_deployments", "INTEGER"), ("mau_baseline", "BIGINT"), ("mau_current", "BIGINT"),
        ("mau_growth", "DOUBLE"), *points, ("pci_score", "DECIMAL(5,2)"),
        ("competency_level", "VARCHAR"), ("window_complete", "BOOLEAN")]


@pytest.mark.dbt
def test_contributions_sum_to_the_metric_values(built_warehouse):
    warehouse, _ = built_warehouse
    con = duckdb.connect(str(warehouse), read_only=True)
    rows = con.execute("""
        SELECT s.score_month, s.partner_id, s.net_new_revenue_usd, s.net_customer_adds,
               s.developers, s.mau_current,
               round(coalesce(sum(c.amount) FILTER (WHERE c.metric = 'net_new_revenue'), 0), 2),
               coalesce(sum(c.amount) FILTER (WHERE c.metric = 'net_customer_adds'), 0),
               coalesce(sum(c.amount) FILTER (WHERE c.metric = 'developers'), 0),
               coalesce(sum(c.amount) FILTER (WHERE c.detail = 'current'), 0)
        FROM pci_build.pci_monthly_scores s
        LEFT JOIN pci_build.pci_metric_contributions c USING (score_month, partner_id)
        GROUP BY ALL""").fetchall()
    con.close()
    assert rows
    for r in rows:
        assert (r[2], r[3], r[4], r[5]) == (r[6], r[7], r[8], r[9]), r


@pytest.mark.dbt
def test_build_releases_the_warehouse(built_warehouse, tmp_path):
    """After build() returns, another process can open the warehouse for writing."""
    warehouse = _copy(built_warehouse[0], tmp_path)
    # in-process: build() closed dbt's connection, so a read-write connection opens
    first = dt.date(2022, 2, 1)
    scoring.build(warehouse, first, first)
    con = duckdb.connect(str(warehouse))
    con.close()
    proc = subprocess.run([sys.executable, "-c",
                           f"import duckdb; duckdb.connect({str(warehouse)!r}).close()"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.dbt
def test_dbt_itself_refuses_a_score_month_that_is_not_landed(built_warehouse, monkeypatch,
                                                             tmp_path):
    """Without the Python check, dbt's own scorability test fails the build."""
    warehouse = _copy(built_warehouse[0], tmp_path)
    monkeypatch.setattr(scoring, "check_scorable", lambda con, first, last: None)
    with pytest.raises(scoring.BuildFailed) as err:
        scoring.build(warehouse, dt.date(2022, 2, 1), dt.date(2022, 4, 1),
                      target_path=tmp_path / "target")
    failures = err.value.failures
    assert any("assert_score_months_are_scorable: fail" in f for f in failures), failures
    assert any("model.pci_pipeline.pci_monthly_scores: skipped" in f for f in failures)
    assert "dbt build for 2022-02..2022-04 failed" in str(err.value)


# ------------------------------------------------------------ unit tests: when they run


def test_project_fingerprint_follows_the_project_files(tmp_path, monkeypatch):
    for part in ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "tests/dbt"):
        src = ROOT / part
        dst = tmp_path / part
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
    monkeypatch.setattr(scoring, "PROJECT_DIR", tmp_path)
    before = scoring.project_fingerprint()
    assert scoring.project_fingerprint() == before
    model = tmp_path / "models" / "marts" / "pci_monthly_scores.sql"
    model.write_text(model.read_text() + "\n-- edited\n")
    assert scoring.project_fingerprint() != before
    (tmp_path / "docs-only.md").write_text("not part of the dbt project")
    edited = scoring.project_fingerprint()
    assert scoring.project_fingerprint() == edited


def test_unit_test_record_is_per_project_fingerprint():
    con = duckdb.connect()
    assert not scoring.unit_tests_passed(con, "a")
    scoring.record_unit_tests_passed(con, "a", 30)
    assert scoring.unit_tests_passed(con, "a")
    assert not scoring.unit_tests_passed(con, "b")


def test_unit_test_mode_from_argument_or_environment(monkeypatch):
    monkeypatch.delenv("PCI_DBT_UNIT_TESTS", raising=False)
    assert scoring.unit_test_mode() == "changed"
    monkeypatch.setenv("PCI_DBT_UNIT_TESTS", "always")
    assert scoring.unit_test_mode() == "always"
    assert scoring.unit_test_mode("changed") == "changed"
    with pytest.raises(ValueError, match="PCI_DBT_UNIT_TESTS"):
        scoring.unit_test_mode("sometimes")


@pytest.mark.dbt
def test_unit_tests_run_again_only_when_the_project_changed(built_warehouse, tmp_path, monkeypatch):
    """The module's build ran the unit tests and recorded it; a build of the same
    project skips them (data tests still run); a changed project runs them again."""
    monkeypatch.delenv("PCI_DBT_UNIT_TESTS", raising=False)
    warehouse = _copy(built_warehouse[0], tmp_path)
    con = duckdb.connect(str(warehouse), read_only=True)
    assert scoring.unit_tests_passed(con, scoring.project_fingerprint())
    con.close()
    month = dt.date(2022, 2, 1)

    def kinds(result):
        out: dict[str, int] = {}
        for uid in result.node_statuses:
            out[uid.split(".")[0]] = out.get(uid.split(".")[0], 0) + 1
        return out

    same = scoring.build(warehouse, month, month, target_path=tmp_path / "same")
    assert not same.unit_tests_ran
    assert "unit_test" not in kinds(same) and kinds(same)["test"] >= 50
    # the seeds (rule constants) are part of the project: loaded and tested with it, left
    # as they are by a build of the same project; the models' tests that read them still run
    seed_tests = {uid for uid in same.node_statuses if uid.startswith("test.") and "pci_levels" in uid}
    assert not same.seeds_loaded and "seed" not in kinds(same)
    assert {"test.pci_pipeline.assert_competency_level_matches_pci_levels"} <= {
        ".".join(u.split(".")[:3]) for u in seed_tests}
    assert not any(u.startswith("test.pci_pipeline.unique_pci_levels") for u in same.node_statuses)

    monkeypatch.setattr(scoring, "project_fingerprint", lambda: "an edited project")
    edited = scoring.build(warehouse, month, month, target_path=tmp_path / "edited")
    assert edited.unit_tests_ran and kinds(edited)["unit_test"] >= 25
    assert edited.seeds_loaded and kinds(edited)["seed"] == len(scoring.seed_names()) == 6
    assert any(u.startswith("test.pci_pipeline.unique_pci_levels") for u in edited.node_statuses)
    con = duckdb.connect(str(warehouse), read_only=True)
    assert scoring.unit_tests_passed(con, "an edited project")
    con.close()

    # a seed table missing (dropped by hand): the seeds are loaded again
    con = duckdb.connect(str(warehouse))
    con.execute("DROP TABLE pci_build.pci_levels")
    con.close()
    again = scoring.build(warehouse, month, month, target_path=tmp_path / "edited")
    assert not again.unit_tests_ran and again.seeds_loaded and kinds(again)["seed"] == 6
