"""Landing's GX suites run over chunks of rows (:data:`pci.land.expectations.CHUNK_ROWS`)
after the SQL screen (:mod:`pci.land.suite_sql`) give the same violations, counts
and examples as one GX run over every file's whole table (as landing did before)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from pci.land import expectations, suite_sql
from pci.land.landing import validate_export
from tests.support.exports import minimal_valid_tables, write_export

MONTH = "2021-08"
M = dt.date(2021, 8, 1)
CHUNK = 16  # rows per chunk in the chunked run: every big table spans 3-4 chunks


def _big_tables() -> dict[str, list[dict]]:
    t = minimal_valid_tables(MONTH)
    bl = [{"line_id": f"B{i:03d}", "billing_date": dt.date(2021, 8, 1 + i % 28), "subscription_id": "S001",
           "line_type": "CHARGE", "amount_usd": Decimal("10.00")} for i in range(60)]
    for i in (3, 20, 50):  # one key three times, in three chunks
        bl[i]["line_id"] = "B777"
    for i in (5, 17, 33, 34, 49, 58):  # more than MAX_EXAMPLES, across chunks
        bl[i]["amount_usd"] = Decimal("-1.00")
    bl[40]["line_type"] = "REFUND"
    bl[25]["billing_date"] = dt.date(2021, 9, 1)
    bl[30]["line_id"] = None
    t["billing_lines"] = bl
    ex = [{"person_id": f"U{i:03d}", "exam_code": "PL-200", "passed_on": dt.date(2020, 10, 1),
           "expires_on": dt.date(2022, 10, 1)} for i in range(45)]
    ex[39] = dict(ex[2])  # compound duplicate in another chunk
    ex[10]["expires_on"] = ex[30]["expires_on"] = dt.date(2020, 1, 1)
    ex[35]["exam_code"] = "pl-2000"
    ex[44]["passed_on"] = None
    t["exam_passes"] = ex
    pp = [{"person_id": f"U{i:03d}", "partner_id": "P001", "valid_from": dt.date(2019, 8, 1),
           "valid_to": None} for i in range(40)]
    pp[36] = dict(pp[1])
    t["partner_people"] = pp
    subs = [{"subscription_id": f"S{i:03d}", "tenant_id": "T001", "product_id": "D365_SALES",
             "sales_channel": "CSP", "is_paid": True, "ea_agreement_start": None} for i in range(1, 50)]
    subs[20]["sales_channel"] = "EA"  # EA without its start
    subs[33]["ea_agreement_start"] = dt.date(2020, 1, 1)  # a start without EA
    subs[36].update(sales_channel=None, ea_agreement_start=dt.date(2020, 1, 1))  # missing channel
    subs[45]["subscription_id"] = subs[2]["subscription_id"]
    t["subscriptions"] = subs
    return t


def _violations(tmp_path, name: str) -> list[tuple]:
    landing = tmp_path / name
    write_export(landing, MONTH, _big_tables())
    con = duckdb.connect()
    try:
        report = validate_export(con, landing / MONTH, M)[0]
    finally:
        con.close()
    return [(v.file, v.column_or_rule, v.count, v.examples, v.rule, v.check) for v in report.violations]


def test_chunked_validation_gives_the_violations_of_one_whole_run(tmp_path, monkeypatch):
    # before: every suite run by GX over its whole table
    monkeypatch.setattr(expectations, "CHUNK_ROWS", 10 ** 9)
    monkeypatch.setattr(suite_sql, "screen", lambda *a, **k: True)
    whole = _violations(tmp_path, "whole")
    monkeypatch.undo()
    monkeypatch.setattr(expectations, "CHUNK_ROWS", CHUNK)
    chunked = _violations(tmp_path, "chunked")
    assert chunked == whole
    got = {(f, c, r): (n, [e["line"] for e in ex]) for f, c, n, ex, r, _k in chunked}
    # a key repeated in three chunks: every occurrence counted and shown
    assert got["billing_lines.csv", "line_id", "line_id is the key: unique"] == (3, [5, 22, 52])
    assert got["billing_lines.csv", "amount_usd", "amount_usd >= 0"] == (6, [7, 19, 35, 36, 51])
    compound = [v for v in got.items() if v[0][0] == "exam_passes.csv" and v[0][1].startswith("person_id")]
    assert [v[1] for v in compound] == [(2, [4, 41])]
    assert got["subscriptions.csv", "ea_agreement_start",
               "ea_agreement_start must be empty when sales_channel is not EA"] == (2, [35, 38])


def test_the_screen_passes_a_valid_export_without_gx(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(expectations._GX, "run", lambda *a, **k: calls.append(a))
    write_export(tmp_path, MONTH, minimal_valid_tables(MONTH))
    con = duckdb.connect()
    report = validate_export(con, tmp_path / MONTH, M)[0]
    assert report.ok and calls == []


@pytest.mark.parametrize("expectation", [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x", "mostly": 0.9}},
])
def test_what_the_screen_cannot_translate_is_left_to_gx(expectation):
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert suite_sql.screen(con, "t", [expectation], {})
    assert not suite_sql.chunkable([expectation])


def test_a_range_lands_through_one_connection(tmp_path):
    from pci.core.warehouse import connect, landed_months
    from pci.land.landing import land_month

    landing, wh = tmp_path / "landing", tmp_path / "wh" / "pci.duckdb"
    for month in ("2021-07", MONTH):
        write_export(landing, month, minimal_valid_tables(month))
    wh.parent.mkdir()
    con = connect(wh)
    try:
        for month in ("2021-07", MONTH):
            assert land_month(landing, wh, month, con=con).status == "landed"
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall() == [(0,)]
        assert [m.isoformat()[:7] for m in landed_months(con)] == ["2021-07", MONTH]
    finally:
        con.close()
