"""Scoring a late month reads only the months it needs, with the same result.

Every derivation is restricted to the months the score range needs (seats from
M-24, credits and events from M-23, revenue from M-11, MAU at M-12 and M, people
and partners at M; see docs/performance.md). Here the world has more history
than that, so the restriction cuts landed months away; the mart of the last
month alone must still equal the row-by-row reference computed from all the
raw data.
"""
from __future__ import annotations

import datetime as dt
import math

import duckdb
import pytest
from reference_scoring import COLUMNS, RawWorld, build_world

from pci.core.contract import add_months
from pci.score import scoring

# about two minutes on 2 cores (the reference walks 28 months)
pytestmark = [pytest.mark.dbt, pytest.mark.slow]

FIRST = dt.date(2021, 1, 1)
N_MONTHS = 28
LAST = add_months(FIRST, N_MONTHS - 1)


def _debited_old_adds(world: RawWorld, month: dt.date) -> int:
    """Losses in M-11 .. M debited to an add made before M-11 (only the older
    months of the seat history can tell them)."""
    found = 0
    for k in range(-11, 1):
        m = add_months(month, k)
        prev = add_months(m, -1)
        for t in world.all_tenants:
            if not (world.tenant_seats(t, prev) > 0 and world.tenant_seats(t, m) == 0):
                continue
            start = prev
            while world.tenant_seats(t, add_months(start, -1)) > 0:
                start = add_months(start, -1)
            if add_months(month, -23) <= start < add_months(month, -11) \
                    and start >= add_months(m, -12) and world.add_partners(t, start):
                found += 1
    return found


@pytest.fixture(scope="module")
def late_month(tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("horizon") / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    try:
        build_world(con, first=FIRST, n_months=N_MONTHS, n_tenants=120, seed=21)
    finally:
        con.close()
    scoring.build(warehouse, LAST, LAST)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        world = RawWorld(con)
        rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM pci_build.pci_monthly_scores "
                           "ORDER BY partner_id").fetchall()
        oldest_subscription_month = con.execute(
            "SELECT min(month) FROM pci_build.int_subscription_months").fetchall()[0][0]
    finally:
        con.close()
    return world, [dict(zip(COLUMNS, r)) for r in rows], oldest_subscription_month


def test_the_world_has_history_beyond_the_horizon(late_month):
    world, _, oldest = late_month
    assert min(world.landed) < add_months(LAST, -24)
    # the derivations start at M-24, not at the earliest landed month
    assert oldest == add_months(LAST, -24)
    # a loss in the window is debited to an add made 12 .. 23 months before M
    assert _debited_old_adds(world, LAST) > 0


def test_late_month_matches_the_reference(late_month):
    world, mart, _ = late_month
    assert sorted(r["partner_id"] for r in mart) == sorted(
        p["partner_id"] for p in world.rows["partners"][LAST])
    mismatches = []
    for row in mart:
        assert row["score_month"] == LAST
        ref = world.score(row["partner_id"], LAST)
        for col in COLUMNS:
            got, want = row[col], ref[col]
            same = (math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)
                    if col == "mau_growth" and got is not None and want is not None
                    else got == want)
            if not same:
                mismatches.append((row["partner_id"], col, got, want))
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. {mismatches[:10]}"
    # the comparison is not between zeros
    assert any(r["net_customer_adds"] != 0 for r in mart)
    assert any(r["net_new_revenue_usd"] > 0 for r in mart)
    assert any(r["mau_baseline"] > 0 for r in mart)
