"""`python -m pci at-risk`: the partners who will lose their level next month
unless they act.

For a published month M, a partner is **at risk** when its level in
``pci_next_month_projection`` (the score M+1 would get if M+1's export were M's
without billing lines: docs/rules.md, "Next month's projection") is below its
level in ``pci_monthly_scores``. For each such partner this lists:

* the metrics whose points drop, with their value now and projected;
* the contributions that leave the window: revenue billed and customers added
  in M-11 (``pci_metric_contributions`` rows with ``event_month`` = M-11), biggest
  first;
* the cheapest way to keep the level: the cheapest whole units added to the
  projected metrics that reach the level's minimum again (the search of
  :mod:`pci.read.next_level`, with the current level as its target).

A projection is never a score: it is what the rules give if nothing new
happens. Exit statuses: 0 listed (also when no partner is at risk); 1 the month
is not published, or was published before projections were; 2 usage (bad
month, no such warehouse); 4 the warehouse is being written and has no analyst
copy yet.
"""
from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from pci.core import rules
from pci.core.catalog import CONTRIBUTIONS, PROJECTION, SCORES
from pci.core.contract import add_months, format_month, parse_month
from pci.core.errors import EXIT_USAGE
from pci.core.rules import Level, Metric
from pci.core.terminal import for_terminal
from pci.read.mart import Mart, MartUnavailable, MonthNotPublished
from pci.read.published import add_arguments, read_published
from pci.read.next_level import NextLevel, next_level, unit_text

#: the metrics whose contributions carry the month of their event (they leave the window)
EVENT_METRICS = ("net_new_revenue", "net_customer_adds")
LEAVING_SHOWN = 5


@dataclass
class Drop:
    metric: Metric
    value: object
    projected_value: object
    points: Decimal
    projected_points: Decimal


@dataclass
class Leaving:
    metric: Metric
    contributor_kind: str
    contributor_id: str
    detail: str
    amount: Decimal


@dataclass
class AtRisk:
    partner_id: str
    partner_name: str | None
    level: str
    projected_level: str
    score: Decimal
    projected_score: Decimal
    drops: list[Drop]
    leaving: list[Leaving]
    more_leaving: int
    keep: NextLevel
    notes: list[str] = field(default_factory=list)


def _rows(mart: Mart, table: str, month: dt.date) -> dict[str, dict]:
    cur = mart.con.execute(f"SELECT * FROM main.{table} WHERE score_month = ? ORDER BY partner_id",
                           [month])
    cols = [d[0] for d in cur.description]
    return {r[cols.index("partner_id")]: dict(zip(cols, r)) for r in cur.fetchall()}


def _leaving(mart: Mart, partner: str, month: dt.date,
             metrics: dict[str, Metric]) -> tuple[list[Leaving], int]:
    """The partner's revenue and customer-add contributions of M-11, biggest first."""
    rows = mart.con.execute(
        f"""SELECT metric, contributor_kind, contributor_id, string_agg(DISTINCT detail, ', '
                   ORDER BY detail), sum(amount)
            FROM main.{CONTRIBUTIONS}
            WHERE score_month = ? AND partner_id = ? AND event_month = ?
              AND metric IN ({', '.join('?' for _ in EVENT_METRICS)})
            GROUP BY ALL ORDER BY abs(sum(amount)) DESC, metric, contributor_id""",
        [month, partner, add_months(month, -11), *EVENT_METRICS]).fetchall()
    items = [Leaving(metrics[m], k, c, d or "", a) for m, k, c, d, a in rows]
    return items[:LEAVING_SHOWN], max(0, len(items) - LEAVING_SHOWN)


def at_risk(mart: Mart, month: dt.date, metrics: list[Metric] | None = None,
            levels: list[Level] | None = None) -> list[AtRisk]:
    """The partners of ``month`` whose projected level is below their level, lowest
    projected score first (ties: partner id)."""
    metrics = metrics or rules.metrics()
    levels = levels or rules.levels()
    if not mart.has_table("main", PROJECTION):
        raise MonthNotPublished(f"{mart.path} has no main.{PROJECTION}: it was published before "
                                f"projections were; run the month again to publish one")
    scores = _rows(mart, SCORES, month)
    if not scores:
        raise MonthNotPublished(
            f"month {format_month(month)} is not published: the published score months are "
            f"{', '.join(mart.score_months()) or 'none'}")
    projected = _rows(mart, PROJECTION, month)
    if not projected:
        raise MonthNotPublished(f"month {format_month(month)} has no projection: it was published "
                                f"before projections were; run the month again to publish one")
    by_name = {lv.name: lv for lv in levels}
    by_key = {m.key: m for m in metrics}
    names = mart.partner_names(month)
    out = []
    for partner, row in scores.items():
        proj = projected.get(partner)
        if proj is None:
            continue
        level, new_level = by_name[row["competency_level"]], by_name[proj["competency_level"]]
        if new_level.min_score >= level.min_score:
            continue
        drops = [Drop(m, row[m.value_column], proj[m.value_column],
                      Decimal(str(row[m.points_column])), Decimal(str(proj[m.points_column])))
                 for m in metrics
                 if Decimal(str(proj[m.points_column])) < Decimal(str(row[m.points_column]))]
        leaving, more = _leaving(mart, partner, month, by_key)
        out.append(AtRisk(partner, names.get(partner), level.name, new_level.name,
                          Decimal(str(row["pci_score"])), Decimal(str(proj["pci_score"])),
                          drops, leaving, more, next_level(proj, metrics, levels, target=level)))
    out.sort(key=lambda a: (a.projected_score, a.partner_id))
    return out


# --------------------------------------------------------------------------- rendering

def _value(metric: Metric, value) -> str:
    if value is None:
        return "not eligible"
    if metric.key == "net_new_revenue":
        return f"${Decimal(str(value)):,.2f}"
    if metric.key == "mau_growth":
        return f"{float(value):.1%}"
    return f"{value:,}"


def _leaving_text(item: Leaving) -> str:
    if item.metric.key == "net_new_revenue":
        what = f"${item.amount:,.2f} billed"
    else:
        what = f"{item.amount:+,.0f} customer {item.detail or 'add'}"
    return f"{item.metric.label}: {item.contributor_kind} {item.contributor_id}, {what}"


def lines(risk: AtRisk, month: dt.date) -> list[str]:
    """The plain-text lines of one partner at risk (the terminal and the report)."""
    nxt = format_month(add_months(month, 1))
    out = [f"{risk.level} {risk.score} → projected {risk.projected_level} {risk.projected_score} "
           f"in {nxt}"]
    out += [f"{d.metric.label}: {_value(d.metric, d.value)} → {_value(d.metric, d.projected_value)} "
            f"({d.points} → {d.projected_points} points)" for d in risk.drops]
    if risk.leaving:
        out.append(f"leaving the window ({format_month(add_months(month, -11))}):")
        out += [f"  {_leaving_text(x)}" for x in risk.leaving]
        if risk.more_leaving:
            out.append(f"  … and {risk.more_leaving} more")
    keep = risk.keep
    if not keep.reachable:
        out.append(f"to keep {risk.level}: {keep.note}")
    elif keep.gaps:
        out.append(f"to keep {risk.level} (cheapest): "
                   + "; ".join(unit_text(g.metric, g.units) for g in keep.gaps))
    return out


def render(risks: list[AtRisk], month: dt.date, console) -> None:
    from rich.table import Table
    from rich.text import Text

    nxt = format_month(add_months(month, 1))
    if not risks:
        console.print(Text(f"{format_month(month)}: no partner is projected to lose its level in {nxt}"))
        return
    table = Table(title=f"At risk in {nxt}: {len(risks)} partner{'s' if len(risks) != 1 else ''} "
                        f"projected below their {format_month(month)} level (a projection, not a score)",
                  show_lines=True)
    table.add_column("partner", overflow="fold")
    table.add_column("level now → projected", no_wrap=True)
    table.add_column("what changes, and the cheapest way to keep the level", overflow="fold")
    for r in risks:
        who = Text(for_terminal(r.partner_id))
        if r.partner_name:
            who.append("\n" + for_terminal(r.partner_name), style="dim")
        body = lines(r, month)
        table.add_row(who, Text(f"{r.level} {r.score} → {r.projected_level} {r.projected_score}"),
                      Text(for_terminal("\n".join(body[1:]))))
    console.print(table)


# --------------------------------------------------------------------------- CLI

def configure(parser) -> None:
    parser.add_argument("--warehouse", required=True, type=Path,
                        help="the warehouse DuckDB file (its analyst copy is read when present), "
                             "or with --engine spark a Spark warehouse folder")
    parser.add_argument("--month", required=True, help="published score month M, YYYY-MM")
    add_arguments(parser)


def command(args) -> int:
    from rich.console import Console
    from rich.text import Text

    err = Console(stderr=True)
    try:
        month = parse_month(args.month)
    except ValueError as exc:
        err.print(Text.assemble(("error:", "red"), " ", for_terminal(f"--month: {exc}")))
        return EXIT_USAGE
    try:
        risks = read_published(args.warehouse, args.source, month, lambda mart: at_risk(mart, month),
                               args.engine)
    except MartUnavailable as exc:
        err.print(Text.assemble(("error:", "red"), " ", for_terminal(str(exc))), soft_wrap=True)
        return exc.exit_status
    render(risks, month, Console() if sys.stdout.isatty() else Console(width=120))
    return 0
