"""The dbt mart against the row-by-row reference, on a small random world.

One ``dbt build`` scores all 15 months of the world; every column of every
partner and month must equal the reference computed from the raw tables by
``tests/reference_scoring.py``.
"""
from __future__ import annotations

import copy
import datetime as dt
import math

import duckdb
import pytest
from reference_scoring import COLUMNS, RawWorld, build_world

from pci.core.contract import add_months
from pci.score import scoring

pytestmark = pytest.mark.dbt

FIRST = dt.date(2021, 1, 1)
LAST = dt.date(2022, 3, 1)


@pytest.fixture(scope="module", params=[7, 1234])
def scored_world(request, tmp_path_factory):
    warehouse = tmp_path_factory.mktemp(f"world{request.param}") / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    try:
        build_world(con, first=FIRST, n_months=15, seed=request.param)
    finally:
        con.close()
    result = scoring.build(warehouse, FIRST, LAST)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        world = RawWorld(con)
        cols = ", ".join(COLUMNS)
        rows = con.execute(f"SELECT {cols} FROM pci_build.pci_monthly_scores "
                           "ORDER BY score_month, partner_id").fetchall()
        details = dict(con.execute(
            "SELECT coalesce(detail, metric), count(*) FROM pci_build.pci_metric_contributions "
            "GROUP BY 1").fetchall())
    finally:
        con.close()
    world.contribution_counts = details
    return result, world, [dict(zip(COLUMNS, r)) for r in rows]


def test_every_landed_partner_month_has_exactly_one_row(scored_world):
    result, world, mart = scored_world
    expected = sorted((m, p["partner_id"]) for m in world.landed if FIRST <= m <= LAST
                      for p in world.rows["partners"][m])
    assert sorted((r["score_month"], r["partner_id"]) for r in mart) == expected
    assert sum(result.rows_per_month.values()) == len(expected)


def test_every_column_matches_the_reference(scored_world):
    _, world, mart = scored_world
    mismatches = []
    for row in mart:
        ref = world.score(row["partner_id"], row["score_month"])
        for col in COLUMNS:
            got, want = row[col], ref[col]
            if col == "mau_growth" and got is not None and want is not None:
                same = math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)
            else:
                same = got == want
            if not same:
                mismatches.append((row["score_month"], row["partner_id"], col, got, want))
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. {mismatches[:10]}"


def next_month_copy(world: RawWorld, month: dt.date) -> RawWorld:
    """The reference world in which the export of M+1 is the export of M with no billing
    lines (the definition of the next month's projection, docs/rules.md); the months
    after M are not there."""
    nxt = add_months(month, 1)
    hypothetical = copy.copy(world)

    def upto(per_month: dict) -> dict:
        return {m: v for m, v in per_month.items() if m <= month}

    hypothetical.rows = {name: {**upto(per), nxt: [] if name == "billing_lines" else per.get(month, [])}
                         for name, per in world.rows.items()}
    for attr in ("subs", "seats", "mau", "tenants", "assocs", "subs_by_tenant"):
        per = getattr(world, attr)
        setattr(hypothetical, attr, {**upto(per), nxt: per.get(month, {})})
    hypothetical.landed = {m for m in world.landed if m <= month} | {nxt}
    hypothetical._credit_cache, hypothetical._seat_cache = {}, {}
    return hypothetical


def test_projection_is_the_reference_score_of_a_next_month_copy(scored_world):
    """pci_next_month_projection for every score month M of the build equals the
    reference score of M+1 in the world whose export of M+1 is M's without billing
    lines, in every column (projected_month for score_month)."""
    result, world, _ = scored_world
    con = duckdb.connect(str(result.warehouse), read_only=True)
    try:
        cols = ", ".join(c for c in COLUMNS if c != "score_month")
        rows = con.execute(f"SELECT score_month, projected_month, {cols} "
                           "FROM pci_build.pci_next_month_projection ORDER BY score_month, partner_id"
                           ).fetchall()
    finally:
        con.close()
    names = ["made_at", "score_month", *(c for c in COLUMNS if c != "score_month")]
    projections = [dict(zip(names, r)) for r in rows]
    assert sorted((r["made_at"], r["partner_id"]) for r in projections) == sorted(
        (m, p["partner_id"]) for m in world.landed if FIRST <= m <= LAST for p in world.rows["partners"][m])
    mismatches, moved, hypothetical = [], 0, {}
    for row in projections:
        month = row["made_at"]
        assert row["score_month"] == add_months(month, 1)
        if month not in hypothetical:
            hypothetical[month] = next_month_copy(world, month)
        ref = hypothetical[month].score(row["partner_id"], row["score_month"])
        for col in COLUMNS:
            got, want = row[col], ref[col]
            if col == "mau_growth" and got is not None and want is not None:
                same = math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)
            else:
                same = got == want
            if not same:
                mismatches.append((month, row["partner_id"], col, got, want))
        moved += row["pci_score"] != world.score(row["partner_id"], month)["pci_score"]
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. {mismatches[:10]}"
    assert moved, "no projection differs from its score: the world tests nothing"


def test_the_world_exercises_every_metric(scored_world):
    """Guards the comparison against a world in which every metric is zero."""
    _, world, mart = scored_world
    assert any(r["net_new_revenue_usd"] > 0 for r in mart)
    assert any(r["net_customer_adds"] > 0 for r in mart)
    assert any(r["functional_consultants"] > 0 for r in mart)
    assert any(r["developers"] > 0 for r in mart)
    assert any(r["new_deployments"] > 0 for r in mart)
    assert any(r["mau_growth"] is not None for r in mart)
    assert any(r["mau_baseline"] > 0 and r["mau_growth"] is None for r in mart)
    assert any(r["points_mau_growth"] > 0 for r in mart)
    assert any(r["window_complete"] for r in mart) and not all(r["window_complete"] for r in mart)
    counts = world.contribution_counts
    # adds, debited losses, revenue lines and MAU at both ends all occur
    assert counts.get("add", 0) > 0 and counts.get("loss", 0) > 0
    assert counts.get("net_new_revenue", 0) > 0
    assert counts.get("current", 0) > 0 and counts.get("baseline", 0) > 0


@pytest.mark.slow
def test_generated_and_landed_world_matches_the_reference(tmp_path):
    """End to end on the project's own generator and landing step."""
    from pci.core.contract import month_range
    from pci.land import landing
    from tools import generate

    first, last = dt.date(2021, 1, 1), dt.date(2022, 1, 1)
    generate.generate(tmp_path / "landing", first, 13, 12, 150, seed=11, progress=False)
    warehouse = tmp_path / "warehouse.duckdb"
    for month in month_range(first, last):
        landing.land_month(tmp_path / "landing", warehouse, month)
    scoring.build(warehouse, first, last)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        world = RawWorld(con)
        rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM pci_build.pci_monthly_scores").fetchall()
    finally:
        con.close()
    assert len(rows) == sum(len(world.rows["partners"][m]) for m in month_range(first, last))
    mismatches = []
    for r in rows:
        row = dict(zip(COLUMNS, r))
        ref = world.score(row["partner_id"], row["score_month"])
        for col in COLUMNS:
            got, want = row[col], ref[col]
            same = (math.isclose(got, want, rel_tol=1e-12)
                    if col == "mau_growth" and got is not None and want is not None
                    else got == want)
            if not same:
                mismatches.append((row["score_month"], row["partner_id"], col, got, want))
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. {mismatches[:10]}"
