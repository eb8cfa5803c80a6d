"""`python -m pci land`: manifest, format and contract rules, loading, re-landing.

Every broken export starts from ``minimal_valid_tables`` and breaks one thing;
each test checks the exit status, that the report (stderr and the JSON file)
names the file, the column or rule and the count, and that nothing of the
month reached the warehouse.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from pci.cli import main
from pci.core.contract import FILES, FILES_BY_NAME, MANIFEST
from pci.core.errors import WarehouseBusy
from pci.core.warehouse import landed_months
from pci.land import expectations, files, violations
from pci.land.landing import LandResult, NotReady, ValidationFailed, land_month, needs_landing, report_path
from tests.support.exports import minimal_valid_tables, write_csv, write_export, write_manifest

MONTH = "2021-08"
M = dt.date(2021, 8, 1)
ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def paths(tmp_path):
    return tmp_path / "landing", tmp_path / "wh" / "pci.duckdb"


def run_land(paths, capsys, month=MONTH):
    landing, warehouse = paths
    rc = main(["land", "--landing", str(landing), "--warehouse", str(warehouse),
               "--month", month])
    out, err = capsys.readouterr()
    return rc, out, err


def loaded_rows(warehouse: Path, month=M) -> int:
    """Rows of ``month`` in the raw tables (0 when nothing was ever loaded)."""
    if not warehouse.exists():
        return 0
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        have = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'"
        ).fetchall()}
        total = 0
        for f in FILES:
            if f.name in have:
                total += con.execute(f"SELECT count(*) FROM raw.{f.name} WHERE export_month = ?",
                                     [month]).fetchall()[0][0]
        if "loads" in have:
            total += con.execute("SELECT count(*) FROM raw.loads WHERE export_month = ?",
                                 [month]).fetchall()[0][0]
        return total
    finally:
        con.close()


def query(warehouse: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def find_violation(warehouse: Path, file: str, column_or_rule: str) -> dict:
    report = json.loads(report_path(warehouse, M).read_text())
    assert report["status"] == "failed"
    found = [v for v in report["violations"]
             if v["file"] == file and v["column_or_rule"] == column_or_rule]
    assert found, f"no violation {file} / {column_or_rule} in {report['violations']}"
    return found[0]


def assert_refused(paths, capsys, file, column_or_rule, count, rule_words=None):
    """Exit 1, the report names file/column/count, nothing of the month loaded."""
    rc, out, err = run_land(paths, capsys)
    assert rc == 1, err
    v = find_violation(paths[1], file, column_or_rule)
    assert v["count"] == count, v
    assert 1 <= len(v["examples"]) <= 5
    unit = "row" if count == 1 else "rows"
    line = next((l for l in err.splitlines()
                 if l.startswith(f"{file} | {column_or_rule} |")), None)
    assert line is not None, err
    assert line.endswith(f": {count} {unit}"), line
    if rule_words:
        assert rule_words in line, line
    assert "nothing was loaded" in err
    assert loaded_rows(paths[1]) == 0
    return v, err


# mutations of the tables (dict of file name -> rows)

def setv(table, i, column, value):
    def mutate(t):
        t[table][i][column] = value
    return mutate


def dup(table, i=0):
    def mutate(t):
        t[table].append(dict(t[table][i]))
    return mutate


def add(table, **row):
    def mutate(t):
        t[table].append(row)
    return mutate


def both(*mutations):
    def mutate(t):
        for m in mutations:
            m(t)
    return mutate


def land_tables(paths, mutate=None):
    t = minimal_valid_tables(MONTH)
    if mutate:
        mutate(t)
    return write_export(paths[0], MONTH, t)


# --------------------------------------------------------------------------- a valid export


def test_valid_export_is_loaded(paths, capsys):
    folder = land_tables(paths)
    rc, out, err = run_land(paths, capsys)
    assert rc == 0, err
    assert "landed" in out
    t = minimal_valid_tables(MONTH)
    wh = paths[1]
    for f in FILES:
        n = query(wh, f"SELECT count(*) FROM raw.{f.name} WHERE export_month = ?", [M])[0][0]
        assert n == len(t[f.name]), f.name
    loads = query(wh, "SELECT load_id, export_month, is_current, manifest_sha256, file_rows "
                      "FROM raw.loads")
    assert len(loads) == 1 and loads[0][1] == M and loads[0][2] is True
    import hashlib
    assert loads[0][3] == hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()
    assert json.loads(loads[0][4])["billing_lines.csv"] == 3
    # values arrive typed
    row = query(wh, "SELECT amount_usd, billing_date, load_id FROM raw.billing_lines "
                    "WHERE line_id = 'B001'")[0]
    assert str(row[0]) == "1200.500000" and row[1] == dt.date(2021, 8, 5)
    assert row[2] == loads[0][0]
    sub = query(wh, "SELECT is_paid, ea_agreement_start FROM raw.subscriptions "
                    "WHERE subscription_id = 'S002'")[0]
    assert sub == (True, dt.date(2021, 5, 1))
    # nulls stay nulls
    assert query(wh, "SELECT country FROM raw.partners WHERE partner_id = 'P003'") == [(None,)]
    rep = json.loads(report_path(wh, M).read_text())
    assert rep["status"] == "passed" and rep["violations"] == []


def test_land_month_api_and_unknown_product_allowed(paths):
    # an unknown product id is allowed by the contract (it never qualifies);
    # far-future dates are dates like any other
    mutate = both(add("products", product_id="NEW_PRODUCT_2099", product_name="Future"),
                  setv("subscriptions", 2, "product_id", "NEW_PRODUCT_2099"),
                  setv("partner_associations", 0, "valid_to", dt.date(9999, 12, 31)),
                  setv("exam_passes", 0, "expires_on", dt.date(9999, 12, 31)))
    land_tables(paths, mutate)
    res = land_month(paths[0], paths[1], MONTH)
    assert isinstance(res, LandResult)
    assert res.status == "landed" and res.month == M
    assert res.rows["products.csv"] == 4
    assert query(paths[1], "SELECT count(*) FROM raw.products WHERE product_id = "
                           "'NEW_PRODUCT_2099'")[0][0] == 1


# --------------------------------------------------------------------------- section 3, one file


REQUIRED = [(f.name, c.name) for f in FILES for c in f.columns if c.required]


@pytest.mark.parametrize("table,column", REQUIRED, ids=[f"{t}.{c}" for t, c in REQUIRED])
def test_required_column_empty(paths, capsys, table, column):
    land_tables(paths, setv(table, 0, column, None))
    assert_refused(paths, capsys, f"{table}.csv", column, 1, f"{column} is required")


@pytest.mark.parametrize("table", [f.name for f in FILES])
def test_duplicate_key(paths, capsys, table):
    land_tables(paths, dup(table, 0))
    key = FILES_BY_NAME[table].key
    col = key[0] if len(key) == 1 else ", ".join(key)
    v, err = assert_refused(paths, capsys, f"{table}.csv", col, 2, "unique")
    first = minimal_valid_tables(MONTH)[table][0]
    assert all(ex[key[0]] == str(first[key[0]]) for ex in v["examples"])
    assert {ex["line"] for ex in v["examples"]} == {2, len(minimal_valid_tables(MONTH)[table]) + 2}


RULES = [
    # id, mutation, file, column, count, words of the rule
    ("country_not_iso", setv("partners", 0, "country", "Sweden"), "partners", "country", 1,
     "ISO 3166"),
    ("country_lowercase", setv("partners", 1, "country", "us"), "partners", "country", 1,
     "ISO 3166"),
    ("sales_channel_unknown", setv("subscriptions", 0, "sales_channel", "RESELLER"),
     "subscriptions", "sales_channel", 1, "sales_channel is one of"),
    ("ea_start_missing_for_ea", setv("subscriptions", 1, "ea_agreement_start", None),
     "subscriptions", "ea_agreement_start", 1, "required when sales_channel is EA"),
    ("ea_start_for_non_ea", setv("subscriptions", 0, "ea_agreement_start", dt.date(2021, 1, 1)),
     "subscriptions", "ea_agreement_start", 1, "empty when sales_channel is not EA"),
    ("association_type_unknown", setv("partner_associations", 0, "association_type", "VAR"),
     "partner_associations", "association_type", 1, "association_type is one of"),
    ("cpor_incentive_unknown", setv("partner_associations", 1, "cpor_incentive", "OSX"),
     "partner_associations", "cpor_incentive", 1, "cpor_incentive is one of"),
    ("cpor_incentive_missing_for_cpor", setv("partner_associations", 1, "cpor_incentive", None),
     "partner_associations", "cpor_incentive", 1, "required when association_type is CPOR"),
    ("cpor_incentive_for_dpor", setv("partner_associations", 2, "cpor_incentive", "OSA"),
     "partner_associations", "cpor_incentive", 1, "empty when association_type is not CPOR"),
    ("association_valid_to_before_from",
     setv("partner_associations", 0, "valid_to", dt.date(2020, 1, 31)),
     "partner_associations", "valid_to, valid_from", 1, "valid_to >= valid_from"),
    ("exam_code_malformed", setv("exam_passes", 0, "exam_code", "PL200"), "exam_passes",
     "exam_code", 1, "exam_code looks like"),
    ("expires_equal_passed", setv("exam_passes", 1, "expires_on", dt.date(2020, 11, 1)),
     "exam_passes", "expires_on, passed_on", 1, "expires_on > passed_on"),
    ("expires_before_passed", setv("exam_passes", 2, "expires_on", dt.date(2021, 1, 1)),
     "exam_passes", "expires_on, passed_on", 1, "expires_on > passed_on"),
    ("billing_date_after_month", setv("billing_lines", 0, "billing_date", dt.date(2021, 9, 1)),
     "billing_lines", "billing_date", 1, "inside the export month"),
    ("billing_date_before_month", both(setv("billing_lines", 0, "billing_date", dt.date(2021, 7, 31)),
                                       setv("billing_lines", 1, "billing_date", dt.date(2020, 8, 15))),
     "billing_lines", "billing_date", 2, "inside the export month"),
    ("billing_date_far_future", setv("billing_lines", 0, "billing_date", dt.date(9999, 1, 1)),
     "billing_lines", "billing_date", 1, "inside the export month"),
    ("line_type_unknown", setv("billing_lines", 2, "line_type", "REFUND"), "billing_lines",
     "line_type", 1, "line_type is one of"),
    ("amount_negative", setv("billing_lines", 2, "amount_usd", "-100.25"), "billing_lines",
     "amount_usd", 1, "amount_usd >= 0"),
    ("paid_seats_negative", setv("seat_snapshots", 0, "paid_seats", -1), "seat_snapshots",
     "paid_seats", 1, "paid_seats >= 0"),
    ("mau_negative", setv("mau_snapshots", 1, "monthly_active_users", -5), "mau_snapshots",
     "monthly_active_users", 1, "monthly_active_users >= 0"),
    # section 3, across files
    ("subscription_tenant_unknown", setv("subscriptions", 0, "tenant_id", "T999"),
     "subscriptions", "tenant_id", 1, "exists in tenants.csv"),
    ("subscription_product_unknown", setv("subscriptions", 1, "product_id", "D365_NOPE"),
     "subscriptions", "product_id", 1, "exists in products.csv"),
    ("association_partner_unknown", setv("partner_associations", 3, "partner_id", "P999"),
     "partner_associations", "partner_id", 1, "exists in partners.csv"),
    ("association_subscription_unknown", setv("partner_associations", 0, "subscription_id", "S999"),
     "partner_associations", "subscription_id", 1, "exists in subscriptions.csv"),
    ("person_partner_unknown", setv("partner_people", 2, "partner_id", "P999"), "partner_people",
     "partner_id", 1, "exists in partners.csv"),
    ("billing_subscription_unknown",
     both(setv("billing_lines", 0, "subscription_id", "S998"),
          setv("billing_lines", 2, "subscription_id", "S999")),
     "billing_lines", "subscription_id", 2, "exists in subscriptions.csv"),
    ("affiliations_overlap", setv("partner_people", 0, "valid_to", dt.date(2021, 1, 1)),
     "partner_people", "person_id, valid_from, valid_to", 1, "do not overlap"),
    ("affiliations_share_a_day", setv("partner_people", 0, "valid_to", dt.date(2020, 8, 1)),
     "partner_people", "person_id, valid_from, valid_to", 1, "do not overlap"),
    ("affiliation_open_overlaps", both(setv("partner_people", 0, "valid_to", None)),
     "partner_people", "person_id, valid_from, valid_to", 1, "do not overlap"),
    # values that do not parse as the column's type
    ("seats_not_a_number", setv("seat_snapshots", 1, "paid_seats", "abc"), "seat_snapshots",
     "paid_seats", 1, "an integer"),
    ("seats_fraction", setv("seat_snapshots", 1, "paid_seats", "2.5"), "seat_snapshots",
     "paid_seats", 1, "an integer"),
    ("date_month_13", setv("partner_associations", 0, "valid_from", "2021-13-01"),
     "partner_associations", "valid_from", 1, "a date YYYY-MM-DD"),
    ("date_other_format", setv("billing_lines", 0, "billing_date", "05/08/2021"),
     "billing_lines", "billing_date", 1, "a date YYYY-MM-DD"),
    ("boolean_yes", setv("tenants", 0, "is_production", "yes"), "tenants", "is_production", 1,
     "exactly 'true' or 'false'"),
    ("boolean_uppercase", both(setv("subscriptions", 0, "is_paid", "TRUE"),
                               setv("subscriptions", 2, "is_paid", "1")),
     "subscriptions", "is_paid", 2, "exactly 'true' or 'false'"),
    ("amount_decimal_comma", setv("billing_lines", 0, "amount_usd", "1200,50"), "billing_lines",
     "amount_usd", 1, "a decimal number"),
    ("amount_too_precise", setv("billing_lines", 0, "amount_usd", "1.2345678"), "billing_lines",
     "amount_usd", 1, "at most 6 digits after it"),
]


@pytest.mark.parametrize("mutate,table,column,count,words", [r[1:] for r in RULES],
                         ids=[r[0] for r in RULES])
def test_rule_violation(paths, capsys, mutate, table, column, count, words):
    land_tables(paths, mutate)
    assert_refused(paths, capsys, f"{table}.csv", column, count, words)


def test_overlap_examples_name_the_rows(paths, capsys):
    land_tables(paths, setv("partner_people", 0, "valid_to", None))
    v, err = assert_refused(paths, capsys, "partner_people.csv",
                            "person_id, valid_from, valid_to", 1)
    assert v["examples"][0]["person_id"] == "U001"
    assert v["examples"][0]["partner_id"] == "P002"
    assert v["examples"][0]["earlier_affiliation_ends"] == "open"


def test_examples_are_capped_at_five(paths, capsys):
    def mutate(t):
        for i in range(7):
            t["mau_snapshots"].append({"subscription_id": f"X{i}", "monthly_active_users": -i - 1})
    land_tables(paths, mutate)
    v, err = assert_refused(paths, capsys, "mau_snapshots.csv", "monthly_active_users", 7)
    assert len(v["examples"]) == 5
    assert [ex["line"] for ex in v["examples"]] == [4, 5, 6, 7, 8]
    assert "'X0'" in err and "'X4'" in err and "'X5'" not in err


def test_several_violations_reported_together(paths, capsys):
    land_tables(paths, both(setv("seat_snapshots", 0, "paid_seats", -1),
                            setv("subscriptions", 0, "sales_channel", "RESELLER"),
                            setv("billing_lines", 0, "subscription_id", "S999")))
    rc, out, err = run_land(paths, capsys)
    assert rc == 1
    rep = json.loads(report_path(paths[1], M).read_text())
    got = {(v["file"], v["column_or_rule"]) for v in rep["violations"]}
    assert got == {("seat_snapshots.csv", "paid_seats"), ("subscriptions.csv", "sales_channel"),
                   ("billing_lines.csv", "subscription_id")}
    assert rep["violation_count"] == 3


# --------------------------------------------------------------------------- manifest


def _drop_file(folder):
    (folder / "tenants.csv").unlink()


def _unlist_file(folder):
    m = json.loads((folder / MANIFEST).read_text())
    del m["files"]["products.csv"]
    (folder / MANIFEST).write_text(json.dumps(m))


def _wrong_rows(folder):
    m = json.loads((folder / MANIFEST).read_text())
    m["files"]["billing_lines.csv"]["rows"] = 4
    (folder / MANIFEST).write_text(json.dumps(m))


def _wrong_sha(folder):
    with open(folder / "seat_snapshots.csv", "a") as fh:
        fh.write("S777,1\n")


def _wrong_month(folder):
    m = json.loads((folder / MANIFEST).read_text())
    m["export_month"] = "2021-07"
    (folder / MANIFEST).write_text(json.dumps(m))


def _not_json(folder):
    (folder / MANIFEST).write_text("{\"export_month\": \"2021-08\", ")


MANIFEST_CASES = [
    ("file_missing", _drop_file, "tenants.csv", "file", "every file of the contract is present"),
    ("file_not_listed", _unlist_file, "products.csv", "manifest entry", "listed in the manifest"),
    ("row_count", _wrong_rows, "billing_lines.csv", "rows", "row count"),
    ("sha256", _wrong_sha, "seat_snapshots.csv", "sha256", "sha256"),
    ("export_month", _wrong_month, MANIFEST, "export_month", "folder name"),
    ("unreadable", _not_json, MANIFEST, "manifest", "readable JSON"),
]


@pytest.mark.parametrize("breaker,file,column,words", [c[1:] for c in MANIFEST_CASES],
                         ids=[c[0] for c in MANIFEST_CASES])
def test_manifest_check(paths, capsys, breaker, file, column, words):
    folder = land_tables(paths)
    breaker(folder)
    v, err = assert_refused(paths, capsys, file, column, 1, words)
    assert v["check"] == "manifest"


def test_row_count_example_gives_both_counts(paths, capsys):
    folder = land_tables(paths)
    _wrong_rows(folder)
    v, _ = assert_refused(paths, capsys, "billing_lines.csv", "rows", 1)
    assert v["examples"] == [{"manifest": 4, "actual": 3}]


# --------------------------------------------------------------------------- format


def _rewrite(folder: Path, name: str, transform, *, bom=False):
    """Rewrite a CSV (header + rows as lists) and refresh the manifest."""
    import csv
    path = folder / f"{name}.csv"
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = transform(rows[0], rows[1:])
    write_csv(path, header, body, bom=bom)
    write_manifest(folder)


def test_bom_and_column_order_and_crlf_accepted(paths, capsys):
    folder = land_tables(paths)
    for f in FILES:  # reverse the columns of every file, with a BOM
        _rewrite(folder, f.name, lambda h, b: (h[::-1], [r[::-1] for r in b]), bom=True)
    # and CRLF line ends in one file
    p = folder / "partners.csv"
    p.write_bytes(p.read_bytes().replace(b"\n", b"\r\n"))
    write_manifest(folder)
    assert (folder / "billing_lines.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    rc, out, err = run_land(paths, capsys)
    assert rc == 0, err
    assert query(paths[1], "SELECT partner_id, partner_name, country FROM raw.partners "
                           "ORDER BY partner_id")[:2] == [
        ("P001", "Contoso Consulting", "SE"), ("P002", "Fabrikam, Inc.", "US")]
    assert query(paths[1], "SELECT paid_seats FROM raw.seat_snapshots "
                           "WHERE subscription_id = 'S002'") == [(25,)]


def test_extra_column_is_ignored_with_a_warning(paths, capsys):
    folder = land_tables(paths)
    _rewrite(folder, "tenants", lambda h, b: (h + ["region"], [r + ["EMEA"] for r in b]))
    rc, out, err = run_land(paths, capsys)
    assert rc == 0, err
    assert "warning" in err and "tenants.csv" in err and "region" in err
    cols = [r[0] for r in query(paths[1], "SELECT column_name FROM information_schema.columns "
                                          "WHERE table_schema = 'raw' AND table_name = 'tenants'")]
    assert "region" not in cols
    assert query(paths[1], "SELECT count(*) FROM raw.tenants")[0][0] == 3
    rep = json.loads(report_path(paths[1], M).read_text())
    assert any("region" in w for w in rep["warnings"])


def test_extra_column_listed_in_result(paths):
    folder = land_tables(paths)
    _rewrite(folder, "mau_snapshots", lambda h, b: (["note", *h], [["x", *r] for r in b]))
    res = land_month(paths[0], paths[1], M)
    assert res.extra_columns == {"mau_snapshots.csv": ["note"]}
    assert any("note" in w for w in res.warnings)


def test_missing_column(paths, capsys):
    folder = land_tables(paths)
    _rewrite(folder, "subscriptions",
             lambda h, b: ([c for c in h if c != "is_paid"],
                           [[x for c, x in zip(h, r) if c != "is_paid"] for r in b]))
    v, err = assert_refused(paths, capsys, "subscriptions.csv", "is_paid", 1,
                            "missing from the header")


@pytest.mark.parametrize("record,error", [
    (b"P004,Too,Many,Fields\n", "TOO MANY COLUMNS"),
    (b"P004,Too few\n", "MISSING COLUMNS"),
    (b"P004,Caf\xe9 (latin-1),FR\n", "INVALID ENCODING"),
    (b'P004,"unterminated,SE\n', "UNQUOTED VALUE"),
], ids=["too_many_fields", "too_few_fields", "not_utf8", "unterminated_quote"])
def test_malformed_csv_record(paths, capsys, record, error):
    folder = land_tables(paths)
    with open(folder / "partners.csv", "ab") as fh:
        fh.write(record)
    write_manifest(folder)
    v, err = assert_refused(paths, capsys, "partners.csv", "csv format", 1, "well-formed CSV")
    assert v["examples"][0]["line"] == 5
    assert v["examples"][0]["error"] == error


def test_quoted_values_and_empty_quoted_field(paths, capsys):
    folder = land_tables(paths)
    p = folder / "partners.csv"
    p.write_text('partner_id,partner_name,country\n"P001","Contoso ""Best"" Consulting",""\n'
                 'P002,"Fabrikam, Inc.",US\nP003,Northwind,\n', encoding="utf-8")
    write_manifest(folder)
    rc, out, err = run_land(paths, capsys)
    assert rc == 0, err
    assert query(paths[1], "SELECT partner_name, country FROM raw.partners "
                           "WHERE partner_id = 'P001'") == [('Contoso "Best" Consulting', None)]


# --------------------------------------------------------------------------- not ready, re-landing


def test_not_ready_without_manifest(paths, capsys):
    write_export(paths[0], MONTH, minimal_valid_tables(MONTH), manifest=False)
    rc, out, err = run_land(paths, capsys)
    assert rc == 3
    assert "not ready" in err and MANIFEST in err
    assert loaded_rows(paths[1]) == 0
    with pytest.raises(NotReady):
        land_month(paths[0], paths[1], MONTH)


def test_not_ready_without_folder(paths, capsys):
    rc, out, err = run_land(paths, capsys, month="2021-09")
    assert rc == 3 and "not ready" in err


def test_bad_month_argument_is_a_usage_error(paths, capsys):
    rc, out, err = run_land(paths, capsys, month="2021-8")
    assert rc == 2 and "YYYY-MM" in err


def test_identical_manifest_is_a_no_op(paths, capsys):
    land_tables(paths)
    first = land_month(paths[0], paths[1], M)
    second = land_month(paths[0], paths[1], M)
    assert first.status == "landed" and second.status == "unchanged" and second.already_landed
    assert second.load_id == first.load_id
    assert query(paths[1], "SELECT count(*) FROM raw.loads")[0][0] == 1
    assert query(paths[1], "SELECT count(*) FROM raw_archive.partners")[0][0] == 0
    rc, out, err = run_land(paths, capsys)
    assert rc == 0 and "already landed" in out


def test_relanding_a_corrected_export(paths):
    landing, wh = paths
    land_tables(paths)
    write_export(landing, "2021-07", minimal_valid_tables("2021-07"))
    first = land_month(landing, wh, M)
    other = land_month(landing, wh, "2021-07")
    assert not needs_landing(landing, duckdb.connect(str(wh), read_only=True), M)
    # corrected export: one seat count changed, one billing line dropped
    t = minimal_valid_tables(MONTH)
    t["seat_snapshots"][0]["paid_seats"] = 11
    del t["billing_lines"][2]
    write_export(landing, MONTH, t)
    con = duckdb.connect(str(wh), read_only=True)
    assert needs_landing(landing, con, M) and not needs_landing(landing, con, "2021-07")
    con.close()
    second = land_month(landing, wh, M)
    assert second.status == "replaced" and second.replaced_load_id == first.load_id
    assert second.load_id != first.load_id
    # current rows are the new ones
    assert query(wh, "SELECT DISTINCT load_id FROM raw.billing_lines WHERE export_month = ?",
                 [M]) == [(second.load_id,)]
    assert query(wh, "SELECT count(*) FROM raw.billing_lines WHERE export_month = ?", [M]) == [(2,)]
    assert query(wh, "SELECT paid_seats FROM raw.seat_snapshots WHERE export_month = ? "
                     "AND subscription_id = 'S001'", [M]) == [(11,)]
    # the earlier rows are recoverable from the archive
    assert query(wh, "SELECT count(*), min(load_id), max(load_id) FROM raw_archive.billing_lines")\
        == [(3, first.load_id, first.load_id)]
    assert query(wh, "SELECT paid_seats FROM raw_archive.seat_snapshots "
                     "WHERE subscription_id = 'S001'") == [(10,)]
    # is_current flipped; the other month untouched
    assert query(wh, "SELECT load_id, is_current FROM raw.loads WHERE export_month = ? "
                     "ORDER BY load_id", [M]) == [(first.load_id, False), (second.load_id, True)]
    assert query(wh, "SELECT load_id FROM raw.loads WHERE is_current ORDER BY export_month") == [
        (other.load_id,), (second.load_id,)]
    assert query(wh, "SELECT count(*) FROM raw.partners WHERE export_month = DATE '2021-07-01'")\
        == [(3,)]
    con = duckdb.connect(str(wh), read_only=True)
    assert landed_months(con) == [dt.date(2021, 7, 1), M]
    con.close()


def test_refused_relanding_keeps_the_earlier_load(paths, capsys):
    landing, wh = paths
    land_tables(paths)
    first = land_month(landing, wh, M)
    land_tables(paths, setv("seat_snapshots", 0, "paid_seats", -1))
    with pytest.raises(ValidationFailed) as exc:
        land_month(landing, wh, M)
    assert not exc.value.report.ok
    assert exc.value.report_path == report_path(wh, M)
    assert query(wh, "SELECT DISTINCT load_id FROM raw.seat_snapshots") == [(first.load_id,)]
    assert query(wh, "SELECT count(*), bool_and(is_current) FROM raw.loads") == [(1, True)]


def test_landed_months_and_needs_landing_on_a_fresh_warehouse(paths):
    landing, wh = paths
    con = duckdb.connect(":memory:")
    assert landed_months(con) == []
    assert not needs_landing(landing, con, M)  # no folder
    write_export(landing, MONTH, minimal_valid_tables(MONTH), manifest=False)
    assert not needs_landing(landing, con, M)  # not ready
    write_manifest(landing / MONTH)
    assert needs_landing(landing, con, M)


# --------------------------------------------------------------------------- the warehouse is busy


def _hold(code: str, path: Path):
    """A child process that holds something on ``path`` until killed."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(path)],
                            stdout=subprocess.PIPE, text=True, cwd=str(ROOT),
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "holding"
    return proc


@pytest.mark.parametrize("how", ["duckdb", "lockfile"])
def test_busy_warehouse(paths, capsys, how):
    landing, wh = paths
    land_tables(paths)
    wh.parent.mkdir(parents=True)
    code = {
        "duckdb": """
            import sys, time, duckdb
            con = duckdb.connect(sys.argv[1])
            print("holding", flush=True)
            time.sleep(120)
        """,
        "lockfile": """
            import sys, time
            from pci.core.locking import WarehouseLock
            with WarehouseLock(sys.argv[1]):
                print("holding", flush=True)
                time.sleep(120)
        """,
    }[how]
    proc = _hold(code, wh)
    try:
        rc, out, err = run_land(paths, capsys)
        assert rc == 4, err
        assert "in use" in err and str(proc.pid) in err
        with pytest.raises(WarehouseBusy):
            land_month(landing, wh, M)
    finally:
        proc.kill()
        proc.wait()
    assert land_month(landing, wh, M).status == "landed"


# --------------------------------------------------------------------------- the suites


def test_suites_cover_the_contract():
    """Every required column has a not-null expectation, every key a uniqueness one."""
    for f in FILES:
        data = expectations.load_suite_json(f.name)
        assert data["name"] == f.name
        kinds = [(e["type"], e["kwargs"].get("column"), tuple(e["kwargs"].get("column_list", ())))
                 for e in data["expectations"]]
        for c in f.columns:
            if c.required:
                assert ("expect_column_values_to_not_be_null", c.name, ()) in kinds, (f.name, c.name)
        if len(f.key) == 1:
            assert ("expect_column_values_to_be_unique", f.key[0], ()) in kinds
        else:
            assert ("expect_compound_columns_to_be_unique", None, f.key) in kinds
        for e in data["expectations"]:
            assert e["meta"]["rule"], e
            for k in ("column", "column_A", "column_B"):
                if k in e["kwargs"]:
                    assert e["kwargs"][k] in f.column_names, e


def test_every_suite_loads_completely():
    for f in FILES:
        data = expectations.load_suite_json(f.name)
        suite = expectations.build_suite(data, f.name)
        assert len(suite.expectations) == len(data["expectations"])


def test_a_failed_suite_writes_data_docs_and_the_report_links_them(paths, capsys, monkeypatch):
    landing, wh = paths
    docs = wh.parent / "data_docs"
    land_tables(paths)
    rc, out, err = run_land(paths, capsys)
    assert rc == 0 and json.loads(report_path(wh, M).read_text())["data_docs"] is None
    assert not docs.exists()  # a landing that passes writes none

    land_tables(paths, both(setv("billing_lines", 2, "amount_usd", "-100.25"),
                            setv("mau_snapshots", 1, "monthly_active_users", -5)))
    rc, out, err = run_land(paths, capsys)
    assert rc == 1, err
    report = json.loads(report_path(wh, M).read_text())
    # the violations keep their format; the report links the run's Data Docs
    assert all(set(v) == {"file", "column_or_rule", "count", "examples", "rule", "check"}
               for v in report["violations"])
    assert report["data_docs"]["index"] == (docs / "index.html").as_uri()
    pages = report["data_docs"]["pages"]
    assert set(pages) == {"billing_lines.csv", "mau_snapshots.csv"}
    for url in pages.values():
        page = Path(url.removeprefix("file://"))
        assert page.is_file() and "landing-2021-08" in url
        assert page.relative_to(docs).as_posix() in (docs / "index.html").read_text()
    assert f"data docs: {(docs / 'index.html').as_uri()}" in err

    # a later run (another process: a new GX context) keeps the earlier pages
    monkeypatch.setattr(expectations._GX, "_instance", None)
    land_tables(paths, setv("seat_snapshots", 0, "paid_seats", -1))
    rc, out, err = run_land(paths, capsys)
    assert rc == 1, err
    later = json.loads(report_path(wh, M).read_text())["data_docs"]["pages"]
    assert set(later) == {"seat_snapshots.csv"}
    index = (docs / "index.html").read_text()
    for url in [*pages.values(), *later.values()]:
        page = Path(url.removeprefix("file://"))
        assert page.is_file() and page.relative_to(docs).as_posix() in index


def test_misspelled_expectation_is_an_error():
    data = expectations.load_suite_json("seat_snapshots")
    data["expectations"].append({"type": "expect_column_values_to_bee_between",
                                 "kwargs": {"column": "paid_seats", "min_value": 0}})
    with pytest.raises(expectations.SuiteError, match="expect_column_values_to_bee_between"):
        expectations.build_suite(data, "seat_snapshots.json")


# --------------------------------------------------------------------------- generated exports


def test_generated_exports_land(tmp_path):
    """The generator's exports satisfy the contract as landing checks it."""
    generate = pytest.importorskip("tools.generate").generate
    landing, wh = tmp_path / "landing", tmp_path / "pci.duckdb"
    folders = generate(landing, "2021-01", 2, 12, 300, 7, progress=False)
    for folder in folders:
        res = land_month(landing, wh, folder.name)
        assert res.status == "landed", folder
        manifest = json.loads((folder / MANIFEST).read_text())
        assert res.rows == {k: v["rows"] for k, v in manifest["files"].items()}
    con = duckdb.connect(str(wh), read_only=True)
    try:
        assert landed_months(con) == [dt.date(2021, 1, 1), dt.date(2021, 2, 1)]
        assert not any(needs_landing(landing, con, f.name) for f in folders)
    finally:
        con.close()


# ------------------------------------------------------------------ section 2: numbers and their bounds


@pytest.mark.parametrize("column,table,value", [
    ("amount_usd", "billing_lines", "10.12345"),  # 5 decimals: refused before DECIMAL(20,6)
    ("amount_usd", "billing_lines", "10.123456"),  # 6 decimals, the most the contract allows
    ("amount_usd", "billing_lines", "9999999999.999999"),  # the largest amount
    ("amount_usd", "billing_lines", "0009999999999.5"),  # leading zeros are not digits of the bound
    ("paid_seats", "seat_snapshots", "999999999999"),  # the largest count
    ("monthly_active_users", "mau_snapshots", "999999999999"),
], ids=["amount_5_decimals", "amount_6_decimals", "amount_largest", "amount_leading_zeros",
        "seats_largest", "mau_largest"])
def test_number_within_the_bounds_is_landed_exactly(paths, capsys, column, table, value):
    land_tables(paths, setv(table, 0, column, value))
    rc, out, err = run_land(paths, capsys)
    assert rc == 0, err
    key = FILES_BY_NAME[table].key[0]
    first = minimal_valid_tables(MONTH)[table][0][key]
    got = query(paths[1], f"SELECT {column} FROM raw.{table} WHERE {key} = ?", [first])[0][0]
    from decimal import Decimal
    assert Decimal(got) == Decimal(value)


BEYOND = [
    # id, file, column, value, words of the rule
    ("amount_10_pow_10", "billing_lines", "amount_usd", "10000000000",
     "below 10^10 in absolute value"),
    ("amount_10_pow_10_with_decimals", "billing_lines", "amount_usd", "10000000000.000001",
     "below 10^10 in absolute value"),
    ("amount_10_pow_16", "billing_lines", "amount_usd", "10000000000000000",
     "below 10^10 in absolute value"),
    ("seats_10_pow_12", "seat_snapshots", "paid_seats", "1000000000000",
     "paid_seats is below 10^12"),
    ("seats_2_pow_63", "seat_snapshots", "paid_seats", str(2 ** 63), "paid_seats is below 10^12"),
    ("mau_10_pow_12", "mau_snapshots", "monthly_active_users", "1000000000000",
     "monthly_active_users is below 10^12"),
    ("mau_2_pow_63_minus_1", "mau_snapshots", "monthly_active_users", str(2 ** 63 - 1),
     "monthly_active_users is below 10^12"),
    ("mau_2_pow_63", "mau_snapshots", "monthly_active_users", str(2 ** 63),
     "monthly_active_users is below 10^12"),
    ("mau_40_digits", "mau_snapshots", "monthly_active_users", "9" * 40,
     "monthly_active_users is below 10^12"),
]


@pytest.mark.parametrize("table,column,value,words", [b[1:] for b in BEYOND],
                         ids=[b[0] for b in BEYOND])
def test_number_beyond_the_bounds_is_refused(paths, capsys, table, column, value, words):
    land_tables(paths, setv(table, 1, column, value))
    v, err = assert_refused(paths, capsys, f"{table}.csv", column, 1, words)
    assert v["check"] == "bounds"
    assert v["examples"][0]["line"] == 3 and v["examples"][0][column] == value
    # reported as beyond the bound only, not also as "not a number"
    rep = json.loads(report_path(paths[1], M).read_text())
    assert [x["check"] for x in rep["violations"]] == ["bounds"]


def test_amount_with_7_decimals_is_refused_as_a_type_not_a_bound(paths, capsys):
    land_tables(paths, setv("billing_lines", 0, "amount_usd", "9999999999.9999999"))
    v, _ = assert_refused(paths, capsys, "billing_lines.csv", "amount_usd", 1,
                          "at most 6 digits after it")
    assert v["check"] == "type"


def test_raw_tables_of_an_older_warehouse_are_migrated_once(paths, capsys):
    """amount_usd was DECIMAL(18,4): ensure_raw_schema alters raw and raw_archive
    to DECIMAL(20,6), keeping every value; running it again alters nothing."""
    from decimal import Decimal

    from pci.core.contract import AMOUNT_TYPE, ensure_raw_schema, migrate_raw_types, raw_table_ddl

    wh = paths[1]
    wh.parent.mkdir(parents=True)
    con = duckdb.connect(str(wh))
    for schema in ("raw", "raw_archive"):
        con.execute(f"CREATE SCHEMA {schema}")
        con.execute(raw_table_ddl(FILES_BY_NAME["billing_lines"], schema)
                    .replace(AMOUNT_TYPE, "DECIMAL(18,4)"))
        con.execute(f"INSERT INTO {schema}.billing_lines VALUES ('L1', DATE '2021-07-01', 'S1', "
                    f"'CHARGE', 99999999999999.9999, DATE '2021-07-01', 'old')")
    ensure_raw_schema(con)
    types = con.execute("SELECT table_schema, data_type FROM information_schema.columns "
                        "WHERE column_name = 'amount_usd' ORDER BY 1").fetchall()
    assert types == [("raw", AMOUNT_TYPE), ("raw_archive", AMOUNT_TYPE)]
    assert con.execute("SELECT amount_usd FROM raw_archive.billing_lines").fetchall() == [
        (Decimal("99999999999999.9999"),)]
    assert migrate_raw_types(con) == []  # idempotent
    con.close()
    land_tables(paths, setv("billing_lines", 0, "amount_usd", "0.000001"))
    rc, out, err = run_land(paths, capsys)
    assert rc == 0, err
    assert query(wh, "SELECT amount_usd FROM raw.billing_lines WHERE line_id = 'B001'") == [
        (Decimal("0.000001"),)]


# ------------------------------------------------------------------ section 2: line ends, encoding


def _line_ends(folder: Path, name: str, convert) -> Path:
    """Rewrite ``<name>.csv`` with its line ends changed by ``convert(lines)``
    (lines without their LF) and refresh the manifest."""
    p = folder / f"{name}.csv"
    lines = p.read_bytes().split(b"\n")[:-1]
    p.write_bytes(convert(lines))
    write_manifest(folder)
    return p


def test_line_ends_cr_only_is_refused(paths, capsys):
    folder = land_tables(paths)
    _line_ends(folder, "tenants", lambda lines: b"".join(l + b"\r" for l in lines))
    v, err = assert_refused(paths, capsys, "tenants.csv", "line endings", 4, "bare CR")
    assert v["check"] == "format"
    assert v["examples"][0] == {"line": 1, "ends_with": "CR", "expected": "LF or CRLF"}
    assert "line=1, ends_with='CR'" in err


def test_line_ends_mixed_is_refused(paths, capsys):
    folder = land_tables(paths)
    # LF everywhere, but line 3 ends with CRLF and line 4 with a bare CR
    _line_ends(folder, "billing_lines", lambda lines: b"".join(
        l + {2: b"\r\n", 3: b"\r"}.get(i, b"\n") for i, l in enumerate(lines)))
    v, err = assert_refused(paths, capsys, "billing_lines.csv", "line endings", 2, "not a mix")
    assert v["examples"] == [{"line": 3, "ends_with": "CRLF", "expected": "LF (as line 1)"},
                             {"line": 4, "ends_with": "CR", "expected": "LF (as line 1)"}]
    assert "billing_lines.csv | line endings" in err and "line=3" in err


def test_line_ends_crlf_only_is_accepted(paths, capsys):
    folder = land_tables(paths)
    for f in FILES:
        _line_ends(folder, f.name, lambda lines: b"".join(l + b"\r\n" for l in lines))
    rc, out, err = run_land(paths, capsys)
    assert rc == 0, err
    assert query(paths[1], "SELECT count(*) FROM raw.billing_lines") == [(3,)]


def test_line_ends_lf_only_is_accepted_and_so_are_other_breaks_inside_quotes(paths, capsys):
    folder = land_tables(paths)
    p = folder / "partners.csv"  # LF lines; a CRLF and a bare CR inside quoted names
    p.write_bytes(b'partner_id,partner_name,country\nP001,"Contoso\r\nConsulting",SE\n'
                  b'P002,"Fabrikam\rInc.",US\nP003,Northwind,\n')
    q = folder / "tenants.csv"  # CRLF lines; an LF inside a quoted name
    q.write_bytes(b'tenant_id,tenant_name,is_production\r\nT001,"Tailspin\nToys",true\r\n'
                  b"T002,Wide World Importers,true\r\nT003,Adventure Works,false\r\n")
    write_manifest(folder)
    rc, out, err = run_land(paths, capsys)
    assert rc == 0, err
    assert query(paths[1], "SELECT partner_name FROM raw.partners ORDER BY 1")[:2] == [
        ("Contoso\r\nConsulting",), ("Fabrikam\rInc.",)]
    assert query(paths[1], "SELECT tenant_name FROM raw.tenants WHERE tenant_id = 'T001'") == [
        ("Tailspin\nToys",)]


@pytest.mark.parametrize("data,suspect", [
    (b"a,b\n1,2\n3,4\n", False),
    (b"a,b\r\n1,2\r\n3,4\r\n", False),
    (b"a,b\r1,2\r", True),
    (b"a,b\n1,2\r\n", True),
    (b"a,b\r\n1,2\n", True),
    (b"a,b\r\n" + b"x" * 20 + b"\n", True),  # the bare LF in a chunk without CR
], ids=["lf", "crlf", "cr", "lf_then_crlf", "crlf_then_lf", "lf_in_later_chunk"])
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 1 << 20])
def test_line_end_counts_hold_across_chunk_boundaries(tmp_path, data, suspect, chunk_size):
    p = tmp_path / "f.csv"
    p.write_bytes(data)
    scan = files.scan_file(p, chunk_size=chunk_size)
    import hashlib
    assert scan.sha256 == hashlib.sha256(data).hexdigest() and scan.size == len(data)
    assert scan.line_ends_suspect is suspect
    if data.count(b"\r\n") == data.count(b"\r"):
        assert scan.crlf == data.count(b"\r\n")


def test_invalid_utf8_in_a_later_line_is_refused(paths, capsys):
    def many_partners(t):
        t["partners"] += [{"partner_id": f"P{i:05d}", "partner_name": f"Partner {i}",
                           "country": "FR"} for i in range(4, 3000)]
    folder = land_tables(paths, many_partners)
    p = folder / "partners.csv"
    p.write_bytes(p.read_bytes().replace(b"Partner 2500,", b"Partner 25\xe900,"))
    write_manifest(folder)
    line = 1 + next(i for i, l in enumerate(p.read_bytes().split(b"\n")) if b"\xe9" in l)
    assert line == 2501  # header, P001 .. P003, then P00004 on line 5
    v, err = assert_refused(paths, capsys, "partners.csv", "csv format", 1, "well-formed CSV")
    assert v["examples"][0]["line"] == line and v["examples"][0]["error"] == "INVALID ENCODING"


def test_invalid_utf8_in_the_header_is_refused(paths, capsys):
    folder = land_tables(paths)
    p = folder / "products.csv"
    p.write_bytes(p.read_bytes().replace(b"product_name", b"product_n\xe4me", 1))
    write_manifest(folder)
    v, err = assert_refused(paths, capsys, "products.csv", "header", 1, "UTF-8")
    assert v["examples"][0]["line"] == 1 and "0xe4" in v["examples"][0]["error"]


def test_any_csv_reader_error_is_a_violation(paths, capsys, monkeypatch):
    """A file DuckDB's CSV reader fails on (here: mixed line ends that got past
    the line-end check) is refused with a report, not a traceback."""
    folder = land_tables(paths)
    _line_ends(folder, "seat_snapshots", lambda lines: b"".join(
        l + (b"\r\n" if i == 2 else b"\n") for i, l in enumerate(lines)))
    monkeypatch.setattr(files, "check_line_endings", lambda path, filename: [])
    v, err = assert_refused(paths, capsys, "seat_snapshots.csv", "csv format", 1,
                            "DuckDB's CSV reader")
    assert "invalid state" in v["examples"][0]["error"]
    assert "Traceback" not in err


# ------------------------------------------------------------------ links out of the landing folder


SECRET = "root-secret:x:0:0:this line must never reach a report"


@pytest.fixture
def outside(tmp_path):
    d = tmp_path / "elsewhere"
    d.mkdir()
    (d / "secret.csv").write_text(f"{SECRET}\n{SECRET}\n")
    return d


def _assert_secret_not_reported(paths, err):
    assert "root-secret" not in err
    assert "root-secret" not in report_path(paths[1], M).read_text()


def test_csv_linked_out_of_the_landing_is_refused_unread(paths, capsys, outside):
    folder = land_tables(paths)
    (folder / "billing_lines.csv").unlink()
    (folder / "billing_lines.csv").symlink_to(outside / "secret.csv")
    write_manifest(folder)  # (the exporter's manifest may even list the target's checksum)
    v, err = assert_refused(paths, capsys, "billing_lines.csv", "file", 1,
                            "a link to a path outside the landing folder; it was not read")
    assert v["check"] == "link" and v["examples"] == [{"path": f"{MONTH}/billing_lines.csv"}]
    _assert_secret_not_reported(paths, err)


def test_csv_linked_inside_the_landing_is_read(paths, capsys):
    landing, _ = paths
    folder = land_tables(paths)
    shared = landing / "shared"
    shared.mkdir()
    (folder / "products.csv").rename(shared / "products.csv")
    (folder / "products.csv").symlink_to(Path("..") / "shared" / "products.csv")
    rc, out, err = run_land(paths, capsys)
    assert rc == 0, err


def test_month_folder_linked_out_of_the_landing_is_refused_unread(paths, capsys, outside):
    landing, _ = paths
    real = write_export(outside, MONTH, minimal_valid_tables(MONTH))
    (real / "partners.csv").write_text(f"{SECRET}\n")
    landing.mkdir()
    (landing / MONTH).symlink_to(real, target_is_directory=True)
    with duckdb.connect(":memory:") as con:
        assert needs_landing(landing, con, M)  # ready, and landing it refuses it
    v, err = assert_refused(paths, capsys, MONTH, "folder", 1,
                            "the month folder is a link to a path outside the landing folder")
    assert v["check"] == "link"
    _assert_secret_not_reported(paths, err)


def test_manifest_linked_out_of_the_landing_is_refused_unread(paths, capsys, outside):
    folder = land_tables(paths)
    (outside / MANIFEST).write_text((folder / MANIFEST).read_text())
    (folder / MANIFEST).unlink()
    (folder / MANIFEST).symlink_to(outside / MANIFEST)
    v, err = assert_refused(paths, capsys, MANIFEST, "file", 1, "it was not read")
    assert v["check"] == "link"


# --------------------------------------------------------------------------- what a report quotes


def test_long_bad_value_is_shown_shortened_and_escaped(paths, capsys):
    value = "\x1b[2J" + "9" * 300 + "\u202e"
    land_tables(paths, setv("seat_snapshots", 2, "paid_seats", value))
    v, err = assert_refused(paths, capsys, "seat_snapshots.csv", "paid_seats", 1, "an integer")
    shown = v["examples"][0]["paid_seats"]
    assert shown.startswith("\\x1b[2J999") and shown.endswith("...")
    assert len(shown) <= violations.MAX_VALUE_CHARS
    assert "\x1b" not in err and "9" * 100 not in err
    assert "\x1b" not in report_path(paths[1], M).read_text(encoding="utf-8")
    assert f"paid_seats='{shown}'" in err


def test_excerpt():
    assert violations.excerpt("plain text") == "plain text"
    assert violations.excerpt("a\tb\nc\rd\x00e\x7f") == "a\\tb\\nc\\rd\\x00e\\x7f"
    assert violations.excerpt("x" * 80) == "x" * 80
    assert violations.excerpt("x" * 81) == "x" * 77 + "..."
    assert violations.excerpt("\n" * 50) == "\\n" * 38 + "..."


def test_examples_are_made_safe_where_a_violation_is_made():
    v = violations.Violation("f.csv", "c\nd", 1, [{"line": 2, "value": "y" * 500}, "z\x1b"], "r")
    assert v.column_or_rule == "c\\nd"
    assert v.examples == [{"line": 2, "value": "y" * 77 + "..."}, {"value": "z\\x1b"}]


# ------------------------------------------------------------------ a failed load keeps its cause


def test_failed_rollback_does_not_mask_the_cause():
    """When the transaction is already gone (e.g. the disk filled up), the error
    that ended it is raised, not "cannot rollback - no transaction is active"."""
    from pci.land import landing

    class DiskFull(Exception):
        pass

    class Con:
        def __init__(self):
            self.con = duckdb.connect(":memory:")

        def execute(self, sql, *args):
            if sql.startswith("INSERT INTO raw."):
                self.con.execute("ROLLBACK")  # the transaction ends with the failure
                raise DiskFull("No space left on device")
            return self.con.execute(sql, *args)

    with pytest.raises(DiskFull, match="No space left") as exc:
        landing._load(Con(), M, "0" * 64, {})
    assert any("rollback failed too" in n for n in getattr(exc.value, "__notes__", []))
