"""`python -m pci report`: the offline HTML page, checked as written and as a browser shows it."""
from __future__ import annotations

import html as htmllib
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from markupsafe import escape

from pci.cli import main
from pci.core import rules
from pci.read.mart import open_mart
from pci.read.report import write_report
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
    for m in rules.metrics():
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
    assert "No month before 2021-07 is published: no transitions." in html
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


#: markup, quotes, an ampersand, a terminal escape sequence and a control character
ODD_NAME = 'Odd <b>&"\' \x1b[31mCo\x07 <script>alert(1)</script>'


def test_partner_name_is_escaped_everywhere_it_appears(tmp_path):
    warehouse = fx.build_mart(tmp_path / "pci.duckdb")
    with duckdb.connect(str(warehouse)) as con:  # P1002 is a mover (down) in 2021-09
        con.execute("UPDATE raw.partners SET partner_name = ? WHERE partner_id = 'P1002'", [ODD_NAME])
    assert main(["report", "--warehouse", str(warehouse), "--month", "2021-09",
                 "--out", str(tmp_path)]) == 0
    page = (tmp_path / "pci-report-2021-09.html").read_text(encoding="utf-8")
    shown = 'Odd <b>&"\' Co <script>alert(1)</script>'  # the sequence and the control character removed
    escaped = str(escape(shown))
    assert htmllib.unescape(escaped) == shown and not re.search(r'[<>"\']|&(?!amp;|lt;|gt;|#)', escaped)
    for raw in ("<b>", "<script>alert", "\x1b", "\x07", shown):
        assert raw not in page
    # in the movers table, and in the partners table as text and as the value sorted on
    assert rows_of(page, "movers-down")[0] == "P1002"
    down = re.search(r'<table id="movers-down".*?</table>', page, re.S).group(0)
    assert f'<td class="l">{escaped}</td>' in down
    table = re.search(r'<table id="partners".*?</table>', page, re.S).group(0)
    assert f'<td data-col="partner_name" class="l" data-value="{escaped}">{escaped}</td>' in table
    # and in the new parts: the transitions (P1002 went gold → silver) and its trend's tooltip
    trans = re.search(r'<tr data-kind="down">.*?</tr>', page, re.S).group(0)
    assert f'<li data-partner-id="P1002">P1002 {escaped} <span class="chg">' in trans
    row = re.search(r'<tr data-partner="P1002">.*?</tr>', table, re.S).group(0)
    assert f"<title>P1002 {escaped}: the last 12 months\n" in row
    assert page.count(escaped) == 5 and page.count("Odd ") == 5


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
                                               ("points_mau_growth", True), ("delta", True),
                                               ("trend", True)])
def test_browser_sorts_the_table_from_the_address(page, tmp_path, column, descending):
    dom = browse(page, f"#sort={'-' if descending else ''}{column}", tmp_path, "--dump-dom").stdout
    assert 'data-ready="true"' in dom, "the page's script did not run"
    assert f'data-sorted-by="{"-" if descending else ""}{column}"' in dom
    rows = fx.expected()
    # the trend sorts by the change since the first scored month of the 12 (none: scored once)
    scored = {p: [fx.expected(m)[p]["pci_score"] for m in fx.MONTHS if p in fx.expected(m)]
              for p in rows}
    key = {"delta": lambda p: rows[p]["pci_score"] - fx.expected(fx.MONTHS[1])[p]["pci_score"]
           if p in fx.expected(fx.MONTHS[1]) else None,
           "trend": lambda p: scored[p][-1] - scored[p][0] if len(scored[p]) > 1 else None,
           }.get(column, lambda p: rows[p][column])
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


# --------------------------------------------------------------------------- transitions and trends

def transitions_of(html: str) -> dict[str, tuple[int, list[str], str]]:
    """kind -> (count, partner ids listed, the rest of the row's text)."""
    section = re.search(r'<table id="transitions-table".*?</table>', html, re.S).group(0)
    out = {}
    for kind, row in re.findall(r'<tr data-kind="(\w+)">(.*?)</tr>', section, re.S):
        count = int(re.search(r'data-col="count">(\d+)<', row).group(1))
        out[kind] = (count, re.findall(r'data-partner-id="([^"]+)"', row), row)
    return out


def test_level_transitions_against_the_previous_month(page):
    html = page.read_text(encoding="utf-8")
    assert "<h2>Level transitions against 2021-08</h2>" in html
    got = transitions_of(html)
    # from the fixture's rows, 2021-08 → 2021-09: Litware none → silver, Proseware
    # silver → gold; Fabrikam gold → silver; Tailspin new; nobody gone
    assert {k: v[:2] for k, v in got.items()} == {
        "up": (2, ["P1005", "P1008"]), "down": (1, ["P1002"]), "new": (1, ["P1006"]),
        "gone": (0, [])}
    assert "none → silver: 1; silver → gold: 1" in got["up"][2]
    assert "gold → silver: 1" in got["down"][2]
    assert ('<li data-partner-id="P1005">P1005 Litware Solutions AB '
            '<span class="chg">none → silver</span></li>') in got["up"][2]
    assert "new (not scored in 2021-08)" in got["new"][2] and "new (none)" in got["new"][2]
    assert "5 partners kept their level." in html


def test_every_kind_of_transition_and_the_cap(tmp_path, monkeypatch):
    from pci.read import report

    warehouse = fx.build_mart(tmp_path / "pci.duckdb")
    with duckdb.connect(str(warehouse)) as con:   # Northwind and Wingtip leave in 2021-09
        con.execute("DELETE FROM main.pci_monthly_scores WHERE score_month = DATE '2021-09-01' "
                    "AND partner_id IN ('P1003', 'P1007')")
    args = ["report", "--warehouse", str(warehouse), "--month", "2021-09", "--out", str(tmp_path)]
    assert main(args) == 0
    html = (tmp_path / "pci-report-2021-09.html").read_text(encoding="utf-8")
    got = transitions_of(html)
    assert {k: v[:2] for k, v in got.items()} == {
        "up": (2, ["P1005", "P1008"]), "down": (1, ["P1002"]), "new": (1, ["P1006"]),
        "gone": (2, ["P1003", "P1007"])}
    assert ('<li data-partner-id="P1007">P1007 Wingtip Systems GmbH '
            '<span class="chg">gone (was none)</span></li>') in got["gone"][2]
    assert "gone (not scored in 2021-09)" in got["gone"][2] and "… and" not in html
    assert "3 partners kept their level." in html
    # capped: the first partner of each kind, then how many more
    monkeypatch.setattr(report, "TRANSITIONS_SHOWN", 1)
    assert main(args) == 0
    got = transitions_of((tmp_path / "pci-report-2021-09.html").read_text(encoding="utf-8"))
    assert {k: v[:2] for k, v in got.items()} == {
        "up": (2, ["P1005"]), "down": (1, ["P1002"]), "new": (1, ["P1006"]),
        "gone": (2, ["P1003"])}
    assert '<li class="more">… and 1 more</li>' in got["up"][2]
    assert '<li class="more">… and 1 more</li>' in got["gone"][2]
    assert "more" not in got["down"][2]


def test_transitions_against_the_latest_published_month(tmp_path):
    warehouse = fx.build_mart(tmp_path / "pci.duckdb")
    with duckdb.connect(str(warehouse)) as con:   # 2021-08 not published
        con.execute("DELETE FROM main.pci_monthly_scores WHERE score_month = DATE '2021-08-01'")
    assert main(["report", "--warehouse", str(warehouse), "--month", "2021-09",
                 "--out", str(tmp_path)]) == 0
    html = (tmp_path / "pci-report-2021-09.html").read_text(encoding="utf-8")
    assert "<h2>Level transitions against 2021-07</h2>" in html
    assert ("2021-07 is the latest published month before 2021-09 (2021-08 was not published)."
            in html)
    got = transitions_of(html)
    # 2021-07 → 2021-09: Woodgrove (first scored in 2021-08) is new too
    assert {k: v[:2] for k, v in got.items()} == {
        "up": (2, ["P1005", "P1008"]), "down": (1, ["P1002"]),
        "new": (2, ["P1006", "P1009"]), "gone": (0, [])}


def test_trend_of_every_partner_with_its_tooltip(page):
    html = page.read_text(encoding="utf-8")
    table = re.search(r'<table id="partners".*?</table>', html, re.S).group(0)
    assert '<th data-col="trend" class="l" title="trend">trend</th>' in table
    row = re.search(r'<tr data-partner="P1009">.*?</tr>', table, re.S).group(0)
    cell = re.search(r'<td data-col="trend"[^>]*>.*?</td>', row, re.S).group(0)
    months = [f"2020-{m}: not published" for m in ("10", "11", "12")]
    months += [f"2021-0{m}: not published" for m in range(1, 7)]
    tooltip = "\n".join(["P1009 Woodgrove Digital Ltd: the last 12 months", *months,
                         "2021-07: not in that month&#39;s export",
                         "2021-08: 65.98 (silver)", "2021-09: 75.73 (silver)"])
    assert f"<title>{tooltip}</title>" in cell
    # 65.98 → 75.73: +9.75; the line joins months 11 and 12 of the 12 (x 3 + i × 74/11 →
    # 70.3 and 77.0; y 3 + 18 × (1 - score/100) → 9.1 and 7.4)
    assert 'data-value="9.75"' in cell
    assert re.findall(r'<polyline points="([^"]+)"', cell) == ["70.3,9.1 77.0,7.4"]
    assert len(re.findall(r"<circle ", cell)) == 2
    # Tailspin, scored once (0.00): one dot, no line, nothing to sort by
    row = re.search(r'<tr data-partner="P1006">.*?</tr>', table, re.S).group(0)
    cell = re.search(r'<td data-col="trend"[^>]*>.*?</td>', row, re.S).group(0)
    assert 'data-value=""' in cell and "<polyline" not in cell
    assert len(re.findall(r"<circle ", cell)) == 1 and "2021-09: 0.00 (none)</title>" in cell
    # Contoso, scored in all three published months: 88.86 → 99.67 → 100.00
    row = re.search(r'<tr data-partner="P1001">.*?</tr>', table, re.S).group(0)
    assert "2021-07: 88.86 (gold)\n2021-08: 99.67 (gold)\n2021-09: 100.00 (gold)</title>" in row
    assert 'data-col="trend" class="l" data-value="11.14"' in row


def test_report_lists_the_partners_at_risk(tmp_path):
    """The report's at-risk list is `pci at-risk`'s: the partners whose projected level is
    below their level, each with what changes and the cheapest way to keep it."""
    from pci.read.at_risk import at_risk

    warehouse = fx.projection_warehouse(tmp_path / "wh" / "pci.duckdb")
    with open_mart(warehouse) as mart:
        risks = at_risk(mart, fx.LATEST)
        path = write_report(mart, fx.LATEST, tmp_path / "out")
    html = path.read_text(encoding="utf-8")
    section = html[html.index('<section id="at-risk">'):html.index('<section id="all-partners">')]
    assert len(risks) >= 3
    assert f"{len(risks)} partners projected below their" in section
    assert "a projection, not a score" in section
    assert section.count("<tr data-partner=") == len(risks)
    for r in risks:
        assert f'data-partner="{r.partner_id}"' in section
        assert f"{r.level} {r.score} → {r.projected_level} {r.projected_score}" in section
        assert "to keep " + r.level in section


def test_report_of_a_month_without_projection_says_so(tmp_path):
    warehouse = fx.build_mart(tmp_path / "pci.duckdb")
    with open_mart(warehouse, "warehouse") as mart:
        html = write_report(mart, fx.LATEST, tmp_path / "out").read_text(encoding="utf-8")
    assert 'id="at-risk-none"' in html
