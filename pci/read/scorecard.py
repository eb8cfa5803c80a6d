"""A partner's scorecard for one published month: its score row, the
contributors behind each metric (``pci_metric_contributions``, biggest first),
and what is missing for the next level (:mod:`pci.read.next_level`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from pci.core import rules
from pci.core.contract import format_month
from pci.core.errors import EXIT_REFUSED
from pci.core.rules import Level, Metric
from pci.read.mart import Mart, MonthNotPublished, stale_warning
from pci.read.next_level import NextLevel, next_level


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
    metrics = metrics or rules.metrics()
    levels = levels or rules.levels()
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
