"""Malformed, hostile and out-of-range exports through `python -m pci run`.

A month of a run range arrives broken: a file with CR-only line ends, a file
with mixed line ends, a ``billing_lines.csv`` that is a link to /etc/passwd,
amounts and counts just beyond the contract's bounds (raw-exports.md,
section 2). Each is refused at landing like any other violation: the run exits
1 with the report on stderr naming the file and the line, nothing of the month
is landed, and the months published before keep every row. Values at the
bounds are published exactly (the module's own run).

One module-scoped run publishes 2021-07 … 2021-08 (one dbt build); every test
works on a copy of it, and its refused run stops at landing (no build).
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest

from tests.support.exports import minimal_valid_tables, write_export, write_manifest
from tests.support.published import published_rows
from tests.test_pipeline import pci_run

pytestmark = [pytest.mark.faults]

JUL, AUG, SEP, OCT = "2021-07", "2021-08", "2021-09", "2021-10"
MAX_AMOUNT = Decimal("9999999999.999999")  # the largest amount of the contract
MAX_COUNT = 10 ** 12 - 1  # the largest seat or MAU count


def tables(month: str, at_bounds: bool = False) -> dict:
    t = minimal_valid_tables(month)
    if at_bounds:  # on S001, the CSP subscription of P001 (credited for revenue and MAU)
        t["billing_lines"].append({"line_id": "B_MAX",
                                   "billing_date": dt.date.fromisoformat(f"{month}-10"),
                                   "subscription_id": "S001", "line_type": "CHARGE",
                                   "amount_usd": MAX_AMOUNT})
        t["seat_snapshots"][0]["paid_seats"] = MAX_COUNT
        t["mau_snapshots"][0]["monthly_active_users"] = MAX_COUNT
    return t


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """2021-07 and 2021-08 (with values at the bounds) run and published."""
    base = tmp_path_factory.mktemp("landing_faults")
    landing = base / "landing"
    write_export(landing, JUL, tables(JUL))
    write_export(landing, AUG, tables(AUG, at_bounds=True))
    res = pci_run(landing, base / "wh" / "pci.duckdb", JUL, AUG)
    assert res.returncode == 0, res.stderr[-3000:]
    return base


@pytest.fixture
def world(published, tmp_path) -> tuple[Path, Path]:
    """A private copy of the published world, with a valid 2021-10 after the broken
    2021-09 each test writes (so the refused month is inside the run's range)."""
    shutil.copytree(published, tmp_path / "w")
    landing, wh = tmp_path / "w" / "landing", tmp_path / "w" / "wh" / "pci.duckdb"
    write_export(landing, OCT, tables(OCT))
    return landing, wh


def refused_run(landing: Path, wh: Path):
    """Run 2021-09 … 2021-10: exit 1, nothing of 2021-09 landed, every published row kept."""
    before = published_rows(wh)
    res = pci_run(landing, wh, SEP, OCT)
    assert res.returncode == 1, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    assert "2021-09" in res.stderr and "refused" in res.stderr
    assert published_rows(wh) == before
    con = duckdb.connect(str(wh), read_only=True)
    try:
        landed = [r[0] for r in con.execute(
            "SELECT DISTINCT strftime(export_month, '%Y-%m') FROM raw.loads ORDER BY 1").fetchall()]
    finally:
        con.close()
    assert landed == [JUL, AUG]
    report = json.loads((wh.parent / "validation" / f"{SEP}.json").read_text())
    assert report["status"] == "failed"
    return res, report


def test_cr_only_line_ends_refuse_the_month(world):
    landing, wh = world
    folder = write_export(landing, SEP, tables(SEP))
    p = folder / "billing_lines.csv"
    p.write_bytes(p.read_bytes().replace(b"\n", b"\r"))
    write_manifest(folder)
    res, report = refused_run(landing, wh)
    assert "billing_lines.csv | line endings" in res.stderr
    assert "line=1, ends_with='CR'" in res.stderr
    v = next(x for x in report["violations"] if x["file"] == "billing_lines.csv")
    assert v["column_or_rule"] == "line endings" and v["count"] == 4


def test_mixed_line_ends_refuse_the_month(world):
    landing, wh = world
    folder = write_export(landing, SEP, tables(SEP))
    p = folder / "seat_snapshots.csv"
    lines = p.read_bytes().split(b"\n")[:-1]
    p.write_bytes(b"".join(l + (b"\r\n" if i == 2 else b"\n") for i, l in enumerate(lines)))
    write_manifest(folder)
    res, report = refused_run(landing, wh)
    assert "seat_snapshots.csv | line endings" in res.stderr
    assert "line=3, ends_with='CRLF'" in res.stderr
    v = next(x for x in report["violations"] if x["file"] == "seat_snapshots.csv")
    assert v["examples"] == [{"line": 3, "ends_with": "CRLF", "expected": "LF (as line 1)"}]


def test_csv_linked_to_etc_passwd_is_refused_unread(world):
    passwd = Path("/etc/passwd")
    if not passwd.is_file():
        pytest.skip("no /etc/passwd on this machine")
    landing, wh = world
    folder = write_export(landing, SEP, tables(SEP))
    (folder / "billing_lines.csv").unlink()
    (folder / "billing_lines.csv").symlink_to(passwd)
    write_manifest(folder)  # lists the target's rows and checksum: the link is still refused
    res, report = refused_run(landing, wh)
    assert "billing_lines.csv | file | the file is a link to a path outside the landing folder; " \
           "it was not read" in res.stderr
    assert [(v["file"], v["check"]) for v in report["violations"]] == [("billing_lines.csv", "link")]
    written = [res.stdout, res.stderr]
    written += [p.read_text(errors="replace") for p in (wh.parent / "validation").glob("*.json")]
    written += [p.read_text(errors="replace") for p in (wh.parent / "reports").glob("*.json")]
    entries = [line.strip() for line in passwd.read_text(errors="replace").splitlines() if line.strip()]
    for text in written:
        for entry in entries:
            assert entry not in text
        assert "root:x:0:0" not in text


def test_amounts_and_counts_just_beyond_the_bounds_refuse_the_month(world):
    landing, wh = world
    t = tables(SEP)
    t["billing_lines"][0]["amount_usd"] = "10000000000"  # 10^10
    t["billing_lines"][2]["amount_usd"] = "10000000000.000001"
    t["seat_snapshots"][1]["paid_seats"] = str(2 ** 63)
    t["mau_snapshots"][1]["monthly_active_users"] = str(10 ** 12)
    write_export(landing, SEP, t)
    res, report = refused_run(landing, wh)
    got = {(v["file"], v["column_or_rule"], v["check"], v["count"],
            tuple(e["line"] for e in v["examples"])) for v in report["violations"]}
    assert got == {("billing_lines.csv", "amount_usd", "bounds", 2, (2, 4)),
                   ("seat_snapshots.csv", "paid_seats", "bounds", 1, (3,)),
                   ("mau_snapshots.csv", "monthly_active_users", "bounds", 1, (3,))}
    assert "billing_lines.csv | amount_usd | amount_usd is below 10^10 in absolute value" in res.stderr
    assert "mau_snapshots.csv | monthly_active_users | monthly_active_users is below 10^12" \
        in res.stderr
    assert f"line=3, subscription_id='S002', paid_seats='{2 ** 63}'" in res.stderr


def test_amounts_and_counts_at_the_bounds_are_published_exactly(published):
    """The module's run published 2021-08 with the largest amount, seat and MAU
    counts on P001's subscription: the revenue is the exact sum of its lines of
    the window rounded once, the MAU the count itself."""
    con = duckdb.connect(str(published / "wh" / "pci.duckdb"), read_only=True)
    try:
        revenue, mau, points = con.execute(
            "SELECT net_new_revenue_usd, mau_current, points_net_new_revenue "
            "FROM main.pci_monthly_scores WHERE score_month = DATE '2021-08-01' "
            "AND partner_id = 'P001'").fetchall()[0]
    finally:
        con.close()
    exact = Decimal(0)
    for month, bounds in ((JUL, False), (AUG, True)):
        for line in tables(month, bounds)["billing_lines"]:
            if line["subscription_id"] == "S001":
                sign = 1 if line["line_type"] == "CHARGE" else -1
                exact += sign * Decimal(str(line["amount_usd"]))
    assert exact == Decimal("10000002200.499999")
    assert revenue == exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert mau == MAX_COUNT
    assert points == Decimal("10.00")  # capped at the metric's maximum, no overflow
