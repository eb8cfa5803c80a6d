"""The analysts' read-only copy, the documented queries (docs/querying.md) and the exposures."""
from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pci.analyst_copy import MartUnavailable, copy_path, open_mart, publish_read_only_copy
from pci.contract import add_months
from pci.explain import load_levels, load_metrics
from tests.support import mart_fixture as fx

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "querying.md"


def doc_queries() -> dict[str, str]:
    """name -> SQL of every ```sql block of docs/querying.md (first line: ``-- name: x``)."""
    out = {}
    for block in re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        m = re.match(r"--\s*name:\s*(\w+)\s*\n", block)
        assert m, f"a SQL block of {DOC.name} has no '-- name:' line:\n{block}"
        assert m.group(1) not in out, f"two blocks named {m.group(1)}"
        out[m.group(1)] = block
    return out


def published(tmp: Path) -> Path:
    """A fixture warehouse with its analysts' copy published; returns the warehouse path."""
    warehouse = fx.build_mart(tmp / "pci.duckdb")
    con = duckdb.connect(str(warehouse))
    try:
        publish_read_only_copy(con, warehouse)
    finally:
        con.close()
    return warehouse


@pytest.fixture(scope="module")
def copy_con(tmp_path_factory):
    warehouse = published(tmp_path_factory.mktemp("queries"))
    con = duckdb.connect(str(copy_path(warehouse)), read_only=True)
    yield con
    con.close()


def run(con, name: str) -> list[tuple]:
    return con.execute(doc_queries()[name]).fetchall()


# --------------------------------------------------------------------------- the documented queries

def test_the_doc_has_at_least_five_questions():
    assert len(doc_queries()) >= 5
    assert {"top_partners", "close_to_next_level", "metric_attainment", "level_changes",
            "partner_contributions"} <= set(doc_queries())


def test_every_documented_query_is_checked():
    checked = {n[len("test_query_"):] for n in globals() if n.startswith("test_query_")}
    assert set(doc_queries()) == checked


def test_query_top_partners(copy_con):
    rows = fx.expected()
    top = sorted(rows, key=lambda p: (-rows[p]["pci_score"], p))[:5]
    assert run(copy_con, "top_partners") == [
        (p, fx.PARTNERS[p][0], rows[p]["pci_score"], rows[p]["competency_level"]) for p in top]


def test_query_close_to_next_level(copy_con):
    mins = {lv.name: lv.min_score for lv in load_levels()}
    want = []
    for p, r in fx.expected().items():
        above = [(m, name) for name, m in mins.items() if m > r["pci_score"]]
        if above:
            m, name = min(above)
            if m - r["pci_score"] <= 5:
                want.append((p, r["pci_score"], r["competency_level"], name, m - r["pci_score"]))
    want.sort(key=lambda t: (t[4], t[0]))
    assert want, "the fixture has partners close to a level"
    assert {t[3] for t in want} == {"silver", "gold"}
    assert run(copy_con, "close_to_next_level") == want


def test_query_metric_attainment(copy_con):
    rows = list(fx.expected().values())
    got = run(copy_con, "metric_attainment")
    assert [g[1] for g in got] == [m.key for m in load_metrics()]
    for g, m in zip(got, load_metrics()):
        pts = [r[m.points_column] for r in rows]
        full = sum(x >= m.max_points for x in pts)
        assert g[0] == m.number and g[2] == m.max_points and g[3] == full
        assert float(g[4]) == pytest.approx(round(100 * full / len(rows), 1))
        assert float(g[5]) == pytest.approx(float((sum(pts) / len(pts)).quantize(Decimal("0.01"))))


def test_query_level_changes(copy_con):
    by = {(r["score_month"], r["partner_id"]): r for r in fx.EXPECTED}
    want = []
    for (month, p), r in sorted(by.items()):
        prev_month = add_months(month, -1)
        prev = by.get((prev_month, p))
        if prev and prev["competency_level"] != r["competency_level"]:
            want.append((month, p, prev["competency_level"], r["competency_level"],
                         r["pci_score"] - prev["pci_score"]))
    assert len(want) >= 3
    assert run(copy_con, "level_changes") == want


def test_query_partner_contributions(copy_con):
    got = run(copy_con, "partner_contributions")
    mine = [c for c in fx.CONTRIBUTIONS if c[1] == "P1002" and c[0] == fx.LATEST]
    assert collections.Counter(got) == collections.Counter(tuple(c[i] for i in (2, 3, 4, 5, 7, 8, 9))
                                                          for c in mine)
    row = fx.expected()["P1002"]
    sums = collections.defaultdict(Decimal)
    for metric, *_, detail, amount in got:
        sums[(metric, detail if metric == "mau_growth" else None)] += amount
    assert sums[("net_new_revenue", None)] == row["net_new_revenue_usd"]
    assert sums[("functional_consultants", None)] == row["functional_consultants"]
    assert sums[("net_customer_adds", None)] == row["net_customer_adds"]
    assert sums[("mau_growth", "current")] == row["mau_current"]
    assert sums[("mau_growth", "baseline")] == row["mau_baseline"]
    metrics = [g[0] for g in got]
    assert metrics == sorted(metrics)


def test_query_revenue_by_tenant(copy_con):
    totals, counts = collections.defaultdict(Decimal), collections.Counter()
    for c in fx.CONTRIBUTIONS:
        if c[1] == "P1009" and c[0] == fx.LATEST and c[2] == "net_new_revenue":
            totals[c[5]] += c[9]
            counts[c[5]] += 1
    top = sorted(totals, key=lambda t: (-totals[t], t))[:3]
    assert run(copy_con, "revenue_by_tenant") == [(t, totals[t], counts[t]) for t in top]


def test_query_score_history(copy_con):
    want = [(r["score_month"], r["pci_score"], r["competency_level"], r["window_complete"])
            for r in fx.EXPECTED if r["partner_id"] == "P1008"]
    assert run(copy_con, "score_history") == want


def test_query_copy_freshness(copy_con):
    (copied_at, first, last, n), = run(copy_con, "copy_freshness")
    assert copied_at is not None
    assert (first, last, n) == (fx.MONTHS[0], fx.MONTHS[-1], len(fx.MONTHS))


# --------------------------------------------------------------------------- the projection (build schema)

#: the sample projection of the month after fx.LATEST: every partner's revenue and customer
#: adds leave the window
PROJECTED = add_months(fx.LATEST, 1)


def projection_warehouse(path: Path) -> Path:
    """The fixture warehouse plus a build schema as a build leaves it: the scores, seed
    pci_levels and a projection of the month after fx.LATEST in which every partner has
    lost its revenue and customer-add points (the other columns as the score)."""
    warehouse = fx.build_mart(path)
    levels = sorted(load_levels(), key=lambda lv: lv.min_score)
    left = "pci_score - points_net_new_revenue - points_net_customer_adds"
    case = " ".join(f"WHEN {left} >= {lv.min_score} THEN '{lv.name}'"
                    for lv in reversed(levels))
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA pci_build")
        con.execute("CREATE TABLE pci_build.pci_monthly_scores AS SELECT * FROM main.pci_monthly_scores")
        con.execute("CREATE TABLE pci_build.pci_levels (level VARCHAR, min_score DECIMAL(5,2))")
        con.executemany("INSERT INTO pci_build.pci_levels VALUES (?, ?)",
                        [[lv.name, lv.min_score] for lv in levels])
        con.execute(f"""CREATE TABLE pci_build.pci_next_month_projection AS
            SELECT score_month, CAST(score_month + INTERVAL 1 MONTH AS DATE) AS projected_month,
                   partner_id, 0::DECIMAL(18,2) AS net_new_revenue_usd,
                   0 AS net_customer_adds, functional_consultants, developers, new_deployments,
                   mau_baseline, mau_current, mau_growth, 0::DECIMAL(5,2) AS points_net_new_revenue,
                   0::DECIMAL(5,2) AS points_net_customer_adds, points_functional_consultants,
                   points_developers,
                   points_new_deployments, points_mau_growth,
                   CAST({left} AS DECIMAL(5,2)) AS pci_score,
                   CASE {case} END AS competency_level, window_complete
            FROM main.pci_monthly_scores WHERE score_month = ?""", [fx.LATEST])
    return warehouse


@pytest.fixture(scope="module")
def build_con(tmp_path_factory):
    warehouse = projection_warehouse(tmp_path_factory.mktemp("projection") / "pci.duckdb")
    con = duckdb.connect(str(warehouse), read_only=True)
    yield con
    con.close()


def test_query_projected_level_drops(build_con):
    mins = {lv.name: lv.min_score for lv in load_levels()}
    want = []
    for p, r in fx.expected().items():
        projected = r["pci_score"] - r["points_net_new_revenue"] - r["points_net_customer_adds"]
        if mins[fx.level(projected)] < mins[r["competency_level"]]:
            want.append((p, r["pci_score"], r["competency_level"], PROJECTED, projected, fx.level(projected),
                         projected - r["pci_score"], -r["points_net_new_revenue"],
                         -r["points_net_customer_adds"], 0, 0, 0, 0))
    want.sort(key=lambda t: (t[6], t[0]))
    assert len(want) >= 3, "the fixture has partners whose level rests on revenue and customer adds"
    assert run(build_con, "projected_level_drops") == want


def test_documented_line_reads_the_projection(tmp_path):
    projection_warehouse(tmp_path / "data" / "warehouse" / "pci.duckdb")
    line = next(ln for ln in DOC.read_text(encoding="utf-8").splitlines()
                if ln.startswith(".venv/bin/python -c") and "pci_next_month_projection" in ln)
    code = re.search(r'-c "(.*)"$', line).group(1)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "2021-10-01" in done.stdout and "P1001" in done.stdout


# --------------------------------------------------------------------------- the copy

def test_copy_has_the_published_tables_with_their_types(tmp_path):
    warehouse = published(tmp_path)
    with duckdb.connect(str(warehouse), read_only=True) as w, \
            duckdb.connect(str(copy_path(warehouse)), read_only=True) as c:
        for table in ("pci_monthly_scores", "pci_metric_contributions"):
            cols = f"SELECT column_name, data_type FROM information_schema.columns " \
                   f"WHERE table_schema = 'main' AND table_name = '{table}' ORDER BY ordinal_position"
            assert c.execute(cols).fetchall() == w.execute(cols).fetchall()
            rows = f"SELECT * FROM main.{table} ORDER BY ALL"
            assert c.execute(rows).fetchall() == w.execute(rows).fetchall()
        assert c.execute("SELECT metric, threshold, max_points FROM pci_metrics ORDER BY metric_number"
                         ).fetchall() == [(m.key, m.threshold, m.max_points) for m in load_metrics()]
    assert copy_path(warehouse) == tmp_path / "analyst" / "pci.duckdb"
    assert [p.name for p in (tmp_path / "analyst").iterdir()] == ["pci.duckdb"], "no temp files left"


def test_documented_line_reads_the_copy_while_a_run_writes_the_warehouse(tmp_path):
    warehouse = fx.build_mart(tmp_path / "data" / "warehouse" / "pci.duckdb")
    line = next(ln for ln in DOC.read_text(encoding="utf-8").splitlines()
                if "read_only=True" in ln and ln.startswith(".venv/bin/python -c"))
    code = re.search(r'-c "(.*)"$', line).group(1)
    assert "data/warehouse/analyst/pci.duckdb" in code
    with fx.HeldWarehouse(warehouse, copy=True):
        # the premise: the warehouse itself cannot be opened while the run holds it
        with pytest.raises(duckdb.Error, match="(?i)lock"):
            duckdb.connect(str(warehouse), read_only=True)
        # the documented line, from another process, against this copy
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "P1001" in done.stdout and "2021-09-01" in done.stdout and "gold" in done.stdout
        # the run's uncommitted delete of 2021-09 does not reach the copy
        with open_mart(warehouse) as mart:
            assert mart.kind == "copy"
            n = mart.con.execute("SELECT count(*) FROM pci_monthly_scores "
                                 "WHERE score_month = DATE '2021-09-01'").fetchall()[0][0]
            assert n == len(fx.expected())


def test_a_new_copy_is_swapped_in_under_open_readers(tmp_path):
    warehouse = published(tmp_path)
    reader = duckdb.connect(str(copy_path(warehouse)), read_only=True)
    try:
        before = reader.execute("SELECT pci_score FROM pci_monthly_scores "
                                "WHERE partner_id = 'P1007' AND score_month = DATE '2021-09-01'"
                                ).fetchall()
        writer = duckdb.connect(str(warehouse))
        try:
            writer.execute("UPDATE pci_monthly_scores SET pci_score = 42 "
                           "WHERE partner_id = 'P1007' AND score_month = DATE '2021-09-01'")
            publish_read_only_copy(writer, warehouse)
        finally:
            writer.close()
        # the open reader keeps its consistent version; a new connection sees the new one
        assert reader.execute("SELECT pci_score FROM pci_monthly_scores WHERE partner_id = 'P1007' "
                              "AND score_month = DATE '2021-09-01'").fetchall() == before
        # (in another process: DuckDB shares one open database per file within a process)
        query = ("import duckdb, sys; print(duckdb.connect(sys.argv[1], read_only=True).execute("
                 "\"SELECT pci_score FROM pci_monthly_scores WHERE partner_id = 'P1007' "
                 "AND score_month = DATE '2021-09-01'\").fetchall())")
        done = subprocess.run([sys.executable, "-c", query, str(copy_path(warehouse))],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[(Decimal('42.00'),)]"
    finally:
        reader.close()
    assert sorted(p.name for p in (tmp_path / "analyst").iterdir()) == ["pci.duckdb"]


def test_publication_hook_refreshes_the_copy(tmp_path):
    from pci.analyst_copy import refresh_copy

    warehouse = fx.build_mart(tmp_path / "pci.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        refreshed = refresh_copy(con, warehouse)
    assert refreshed.ok and refreshed.error is None
    assert copy_path(warehouse).is_file()


def test_no_copy_of_a_warehouse_without_scores(tmp_path):
    warehouse = tmp_path / "empty.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        with pytest.raises(MartUnavailable, match="nothing is published"):
            publish_read_only_copy(con, warehouse)
    assert not copy_path(warehouse).exists()
    assert list((tmp_path / "analyst").iterdir()) == []


# --------------------------------------------------------------------------- dbt exposures

@pytest.mark.dbt
def test_dbt_docs_generate_knows_the_exposures(tmp_path, monkeypatch):
    from dbt.cli.main import dbtRunner

    for model in ("pci_monthly_scores", "pci_metric_contributions"):
        if not (ROOT / "models" / "marts" / f"{model}.sql").is_file():
            pytest.skip(f"models/marts/{model}.sql does not exist yet: the exposures depend on it")
    monkeypatch.setenv("PCI_WAREHOUSE", str(tmp_path / "docs.duckdb"))
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    target = tmp_path / "target"
    res = dbtRunner().invoke(["docs", "generate", "--project-dir", str(ROOT), "--profiles-dir",
                              str(ROOT), "--target-path", str(target), "--log-path",
                              str(tmp_path / "logs"), "--quiet"])
    assert res.success, res.exception
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    want = {"model.pci_pipeline.pci_monthly_scores", "model.pci_pipeline.pci_metric_contributions"}
    for name in ("pci_explain", "pci_report"):
        exposure = manifest["exposures"][f"exposure.pci_pipeline.{name}"]
        assert set(exposure["depends_on"]["nodes"]) == want
    assert (target / "catalog.json").is_file() and (target / "index.html").is_file()
