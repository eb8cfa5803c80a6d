"""`python -m pci export`: the published scores of a range of months as one CSV file."""
from __future__ import annotations

import csv
import errno
import re
import sys
import types
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml

from pci.cli import main
from pci.core.catalog import SCORE_NAMES, copy_path, marker_path
from pci.core.errors import EXIT_ENVIRONMENT, EXIT_REFUSED, EXIT_USAGE, Refusal
from tests.support import mart_fixture as fx

ROOT = Path(__file__).resolve().parents[1]
#: a revenue a float cannot hold (it would read 1e16), and a partner id that needs quoting
BIG = "9999999999999999.99"
ODD_PARTNER = 'P1006, "Tailspin"'


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """The explain/report fixture mart (no dbt), with one amount to the cent that a float
    would round and one partner id holding a comma and quotes."""
    path = fx.build_mart(tmp_path_factory.mktemp("export") / "pci.duckdb")
    with duckdb.connect(str(path)) as con:
        con.execute(f"UPDATE main.pci_monthly_scores SET net_new_revenue_usd = {BIG} "
                    "WHERE partner_id = 'P1009' AND score_month = DATE '2021-09-01'")
        con.execute("UPDATE main.pci_monthly_scores SET partner_id = ? WHERE partner_id = 'P1006'",
                    [ODD_PARTNER])
    return path


def export(capsys, warehouse, out, *args):
    status = main(["export", "--warehouse", str(warehouse), "--out", str(out), *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    return header, rows


def published(warehouse: Path, first: str, last: str) -> list[list[str | None]]:
    """The published rows of ``first`` … ``last`` read with SQL, every column as DuckDB's
    text of the stored value (mau_growth, a DOUBLE, as the double itself)."""
    cols = ", ".join(c if c == "mau_growth" else f"CAST({c} AS VARCHAR)" for c in SCORE_NAMES)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [list(r) for r in con.execute(
            f"SELECT {cols} FROM main.pci_monthly_scores WHERE score_month BETWEEN ? AND ? "
            f"ORDER BY score_month, partner_id", [f"{first}-01", f"{last}-01"]).fetchall()]


def assert_same_rows(rows: list[list[str]], expected: list[list]) -> None:
    growth = SCORE_NAMES.index("mau_growth")
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected):
        assert len(got) == len(SCORE_NAMES)
        for i, (g, w) in enumerate(zip(got, want)):
            if i == growth:
                assert (g == "" if w is None else float(g) == w), (SCORE_NAMES[i], g, w)
            else:
                assert g == ("" if w is None else w), (SCORE_NAMES[i], g, w)


def no_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_header_is_the_output_contract_in_its_order(warehouse, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    status, stdout, err = export(capsys, warehouse, out, "--month", "2021-09")
    assert status == 0, err
    header, _ = read_csv(out)
    yml = ROOT / "models" / "marts" / "pci_monthly_scores.yml"
    model = yaml.safe_load(yml.read_text(encoding="utf-8"))
    contract = [c["name"] for c in model["models"][0]["columns"]]
    assert header == contract == list(SCORE_NAMES)
    assert header[:2] == ["score_month", "partner_id"] and header[-1] == "window_complete"
    assert "scores.csv: 9 rows of 2021-09" in stdout


def test_every_published_row_every_column_exactly_as_stored(warehouse, tmp_path, capsys):
    out = tmp_path / "all.csv"
    status, _, err = export(capsys, warehouse, out, "--month", "2021-07", "--through", "2021-09")
    assert status == 0, err
    _, rows = read_csv(out)
    assert_same_rows(rows, published(warehouse, "2021-07", "2021-09"))
    assert len(rows) == len(fx.EXPECTED)
    # decimals with every stored digit, never through a float; booleans and nulls as the spec's CSV
    by_key = {(r[0], r[1]): dict(zip(SCORE_NAMES, r)) for r in rows}
    big = by_key[("2021-09-01", "P1009")]
    assert big["net_new_revenue_usd"] == BIG and Decimal(big["net_new_revenue_usd"]) == Decimal(BIG)
    assert by_key[("2021-09-01", "P1001")]["pci_score"] == "100.00"
    assert by_key[("2021-09-01", "P1002")]["pci_score"] == "71.93"
    assert by_key[("2021-09-01", ODD_PARTNER)]["points_developers"] == "0.00"
    assert {r["window_complete"] for r in by_key.values()} == {"false"}
    assert by_key[("2021-09-01", "P1003")]["mau_growth"] == ""  # not eligible: null
    assert ('"P1006, ""Tailspin"""' in out.read_text(encoding="utf-8")
            and "\r" not in out.read_text(encoding="utf-8"))


def test_a_range_of_two_months_in_order_with_iso_dates(warehouse, tmp_path, capsys):
    out = tmp_path / "two.csv"
    status, stdout, err = export(capsys, warehouse, out, "--month", "2021-08",
                                 "--through", "2021-09")
    assert status == 0, err
    _, rows = read_csv(out)
    assert all(re.fullmatch(r"\d{4}-\d{2}-01", r[0]) for r in rows)
    assert sorted({r[0] for r in rows}) == ["2021-08-01", "2021-09-01"]
    assert [(r[0], r[1]) for r in rows] == sorted((r[0], r[1]) for r in rows)
    assert_same_rows(rows, published(warehouse, "2021-08", "2021-09"))
    assert len(rows) == len(fx.expected(fx.MONTHS[1])) + len(fx.expected(fx.MONTHS[2]))
    assert "2021-08 … 2021-09" in stdout
    # without --through: just --month
    status, _, err = export(capsys, warehouse, out, "--month", "2021-08")
    assert status == 0, err
    _, rows = read_csv(out)
    assert {r[0] for r in rows} == {"2021-08-01"} and len(rows) == len(fx.expected(fx.MONTHS[1]))


def test_a_month_not_published_is_refused_and_nothing_is_written(warehouse, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    status, _, err = export(capsys, warehouse, out, "--month", "2021-06", "--through", "2021-10")
    assert status == EXIT_REFUSED
    assert "not published: 2021-06, 2021-10" in err and "nothing was written" in err
    assert not out.exists() and no_leftovers(tmp_path) == []
    # an earlier file at --out stays as it was
    out.write_text("earlier\n", encoding="utf-8")
    status, _, err = export(capsys, warehouse, out, "--month", "2021-09", "--through", "2021-10")
    assert status == EXIT_REFUSED and "not published: 2021-10" in err
    assert out.read_text(encoding="utf-8") == "earlier\n" and no_leftovers(tmp_path) == []


def test_usage_errors(warehouse, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    status, _, err = export(capsys, warehouse, out, "--month", "2021-09", "--through", "2021-08")
    assert status == EXIT_USAGE and "--through 2021-08 is before --month 2021-09" in err
    status, _, err = export(capsys, warehouse, out, "--month", "2021-13")
    assert status == EXIT_USAGE and "--month" in err
    status, _, err = export(capsys, warehouse, out, "--month", "2021-09", "--through", "09-2021")
    assert status == EXIT_USAGE and "--through" in err
    status, _, err = export(capsys, tmp_path / "none.duckdb", out, "--month", "2021-09")
    assert status == EXIT_USAGE and "no warehouse at" in err
    status, _, err = export(capsys, warehouse, tmp_path / "no" / "x.csv", "--month", "2021-09")
    assert status == EXIT_USAGE and "no folder" in err
    status, _, err = export(capsys, warehouse, warehouse, "--month", "2021-09")
    assert status == EXIT_USAGE and "is the warehouse" in err
    assert not out.exists() and no_leftovers(tmp_path) == []


def test_a_failed_write_leaves_no_file(warehouse, tmp_path, capsys, monkeypatch):
    from pci.read import export as module

    calls = []

    def full_disk(value):
        calls.append(value)
        if len(calls) > 40:  # some rows written already
            raise OSError(errno.ENOSPC, "No space left on device")
        return str(value)

    monkeypatch.setattr(module, "csv_value", full_disk)
    out = tmp_path / "scores.csv"
    status, _, err = export(capsys, warehouse, out, "--month", "2021-07", "--through", "2021-09")
    assert status == EXIT_ENVIRONMENT and "no space left" in err
    assert not out.exists() and no_leftovers(tmp_path) == []


@pytest.mark.parametrize("spark", [None, types.ModuleType("pci.read.spark_mart")],
                         ids=["no module", "no reader in it"])
def test_spark_is_not_available_in_this_build(warehouse, tmp_path, capsys, monkeypatch, spark):
    # None: as if the module did not exist; else a Spark module without read_published_scores
    monkeypatch.setitem(sys.modules, "pci.read.spark_mart", spark)
    out = tmp_path / "scores.csv"
    status, _, err = export(capsys, warehouse, out, "--engine", "spark", "--month", "2021-09")
    assert status == EXIT_USAGE and "--engine spark: not available in this build" in err
    assert not out.exists() and no_leftovers(tmp_path) == []


def test_a_spark_reader_plugs_in(warehouse, tmp_path, capsys, monkeypatch):
    asked = []

    def read_published_scores(wh, first, last):
        asked.append((wh, first, last))
        if last > fx.LATEST:
            raise Refusal("not published: 2021-10")
        return list(SCORE_NAMES), [(fx.LATEST, "P1", Decimal("0.10"), *[None] * 16)]

    spark = types.ModuleType("pci.read.spark_mart")
    spark.read_published_scores = read_published_scores
    monkeypatch.setitem(sys.modules, "pci.read.spark_mart", spark)
    out = tmp_path / "scores.csv"
    status, _, err = export(capsys, warehouse, out, "--engine", "spark", "--month", "2021-09")
    assert status == 0, err
    assert asked == [(warehouse, fx.LATEST, fx.LATEST)]
    assert read_csv(out)[1] == [["2021-09-01", "P1", "0.10", *[""] * 16]]
    status, _, err = export(capsys, warehouse, tmp_path / "b.csv", "--engine", "spark",
                            "--month", "2021-09", "--through", "2021-10")
    assert status == EXIT_REFUSED and "2021-10" in err and not (tmp_path / "b.csv").exists()


def test_reads_the_analysts_copy_and_the_warehouse_for_a_month_it_lacks(tmp_path, capsys):
    from pci.publish.analyst_copy import publish_read_only_copy

    warehouse = fx.build_mart(tmp_path / "pci.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        publish_read_only_copy(con, warehouse)
        # published after the copy was taken (its refresh failed, say)
        con.execute("UPDATE main.pci_monthly_scores SET competency_level = 'changed' "
                    "WHERE score_month = DATE '2021-09-01'")
    out = tmp_path / "scores.csv"
    status, _, err = export(capsys, warehouse, out, "--month", "2021-09")
    assert status == 0, err
    assert {r[SCORE_NAMES.index("competency_level")] for r in read_csv(out)[1]} != {"changed"}
    status, _, err = export(capsys, warehouse, out, "--month", "2021-09",
                            "--source", "warehouse")
    assert status == 0, err
    assert {r[SCORE_NAMES.index("competency_level")] for r in read_csv(out)[1]} == {"changed"}
    with duckdb.connect(str(warehouse)) as con:
        con.execute("INSERT INTO main.pci_monthly_scores SELECT * REPLACE (DATE '2021-10-01' "
                    "AS score_month) FROM main.pci_monthly_scores "
                    "WHERE score_month = DATE '2021-09-01'")
    # a month the copy lacks: the whole range is read from the warehouse
    status, _, err = export(capsys, warehouse, out, "--month", "2021-09", "--through", "2021-10")
    assert status == 0, err
    _, rows = read_csv(out)
    assert_same_rows(rows, published(warehouse, "2021-09", "2021-10"))
    # a copy whose last refresh failed is read with a warning
    marker_path(copy_path(warehouse)).write_text('{"why": "disk full"}', encoding="utf-8")
    status, _, err = export(capsys, warehouse, out, "--month", "2021-09")
    assert status == 0, err
    assert "warning: the analysts' copy" in err and "out of date" in err


def test_a_month_published_with_no_partners_is_exported_empty(tmp_path, capsys):
    from pci.core.catalog import ensure_publish_schema

    warehouse = fx.build_mart(tmp_path / "pci.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        ensure_publish_schema(con)
        con.execute("INSERT INTO main.pci_score_publications (publication_id, score_month, "
                    "published_at, input_load_ids, row_count, scores_sha256, contributions_sha256, "
                    "changed_partners) VALUES ('pub-2021-10', DATE '2021-10-01', "
                    "TIMESTAMP '2021-11-02 03:00', '[]', 0, 'x', 'y', 0)")
    out = tmp_path / "scores.csv"
    status, _, err = export(capsys, warehouse, out, "--month", "2021-09", "--through", "2021-10")
    assert status == 0, err
    assert "note: month 2021-10 is published with no partners" in err
    _, rows = read_csv(out)
    assert {r[0] for r in rows} == {"2021-09-01"}
    assert_same_rows(rows, published(warehouse, "2021-09", "2021-10"))
