"""Where a partner is heading: its last published months, and the level
transitions of a month.

* :func:`partner_history` (and :func:`histories`, the same for many partners in
  one query): the months ``month - 11`` … ``month``, oldest first, one
  :class:`HistoryRow` each: the score, the level and each metric's points from
  ``main.pci_monthly_scores``, or a **gap**, never a zero: ``absent`` when the
  month is published but the partner has no row in it (it was not in that
  month's partners export), ``unpublished`` when the month is not published.
  A month published with no partners (its latest publication has ``row_count``
  0) is published: its partners are ``absent``.
* :func:`level_transitions`: the partners whose level changed between the
  previous published month and ``month``: ``up`` and ``down`` (by the levels'
  minimum scores, from the seeds), ``new`` (scored in ``month``, not in the
  previous published month) and ``gone`` (the other way round). The previous
  published month is the latest published month before ``month`` (usually
  ``month - 1``); when there is none, there are no transitions.
* :func:`sparkline`: values as block characters ▁▂▃▄▅▆▇█ scaled to a maximum,
  a gap as ``·``.

Used by ``explain`` (the partner's history under the scorecard) and ``report``
(the transitions section and the trend column).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from pci.core import rules
from pci.core.contract import add_months, format_month
from pci.core.rules import Level, Metric
from pci.read.mart import Mart

MONTHS = 12
BLOCKS = "▁▂▃▄▅▆▇█"
GAP = "·"
#: why a month of a partner's history has no score
GAP_TEXT = {"absent": "not in that month's export", "unpublished": "not published"}


@dataclass(frozen=True)
class HistoryRow:
    month: dt.date
    status: str                      # "scored", "absent" or "unpublished"
    score: Decimal | None = None
    level: str | None = None
    points: dict[str, Decimal] = field(default_factory=dict)   # metric key -> points

    @property
    def gap(self) -> bool:
        return self.status != "scored"

    def text(self) -> str:
        """'2021-09: 71.93 (silver)' or '2021-06: not published'."""
        what = GAP_TEXT.get(self.status) or f"{self.score:.2f} ({self.level})"
        return f"{format_month(self.month)}: {what}"


def published_months(mart: Mart, first: dt.date, last: dt.date) -> list[dt.date]:
    """The published score months in ``first`` … ``last`` (with rows, or published with none)."""
    with_rows = {r[0] for r in mart.con.execute(
        "SELECT DISTINCT score_month FROM main.pci_monthly_scores "
        "WHERE score_month BETWEEN ? AND ?", [first, last]).fetchall()}
    return sorted(with_rows | {m for m in mart.empty_months() if first <= m <= last})


def histories(mart: Mart, month: dt.date, partners: list[str] | None = None,
              months: int = MONTHS, metrics: list[Metric] | None = None
              ) -> dict[str, list[HistoryRow]]:
    """partner -> its :class:`HistoryRow` of each of the ``months`` months up to ``month``,
    oldest first; for ``partners`` (default: those scored in ``month``)."""
    metrics = metrics or rules.metrics()
    first = add_months(month, -(months - 1))
    window = [add_months(first, i) for i in range(months)]
    published = set(published_months(mart, first, month))
    if partners is None:
        partners = [r[0] for r in mart.con.execute(
            "SELECT partner_id FROM main.pci_monthly_scores WHERE score_month = ? "
            "ORDER BY partner_id", [month]).fetchall()]
    cols = ", ".join(m.points_column for m in metrics)
    rows = mart.con.execute(
        f"SELECT partner_id, score_month, pci_score, competency_level, {cols} "
        f"FROM main.pci_monthly_scores WHERE score_month BETWEEN ? AND ? "
        f"AND partner_id IN (SELECT unnest(?::VARCHAR[]))",
        [first, month, list(partners)]).fetchall()
    scored = {(r[0], r[1]): r for r in rows}
    out = {}
    for p in partners:
        line = []
        for m in window:
            r = scored.get((p, m))
            if r is not None:
                pts = {mt.key: Decimal(str(v)) for mt, v in zip(metrics, r[4:])}
                line.append(HistoryRow(m, "scored", Decimal(str(r[2])), r[3], pts))
            else:
                line.append(HistoryRow(m, "absent" if m in published else "unpublished"))
        out[p] = line
    return out


def partner_history(mart: Mart, partner: str, month: dt.date, months: int = MONTHS,
                    metrics: list[Metric] | None = None) -> list[HistoryRow]:
    """The partner's ``months`` months up to ``month``, oldest first (gaps included)."""
    return histories(mart, month, [partner], months, metrics)[partner]


def sparkline(values: list, top) -> str:
    """One block character per value, scaled to ``top`` (0 → ▁, ``top`` → █); ``None``
    (a gap) → ``·``."""
    top = float(top) or 1.0
    out = []
    for v in values:
        if v is None:
            out.append(GAP)
        else:
            share = min(max(float(v) / top, 0.0), 1.0)
            out.append(BLOCKS[int(share * (len(BLOCKS) - 1) + 0.5)])   # half up
    return "".join(out)


# --------------------------------------------------------------------------- level transitions

@dataclass(frozen=True)
class Move:
    partner_id: str
    name: str
    before: str | None          # level in the previous published month (None: new)
    after: str | None           # level in the month (None: gone)
    score_before: Decimal | None
    score_after: Decimal | None

    @property
    def change(self) -> str:
        """'silver → gold', 'new (silver)', 'gone (was none)'."""
        if self.before is None:
            return f"new ({self.after})"
        if self.after is None:
            return f"gone (was {self.before})"
        return f"{self.before} → {self.after}"


@dataclass
class Transitions:
    month: dt.date
    previous: dt.date | None                  # the previous published month (None: none)
    up: list[Move] = field(default_factory=list)
    down: list[Move] = field(default_factory=list)
    new: list[Move] = field(default_factory=list)
    gone: list[Move] = field(default_factory=list)
    same: int = 0                             # partners scored in both at the same level

    KINDS = ("up", "down", "new", "gone")

    def of(self, kind: str) -> list[Move]:
        return getattr(self, kind)

    def pairs(self, kind: str) -> list[tuple[str, int]]:
        """('silver → gold', 2), … for ``up`` / ``down``: the changes and their counts."""
        counts: dict[str, int] = {}
        for mv in self.of(kind):
            counts[mv.change] = counts.get(mv.change, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def previous_published(mart: Mart, month: dt.date) -> dt.date | None:
    """The latest published month before ``month`` (None: there is none)."""
    row = mart.con.execute("SELECT max(score_month) FROM main.pci_monthly_scores "
                           "WHERE score_month < ?", [month]).fetchall()[0][0]
    empty = [m for m in mart.empty_months() if m < month]
    found = [m for m in (row, *empty) if m is not None]
    return max(found) if found else None


def level_transitions(mart: Mart, month: dt.date, levels: list[Level] | None = None) -> Transitions:
    """The month's level transitions against the previous published month; each list
    ordered by partner id."""
    levels = levels or rules.levels()
    rank = {lv.name: lv.min_score for lv in levels}
    prev_month = previous_published(mart, month)
    out = Transitions(month, prev_month)
    if prev_month is None:
        return out

    def scores(m: dt.date) -> dict[str, tuple[str, Decimal]]:
        return {p: (lv, Decimal(str(s))) for p, lv, s in mart.con.execute(
            "SELECT partner_id, competency_level, pci_score FROM main.pci_monthly_scores "
            "WHERE score_month = ?", [m]).fetchall()}

    now, before = scores(month), scores(prev_month)
    names = mart.partner_names(month)
    for p in sorted(set(now) | set(before)):
        (b, sb), (a, sa) = before.get(p, (None, None)), now.get(p, (None, None))
        mv = Move(p, names.get(p, ""), b, a, sb, sa)
        if b is None:
            out.new.append(mv)
        elif a is None:
            out.gone.append(mv)
        elif rank.get(a, -1) > rank.get(b, -1):
            out.up.append(mv)
        elif rank.get(a, -1) < rank.get(b, -1):
            out.down.append(mv)
        else:
            out.same += 1
    return out
