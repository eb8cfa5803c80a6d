"""Smoke test of the benchmark: `bench --scale small --runs 1` runs end to end.

No timing is asserted: the benchmark is run by hand (`make bench`), never
judged inside the test suite. This checks that every case ran and that the
results and the Markdown table are written where asked.
"""
import json
from pathlib import Path
import subprocess
import sys

import duckdb
import pytest

from tools.bench.cases import CASES
from tools.bench.measure import ROOT
from tools.bench.results import merge_cases, ratios, render_markdown, target_verdict
from tools.bench.world import nth_month


@pytest.mark.slow
def test_bench_small_one_run_writes_results_and_table(tmp_path):
    results, doc = tmp_path / "results.json", tmp_path / "benchmark.md"
    proc = subprocess.run(
        [sys.executable, "-m", "pci", "bench", "--scale", "small", "--runs", "1",
         "--results", str(results), "--doc", str(doc), "--cache", str(tmp_path / "cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]

    small = json.loads(results.read_text())["scales"]["small"]
    assert (small["partners"], small["tenants"], small["months"]) == (100, 5_000, 26)
    assert set(small["cases"]) == set(CASES)
    for name, case in small["cases"].items():
        assert case["runs"] == 1, name
        assert case["min_s"] <= case["median_s"] <= case["max_s"], name
        assert case["max_peak_rss_mib"] > 0, name
    assert small["machine"]["cores"] >= 1
    assert set(small["ratios"]) >= {"land_month / csv_floor",
                                    "new_month (25 landed) / new_month_13 (12 landed)",
                                    "new_month (25 landed) / new_month_h12 (the same month, 12 landed)"}
    # history alone: the h12 warehouse holds only the 12 months before the last one
    con = duckdb.connect(str(tmp_path / "cache" / "small" / "ran_14_25" / "pci.duckdb"), read_only=True)
    landed = con.execute("SELECT min(export_month), count(DISTINCT export_month) FROM raw.loads").fetchone()
    con.close()
    assert (landed[0].strftime("%Y-%m"), landed[1]) == (nth_month(14), 12)

    # the end-to-end cases start from the state a previous month's run leaves
    for ran in (tmp_path / "cache" / "small" / "ran_25", tmp_path / "cache" / "small" / "ran_12",
                tmp_path / "cache" / "small" / "ran_14_25", tmp_path / "cache" / "fixed" / "ran_25"):
        assert (ran / ".ready").exists(), ran
        assert (ran / "pci.duckdb.airflow" / "airflow.db").exists(), ran
        assert (ran / "pci.duckdb.dbt-target" / "partial_parse.msgpack").exists(), ran

    table = doc.read_text()
    assert "## small: 100 partners, 5,000 tenants, 26 months" in table
    for name in CASES:
        assert f"| {name} |" in table


def test_target_verdicts_follow_the_targets():
    fast = {"median_s": 14.0, "max_peak_rss_mib": 1000.0}
    slow = {"median_s": 16.0, "max_peak_rss_mib": 1000.0}
    fat = {"median_s": 10.0, "max_peak_rss_mib": 3.5 * 1024}
    assert target_verdict("medium", "new_month", fast).endswith("met")
    assert target_verdict("medium", "new_month", slow).endswith("MISSED")
    assert target_verdict("medium", "new_month", fat).endswith("MISSED")
    assert target_verdict("small", "new_month", slow) == ""


def test_ratios_are_computed_from_medians():
    cases = {"land_month": {"median_s": 6.0}, "csv_floor": {"median_s": 2.0},
             "fixed_land": {"median_s": 3.0}, "new_month": {"median_s": 23.0},
             "new_month_13": {"median_s": 20.0}, "new_month_h12": {"median_s": 25.0}}
    r = ratios(cases)
    assert r["land_month / csv_floor"] == 3.0
    assert r["(land_month - fixed_land) / csv_floor"] == 1.5
    assert r["new_month (25 landed) / new_month_13 (12 landed)"] == 1.15
    assert r["new_month (25 landed) / new_month_h12 (the same month, 12 landed)"] == 0.92


def test_a_ratio_is_of_cases_measured_in_the_same_run_only():
    cases = {"land_month": {"median_s": 6.0, "measured_at": "t2"},
             "csv_floor": {"median_s": 2.0, "measured_at": "t2"},
             "new_month": {"median_s": 23.0, "measured_at": "t1"},
             "new_month_13": {"median_s": 20.0, "measured_at": "t1"}}
    r = ratios(cases)
    assert r["land_month / csv_floor"] == 3.0
    assert r["new_month (25 landed) / new_month_13 (12 landed)"] == 1.15
    assert "new_month / csv_floor" not in r  # the reference of another run
    res = {"partners": 1, "tenants": 1, "measured_at": "t2", "machine": {"cores": 2, "memory_gib": 24},
           "cases": {k: {**v, "min_s": 1, "max_s": 1, "median_peak_rss_mib": 1, "max_peak_rss_mib": 1,
                         "runs": 3} for k, v in cases.items()}, "ratios": r}
    text = render_markdown({"scales": {"medium": res}})
    assert "last measured t2 (land_month, csv_floor); t1 (new_month, new_month_13)" in text


def test_a_subset_of_cases_keeps_the_other_cases_of_the_scale():
    before = {"backfill_14": {"median_s": 60.0}, "new_month": {"median_s": 30.0}}
    now = {"new_month": {"median_s": 25.0}, "csv_floor": {"median_s": 0.3}}
    merged = merge_cases(before, now)
    assert merged == {"csv_floor": {"median_s": 0.3}, "new_month": {"median_s": 25.0},
                      "backfill_14": {"median_s": 60.0}}
    assert list(merged) == [c for c in CASES if c in merged]


def test_ratio_targets_are_judged_where_they_are_set():
    res = {"partners": 1, "tenants": 1, "measured_at": "t",
           "machine": {"cores": 2, "memory_gib": 24}, "cases": {},
           "ratios": {"(land_month - fixed_land) / csv_floor": 5.5, "land_month / csv_floor": 5.0}}
    text = render_markdown({"scales": {"small": res, "medium": res, "large": res}})
    small, rest = text.split("## medium")
    medium, large = rest.split("## large")
    for scale in (medium, large):
        assert "| (land_month - fixed_land) / csv_floor | 5.5 | ≤ 5.0: MISSED |" in scale
        assert "| land_month / csv_floor | 5.0 |  |" in scale
    assert "| (land_month - fixed_land) / csv_floor | 5.5 |  |" in small

def _case(median):
    return {"runs": 3, "median_s": median, "min_s": median - 1, "max_s": median + 1,
            "median_peak_rss_mib": 500.0, "max_peak_rss_mib": 600.0}


def test_spark_figures_stand_beside_duckdbs_in_the_same_table():
    duck = {"csv_floor": _case(2.0), "new_month": _case(20.0)}
    spark = {"csv_floor": _case(2.5), "new_month": _case(90.0)}
    res = {"partners": 2000, "tenants": 100_000, "measured_at": "t1",
           "machine": {"cores": 2, "memory_gib": 24}, "cases": duck, "ratios": ratios(duck),
           "spark": {"runs": 3, "measured_at": "t2", "cases": spark, "ratios": ratios(spark)}}
    text = render_markdown({"scales": {"medium": res}})
    assert "Spark last measured t2 (3 runs)" in text
    assert "| Spark median s | Spark min–max s | Spark peak MiB (median / max) | Spark / DuckDB |" in text
    row = next(line for line in text.splitlines() if line.startswith("| new_month |"))
    # DuckDB's figures and target first, then Spark's, and Spark / DuckDB = 90 / 20
    assert row.endswith("| 90.00 | 89.00–91.00 | 500 / 600 | 4.50 |"), row
    assert "| 20.00 | 19.00–21.00 |" in row and "MISSED" in row
    ratio = next(line for line in text.splitlines() if line.startswith("| new_month / csv_floor |"))
    assert ratio == "| new_month / csv_floor | 10.0 |  | 36.0 |"
    # without Spark figures the table keeps its DuckDB columns alone
    del res["spark"]
    assert "Spark" not in render_markdown({"scales": {"medium": res}}).split("\n## ")[1]


def test_the_spark_cases_are_pci_runs_on_the_spark_engine(tmp_path, monkeypatch):
    """A Spark case prepares its warehouse by a `pci run --engine spark` (which lands the
    months itself, at the path the measured run uses) and measures `pci run --engine spark`
    on a copy of that folder."""
    from tools.bench import cases, world

    prepared = []

    def fake_setup(cmd):  # what the preparation would have made
        prepared.append(cmd)
        wh = Path(cmd[cmd.index("--warehouse") + 1])
        (wh / "tables").mkdir(parents=True)
        wh.with_name(wh.name + ".airflow").mkdir()

    monkeypatch.setattr(world, "run_setup", fake_setup)
    monkeypatch.setattr(world.World, "landed_warehouse",
                        lambda *a: pytest.fail("a Spark warehouse is not prepared from a DuckDB one"))
    w = world.World("small", tmp_path / "cache", engine="spark")
    w.landing.mkdir(parents=True)
    for i in range(1, world.MONTHS + 1):
        (w.landing / world.nth_month(i)).mkdir()
    work = w.dir / "work"
    cmd = cases.case_new_month(w, work, lambda msg: None)

    (setup,) = prepared
    assert setup[setup.index("--engine") + 1] == "spark"
    assert setup[setup.index("--month") + 1] == world.nth_month(world.MONTHS - 1)
    assert Path(setup[setup.index("--warehouse") + 1]) == work / "spark"  # made where it is measured
    assert (w.dir / "spark" / f"ran_{world.MONTHS - 1:02d}" / "spark" / "tables").is_dir()  # kept
    assert cmd[cmd.index("--engine") + 1] == "spark"
    assert cmd[cmd.index("--month") + 1] == world.nth_month(world.MONTHS)
    assert Path(cmd[cmd.index("--warehouse") + 1]) == work / "spark"
    assert (work / "spark" / "tables").is_dir() and (work / "spark.airflow").is_dir()
    assert set(cases.SPARK_CASES) <= set(CASES)
