"""`python -m pci explain`: one partner's scorecard for one score month.

Reads the published mart (the analysts' read-only copy when there is one, and
the warehouse for a month the copy lacks, see :mod:`pci.analyst_copy`) and
prints, in the terminal:

1. the six metrics: value, threshold, points out of the maximum with a bar,
   then the PCI score and the competency level;
2. per metric, the subscriptions, customers (tenants) or people behind the
   value, from ``pci_metric_contributions``, biggest first, capped at ``--top``
   with "… and N more";
3. what is missing for the next level, in the units of each metric.

**What is missing for the next level.** The deficit is the next level's
minimum score minus the partner's score. Every way of adding whole units to the
metrics (consultants, developers, deployments and customer adds in people /
tenants / customers, revenue in whole US dollars, MAU growth in monthly active
users on top of the current MAU, the baseline being fixed) is a candidate; a
candidate closes the gap when the points it adds (recomputed with the rule's
formula and half-up rounding, capped at each metric's maximum) reach the
deficit. The effort of a candidate is the sum over its metrics of
``added units / threshold``: the fraction of a metric's full target it asks
for, so that "1 consultant of 5" (0.2) and "$6,000 of $30,000" (0.2) weigh the
same. The cheapest candidate is shown (ties: fewer metrics, then the metric
order 1…6); its gaps are listed cheapest first, each with the score reached
so far. MAU growth cannot be improved when it is not eligible (baseline below
the seed's ``mau_growth_min_baseline``): a level that the other five metrics
cannot reach is reported as out of reach for the month.

**The rule table.** Thresholds, maximum points, the level bands and the MAU
baseline come from the dbt seeds through :mod:`pci.rules` (pci-rules.md,
"Points", [D-3], [D-4]). The tools never read the ``pci_build`` schema.

A month published with no partners (its partners export held none: its latest
publication in ``pci_score_publications`` has ``row_count`` 0) is said to be so,
not to be unpublished. When the analysts' copy that was read is out of date (its
last refresh failed after a publication), a warning on stderr says since when and
how to complete it. Everything printed that comes from the data (names, ids,
details) goes through :func:`pci.terminal.for_terminal` and is printed as rich
``Text``, never as markup.

Exit statuses: 0 shown; 1 unknown partner, month not scored (or published with
no partners) or the partner has no row for the month; 2 usage (bad month, no
such warehouse); 4 the warehouse is being written and has no analyst copy yet.
"""
from __future__ import annotations

import datetime as dt
import itertools
import sys
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from pathlib import Path

from pci import rules
from pci.analyst_copy import (EXIT_REFUSED, EXIT_USAGE, Mart, MartUnavailable,
                              MonthNotPublished, read_mart, stale_warning)
from pci.contract import format_month, parse_month
from pci.rules import Level, Metric
from pci.terminal import for_terminal

CENT = Decimal("0.01")
#: the rule tables, read from the seeds (the names the report and the tests import)
load_metrics = rules.metrics
load_levels = rules.levels
#: below this MAU baseline the growth metric is not eligible (pci-rules.md, metric 6)
MAU_MIN_BASELINE = rules.MAU_GROWTH_MIN_BASELINE


#: how one unit added to a metric is named, singular and plural (the gaps to the next level)
UNIT_NAMES = {
    "net_new_revenue": ("US dollar", "US dollars"),
    "net_customer_adds": ("net customer add", "net customer adds"),
    "functional_consultants": ("functional consultant", "functional consultants"),
    "developers": ("developer", "developers"),
    "new_deployments": ("new deployment (production tenant)",
                        "new deployments (production tenants)"),
    "mau_growth": ("monthly active user", "monthly active users"),
}


def unit_text(metric: Metric, n) -> str:
    """'2 more functional consultants', '$6,000 more net new revenue'."""
    if metric.key == "net_new_revenue":
        return f"${n:,.0f} more net new revenue"
    singular, plural = UNIT_NAMES.get(metric.key, (metric.unit, metric.unit))
    return f"{n:,} more {singular if n == 1 else plural}"


def round_points(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def points_for(metric: Metric, value) -> Decimal:
    """pci-rules.md: ``max_points × min(max(value, 0) / threshold, 1)``, half-up to 2 decimals."""
    if value is None:
        return Decimal("0.00")
    v = max(Decimal(str(value)), Decimal(0))
    return round_points(metric.max_points * min(v / metric.threshold, Decimal(1)))


# --------------------------------------------------------------------------- gaps

@dataclass(frozen=True)
class Gap:
    metric: Metric
    units: int              # whole units added (US dollars for revenue, MAU for growth)
    value_before: object
    value_after: object
    points_before: Decimal
    points_after: Decimal

    @property
    def gain(self) -> Decimal:
        return self.points_after - self.points_before

    @property
    def cost(self) -> Decimal:
        return gap_cost(self)


@dataclass
class NextLevel:
    level: Level | None            # None: already at the top level
    deficit: Decimal = Decimal(0)
    gaps: list[Gap] = field(default_factory=list)
    reachable: bool = True
    note: str = ""

    @property
    def points_gained(self) -> Decimal:
        return sum((g.gain for g in self.gaps), Decimal(0))


def _discrete_options(metric: Metric, value: int, pts: Decimal) -> list[Gap]:
    """Adding 1, 2, … whole units until the metric is at full points."""
    out = []
    if pts >= metric.max_points:
        return out
    k_max = int((metric.threshold - Decimal(value)).to_integral_value(ROUND_CEILING))
    for k in range(1, max(k_max, 0) + 1):
        after = points_for(metric, value + k)
        if after > pts:
            out.append(Gap(metric, k, value, value + k, pts, after))
    return out


def _revenue_gap(metric: Metric, value: Decimal, pts: Decimal, need: Decimal) -> Gap | None:
    """The fewest whole dollars that add at least ``need`` points (None if impossible)."""
    target = pts + need
    if target > metric.max_points:
        return None
    v = Decimal(str(value))
    floor_value = max(v, Decimal(0))
    wanted = (target - Decimal("0.005")) * metric.threshold / metric.max_points
    k = max(int((wanted - v).to_integral_value(ROUND_CEILING)), int((floor_value - v)), 1)
    while points_for(metric, v + k) < target:
        k += 1
    while k > 1 and points_for(metric, v + k - 1) >= target:
        k -= 1
    return Gap(metric, k, v, v + k, pts, points_for(metric, v + k))


def _mau_gap(metric: Metric, baseline: int, current: int, pts: Decimal,
             need: Decimal) -> Gap | None:
    """The fewest monthly active users (on top of the current MAU) adding ``need`` points."""
    target = pts + need
    if baseline < MAU_MIN_BASELINE or target > metric.max_points:
        return None
    b = Decimal(baseline)
    growth = lambda cur: (Decimal(cur) - b) / b  # noqa: E731
    wanted_growth = (target - Decimal("0.005")) * metric.threshold / metric.max_points
    k = max(int((b * (1 + wanted_growth)).to_integral_value(ROUND_CEILING)) - current, 1)
    while points_for(metric, growth(current + k)) < target:
        k += 1
    while k > 1 and points_for(metric, growth(current + k - 1)) >= target:
        k -= 1
    before = (current - baseline) / baseline
    return Gap(metric, k, before, float(growth(current + k)), pts,
               points_for(metric, growth(current + k)))


def gap_cost(g: Gap) -> Decimal:
    """The effort of a gap: added units / threshold (see the module doc)."""
    if g.metric.key == "mau_growth":
        return (Decimal(str(g.value_after)) - Decimal(str(g.value_before))) / g.metric.threshold
    return Decimal(g.units) / g.metric.threshold


def next_level(row: dict, metrics: list[Metric], levels: list[Level]) -> NextLevel:
    """The cheapest set of gaps that lifts ``row`` (a pci_monthly_scores row) to the next level."""
    score = Decimal(str(row["pci_score"]))
    current = rules.level_of(score, levels)
    higher = [lv for lv in levels if lv.min_score > score]
    if not higher:
        return NextLevel(None, note=f"already at the top level ({current.name})")
    target = min(higher, key=lambda lv: lv.min_score)
    deficit = target.min_score - score
    by_key = {m.key: m for m in metrics}
    pts = {m.key: Decimal(str(row[m.points_column])) for m in metrics}

    discrete = [m for m in metrics if m.key not in ("net_new_revenue", "mau_growth")]
    choices = [[None, *_discrete_options(m, int(row[m.value_column] or 0), pts[m.key])]
               for m in discrete]
    rev, mau = by_key["net_new_revenue"], by_key["mau_growth"]
    baseline, cur = int(row.get("mau_baseline") or 0), int(row.get("mau_current") or 0)
    rev_head = rev.max_points - pts[rev.key]
    mau_head = (mau.max_points - pts[mau.key]) if baseline >= MAU_MIN_BASELINE else Decimal(0)

    def mau_units(k: int) -> Gap:
        g = (Decimal(cur + k) - Decimal(baseline)) / Decimal(baseline)
        return Gap(mau, k, (cur - baseline) / baseline, float(g), pts[mau.key], points_for(mau, g))

    def revenue_for(rest: Decimal) -> list[Gap] | None:
        if rest <= 0:
            return []
        g = _revenue_gap(rev, row[rev.value_column] or 0, pts[rev.key], rest)
        return None if g is None else [g]

    def fill(rest: Decimal) -> list[list[Gap]]:
        """Ways to cover ``rest`` points with MAU growth and revenue: revenue alone; MAU
        up to ``rest`` (the fewest users reaching it, or one user fewer) plus revenue for
        what is left; revenue up to its maximum plus MAU for what is left."""
        if rest <= 0:
            return [[]]
        out = [revenue_for(rest)]
        if mau_head > 0:
            full = _mau_gap(mau, baseline, cur, pts[mau.key], min(rest, mau_head))
            for k in (full.units, full.units - 1):
                if k >= 1:
                    g = mau_units(k)
                    extra = revenue_for(rest - g.gain)
                    out.append(None if extra is None else [g, *extra])
            if 0 < rev_head < rest:
                first = _revenue_gap(rev, row[rev.value_column] or 0, pts[rev.key], rev_head)
                g = _mau_gap(mau, baseline, cur, pts[mau.key], rest - first.gain)
                out.append(None if g is None else [first, g])
        return [o for o in out if o is not None]

    fills: dict[Decimal, list[list[Gap]]] = {}
    best, best_key = None, None
    for combo in itertools.product(*choices):
        chosen = [g for g in combo if g is not None]
        if best_key is not None and sum((gap_cost(g) for g in chosen), Decimal(0)) > best_key[0]:
            continue
        rest = deficit - sum((g.gain for g in chosen), Decimal(0))
        if rest not in fills:
            fills[rest] = fill(rest)
        for extra in fills[rest]:
            gaps = chosen + extra
            key = (sum((gap_cost(g) for g in gaps), Decimal(0)), len(gaps),
                   tuple(g.metric.number for g in gaps))
            if best_key is None or key < best_key:
                best, best_key = gaps, key
    if best is None:
        reach = sum((m.max_points for m in metrics if m.key != "mau_growth"), Decimal(0))
        why = (f"monthly active user growth is not eligible (baseline {baseline} < "
               f"{MAU_MIN_BASELINE}), and the other metrics give at most {reach} points"
               if baseline < MAU_MIN_BASELINE else "the metrics cannot reach it")
        return NextLevel(target, deficit, [], False, f"{target.name} is out of reach: {why}")
    best.sort(key=lambda g: (gap_cost(g), g.metric.number))
    return NextLevel(target, deficit, best)


# --------------------------------------------------------------------------- scorecard

@dataclass
class Contributor:
    kind: str
    contributor_id: str
    tenant_id: str | None
    detail: str
    amount: Decimal
    baseline: Decimal | None = None   # mau_growth only
    current: Decimal | None = None


@dataclass
class MetricLine:
    metric: Metric
    value: object
    points: Decimal
    contributors: list[Contributor]
    more: int          # contributors not listed
    more_amount: Decimal
    total: Decimal     # sum of all contributions (mau_growth: current)


@dataclass
class Scorecard:
    partner_id: str
    partner_name: str | None
    month: dt.date
    row: dict
    lines: list[MetricLine]
    score: Decimal
    level: str
    window_complete: bool
    next: NextLevel
    source: str
    stale: str | None = None   # the warning when the copy read is out of date


class ExplainError(RuntimeError):
    def __init__(self, message: str, exit_status: int = EXIT_REFUSED):
        super().__init__(message)
        self.exit_status = exit_status


def _fmt_months(months: list, limit: int = 6) -> str:
    text = [m if isinstance(m, str) else format_month(m) for m in months]
    return ", ".join(text if len(text) <= limit else [*text[:3], "…", *text[-2:]])


def _score_row(mart: Mart, partner: str, month: dt.date) -> dict:
    con = mart.con
    cur = con.execute("SELECT * FROM main.pci_monthly_scores WHERE partner_id = ? AND score_month = ?",
                      [partner, month])
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    if rows:
        return dict(zip(cols, rows[0]))
    months = [r[0] for r in con.execute(
        "SELECT DISTINCT score_month FROM main.pci_monthly_scores ORDER BY 1").fetchall()]
    mine = [r[0] for r in con.execute(
        "SELECT score_month FROM main.pci_monthly_scores WHERE partner_id = ? ORDER BY 1",
        [partner]).fetchall()]
    if month not in months:
        if month in mart.empty_months():
            raise ExplainError(empty_month_message(mart, month) + (
                f"; partner {partner!r} has no score for it"
                + (f" (its scored months: {_fmt_months(mine)})" if mine else "")))
        raise MonthNotPublished(
            f"month {format_month(month)} was not scored: the published score months are "
            f"{_fmt_months(mart.score_months()) or 'none'}")
    if not mine:
        n, examples = con.execute(
            "SELECT count(DISTINCT partner_id), list(DISTINCT partner_id ORDER BY partner_id)[1:5] "
            "FROM main.pci_monthly_scores").fetchall()[0]
        raise ExplainError(
            f"unknown partner {partner!r}: it has no score in any published month "
            f"({n} partners are scored, e.g. {', '.join(examples or [])})")
    raise ExplainError(
        f"partner {partner!r} has no score for {format_month(month)} (it was not in that month's "
        f"partners export); its scored months: {_fmt_months(mine)}")


def empty_month_message(mart: Mart, month: dt.date) -> str:
    """'month 2021-10 is published with no partners (…)': for a month whose latest
    publication has no rows."""
    pub = mart.publication(month) or {}
    when = pub.get("published_at")
    detail = (f"publication {str(pub.get('publication_id', ''))[:12]} of "
              f"{when:%Y-%m-%d %H:%M} UTC has 0 partner rows: " if when else "")
    return (f"month {format_month(month)} is published with no partners ({detail}its partners "
            f"export held no partner)")


def _span(months: list[str]) -> str:
    """'2021-03, 2021-09' for up to three months, else '2020-10 … 2021-09 (12 months)'."""
    if len(months) <= 3:
        return ", ".join(months)
    return f"{months[0]} … {months[-1]} ({len(months)} months)"


def _contributors(mart: Mart, partner: str, month: dt.date, metric: Metric,
                  top: int) -> tuple[list[Contributor], int, Decimal, Decimal]:
    params = [month, partner, metric.key]
    where = "score_month = ? AND partner_id = ? AND metric = ?"
    if metric.key == "mau_growth":
        rows = mart.con.execute(
            f"""SELECT contributor_kind, contributor_id, any_value(tenant_id),
                  coalesce(sum(amount) FILTER (WHERE detail = 'baseline'), 0) AS baseline,
                  coalesce(sum(amount) FILTER (WHERE detail = 'current'), 0) AS current
                FROM main.pci_metric_contributions WHERE {where}
                GROUP BY ALL ORDER BY current DESC, baseline DESC, contributor_id""",
            params).fetchall()
        items = [Contributor(k, c, t, "", cu - b, b, cu) for k, c, t, b, cu in rows]
        total = sum((c.current for c in items), Decimal(0))
    else:
        rows = mart.con.execute(
            f"""SELECT contributor_kind, contributor_id, any_value(tenant_id), sum(amount) AS amount,
                  string_agg(DISTINCT detail, ', ' ORDER BY detail) AS details,
                  list(DISTINCT strftime(event_month, '%Y-%m')
                       ORDER BY strftime(event_month, '%Y-%m')) FILTER (
                       WHERE event_month IS NOT NULL) AS months
                FROM main.pci_metric_contributions WHERE {where}
                GROUP BY ALL ORDER BY abs(sum(amount)) DESC, contributor_id""",
            params).fetchall()
        items = []
        for k, c, t, amount, details, months in rows:
            detail = "; ".join(x for x in (details, _span(months or [])) if x)
            items.append(Contributor(k, c, t, detail, amount))
        total = sum((c.amount for c in items), Decimal(0))
    shown, rest = items[:top], items[top:]
    return shown, len(rest), sum((c.amount for c in rest), Decimal(0)), total


def build_scorecard(mart: Mart, partner: str, month: dt.date, top: int = 5,
                    metrics: list[Metric] | None = None,
                    levels: list[Level] | None = None) -> Scorecard:
    metrics = metrics or load_metrics()
    levels = levels or load_levels()
    row = _score_row(mart, partner, month)
    lines = []
    for m in metrics:
        shown, more, more_amount, total = _contributors(mart, partner, month, m, top)
        lines.append(MetricLine(m, row[m.value_column], Decimal(str(row[m.points_column])),
                                shown, more, more_amount, total))
    score = Decimal(str(row["pci_score"]))
    return Scorecard(partner, mart.partner_names(month).get(partner), month, row, lines, score,
                     row["competency_level"], bool(row["window_complete"]),
                     next_level(row, metrics, levels), f"{mart.kind} {mart.path}",
                     stale_warning(mart))


# --------------------------------------------------------------------------- rendering

KIND_PLURAL = {"person": "people", "subscription": "subscriptions", "tenant": "tenants"}
LEVEL_STYLE = {"gold": "bold yellow", "silver": "bold white", "none": "dim"}


def format_value(metric: Metric, value, row: dict | None = None) -> str:
    if metric.key == "mau_growth":
        if value is None:
            base = (row or {}).get("mau_baseline")
            return f"not eligible (baseline {base} < {MAU_MIN_BASELINE})"
        text = f"{float(value) * 100:.1f}%"
        if row is not None:
            text += f" ({row['mau_current']:,} vs {row['mau_baseline']:,} MAU)"
        return text
    if metric.key == "net_new_revenue":
        return f"${Decimal(str(value)):,.2f}"
    return f"{int(value):,}"


def format_threshold(metric: Metric) -> str:
    if metric.key == "mau_growth":
        return f"{float(metric.threshold) * 100:.1f}%"
    if metric.key == "net_new_revenue":
        return f"${metric.threshold:,.0f}"
    return f"{metric.threshold.normalize():f}"


def _amount(metric: Metric, amount: Decimal) -> str:
    if metric.key == "net_new_revenue":
        return f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"
    return f"{amount.normalize():+f}" if metric.key == "net_customer_adds" else f"{amount.normalize():f}"


def render(card: Scorecard, console) -> None:
    from rich.panel import Panel
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    def T(value, style: str = "") -> Text:  # noqa: N802 - data, printed literally
        return Text(for_terminal(value), style=style)

    title = card.partner_id + (f"  {card.partner_name}" if card.partner_name else "")
    console.print(Panel(T(f"{title}\nscore month {format_month(card.month)}", "bold"),
                        title="PCI scorecard", expand=False))
    table = Table(title="Partner Contribution Indicators", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    table.add_column("Threshold", justify="right")
    table.add_column("Points", justify="right")
    table.add_column("", min_width=20)
    for line in card.lines:
        m = line.metric
        table.add_row(str(m.number), T(m.label), T(format_value(m, line.value, card.row)),
                      T(format_threshold(m)), f"{line.points:.2f} / {m.max_points:.0f}",
                      ProgressBar(total=float(m.max_points), completed=float(line.points), width=20))
    table.add_section()
    table.add_row("", Text("PCI score", style="bold"), "", "",
                  Text(f"{card.score:.2f} / 100", style="bold"),
                  ProgressBar(total=100.0, completed=float(card.score), width=20))
    console.print(table)
    console.print(Text.assemble("Level: ", T(card.level, LEVEL_STYLE.get(card.level, "bold")),
                                T(f"   (read from the {card.source})", "dim")))
    if not card.window_complete:
        console.print("[dim]window incomplete: not all of the 13 months M-12 … M are landed[/dim]")

    console.print()
    console.print(Text("Behind the numbers", style="bold underline"))
    for line in card.lines:
        m = line.metric
        n = len(line.contributors) + line.more
        if n == 0:
            console.print(T(f"{m.number}. {m.label}: no contributions", "bold"))
            continue
        kinds = sorted({c.kind for c in line.contributors})
        noun = "/".join(KIND_PLURAL.get(k, k + "s") if n != 1 else k for k in kinds)
        console.print(T(f"{m.number}. {m.label}: {n} {noun}", "bold"))
        t = Table(box=None, pad_edge=False, padding=(0, 2, 0, 3))
        t.add_column(T(" / ".join(k.capitalize() for k in kinds)))
        with_tenant = "subscription" in kinds
        if with_tenant:
            t.add_column("Tenant")
        if m.key == "mau_growth":
            t.add_column("Baseline MAU", justify="right")
            t.add_column("Current MAU", justify="right")
            for c in line.contributors:
                t.add_row(T(c.contributor_id), *([T(c.tenant_id or "")] if with_tenant else []),
                          f"{c.baseline:,.0f}", f"{c.current:,.0f}")
        else:
            t.add_column("Detail")
            t.add_column("Amount", justify="right")
            for c in line.contributors:
                t.add_row(T(c.contributor_id), *([T(c.tenant_id or "")] if with_tenant else []),
                          T(c.detail), _amount(m, c.amount))
        console.print(t)
        if line.more:
            extra = "" if m.key == "mau_growth" else f" (together {_amount(m, line.more_amount)})"
            console.print(f"… and {line.more} more{extra}", highlight=False)

    console.print()
    nxt = card.next
    if nxt.level is None:
        console.print(T(f"Next level: {nxt.note}", "bold"))
        return
    console.print(T(f"To reach {nxt.level.name} ({nxt.level.min_score:.2f}): "
                    f"{nxt.deficit:.2f} more points", "bold"))
    if not nxt.reachable:
        console.print(T(f"  {nxt.note}"))
        return
    running = card.score
    for i, g in enumerate(nxt.gaps):
        running += g.gain
        last = i == len(nxt.gaps) - 1
        reach = f"{running:.2f} ({nxt.level.name})" if last else f"{running:.2f}"
        console.print(T(f"  {unit_text(g.metric, g.units)}: +{g.gain:.2f} points → {reach}"))
    console.print("[dim]  cheapest first; effort = added units / threshold of the metric[/dim]")


# --------------------------------------------------------------------------- CLI

def configure(parser) -> None:
    parser.add_argument("--warehouse", required=True, type=Path,
                        help="the warehouse DuckDB file (its analyst copy is read when present)")
    parser.add_argument("--partner", required=True, help="partner id")
    parser.add_argument("--month", required=True, help="score month, YYYY-MM")
    parser.add_argument("--top", type=int, default=5,
                        help="contributors listed per metric (default 5)")
    parser.add_argument("--source", choices=("auto", "copy", "warehouse"), default="auto",
                        help="auto (default): the analyst copy when present, else the warehouse")


def _error(err, message) -> None:
    from rich.text import Text

    err.print(Text.assemble(("error:", "red"), " ", for_terminal(message)),
              highlight=False, soft_wrap=True)


def command(args) -> int:
    from rich.console import Console
    from rich.text import Text

    err = Console(stderr=True)
    try:
        month = parse_month(args.month)
    except ValueError as exc:
        _error(err, f"--month: {exc}")
        return EXIT_USAGE
    if args.top < 1:
        _error(err, "--top must be at least 1")
        return EXIT_USAGE
    try:
        card = read_mart(args.warehouse, args.source,
                         lambda mart: build_scorecard(mart, args.partner, month, args.top))
    except (MartUnavailable, ExplainError) as exc:
        _error(err, exc)
        return exc.exit_status
    console = Console() if sys.stdout.isatty() else Console(width=110)
    if card.stale:
        err.print(Text.assemble(("warning:", "bold yellow"), " ", for_terminal(card.stale)),
                  highlight=False, soft_wrap=True)
    render(card, console)
    return 0
