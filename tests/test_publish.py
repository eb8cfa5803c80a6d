"""Write-audit-publish (pci.publish.publication, pci.publish.audit) on a hand-made pci_build.

No dbt here: the built month is written straight into pci_build with the
contract's columns, so each rule of publication is checked in isolation.
"""
from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from pci.core.catalog import CONTRIBUTION_COLUMNS, SCORE_COLUMNS
from pci.core.contract import add_months, ensure_raw_schema
from pci.publish.publication import PublishError, fingerprint, publish_month

ROOT = Path(__file__).resolve().parents[1]
AUG = dt.date(2021, 8, 1)


def _score_row(month, partner, revenue_points="1.00", level="none"):
    pts = [revenue_points, "0.00", "0.00", "0.00", "0.00", "0.00"]
    total = sum(float(p) for p in pts)
    return [month, partner, 100, 1, 0, 0, 0, 0, 0, None, *pts, f"{total:.2f}", level, False]


def make_build(con, rows, contributions=()):
    con.execute("CREATE SCHEMA IF NOT EXISTS pci_build")
    cols = ", ".join(f"{n} {t}" for n, t in SCORE_COLUMNS)
    con.execute(f"CREATE OR REPLACE TABLE pci_build.pci_monthly_scores ({cols})")
    ccols = ", ".join(f"{n} {t}" for n, t in CONTRIBUTION_COLUMNS)
    con.execute(f"CREATE OR REPLACE TABLE pci_build.pci_metric_contributions ({ccols})")
    for r in rows:
        con.execute(f"INSERT INTO pci_build.pci_monthly_scores VALUES ({', '.join('?' * len(r))})", r)
    for c in contributions:
        con.execute(f"INSERT INTO pci_build.pci_metric_contributions VALUES ({', '.join('?' * len(c))})", c)


def set_loads(con, loads: dict):
    """loads: month -> load_id (the current load of that month)."""
    ensure_raw_schema(con)
    con.execute("UPDATE raw.loads SET is_current = false")
    for m, lid in loads.items():
        con.execute("INSERT OR REPLACE INTO raw.loads VALUES (?, ?, 'sha', now(), true, '{}')", [lid, m])


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    yield c
    c.close()


def published(con, month):
    return con.execute("SELECT * FROM main.pci_monthly_scores WHERE score_month = ? ORDER BY partner_id",
                       [month]).fetchall()


def test_first_publication_writes_mart_publication_and_history(con):
    set_loads(con, {AUG: "L-aug"})
    make_build(con, [_score_row(AUG, "P1"), _score_row(AUG, "P2", "2.50")],
               [[AUG, "P1", "net_new_revenue", "subscription", "S1", "T1", "S1", AUG, None, 100]])
    res = publish_month(con, AUG, run_id="r1", audited=fingerprint(con, AUG))
    assert res.status == "published" and res.rows == 2 and res.input_load_ids == ["L-aug"]
    rows = published(con, AUG)
    assert [r[1] for r in rows] == ["P1", "P2"]
    # exactly the contract's columns and types
    described = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE "
                            "table_schema='main' AND table_name='pci_monthly_scores' "
                            "ORDER BY ordinal_position").fetchall()
    assert [tuple(d) for d in described] == list(SCORE_COLUMNS)
    pubs = con.execute("SELECT publication_id, run_id, input_load_ids, row_count FROM "
                       "main.pci_score_publications").fetchall()
    assert len(pubs) == 1 and pubs[0][1] == "r1" and json.loads(pubs[0][2]) == ["L-aug"] and pubs[0][3] == 2
    hist = con.execute("SELECT partner_id FROM main.pci_score_publication_rows WHERE publication_id = ? "
                       "ORDER BY 1", [pubs[0][0]]).fetchall()
    assert [h[0] for h in hist] == ["P1", "P2"]
    assert con.execute("SELECT count(*) FROM main.pci_metric_contributions").fetchall()[0][0] == 1


def test_rerun_with_unchanged_inputs_is_identical_and_records_nothing(con):
    set_loads(con, {AUG: "L-aug"})
    make_build(con, [_score_row(AUG, "P1")])
    first = publish_month(con, AUG, run_id="r1", audited=fingerprint(con, AUG))
    before = published(con, AUG)
    again = publish_month(con, AUG, run_id="r2", audited=fingerprint(con, AUG))
    assert again.status == "unchanged" and again.publication_id == first.publication_id
    assert published(con, AUG) == before
    assert con.execute("SELECT count(*) FROM main.pci_score_publications").fetchall()[0][0] == 1


def test_restatement_swaps_rows_keeps_history_and_names_changed_partners(con):
    set_loads(con, {AUG: "L-aug-1"})
    make_build(con, [_score_row(AUG, "P1"), _score_row(AUG, "P2")])
    first = publish_month(con, AUG, run_id="r1", audited=fingerprint(con, AUG))
    set_loads(con, {AUG: "L-aug-2"})
    make_build(con, [_score_row(AUG, "P1"), _score_row(AUG, "P2", "7.00")])
    second = publish_month(con, AUG, run_id="r2", audited=fingerprint(con, AUG))
    assert second.status == "restated" and second.changed_partners == ["P2"]
    assert [str(r[10]) for r in published(con, AUG)] == ["1.00", "7.00"]
    pubs = con.execute("SELECT publication_id, supersedes, changed_partners FROM main.pci_score_publications "
                       "ORDER BY published_at").fetchall()
    assert len(pubs) == 2 and pubs[1][1] == first.publication_id and pubs[1][2] == 1
    old = con.execute("SELECT points_net_new_revenue FROM main.pci_score_publication_rows "
                      "WHERE publication_id = ? AND partner_id = 'P2'", [first.publication_id]).fetchall()
    assert str(old[0][0]) == "1.00"  # the first publication stays readable as published


def test_rows_changed_after_audit_are_not_published(con):
    set_loads(con, {AUG: "L-aug"})
    make_build(con, [_score_row(AUG, "P1")])
    publish_month(con, AUG, run_id="r1", audited=fingerprint(con, AUG))
    audited = fingerprint(con, AUG)
    con.execute("UPDATE pci_build.pci_monthly_scores SET net_customer_adds = 99")
    with pytest.raises(PublishError, match="changed after the audit"):
        publish_month(con, AUG, run_id="r2", audited=audited)
    assert published(con, AUG)[0][3] == 1  # the published month is untouched


def test_restating_a_month_names_later_published_months_of_its_window(con):
    months = [add_months(AUG, i) for i in range(15)]
    loads = {m: f"L-{m}" for m in months}
    set_loads(con, loads)
    for m in months:  # publish 2021-08 … 2022-10
        make_build(con, [_score_row(m, "P1")])
        publish_month(con, m, run_id=f"r-{m}", audited=fingerprint(con, m))
    loads[add_months(AUG, 1)] = "L-sep-corrected"  # 2021-09 landed again
    set_loads(con, loads)
    m = add_months(AUG, 1)
    make_build(con, [_score_row(m, "P1", "3.00")])
    res = publish_month(con, m, run_id="r-restate", audited=fingerprint(con, m))
    assert res.status == "restated"
    # windows containing 2021-09 belong to 2021-10 … 2022-09; 2021-08 and 2022-10 are not affected
    assert res.stale_later_months == [add_months(m, i) for i in range(1, 13)]
    assert "2021-10" in res.summary() and "2022-09" in res.summary()


def test_publish_without_build_is_refused(con):
    with pytest.raises(PublishError, match="build the month first"):
        publish_month(con, AUG, run_id="r1", audited={})


def test_kill_before_commit_leaves_published_month_intact(tmp_path):
    """A process killed (SIGKILL) inside the publication transaction, right before
    COMMIT, leaves the earlier publication whole; the next publication completes."""
    wh = tmp_path / "w.duckdb"
    con = duckdb.connect(str(wh))
    set_loads(con, {AUG: "L1"})
    make_build(con, [_score_row(AUG, "P1"), _score_row(AUG, "P2")])
    publish_month(con, AUG, run_id="r1", audited=fingerprint(con, AUG))
    before = published(con, AUG)
    set_loads(con, {AUG: "L2"})
    make_build(con, [_score_row(AUG, "P1", "9.00")])  # P2 gone, P1 changed
    con.close()
    script = textwrap.dedent(f"""
        import os, signal, sys, datetime as dt
        import duckdb
        from pci.publish import publication as publish
        class Killing:
            def __init__(self, con): self.con = con
            def execute(self, sql, *a):
                if sql.strip().upper() == "COMMIT":
                    os.kill(os.getpid(), signal.SIGKILL)
                return self.con.execute(sql, *a)
            def __getattr__(self, n): return getattr(self.con, n)
        con = Killing(duckdb.connect({str(wh)!r}))
        m = dt.date(2021, 8, 1)
        publish.publish_month(con, m, run_id="killed", audited=publish.fingerprint(con, m))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    con = duckdb.connect(str(wh))
    assert published(con, AUG) == before
    assert con.execute("SELECT count(*) FROM main.pci_score_publications").fetchall()[0][0] == 1
    res = publish_month(con, AUG, run_id="r3", audited=fingerprint(con, AUG))
    assert res.status == "restated" and [r[1] for r in published(con, AUG)] == ["P1"]
    con.close()


# ------------------------------------------------------------------ the audit (GX suite)
#
# The audit checks what dbt's build does not: that the month's rows are exactly the
# partners of the month's export. The columns and types of pci_build.pci_monthly_scores
# (once checked by the audit) are the enforced dbt model contract's
# (models/marts/pci_monthly_scores.yml; tests/test_scoring.py::
# test_mart_has_the_contract_columns_and_types), and nulls, ranges, levels, point maxima,
# sums and uniqueness are dbt's data tests (models/marts/pci_monthly_scores.yml,
# tests/dbt/*.sql; test_build_ran_unit_tests_and_data_tests_and_all_passed): every dbt
# build runs them and a failed one never reaches the audit, so they are not repeated here.

def land_partners(con, month, partners):
    """The month's export lists ``partners`` (the audit's reference)."""
    ensure_raw_schema(con)
    for p in partners:
        con.execute("INSERT INTO raw.partners VALUES (?, 'n', 'SE', ?, 'L1')", [p, month])


def test_audit_passes_a_consistent_month_and_fingerprints_it(con, tmp_path):
    from pci.publish.audit import audit_month

    land_partners(con, AUG, ["P1", "P2"])
    make_build(con, [_score_row(AUG, "P1"), _score_row(AUG, "P2", "2.50")])
    audit = audit_month(con, AUG)
    assert audit.ok, audit.report()
    assert audit.rows == 2 and audit.fingerprint == fingerprint(con, AUG)
    # Data Docs are written for failures only
    assert audit.data_docs is None and audit.as_dict()["data_docs"] is None
    assert not (tmp_path / "data_docs").exists()


def test_audit_reports_each_broken_rule_with_column_count_and_examples(con, tmp_path):
    from pci.publish.audit import audit_month

    land_partners(con, AUG, ["P1", "P2", "P8", "P9"])
    over_max = _score_row(AUG, "P2")
    over_max[15] = "40.00"  # points_mau_growth above its maximum: dbt's test, not the audit's
    over_max[16] = "41.00"
    make_build(con, [_score_row(AUG, "P1"), over_max, _score_row(AUG, "P6"),
                     _score_row(AUG, "P7")])
    audit = audit_month(con, AUG)
    assert not audit.ok and audit.fingerprint is None and audit.rows == 4
    by_rule = {f.check: f for f in audit.failures}
    assert set(by_rule) == {"every partner of the month's export has a row "
                            "(pci-rules.md, 'Output: who gets a row')",
                            "every row is of a partner of the month's export"}
    missing, extra = by_rule.values()
    assert (missing.column, missing.count, missing.examples) == ("partner_id", 2, ["P8", "P9"])
    assert (extra.column, extra.count, extra.examples) == ("partner_id", 2, ["P6", "P7"])
    text = audit.report()
    assert "pci_build.pci_monthly_scores [partner_id]: every row is of a partner" in text
    # the failed validation's Data Docs, beside the warehouse, linked from the report
    page = audit.data_docs.pages["pci_monthly_scores"]
    assert page.startswith((tmp_path / "data_docs").as_uri()) and f"data docs: {page}" in text
    assert Path(page.removeprefix("file://")).is_file()
    assert audit.as_dict()["data_docs"]["pages"] == {"pci_monthly_scores": page}
    assert (tmp_path / "data_docs" / "index.html").is_file()


def test_audit_requires_one_row_per_partner_of_the_export(con):
    from pci.publish.audit import audit_month

    land_partners(con, AUG, ["P1", "P2", "P9"])
    land_partners(con, add_months(AUG, 1), ["P3"])  # another month's export is not this one's
    make_build(con, [_score_row(AUG, "P1"), _score_row(AUG, "P2")])
    audit = audit_month(con, AUG)
    assert [f.examples for f in audit.failures if f.column == "partner_id"] == [["P9"]]


def test_audit_passes_a_month_whose_export_has_no_partner(con):
    from pci.publish.audit import audit_month

    land_partners(con, AUG, [])
    make_build(con, [])
    audit = audit_month(con, AUG)
    assert audit.ok and audit.rows == 0, audit.report()
    assert audit.fingerprint == fingerprint(con, AUG) and audit.fingerprint["rows"] == 0


def test_audit_needs_the_build_and_the_export(con):
    from pci.publish.audit import audit_month

    audit = audit_month(con, AUG)
    assert not audit.ok and "build the month first" in audit.report()
    make_build(con, [_score_row(AUG, "P1")])
    audit = audit_month(con, AUG)
    assert not audit.ok and "raw.partners missing" in audit.report()


# ------------------------------------------------------------ the analysts' copy, refreshed by month


def _copy_tables(path):
    from pci.core.catalog import CONTRIBUTIONS, SCORES

    with duckdb.connect(str(path), read_only=True) as c:
        return {t: c.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                for t in (SCORES, CONTRIBUTIONS, "pci_score_publications", "analyst_copy_months")}


def test_analyst_copy_rewrites_only_months_whose_publication_changed(tmp_path, monkeypatch):
    from pci.publish import analyst_copy

    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    months = [AUG, add_months(AUG, 1), add_months(AUG, 2)]
    set_loads(con, {m: f"L-{m}" for m in months})
    plans = []
    real = analyst_copy._months_to_copy
    monkeypatch.setattr(analyst_copy, "_months_to_copy",
                        lambda *a: plans.append(real(*a)) or plans[-1])

    def publish_and_copy(month, points):
        make_build(con, [_score_row(month, "P1", points), _score_row(month, "P2")],
                   [[month, "P1", "net_new_revenue", "subscription", "S1", "T1", "S1", month, None, 100]])
        publish_month(con, month, run_id=f"r-{month}", audited=fingerprint(con, month))
        return analyst_copy.publish_read_only_copy(con, warehouse)

    copy = publish_and_copy(months[0], "1.00")
    assert plans == []  # no copy yet: written whole
    publish_and_copy(months[1], "1.00")
    publish_and_copy(months[2], "1.00")
    assert plans == [[months[1]], [months[2]]]
    publish_and_copy(months[0], "3.00")  # a restatement of the first month
    assert plans[-1] == [months[0]]

    # a publication whose copy refresh never ran (a run killed after the commit)
    make_build(con, [_score_row(months[1], "P1", "4.00")])
    publish_month(con, months[1], run_id="killed", audited=fingerprint(con, months[1]))
    publish_and_copy(months[2], "5.00")
    assert plans[-1] == [months[1], months[2]]

    incremental = _copy_tables(copy)
    copy.unlink()  # the same state written whole must be identical
    analyst_copy.publish_read_only_copy(con, warehouse)
    assert _copy_tables(copy) == incremental
    assert [r[1] for r in incremental["pci_monthly_scores"] if r[0] == months[0]] == ["P1", "P2"]
    assert {str(r[10]) for r in incremental["pci_monthly_scores"] if r[1] == "P1"} == {"3.00", "4.00", "5.00"}
    assert not [p for p in copy.parent.iterdir() if p.name != copy.name]
    con.close()
