"""`python -m pci report`: the offline HTML page, checked as written and as a browser shows it."""
from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from pci.cli import main
from pci.explain import load_metrics
from tests.support import mart_fixture as fx

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    return fx.build_mart(tmp_path_factory.mktemp("report") / "pci.duckdb")


@pytest.fixture(scope="module")
def page(warehouse, tmp_path_factory):
    out = tmp_path_factory.mktemp("report-out")
    assert main(["report", "--warehouse", str(warehouse), "--month", "2021-09", "--out", str(out)]) == 0
    path = out / "pci-report-2021-09.html"
    return path


def rows_of(html: str, table_id: str) -> list[str]:
    """partner ids of the rows of one table, in document order."""
    m = re.search(rf'<table id="{table_id}"[^>]*>.*?</table>', html, re.S)
    assert m, f"no table {table_id}"
    return re.findall(r'<tr data-partner="([^"]+)"', m.group(0))


def test_page_is_self_contained(page):
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html and "<script>" in html
    for ref in ("http://", "https://", "<link", " src=", "@import", "url("):
        assert ref not in html, f"the page references something outside it: {ref}"


def test_histogram_counts_every_partner_in_its_bin(page):
    html = page.read_text(encoding="utf-8")
    bins = {b: int(c) for b, c in re.findall(r'data-bin="([\d-]+)" data-count="(\d+)"', html)}
    expected = {f"{lo}-{lo + 10}": 0 for lo in range(0, 100, 10)}
    for row in fx.expected().values():
        lo = min(int(row["pci_score"] // 10) * 10, 90)
        expected[f"{lo}-{lo + 10}"] += 1
    assert bins == expected
    assert sum(bins.values()) == len(fx.expected())
    assert re.search(r'data-level="silver"', html) and re.search(r'data-level="gold"', html)


def test_partners_per_level(page):
    html = page.read_text(encoding="utf-8")
    table = re.search(r'<table id="level-counts".*?</table>', html, re.S).group(0)
    shown = {lv: int(n) for lv, n in re.findall(
        r'<tr data-level="(\w+)">.*?<td data-col="count">(\d+)</td>', table, re.S)}
    rows = fx.expected().values()
    assert shown == {lv: sum(r["competency_level"] == lv for r in rows)
                     for lv in ("gold", "silver", "none")}


def test_attainment_per_metric(page):
    html = page.read_text(encoding="utf-8")
    rows = list(fx.expected().values())
    for m in load_metrics():
        tr = re.search(rf'<tr data-metric="{m.key}">.*?</tr>', html, re.S).group(0)
        full = int(re.search(r'data-col="full">(\d+)<', tr).group(1))
        avg = Decimal(re.search(r'data-col="average">([\d.]+)<', tr).group(1))
        assert full == sum(r[m.points_column] == m.max_points for r in rows), m.key
        mean = sum(r[m.points_column] for r in rows) / len(rows)
        assert avg == mean.quantize(Decimal("0.01")), m.key


def test_biggest_movers_against_the_previous_month(page):
    html = page.read_text(encoding="utf-8")
    now, before = fx.expected(fx.MONTHS[2]), fx.expected(fx.MONTHS[1])
    deltas = {p: now[p]["pci_score"] - before[p]["pci_score"] for p in now if p in before}
    up = sorted((p for p, d in deltas.items() if d > 0), key=lambda p: -deltas[p])[:5]
    down = sorted((p for p, d in deltas.items() if d < 0), key=lambda p: deltas[p])[:5]
    assert rows_of(html, "movers-up") == up
    assert rows_of(html, "movers-down") == down
    new = sorted(set(now) - set(before))
    assert new and f"new this month ({len(new)}): {', '.join(new)}" in html


def test_first_month_has_no_comparison(warehouse, tmp_path, capsys):
    assert main(["report", "--warehouse", str(warehouse), "--month", "2021-07",
                 "--out", str(tmp_path)]) == 0
    html = (tmp_path / "pci-report-2021-07.html").read_text(encoding="utf-8")
    assert "2021-06 was not scored: no comparison" in html
    assert len(rows_of(html, "partners")) == len(fx.expected(fx.MONTHS[0]))


def test_month_not_scored(warehouse, tmp_path, capsys):
    assert main(["report", "--warehouse", str(warehouse), "--month", "2022-01",
                 "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "2022-01 was not scored" in err and "2021-07, 2021-08, 2021-09" in err
    assert not list(tmp_path.iterdir())


def test_static_table_is_ordered_by_score(page):
    html = page.read_text(encoding="utf-8")
    rows = fx.expected()
    assert rows_of(html, "partners") == sorted(rows, key=lambda p: (-rows[p]["pci_score"], p))


# --------------------------------------------------------------------------- in a browser

def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("headless Chromium not found (Debian package 'chromium'; `make browser` installs it)")
    return found


def browse(page: Path, fragment: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}",
           *extra, page.resolve().as_uri() + fragment]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.parametrize("column,descending", [("pci_score", False), ("pci_score", True),
                                               ("points_mau_growth", True), ("delta", True)])
def test_browser_sorts_the_table_from_the_address(page, tmp_path, column, descending):
    dom = browse(page, f"#sort={'-' if descending else ''}{column}", tmp_path, "--dump-dom").stdout
    assert 'data-ready="true"' in dom, "the page's script did not run"
    assert f'data-sorted-by="{"-" if descending else ""}{column}"' in dom
    rows = fx.expected()
    key = {"delta": lambda p: rows[p]["pci_score"] - fx.expected(fx.MONTHS[1])[p]["pci_score"]
           if p in fx.expected(fx.MONTHS[1]) else None}.get(column, lambda p: rows[p][column])
    known = [p for p in rows if key(p) is not None]
    # ties keep partner order; partners without a value (new ones for "change") go last
    expected = sorted(known, key=lambda p: ((-key(p) if descending else key(p)), p))
    expected += sorted(p for p in rows if key(p) is None)
    assert rows_of(dom, "partners") == expected


def test_browser_screenshot(page, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-2021-09.png"
    shot.unlink(missing_ok=True)
    browse(page, "#sort=-pci_score", tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)


def test_report_reads_the_copy_while_a_run_holds_the_warehouse(tmp_path, capsys):
    warehouse = fx.build_mart(tmp_path / "pci.duckdb")
    out = tmp_path / "out"
    assert main(["report", "--warehouse", str(warehouse), "--month", "2021-09", "--out", str(out),
                 "--source", "copy"]) == 2
    assert "no analyst copy" in capsys.readouterr().err
    with fx.HeldWarehouse(warehouse, copy=True):
        # the run deleted 2021-09 in its open transaction: the copy still has the published month
        assert main(["report", "--warehouse", str(warehouse), "--month", "2021-09",
                     "--out", str(out)]) == 0
    html = (out / "pci-report-2021-09.html").read_text(encoding="utf-8")
    assert len(rows_of(html, "partners")) == len(fx.expected())
    assert "from copy pci.duckdb" in html
