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

from pci.core import rules
from pci.core.catalog import copy_path
from pci.core.contract import add_months
from pci.publish.analyst_copy import publish_read_only_copy
from pci.read.mart import MartUnavailable, open_mart
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
    mins = {lv.name: lv.min_score for lv in rules.levels()}
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
    assert [g[1] for g in got] == [m.key for m in rules.metrics()]
    for g, m in zip(got, rules.metrics()):
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


def test_query_partner_last_12_months(copy_con):
    # P1009 up to 2021-09: 2020-10 … 2021-06 not published, 2021-07 published without it,
    # then its rows of 2021-08 and 2021-09 (score, level, points of metrics 1…6)
    gap = (None,) * 8
    want = [(add_months(fx.MONTHS[0], -9 + i), "not published", *gap) for i in range(9)]
    want.append((fx.MONTHS[0], "not in that month's export", *gap))
    want += [(fx.MONTHS[1], "scored", Decimal("65.98"), "silver",
              *map(Decimal, ("8.75", "6.00", "18.00", "5.00", "12.00", "16.23"))),
             (fx.MONTHS[2], "scored", Decimal("75.73"), "silver",
              *map(Decimal, ("10.00", "6.00", "18.00", "5.00", "14.00", "22.73")))]
    assert run(copy_con, "partner_last_12_months") == want


def test_query_level_transitions(copy_con):
    # 2021-09 against 2021-08: Litware none → silver, Proseware silver → gold (up);
    # Fabrikam gold → silver (down); Tailspin new; nobody gone (tests/test_history.py
    # runs the query on a mart where partners are gone and 2021-08 is not published)
    aug, name = fx.MONTHS[1], {p: n for p, (n, _) in fx.PARTNERS.items()}
    assert run(copy_con, "level_transitions") == [
        (aug, "up", 2, "P1005", name["P1005"], "none", "silver", Decimal("51.71"), Decimal("75.86")),
        (aug, "up", 2, "P1008", name["P1008"], "silver", "gold", Decimal("65.17"), Decimal("88.31")),
        (aug, "down", 1, "P1002", name["P1002"], "gold", "silver", Decimal("88.50"), Decimal("71.93")),
        (aug, "new", 1, "P1006", name["P1006"], None, "none", None, Decimal("0.00")),
    ]


# --------------------------------------------------------------------------- the projection

PROJECTED = add_months(fx.LATEST, 1)  # fx.projection_warehouse: the projection made at fx.LATEST


@pytest.fixture(scope="module")
def projection_con(tmp_path_factory):
    warehouse = fx.projection_warehouse(tmp_path_factory.mktemp("projection") / "pci.duckdb")
    con = duckdb.connect(str(copy_path(warehouse)), read_only=True)
    yield con
    con.close()


def expected_drops() -> list[tuple]:
    mins = {lv.name: lv.min_score for lv in rules.levels()}
    want = []
    for p, r in fx.expected().items():
        projected = r["pci_score"] - r["points_net_new_revenue"] - r["points_net_customer_adds"]
        if mins[fx.level(projected)] < mins[r["competency_level"]]:
            want.append((p, r["pci_score"], r["competency_level"], PROJECTED, projected, fx.level(projected),
                         projected - r["pci_score"], -r["points_net_new_revenue"],
                         -r["points_net_customer_adds"], 0, 0, 0, 0))
    want.sort(key=lambda t: (t[6], t[0]))
    return want


def test_query_projected_level_drops(projection_con):
    want = expected_drops()
    assert len(want) >= 3, "the fixture has partners whose level rests on revenue and customer adds"
    assert run(projection_con, "projected_level_drops") == want


def test_at_risk_lists_the_same_partners(tmp_path, capsys):
    """`pci at-risk` names exactly the partners of the documented query, with the
    points each loses and the cheapest way to keep the level."""
    from pci.cli import main
    from pci.read.at_risk import at_risk
    from pci.read.mart import open_mart

    warehouse = fx.projection_warehouse(tmp_path / "pci.duckdb")
    want = expected_drops()
    with open_mart(warehouse) as mart:
        risks = at_risk(mart, fx.LATEST)
    assert [(r.partner_id, r.score, r.level, r.projected_score, r.projected_level) for r in risks] == \
        sorted([(w[0], w[1], w[2], w[4], w[5]) for w in want], key=lambda x: (x[3], x[0]))
    for r in risks:
        assert {d.metric.key for d in r.drops} <= {"net_new_revenue", "net_customer_adds"}
        keep = r.keep
        assert keep.reachable and keep.gaps, r.partner_id
        assert r.projected_score + keep.points_gained >= {lv.name: lv.min_score
                                                          for lv in rules.levels()}[r.level]
    assert main(["at-risk", "--warehouse", str(warehouse), "--month", fx.LATEST.strftime("%Y-%m")]) == 0
    out = capsys.readouterr().out
    for w in want:
        assert w[0] in out
    assert "a projection, not a score" in out


def test_documented_line_reads_the_projection(tmp_path):
    fx.projection_warehouse(tmp_path / "data" / "warehouse" / "pci.duckdb")
    line = next(ln for ln in DOC.read_text(encoding="utf-8").splitlines()
                if ln.startswith(".venv/bin/python -c") and "pci_next_month_projection" in ln)
    code = re.search(r'-c "(.*)"$', line).group(1)
    assert "data/warehouse/analyst/pci.duckdb" in code
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
                         ).fetchall() == [(m.key, m.threshold, m.max_points) for m in rules.metrics()]
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
    from pci.publish.copy_refresh import refresh_copy

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
    # run by hand, dbt names the score range with --vars (pci score writes it into a table)
    res = dbtRunner().invoke(["docs", "generate", "--project-dir", str(ROOT), "--profiles-dir",
                              str(ROOT), "--target-path", str(target), "--log-path",
                              str(tmp_path / "logs"), "--quiet", "--vars",
                              '{"pci_first_score_month": "2021-08-01", "pci_last_score_month": "2021-08-01"}'])
    assert res.success, res.exception
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    marts = {"model.pci_pipeline.pci_monthly_scores", "model.pci_pipeline.pci_metric_contributions"}
    projection = {"model.pci_pipeline.pci_next_month_projection"}
    for name, want in (("pci_explain", marts), ("pci_report", marts | projection),
                       ("pci_at_risk", marts | projection)):
        exposure = manifest["exposures"][f"exposure.pci_pipeline.{name}"]
        assert set(exposure["depends_on"]["nodes"]) == want
    assert (target / "catalog.json").is_file() and (target / "index.html").is_file()
