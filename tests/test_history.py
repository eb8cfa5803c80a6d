"""Where a partner is heading: its last 12 months and the level transitions of a month
(pci/read/history.py), and the two documented queries of docs/querying.md that give
the same ("A partner's last 12 months", "Level transitions of a month").

The expectations are written out by hand from the fixture's rows
(tests/support/mart_fixture.py; :func:`test_the_hand_written_rows_are_the_fixtures`
checks them against its EXPECTED rows), not computed by the code under test.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D
from pathlib import Path

import duckdb
import pytest

from pci.core.catalog import copy_path
from pci.publish.analyst_copy import publish_read_only_copy
from pci.read.history import level_transitions, partner_history, sparkline
from pci.read.mart import open_mart
from tests.support import mart_fixture as fx

DOC = Path(__file__).resolve().parents[1] / "docs" / "querying.md"
JUL, AUG, SEP, OCT = (dt.date(2021, m, 1) for m in (7, 8, 9, 10))
UNPUBLISHED = [dt.date(2020, 10, 1), dt.date(2020, 11, 1), dt.date(2020, 12, 1),
               *(dt.date(2021, m, 1) for m in range(1, 7))]  # 2020-10 … 2021-06

#: (month, score, level, points of metrics 1…6) from the fixture's rows
P1009 = {AUG: (D("65.98"), "silver", ("8.75", "6.00", "18.00", "5.00", "12.00", "16.23")),
         SEP: (D("75.73"), "silver", ("10.00", "6.00", "18.00", "5.00", "14.00", "22.73"))}
#: partner -> level in 2021-07, 2021-08, 2021-09 (None: no row)
LEVELS = {"P1001": ("gold", "gold", "gold"), "P1002": ("gold", "gold", "silver"),
          "P1003": ("none", "none", "none"), "P1004": ("none", "none", "none"),
          "P1005": ("none", "none", "silver"), "P1006": (None, None, "none"),
          "P1007": ("none", "none", "none"), "P1008": ("silver", "silver", "gold"),
          "P1009": (None, "silver", "silver")}
NAMES = {p: name for p, (name, _) in fx.PARTNERS.items()}


def test_the_hand_written_rows_are_the_fixtures():
    for month, (score, level, pts) in P1009.items():
        row = fx.expected(month)["P1009"]
        assert (row["pci_score"], row["competency_level"]) == (score, level)
        assert tuple(str(row[f"points_{m}"]) for m in fx.RULES) == pts
    for p, levels in LEVELS.items():
        assert tuple(fx.expected(m).get(p, {}).get("competency_level") for m in fx.MONTHS) == levels


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    return fx.build_mart(tmp_path_factory.mktemp("history") / "pci.duckdb")


def changed(tmp_path: Path, *statements: str) -> Path:
    """A copy of the fixture mart changed by ``statements``."""
    path = fx.build_mart(tmp_path / "pci.duckdb")
    with duckdb.connect(str(path)) as con:
        for sql in statements:
            con.execute(sql)
    return path


def moves(t, kind: str) -> list[tuple]:
    return [(m.partner_id, m.name, m.before, m.after) for m in t.of(kind)]


# --------------------------------------------------------------------------- a partner's months

def test_history_of_a_partner_oldest_first_with_its_gaps(warehouse):
    with open_mart(warehouse) as mart:
        rows = partner_history(mart, "P1009", SEP)
    assert [r.month for r in rows] == [*UNPUBLISHED, JUL, AUG, SEP]
    # 2020-10 … 2021-06 are not published; 2021-07 is, without P1009 (not in its export)
    assert [r.status for r in rows] == ["unpublished"] * 9 + ["absent", "scored", "scored"]
    for r in rows[:10]:
        assert r.gap and r.score is None and r.level is None and r.points == {}
    for r, month in zip(rows[10:], (AUG, SEP)):
        score, level, pts = P1009[month]
        assert not r.gap and (r.score, r.level) == (score, level)
        assert [r.points[m] for m in fx.RULES] == [D(x) for x in pts]
    assert rows[9].text() == "2021-07: not in that month's export"
    assert rows[0].text() == "2020-10: not published"
    assert rows[-1].text() == "2021-09: 75.73 (silver)"


def test_a_zero_score_is_a_score_and_a_missing_month_a_gap(warehouse):
    with open_mart(warehouse) as mart:
        rows = partner_history(mart, "P1006", SEP, months=3)   # new in 2021-09, score 0
        earlier = partner_history(mart, "P1002", AUG, months=2)
    assert [(r.month, r.status, r.score) for r in rows] == [
        (JUL, "absent", None), (AUG, "absent", None), (SEP, "scored", D("0.00"))]
    assert rows[-1].points == {m: D("0.00") for m in fx.RULES}
    # up to the month asked, not beyond it
    assert [(r.month, r.score, r.level) for r in earlier] == [
        (JUL, D("92.50"), "gold"), (AUG, D("88.50"), "gold")]


def test_a_month_published_with_no_partners_is_a_gap_of_a_published_month(tmp_path):
    path = changed(
        tmp_path,
        "CREATE TABLE main.pci_score_publications (publication_id VARCHAR, score_month DATE, "
        "published_at TIMESTAMP, row_count INTEGER)",
        "INSERT INTO main.pci_score_publications VALUES ('p-oct', DATE '2021-10-01', "
        "TIMESTAMP '2021-11-02 06:00:00', 0)")
    with open_mart(path) as mart:
        rows = partner_history(mart, "P1001", OCT, months=4)
        t = level_transitions(mart, OCT)
    assert [(r.month, r.status) for r in rows] == [
        (JUL, "scored"), (AUG, "scored"), (SEP, "scored"), (OCT, "absent")]
    # everyone scored in 2021-09 is gone in 2021-10
    assert t.previous == SEP and t.up == t.down == t.new == []
    assert moves(t, "gone") == [(p, NAMES[p], LEVELS[p][2], None) for p in sorted(LEVELS)]


def test_sparkline_scales_to_the_maximum_and_shows_gaps():
    # 0 → ▁ (0/7), 25 → 1.75 → ▃, 50 → 3.5 → ▅ (half up), 100 → █; None a gap
    assert sparkline([0, 25, 50, None, 100], 100) == "▁▃▅·█"
    # a metric's points on its own maximum: 18 of 30 → 4.2 → ▅, 30 of 30 → █, above → █
    assert sparkline([D("18.00"), D("30.00"), 31], D(30)) == "▅██"


# --------------------------------------------------------------------------- level transitions

def test_transitions_of_the_fixtures_months(warehouse):
    with open_mart(warehouse) as mart:
        sep, aug, jul = (level_transitions(mart, m) for m in (SEP, AUG, JUL))
    # 2021-09 against 2021-08: Litware none → silver, Proseware silver → gold; Fabrikam
    # gold → silver; Tailspin new; nobody gone; the five others kept their level
    assert sep.previous == AUG
    assert moves(sep, "up") == [("P1005", NAMES["P1005"], "none", "silver"),
                                ("P1008", NAMES["P1008"], "silver", "gold")]
    assert moves(sep, "down") == [("P1002", NAMES["P1002"], "gold", "silver")]
    assert moves(sep, "new") == [("P1006", NAMES["P1006"], None, "none")]
    assert sep.gone == [] and sep.same == 5
    assert sep.pairs("up") == [("none → silver", 1), ("silver → gold", 1)]
    assert (sep.up[0].score_before, sep.up[0].score_after) == (D("51.71"), D("75.86"))
    # 2021-08 against 2021-07: only Woodgrove is new
    assert aug.previous == JUL and moves(aug, "new") == [("P1009", NAMES["P1009"], None, "silver")]
    assert aug.up == aug.down == aug.gone == [] and aug.same == 7
    # 2021-07 is the first published month: nothing to compare with
    assert jul.previous is None and not (jul.up or jul.down or jul.new or jul.gone)


def test_every_kind_of_transition_with_its_count_and_partners(tmp_path):
    # Northwind and Wingtip leave the 2021-09 export
    path = changed(tmp_path, "DELETE FROM main.pci_monthly_scores WHERE score_month = "
                             "DATE '2021-09-01' AND partner_id IN ('P1003', 'P1007')")
    with open_mart(path) as mart:
        t = level_transitions(mart, SEP)
    got = {k: (len(t.of(k)), [m[0] for m in moves(t, k)]) for k in t.KINDS}
    assert got == {"up": (2, ["P1005", "P1008"]), "down": (1, ["P1002"]),
                   "new": (1, ["P1006"]), "gone": (2, ["P1003", "P1007"])}
    assert moves(t, "gone") == [("P1003", NAMES["P1003"], "none", None),
                                ("P1007", NAMES["P1007"], "none", None)]
    assert [m.change for m in t.gone] == ["gone (was none)", "gone (was none)"]
    assert t.same == 3   # Contoso, Adatum, Woodgrove


def test_transitions_are_against_the_previous_published_month(tmp_path):
    # 2021-08 not published: 2021-09 is compared with 2021-07
    path = changed(tmp_path, "DELETE FROM main.pci_monthly_scores WHERE score_month = DATE '2021-08-01'")
    with open_mart(path) as mart:
        t = level_transitions(mart, SEP)
        rows = partner_history(mart, "P1002", SEP, months=3)
    assert t.previous == JUL
    assert [m[0] for m in moves(t, "up")] == ["P1005", "P1008"]
    assert moves(t, "down") == [("P1002", NAMES["P1002"], "gold", "silver")]
    assert [m[0] for m in moves(t, "new")] == ["P1006", "P1009"]   # Woodgrove was not in 2021-07
    assert t.gone == [] and t.same == 4
    assert [r.status for r in rows] == ["scored", "unpublished", "scored"]


# --------------------------------------------------------------------------- the documented queries

def doc_query(name: str) -> str:
    for block in re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        if re.match(rf"--\s*name:\s*{name}\s*\n", block):
            return block
    raise AssertionError(f"no query {name} in {DOC.name}")


def copy_of(warehouse: Path) -> Path:
    with duckdb.connect(str(warehouse)) as con:
        publish_read_only_copy(con, warehouse)
    return copy_path(warehouse)


def test_query_partner_last_12_months(tmp_path):
    with duckdb.connect(str(copy_of(fx.build_mart(tmp_path / "pci.duckdb"))), read_only=True) as con:
        got = con.execute(doc_query("partner_last_12_months")).fetchall()
    gap = (None,) * 8
    want = [(m, "not published", *gap) for m in UNPUBLISHED]
    want.append((JUL, "not in that month's export", *gap))
    for month, (score, level, pts) in P1009.items():
        want.append((month, "scored", score, level, *(D(x) for x in pts)))
    assert got == want


def test_query_level_transitions(tmp_path):
    query = doc_query("level_transitions")
    with duckdb.connect(str(copy_of(fx.build_mart(tmp_path / "a" / "pci.duckdb"))),
                        read_only=True) as con:
        got = con.execute(query).fetchall()
    assert got == [
        (AUG, "up", 2, "P1005", NAMES["P1005"], "none", "silver", D("51.71"), D("75.86")),
        (AUG, "up", 2, "P1008", NAMES["P1008"], "silver", "gold", D("65.17"), D("88.31")),
        (AUG, "down", 1, "P1002", NAMES["P1002"], "gold", "silver", D("88.50"), D("71.93")),
        (AUG, "new", 1, "P1006", NAMES["P1006"], None, "none", None, D("0.00")),
    ]
    # with Northwind and Wingtip gone from 2021-09 and 2021-08 not published
    path = changed(tmp_path / "b",
                   "DELETE FROM main.pci_monthly_scores WHERE score_month = DATE '2021-09-01' "
                   "AND partner_id IN ('P1003', 'P1007')",
                   "DELETE FROM main.pci_monthly_scores WHERE score_month = DATE '2021-08-01'")
    with duckdb.connect(str(copy_of(path)), read_only=True) as con:
        got = con.execute(query).fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in got] == [
        (JUL, "up", 2, "P1005"), (JUL, "up", 2, "P1008"), (JUL, "down", 1, "P1002"),
        (JUL, "new", 2, "P1006"), (JUL, "new", 2, "P1009"),
        (JUL, "gone", 2, "P1003"), (JUL, "gone", 2, "P1007")]
    assert got[-1][4:] == (NAMES["P1007"], "none", None, D("16.33"), None)
