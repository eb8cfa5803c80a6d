"""The same pipeline on Apache Spark: the whole sample world through `pci run --engine spark`.

One generated sample world (the one `make run` scores) is run by the real
command in subprocesses, on DuckDB (the default) and on a local Spark session
(`--engine spark`, a Spark warehouse folder). Spark takes the operator's path: the
range but its last month first; then a month is corrected (its export landed
again with fewer rows) and the month-end run of the last month lands both, derives
only the partitions that read them (the kept month partitions of the first run
are read, a restated month's partitions replaced whole) and republishes the
months the correction made stale. DuckDB scores the corrected world in one range.
Every column of every published row of `pci_monthly_scores` and
`pci_metric_contributions`, for every scored month, must be the same; `pci
export` writes the same CSV from either engine.

Marked ``spark`` (run alone with ``-m spark``) and ``slow``. Needs Java 17
(`make java`).
"""
from __future__ import annotations

import csv
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.support.restatements import drop_tenants, restate

pytestmark = [pytest.mark.spark, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("java") is None, reason="Java 17 is needed: make java")]

ROOT = Path(__file__).resolve().parents[1]
#: the sample world of `make run` (tools/generate defaults): 26 months from 2020-07;
#: the months with a complete 13-month window are 2021-07 .. 2022-08
FIRST, PENULT, LAST = "2021-07", "2022-07", "2022-08"
#: the month corrected before the month-end run of LAST (its export landed again, fewer rows)
RESTATED = "2022-05"
TABLES = ("pci_monthly_scores", "pci_metric_contributions")


def _env() -> dict:
    e = dict(os.environ)
    e.pop("AIRFLOW_HOME", None)
    e.pop("AIRFLOW__CORE__DAGS_FOLDER", None)
    e.update(GX_ANALYTICS_ENABLED="False", DBT_SEND_ANONYMOUS_USAGE_STATS="False",
             AIRFLOW__CORE__LOAD_EXAMPLES="False", PYTHONPATH=str(ROOT))
    return e


def _pci(*args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "pci", *args], capture_output=True, text=True,
                         timeout=timeout, env=_env(), cwd=ROOT)
    assert res.returncode == 0, f"pci {' '.join(args)}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(DuckDB warehouse file, Spark warehouse folder, work folder, the UTC time of Spark's
    month-end run), both scored FIRST .. LAST on the corrected world."""
    work = tmp_path_factory.mktemp("spark-world")
    landing = work / "landing"
    _pci("generate", "--out", str(landing))
    duck = work / "duck" / "pci.duckdb"
    spark = work / "spark"
    _pci("run", "--engine", "spark", "--landing", str(landing), "--warehouse", str(spark),
         "--month", FIRST, "--through", PENULT, "--quiet")
    restate(landing, RESTATED, drop_tenants(0.3, seed=12))
    month_end = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    _pci("run", "--engine", "spark", "--landing", str(landing), "--warehouse", str(spark),
         "--month", LAST, "--quiet")
    _pci("run", "--landing", str(landing), "--warehouse", str(duck), "--month", FIRST, "--through", LAST,
         "--quiet")
    return duck, spark, work, month_end


def _normal(value):
    """A published value as comparable text: Decimals by their digits (the scale of
    the contract is the same on both engines), dates ISO, floats by repr."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _published_duckdb(warehouse: Path, table: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(f"SELECT * FROM main.{table}").fetchall()
        names = [d[0] for d in con.description]
    finally:
        con.close()
    return names, Counter(tuple(_normal(v) for v in r) for r in rows)


_SPARK_READ = """
import json, sys
from decimal import Decimal
from pci.core import spark

def text(v):
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, float):
        return repr(v)
    return v.isoformat() if hasattr(v, "isoformat") else v

s = spark.session(sys.argv[1])
out = {}
for table in sys.argv[2:]:
    frame = s.sql(f"SELECT * FROM main.{table}")
    out[table] = {"names": frame.columns, "rows": [[text(v) for v in r] for r in frame.collect()]}
out["unit_tests"] = s.sql("SELECT max(unit_tests) FROM pci_build.pci_unit_tests_passed").collect()[0][0]
out["partitions"] = [[r[0], text(r[1]), r[2]] for r in s.sql(
    "SELECT model_name, partition_month, built_at FROM pci_build.pci_partitions "
    "WHERE partition_month IS NOT NULL").collect()]
print(json.dumps(out))
"""


def _published_spark(warehouse: Path) -> dict:
    """Every published row of TABLES on the Spark warehouse, read by Spark in a
    subprocess (a process's session serves one warehouse)."""
    import json

    res = subprocess.run([sys.executable, "-c", _SPARK_READ, str(warehouse), *TABLES], capture_output=True,
                         text=True, timeout=600, env=_env(), cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def on_spark(runs) -> dict:
    return _published_spark(runs[1])


def test_every_published_row_is_the_same_on_spark_and_duckdb(runs, on_spark):
    duck = runs[0]
    for table in TABLES:
        names, want = _published_duckdb(duck, table)
        got_names = on_spark[table]["names"]
        # the same columns (Spark keeps the partition column, score_month, last)
        assert sorted(got_names) == sorted(names), table
        order = [got_names.index(n) for n in names]
        got = Counter(tuple(r[i] for i in order) for r in on_spark[table]["rows"])
        months = {r[names.index("score_month")] for r in want}
        assert len(months) == 14, (table, sorted(months))  # every scored month is published
        assert sum(got.values()) == sum(want.values()), table
        assert got == want, (f"{table}: DuckDB's rows not on Spark: {list((want - got).elements())[:5]}; "
                             f"Spark's rows not on DuckDB: {list((got - want).elements())[:5]}")


def test_the_dbt_unit_tests_ran_on_spark(runs, on_spark):
    """The Spark build ran every dbt unit test of the project (they passed: the build
    records them only then), as the DuckDB build does."""
    con = duckdb.connect(str(runs[0]), read_only=True)
    try:
        on_duckdb = con.execute("SELECT max(unit_tests) FROM pci_build.pci_unit_tests_passed").fetchone()[0]
    finally:
        con.close()
    assert on_duckdb == _project_unit_tests() > 0
    assert on_spark["unit_tests"] == on_duckdb


def _project_unit_tests() -> int:
    """How many dbt unit tests the project's model YAML declares."""
    import yaml

    return sum(len((yaml.safe_load(p.read_text()) or {}).get("unit_tests") or [])
               for p in (ROOT / "models").rglob("*.yml"))


def test_the_month_end_run_on_spark_derived_only_the_partitions_reading_its_new_loads(runs, on_spark):
    """The second Spark run derived the partitions of the corrected month and of the new
    month, and the next month's events and add credits (they read m-1), and kept every
    other partition of the first run; the published rows equal DuckDB's (above), so the
    corrected month's partitions kept no row of its old load."""
    derived: dict[str, set[str]] = {}
    for model, month, built_at in on_spark["partitions"]:
        if built_at > runs[3]:
            derived.setdefault(model, set()).add(month[:7])
    after = "2022-06"
    assert derived == {
        "int_subscription_months": {RESTATED, LAST},
        "int_tenant_monthly_seats": {RESTATED, LAST},
        "int_subscription_partner_credits": {RESTATED, LAST},
        "int_customer_seat_events": {RESTATED, after, LAST},
        "int_customer_add_credits": {RESTATED, after, LAST},
        "int_ea_first_year_revenue": {RESTATED, LAST},
        "int_partner_revenue_credits": {RESTATED, LAST},
    }


def test_pci_export_writes_the_same_file_from_either_engine(runs):
    duck, spark, work, _ = runs
    out_duck, out_spark = work / "duck.csv", work / "spark.csv"
    _pci("export", "--warehouse", str(duck), "--month", FIRST, "--through", LAST, "--out", str(out_duck),
         "--source", "warehouse")
    _pci("export", "--engine", "spark", "--warehouse", str(spark), "--month", FIRST, "--through", LAST,
         "--out", str(out_spark))
    with open(out_duck, newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 1 + 14 * 60  # the header, then 60 partners a month for 14 months
    assert out_spark.read_bytes() == out_duck.read_bytes()


def test_explain_report_and_at_risk_read_the_same_from_either_engine(runs):
    """`explain`, `report` and `at-risk` with --engine spark read the Spark warehouse's
    published tables and print (write) what they print from the DuckDB warehouse: a
    partner's scorecard and history of the last month, the page of the corrected month
    (its transitions against a republished month), the partners at risk."""
    duck, spark, work, _ = runs
    con = duckdb.connect(str(duck), read_only=True)
    try:
        partner, score = con.execute(
            "SELECT partner_id, pci_score FROM main.pci_monthly_scores WHERE score_month = ? "
            "ORDER BY pci_score DESC, partner_id LIMIT 1", [dt.date.fromisoformat(LAST + "-01")]).fetchone()
    finally:
        con.close()
    outputs = {}
    for args in (("explain", "--partner", partner, "--month", LAST), ("at-risk", "--month", LAST)):
        on_duckdb = _pci(*args, "--warehouse", str(duck), "--source", "warehouse").stdout
        on_spark = _pci(*args, "--engine", "spark", "--warehouse", str(spark)).stdout
        outputs[args[0]] = on_duckdb, on_spark
    (explained_duckdb, explained), at_risk = outputs["explain"], outputs["at-risk"]
    # the scorecard names the mart it read, and only that differs
    source = re.compile(r"\(read from the ([^)]*)\)")
    def bare(text):  # without the spaces and line breaks the terminal's wrapping may add
        return "".join(text.split())

    assert bare(source.search(explained_duckdb).group(1)) == bare(f"warehouse {duck}")
    assert bare(source.search(explained).group(1)) == bare(f"Spark warehouse {spark}")
    assert source.sub("(read from …)", explained) == source.sub("(read from …)", explained_duckdb)
    assert partner in explained and format(score, "f") in explained
    assert at_risk[1] == at_risk[0] and LAST in at_risk[0]

    pages = {}
    for name, extra in (("duck", ("--warehouse", str(duck), "--source", "warehouse")),
                        ("spark", ("--engine", "spark", "--warehouse", str(spark)))):
        out = work / f"report-{name}"
        _pci("report", "--month", RESTATED, "--out", str(out), *extra)
        page = (out / f"pci-report-{RESTATED}.html").read_text(encoding="utf-8")
        # the footer names the source read and when the page was generated
        pages[name] = [line for line in page.splitlines() if not line.startswith("<footer>")]
    assert pages["spark"] == pages["duck"]
    assert len(pages["duck"]) > 100
