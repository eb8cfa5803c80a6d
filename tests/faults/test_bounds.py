"""Amounts and counts at the contract's bounds, through landing and a real dbt build.

raw-exports.md, section 2: amounts below 10^10 in absolute value with at most 6
digits after the point, seat and MAU counts below 10^12; "a value inside them
is scored exactly (sums are exact, rounding happens once, in the mart)".

One export (tests/support/exports.py) holds a partner, P_MAX, with 1,000 paid
CSP subscriptions of one tenant: every subscription has the largest seat and
MAU count, and 1,203 billing lines carry the largest amount (one per
subscription and 200 more on the first) beside three credits of 0.000001. It
is landed by the landing step and scored by one ``dbt build`` shared by the
module; every value read back equals the sum computed here with Decimal.
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest

from pci.core.contract import BUILD_SCHEMA, add_months
from pci.land.landing import land_month
from pci.score import scoring
from tests.support.exports import minimal_valid_tables, write_export

pytestmark = [pytest.mark.faults, pytest.mark.dbt]

MONTH = "2021-08"
M = dt.date(2021, 8, 1)
MAX_AMOUNT = Decimal("9999999999.999999")
MAX_COUNT = 10 ** 12 - 1
N_SUBSCRIPTIONS = 1000
EXTRA_LINES = 200  # more lines at the largest amount on the first subscription
CENT = Decimal("0.01")


def bound_tables() -> dict[str, list[dict]]:
    t = minimal_valid_tables(MONTH)
    subs = [f"S_MAX_{i:04d}" for i in range(N_SUBSCRIPTIONS)]
    t["partners"] += [{"partner_id": "P_MAX", "partner_name": "At the bounds", "country": "SE"},
                      {"partner_id": "P_ROUND", "partner_name": "Rounded once", "country": "SE"}]
    t["tenants"] += [{"tenant_id": "T_MAX", "tenant_name": "Large", "is_production": True},
                     {"tenant_id": "T_ROUND", "tenant_name": "Small", "is_production": True}]
    t["subscriptions"] += [{"subscription_id": s, "tenant_id": "T_MAX", "product_id": "D365_SALES",
                            "sales_channel": "CSP", "is_paid": True, "ea_agreement_start": None}
                           for s in subs]
    t["subscriptions"].append({"subscription_id": "S_ROUND", "tenant_id": "T_ROUND",
                               "product_id": "D365_SALES", "sales_channel": "CSP",
                               "is_paid": True, "ea_agreement_start": None})
    t["partner_associations"] += [
        {"association_id": f"A_{s}", "partner_id": "P_MAX", "subscription_id": s,
         "association_type": "CSP", "cpor_incentive": None, "valid_from": add_months(M, -6),
         "valid_to": None} for s in subs]
    t["partner_associations"].append(
        {"association_id": "A_ROUND", "partner_id": "P_ROUND", "subscription_id": "S_ROUND",
         "association_type": "CSP", "cpor_incentive": None, "valid_from": add_months(M, -6),
         "valid_to": None})
    t["seat_snapshots"] += [{"subscription_id": s, "paid_seats": MAX_COUNT} for s in subs]
    t["mau_snapshots"] += [{"subscription_id": s, "monthly_active_users": MAX_COUNT} for s in subs]
    day = M + dt.timedelta(days=9)
    lines = [(s, "CHARGE", MAX_AMOUNT) for s in subs]
    lines += [(subs[0], "CHARGE", MAX_AMOUNT)] * EXTRA_LINES
    lines += [(subs[1], "CREDIT", Decimal("0.000001"))] * 3
    # P_ROUND: 1000.004950 is 1000.00 in cents, but 1000.01 when rounded to 4 decimals first
    lines += [("S_ROUND", "CHARGE", Decimal("500.002475"))] * 2
    t["billing_lines"] += [{"line_id": f"L{i:05d}", "billing_date": day, "subscription_id": s,
                            "line_type": kind, "amount_usd": amount}
                           for i, (s, kind, amount) in enumerate(lines)]
    return t


def exact_revenue(tables: dict, subscriptions: set[str]) -> Decimal:
    total = Decimal(0)
    for line in tables["billing_lines"]:
        if line["subscription_id"] in subscriptions:
            sign = 1 if line["line_type"] == "CHARGE" else -1
            total += sign * Decimal(str(line["amount_usd"]))
    return total


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    base = tmp_path_factory.mktemp("bounds")
    tables = bound_tables()
    write_export(base / "landing", MONTH, tables)
    warehouse = base / "wh" / "pci.duckdb"
    res = land_month(base / "landing", warehouse, MONTH)
    assert res.rows["billing_lines.csv"] == len(tables["billing_lines"])
    # the models' unit tests are test_scoring's business: record them as passed for
    # this project so that the build runs the models and data tests only (faster)
    con = duckdb.connect(str(warehouse))
    try:
        scoring.record_unit_tests_passed(con, scoring.project_fingerprint(), 0)
    finally:
        con.close()
    result = scoring.build(warehouse, M, M)  # raises BuildFailed on any overflow
    assert result.rows_per_month == {M: len(tables["partners"])}
    return warehouse, tables


def one(warehouse: Path, sql: str) -> tuple:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(sql).fetchall()
    finally:
        con.close()
    assert len(rows) == 1, rows
    return rows[0]


def score(warehouse: Path, partner: str, columns: str) -> tuple:
    return one(warehouse, f"SELECT {columns} FROM {BUILD_SCHEMA}.pci_monthly_scores "
                          f"WHERE score_month = DATE '{M}' AND partner_id = '{partner}'")


def test_largest_amount_on_many_lines_of_one_partner_sums_exactly(built):
    warehouse, tables = built
    subs = {s["subscription_id"] for s in tables["subscriptions"]
            if s["subscription_id"].startswith("S_MAX_")}
    exact = exact_revenue(tables, subs)
    assert exact == (N_SUBSCRIPTIONS + EXTRA_LINES) * MAX_AMOUNT - Decimal("0.000003")
    # the intermediate sum is exact to the last of the 6 decimals
    total, lines = one(warehouse, f"SELECT sum(revenue_usd), sum(billing_lines) FROM "
                                  f"{BUILD_SCHEMA}.int_partner_revenue_credits "
                                  f"WHERE partner_id = 'P_MAX'")
    assert total == exact and lines == N_SUBSCRIPTIONS + EXTRA_LINES + 3
    # the mart rounds it once, to cents; the points are capped, not overflowed
    revenue, points = score(warehouse, "P_MAX", "net_new_revenue_usd, points_net_new_revenue")
    assert revenue == exact.quantize(CENT, rounding=ROUND_HALF_UP)
    assert points == Decimal("10.00")


def test_largest_count_on_many_subscriptions_of_one_partner_sums_exactly(built):
    warehouse, _ = built
    exact = N_SUBSCRIPTIONS * MAX_COUNT
    assert score(warehouse, "P_MAX", "mau_current, mau_baseline, mau_growth") == (exact, 0, None)
    seats, counted = one(warehouse, f"SELECT paid_seats, counting_subscriptions FROM "
                                    f"{BUILD_SCHEMA}.int_tenant_monthly_seats "
                                    f"WHERE month = DATE '{M}' AND tenant_id = 'T_MAX'")
    assert (seats, counted) == (exact, N_SUBSCRIPTIONS)


def test_the_other_partners_are_scored_as_without_them(built):
    warehouse, _ = built
    # P001's CSP lines of the minimal export: 1200.50 charged, 100.25 credited
    assert score(warehouse, "P001", "net_new_revenue_usd, mau_current") == (
        Decimal("1100.25"), 8)


def test_revenue_is_rounded_once(built):
    """1000.004950 is published as 1000.00: rounded once, in the mart (a contribution
    rounded to 4 places first would give 1000.0050 and then 1000.01)."""
    warehouse, tables = built
    exact = exact_revenue(tables, {"S_ROUND"})
    assert exact == Decimal("1000.004950")
    total = one(warehouse, f"SELECT sum(revenue_usd) FROM {BUILD_SCHEMA}.int_partner_revenue_credits "
                           f"WHERE partner_id = 'P_ROUND'")[0]
    assert total == exact  # exact up to the mart
    assert score(warehouse, "P_ROUND", "net_new_revenue_usd")[0] == Decimal("1000.00")
