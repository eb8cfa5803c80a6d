"""`python -m pci explain`: the scorecard, its contributors and the gaps to the next level."""
from __future__ import annotations

import itertools
import re
from decimal import Decimal

import pytest

from pci.cli import main
from pci.core import rules
from pci.core.rules import points_for
from pci.read.mart import open_mart
from pci.read.next_level import gap_cost, next_level
from pci.read.scorecard import build_scorecard
from tests.support import mart_fixture as fx

METRICS = rules.metrics()
LEVELS = rules.levels()
MAU_MIN_BASELINE = rules.MAU_GROWTH_MIN_BASELINE
BY_KEY = {m.key: m for m in METRICS}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    return fx.build_mart(tmp_path_factory.mktemp("explain") / "pci.duckdb")


def run(capsys, *args):
    status = main(["explain", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_rule_table_matches_the_rules():
    # pci-rules.md, "Points": thresholds and maxima, developers' threshold 2 [D-4]
    assert {m.key: (m.threshold, m.max_points) for m in METRICS} == {
        k: (t, Decimal(p)) for k, (t, p) in fx.RULES.items()}
    assert sum(m.max_points for m in METRICS) == 100
    assert [(lv.name, lv.min_score) for lv in LEVELS] == [
        ("gold", 80), ("silver", 60), ("none", 0)]  # [D-3]


def test_points_formula_agrees_with_every_published_row():
    for row in fx.EXPECTED:
        for m in METRICS:
            assert points_for(m, row[m.value_column]) == row[m.points_column], (row["partner_id"], m.key)


@pytest.mark.parametrize("partner", sorted(fx.expected()))
def test_scorecard_shows_the_published_row_and_its_contributions(warehouse, partner):
    row = fx.expected()[partner]
    with open_mart(warehouse) as mart:
        card = build_scorecard(mart, partner, fx.LATEST, top=3)
    assert card.score == row["pci_score"] and card.level == row["competency_level"]
    assert card.partner_name == fx.PARTNERS[partner][0]
    for line in card.lines:
        m = line.metric
        assert line.points == row[m.points_column]
        # every contribution is counted once: listed + "… and N more" = the metric value
        listed = sum((c.current if m.key == "mau_growth" else c.amount for c in line.contributors),
                     Decimal(0))
        value = row["mau_current"] if m.key == "mau_growth" else row[m.value_column]
        assert line.total == value
        if m.key != "mau_growth":
            assert listed + line.more_amount == value
        assert len(line.contributors) <= 3
        amounts = [abs(c.current if m.key == "mau_growth" else c.amount) for c in line.contributors]
        assert amounts == sorted(amounts, reverse=True), "biggest first"


def test_fabrikam_needs_three_users_and_one_consultant_for_gold():
    # 71.93 silver, deficit 8.07. One consultant (+6.00, effort 1/5 = 0.2) is the cheapest
    # big step; the remaining 2.07 come cheapest from MAU growth: 133 vs 100 → 33 % → 23.57
    # (+2.14, effort 0.03/0.35 ≈ 0.086). Two consultants (0.4) or deployments/adds cost more.
    nxt = next_level(fx.expected()["P1002"], METRICS, LEVELS)
    assert nxt.level.name == "gold" and nxt.deficit == Decimal("8.07")
    assert [(g.metric.key, g.units, g.gain) for g in nxt.gaps] == [
        ("mau_growth", 3, Decimal("2.14")), ("functional_consultants", 1, Decimal("6.00"))]
    assert fx.expected()["P1002"]["pci_score"] + nxt.points_gained == Decimal("80.07")


def _brute_force_cost(row) -> Decimal:
    """Cheapest effort found by trying every whole-unit combination (revenue by bisection)."""
    score = row["pci_score"]
    target = min(lv.min_score for lv in LEVELS if lv.min_score > score)
    pts = {m.key: row[m.points_column] for m in METRICS}
    ranges = {}
    for key in ("net_customer_adds", "functional_consultants", "developers", "new_deployments"):
        m, v = BY_KEY[key], row[BY_KEY[key].value_column]
        ranges[key] = range(0, int(m.threshold) - v + 1) if v < m.threshold else range(1)
    base, cur = row["mau_baseline"], row["mau_current"]
    mau_full = int(base * 1.35) + 2 - cur if base >= MAU_MIN_BASELINE else 0
    ranges["mau_growth"] = range(0, max(mau_full, 0) + 1)
    rev = BY_KEY["net_new_revenue"]
    best = None
    for combo in itertools.product(*ranges.values()):
        ks = dict(zip(ranges, combo))
        gain, cost = Decimal(0), Decimal(0)
        for key in ("net_customer_adds", "functional_consultants", "developers", "new_deployments"):
            m = BY_KEY[key]
            gain += points_for(m, row[m.value_column] + ks[key]) - pts[key]
            cost += Decimal(ks[key]) / m.threshold
        if ks["mau_growth"]:
            m = BY_KEY["mau_growth"]
            gain += points_for(m, Decimal(cur + ks["mau_growth"] - base) / base) - pts["mau_growth"]
            cost += Decimal(ks["mau_growth"]) / base / m.threshold
        rest = target - score - gain
        if rest > 0:
            v = row["net_new_revenue_usd"]
            if points_for(rev, v + 40000) - pts[rev.key] < rest:
                continue
            lo, hi = 0, 40000
            while lo < hi:
                mid = (lo + hi) // 2
                if points_for(rev, v + mid) - pts[rev.key] >= rest:
                    hi = mid
                else:
                    lo = mid + 1
            cost += Decimal(lo) / rev.threshold
        if best is None or cost < best:
            best = cost
    return best


@pytest.mark.parametrize("partner", ["P1002", "P1003", "P1004", "P1007"])
def test_gaps_are_the_cheapest_way_to_the_next_level(partner):
    row = fx.expected()[partner]
    nxt = next_level(row, METRICS, LEVELS)
    # the gaps reach the level, each gap's points follow the rule, none is superfluous
    assert row["pci_score"] + nxt.points_gained >= nxt.level.min_score
    for g in nxt.gaps:
        assert g.points_after == points_for(g.metric, g.value_after)
        assert row["pci_score"] + nxt.points_gained - g.gain < nxt.level.min_score
    costs = [gap_cost(g) for g in nxt.gaps]
    assert costs == sorted(costs), "cheapest first"
    assert abs(sum(costs) - _brute_force_cost(row)) < Decimal("0.0001")


def test_growth_not_eligible_makes_gold_out_of_reach():
    # five metrics give at most 75 points when MAU growth is not eligible
    row = dict(fx.expected()["P1003"], net_new_revenue_usd=Decimal("30000.00"),
               net_customer_adds=10, functional_consultants=5, developers=1, new_deployments=5)
    for m in METRICS:
        row[m.points_column] = points_for(m, row[m.value_column])
    row["pci_score"] = sum(row[m.points_column] for m in METRICS)
    assert row["pci_score"] == Decimal("62.50") and row["mau_growth"] is None
    nxt = next_level(row, METRICS, LEVELS)
    assert nxt.level.name == "gold" and not nxt.reachable and nxt.gaps == []
    assert "not eligible" in nxt.note and f"baseline {row['mau_baseline']}" in nxt.note


def test_gold_has_no_next_level():
    nxt = next_level(fx.expected()["P1001"], METRICS, LEVELS)
    assert nxt.level is None and "top level" in nxt.note


def test_cli_prints_the_scorecard(warehouse, capsys):
    status, out, err = run(capsys, "--warehouse", str(warehouse), "--partner", "P1009",
                           "--month", "2021-09")
    assert status == 0, err
    row = fx.expected()["P1009"]
    assert "P1009" in out and "Woodgrove Digital Ltd" in out
    assert f"{row['pci_score']:.2f} / 100" in out and "Level: silver" in out
    assert f"${row['net_new_revenue_usd']:,.2f}" in out
    for m in METRICS:
        assert m.label in out and f"{row[m.points_column]:.2f} / {m.max_points:.0f}" in out
    # 14 revenue subscriptions: the 5 biggest, then the rest counted
    revenue = out[out.index("1. Net new revenue"):out.index("2. Net customer adds")]
    assert "… and 9 more" in revenue and "14 subscriptions" in revenue
    assert revenue.index("S-1009-14") < revenue.index("S-1009-13") < revenue.index("S-1009-10")
    assert "S-1009-09" not in revenue
    assert "To reach gold (80.00): 4.27 more points" in out
    assert "1 more functional consultant: +6.00 points → 81.73 (gold)" in out


def test_cli_gap_lines_in_units(warehouse, capsys):
    status, out, _ = run(capsys, "--warehouse", str(warehouse), "--partner", "P1002",
                         "--month", "2021-09")
    assert status == 0
    assert "3 more monthly active users: +2.14 points → 74.07" in out
    assert "1 more functional consultant: +6.00 points → 80.07 (gold)" in out
    assert out.index("3 more monthly active users") < out.index("1 more functional consultant")


def test_cli_unknown_partner(warehouse, capsys):
    status, out, err = run(capsys, "--warehouse", str(warehouse), "--partner", "P4242",
                           "--month", "2021-09")
    assert status == 1 and out == ""
    assert "unknown partner 'P4242'" in err and "9 partners" in err and "P1001" in err


def test_cli_month_not_scored(warehouse, capsys):
    status, _, err = run(capsys, "--warehouse", str(warehouse), "--partner", "P1001",
                         "--month", "2021-10")
    assert status == 1
    assert "2021-10 was not scored" in err and "2021-07, 2021-08, 2021-09" in err


def test_cli_partner_without_a_row_that_month(warehouse, capsys):
    status, _, err = run(capsys, "--warehouse", str(warehouse), "--partner", "P1006",
                         "--month", "2021-08")
    assert status == 1 and "'P1006' has no score for 2021-08" in err and "2021-09" in err


def test_cli_usage_errors(warehouse, tmp_path, capsys):
    status, _, err = run(capsys, "--warehouse", str(warehouse), "--partner", "P1001",
                         "--month", "2021-13")
    assert status == 2 and "--month" in err
    status, _, err = run(capsys, "--warehouse", str(tmp_path / "none.duckdb"), "--partner",
                         "P1001", "--month", "2021-09")
    assert status == 2 and "no warehouse at" in err


def test_explain_reads_the_copy_while_a_run_holds_the_warehouse(tmp_path, capsys):
    warehouse = fx.build_mart(tmp_path / "pci.duckdb")
    with fx.HeldWarehouse(warehouse, copy=False):
        # no copy yet: the warehouse is busy, say so (exit 4), do not wait
        status, _, err = run(capsys, "--warehouse", str(warehouse), "--partner", "P1001",
                             "--month", "2021-09")
        assert status == 4 and "being written by a run" in err
    with fx.HeldWarehouse(warehouse, copy=True):
        status, out, err = run(capsys, "--warehouse", str(warehouse), "--partner", "P1001",
                               "--month", "2021-09")
        assert status == 0, err
        assert "100.00 / 100" in out and "Level: gold" in out


def test_a_month_newer_than_the_copy_is_read_from_the_warehouse(tmp_path, capsys):
    # the copy was taken before 2021-10 was published (its refresh failed, say)
    warehouse = fx.build_mart(tmp_path / "pci.duckdb")
    with fx.HeldWarehouse(warehouse, copy=True):
        pass
    import duckdb

    with duckdb.connect(str(warehouse)) as con:
        con.execute("INSERT INTO pci_monthly_scores SELECT * REPLACE (DATE '2021-10-01' AS score_month) "
                    "FROM pci_monthly_scores WHERE score_month = DATE '2021-09-01'")
    status, out, err = run(capsys, "--warehouse", str(warehouse), "--partner", "P1002",
                           "--month", "2021-10")
    assert status == 0, err
    assert "read from the warehouse" in out and "71.93 / 100" in out
    # while a run holds the warehouse the copy is all there is: say how old it is
    with fx.HeldWarehouse(warehouse, copy=False):
        status, _, err = run(capsys, "--warehouse", str(warehouse), "--partner", "P1002",
                             "--month", "2021-10")
    assert status == 1
    assert "2021-10 was not scored" in err and "analysts' copy taken" in err


# --------------------------------------------------------------------------- the last 12 months

def history_lines(out: str) -> list[str]:
    """The history table's rows (month first), whitespace collapsed, in order."""
    part = out[out.index("The last 12 months"):out.index("Behind the numbers")]
    return [" ".join(ln.split()) for ln in part.splitlines() if re.match(r"\s*\d{4}-\d{2} ", ln)]


def test_cli_shows_the_last_12_months_with_gaps(warehouse, capsys):
    status, out, err = run(capsys, "--warehouse", str(warehouse), "--partner", "P1009",
                           "--month", "2021-09")
    assert status == 0, err
    # under the scorecard (after the level), before the contributors
    assert out.index("Level: silver") < out.index("The last 12 months (2020-10 … 2021-09)")
    # from the fixture's rows: 2020-10 … 2021-06 not published, 2021-07 published without
    # Woodgrove, then 65.98 and 75.73 with each metric's points
    unpublished = [f"2020-{m} — not published" + " —" * 6 for m in ("10", "11", "12")]
    unpublished += [f"2021-0{m} — not published" + " —" * 6 for m in range(1, 7)]
    assert history_lines(out) == [
        *unpublished,
        "2021-07 — not in export" + " —" * 6,
        "2021-08 65.98 silver 8.75 6.00 18.00 5.00 12.00 16.23",
        "2021-09 75.73 silver 10.00 6.00 18.00 5.00 14.00 22.73",
    ]
    for header in ("revenue", "adds", "consult.", "devs", "deploy.", "MAU gr."):
        assert header in out
    # the score line: 10 gaps, then 65.98 → 4.62 of 7 → ▆ and 75.73 → 5.30 → ▆
    assert "Score trend  ··········▆▆  2020-10 … 2021-09" in out
    assert max(len(ln) for ln in out[out.index("The last 12"):out.index("Behind")].splitlines()) <= 100


def test_cli_history_of_a_new_partner_shows_its_zero_score(warehouse, capsys):
    status, out, _ = run(capsys, "--warehouse", str(warehouse), "--partner", "P1006",
                         "--month", "2021-09")
    assert status == 0
    lines = history_lines(out)
    assert lines[-3:] == ["2021-07 — not in export" + " —" * 6,
                          "2021-08 — not in export" + " —" * 6,
                          "2021-09 0.00 none" + " 0.00" * 6]
    assert "Score trend  ···········▁ " in out   # a zero is ▁, a gap ·


def test_cli_history_prints_data_without_markup_or_escapes(tmp_path, capsys):
    warehouse = fx.build_mart(tmp_path / "pci.duckdb")
    import duckdb

    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE main.pci_monthly_scores SET competency_level = ? WHERE partner_id = "
                    "'P1009' AND score_month = DATE '2021-08-01'", ["[red]x[/red]\x1b]0;pwned\x07odd"])
    status, out, err = run(capsys, "--warehouse", str(warehouse), "--partner", "P1009",
                           "--month", "2021-09")
    assert status == 0, err
    assert "\x1b" not in out and "\x07" not in out and "pwned" not in out
    assert "2021-08 65.98 [red]x[/red]odd 8.75" in history_lines(out)[-2]
