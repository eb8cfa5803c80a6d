"""`python -m pci explain`: one partner's scorecard for one score month.

Reads the published mart (the analysts' read-only copy when there is one, and
the warehouse for a month the copy lacks, see :mod:`pci.publish.analyst_copy`) and
prints, in the terminal:

1. the six metrics: value, threshold, points out of the maximum with a bar,
   then the PCI score and the competency level;
2. per metric, the subscriptions, customers (tenants) or people behind the
   value, from ``pci_metric_contributions``, biggest first, capped at ``--top``
   with "… and N more";
3. what is missing for the next level, in the units of each metric.

Under the scorecard, the partner's **last 12 months** up to the month asked
(:mod:`pci.read.history`), oldest first: one row per month with the score, the
level and each metric's points, then the score's sparkline. A month the partner
has no score for is a gap (a dash, ``·`` in the sparkline), never a zero: "not in
that month's export" when the month is published without the partner, "not
published" when the month is not.

**What is missing for the next level** is the cheapest set of whole units
added to the metrics that reaches the next level's minimum score
(:mod:`pci.read.next_level`), each gap listed with the score reached so far.

**The rule table.** Thresholds, maximum points, the level bands and the MAU
baseline come from the dbt seeds through :mod:`pci.core.rules` (pci-rules.md,
"Points", [D-3], [D-4]). The tools never read the ``pci_build`` schema.

A month published with no partners (its partners export held none: its latest
publication in ``pci_score_publications`` has ``row_count`` 0) is said to be so,
not to be unpublished. When the analysts' copy that was read is out of date (its
last refresh failed after a publication), a warning on stderr says since when and
how to complete it. Everything printed that comes from the data (names, ids,
details) goes through :func:`pci.core.terminal.for_terminal` and is printed as rich
``Text``, never as markup.

Exit statuses: 0 shown; 1 unknown partner, month not scored (or published with
no partners) or the partner has no row for the month; 2 usage (bad month, no
such warehouse); 4 the warehouse is being written and has no analyst copy yet.
"""
from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

from pci.core import rules
from pci.core.contract import format_month, parse_month
from pci.core.errors import EXIT_USAGE
from pci.core.rules import Metric
from pci.core.terminal import for_terminal
from pci.read.history import HistoryRow, partner_history, sparkline
from pci.read.mart import MartUnavailable
from pci.read.published import add_arguments, read_published
from pci.read.next_level import unit_text
from pci.read.scorecard import ExplainError, Scorecard, build_scorecard

# --------------------------------------------------------------------------- rendering

KIND_PLURAL = {"person": "people", "subscription": "subscriptions", "tenant": "tenants"}
LEVEL_STYLE = {"gold": "bold yellow", "silver": "bold white", "none": "dim"}


def format_value(metric: Metric, value, row: dict | None = None) -> str:
    if metric.key == "mau_growth":
        if value is None:
            base = (row or {}).get("mau_baseline")
            return f"not eligible (baseline {base} < {rules.MAU_GROWTH_MIN_BASELINE})"
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


#: the history table's column headers of the metrics' points (with their maxima)
SHORT = {"net_new_revenue": "revenue", "net_customer_adds": "adds",
         "functional_consultants": "consult.", "developers": "devs",
         "new_deployments": "deploy.", "mau_growth": "MAU gr."}
#: why a month has no score, in the history table
GAP_SHORT = {"absent": "not in export", "unpublished": "not published"}


def render_history(history: list[HistoryRow], console, metrics: list[Metric] | None = None) -> None:
    """The partner's months, oldest first: score, level, each metric's points (a gap shows
    as dashes and why), then the score's sparkline coloured by level (about 90 columns)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    if not history:
        return
    metrics = metrics or rules.metrics()
    span = f"{format_month(history[0].month)} … {format_month(history[-1].month)}"
    table = Table(title=f"The last {len(history)} months ({span}): score, level, points",
                  title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                  padding=(0, 1), pad_edge=False, collapse_padding=True)
    table.add_column("Month")
    table.add_column("Score\n/100", justify="right")
    table.add_column("Level")
    for m in metrics:
        table.add_column(f"{SHORT.get(m.key, m.key)}\n/{m.max_points:.0f}", justify="right")
    for h in history:
        if h.gap:
            table.add_row(format_month(h.month), "—", GAP_SHORT[h.status], *["—"] * len(metrics),
                          style="dim")
            continue
        table.add_row(format_month(h.month), f"{h.score:.2f}",
                      Text(for_terminal(h.level), style=LEVEL_STYLE.get(h.level, "")),
                      *[f"{h.points[m.key]:.2f}" for m in metrics])
    console.print(table)
    line = Text("Score trend  ")
    for h in history:
        line.append(sparkline([None if h.gap else h.score], 100),
                    style="dim" if h.gap else LEVEL_STYLE.get(h.level, ""))
    line.append(f"  {span}, 0…100; {sparkline([None], 1)} no score", style="dim")
    console.print(line)
    if any(h.status == "absent" for h in history):
        console.print(Text("not in export: the month is published, but the partner was not in "
                           "its partners export", style="dim"))


def render(card: Scorecard, console, history: list[HistoryRow] | None = None) -> None:
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
    if history:
        console.print()
        render_history(history, console)

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
                        help="the warehouse DuckDB file (its analyst copy is read when present), "
                             "or with --engine spark a Spark warehouse folder")
    parser.add_argument("--partner", required=True, help="partner id")
    parser.add_argument("--month", required=True, help="score month, YYYY-MM")
    parser.add_argument("--top", type=int, default=5,
                        help="contributors listed per metric (default 5)")
    add_arguments(parser)


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
        card, history = read_published(args.warehouse, args.source, month, lambda mart: (
            build_scorecard(mart, args.partner, month, args.top),
            partner_history(mart, args.partner, month)), args.engine, args.partner)
    except (MartUnavailable, ExplainError) as exc:
        _error(err, exc)
        return exc.exit_status
    console = Console() if sys.stdout.isatty() else Console(width=110)
    if card.stale:
        err.print(Text.assemble(("warning:", "bold yellow"), " ", for_terminal(card.stale)),
                  highlight=False, soft_wrap=True)
    render(card, console, history)
    return 0
