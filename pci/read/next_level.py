"""What is missing for the next level: the cheapest set of whole units added to
the metrics that lifts a partner's score to the next level's minimum.

The deficit is the next level's minimum score minus the partner's score. Every
way of adding whole units to the metrics (consultants, developers, deployments
and customer adds in people / tenants / customers, revenue in whole US dollars,
MAU growth in monthly active users on top of the current MAU, the baseline
being fixed) is a candidate; a candidate closes the gap when the points it adds
(recomputed with the rule's formula and half-up rounding, capped at each
metric's maximum) reach the deficit. The effort of a candidate is the sum over
its metrics of ``added units / threshold``: the fraction of a metric's full
target it asks for, so that "1 consultant of 5" (0.2) and "$6,000 of $30,000"
(0.2) weigh the same. The cheapest candidate is kept (ties: fewer metrics, then
the metric order 1…6); its gaps are listed cheapest first. MAU growth cannot be
improved when it is not eligible (baseline below the seed's
``mau_growth_min_baseline``): a level that the other five metrics cannot reach
is out of reach for the month.

Used by ``explain`` (the scorecard) and by ``at-risk`` (the cheapest way to
keep a level).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

from pci.core import rules
from pci.core.rules import Level, Metric, points_for

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
    if baseline < rules.MAU_GROWTH_MIN_BASELINE or target > metric.max_points:
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


def next_level(row: dict, metrics: list[Metric], levels: list[Level],
               target: Level | None = None) -> NextLevel:
    """The cheapest set of gaps that lifts ``row`` (a pci_monthly_scores row, or a
    projection row) to the next level above its score, or to ``target`` when given
    (``at-risk``: the level to keep; no gaps when the score already reaches it)."""
    score = Decimal(str(row["pci_score"]))
    if target is None:
        current = rules.level_of(score, levels)
        higher = [lv for lv in levels if lv.min_score > score]
        if not higher:
            return NextLevel(None, note=f"already at the top level ({current.name})")
        target = min(higher, key=lambda lv: lv.min_score)
    deficit = target.min_score - score
    if deficit <= 0:
        return NextLevel(target, Decimal(0), [], True, f"{target.name} is reached")
    by_key = {m.key: m for m in metrics}
    pts = {m.key: Decimal(str(row[m.points_column])) for m in metrics}

    discrete = [m for m in metrics if m.key not in ("net_new_revenue", "mau_growth")]
    choices = [[None, *_discrete_options(m, int(row[m.value_column] or 0), pts[m.key])]
               for m in discrete]
    rev, mau = by_key["net_new_revenue"], by_key["mau_growth"]
    baseline, cur = int(row.get("mau_baseline") or 0), int(row.get("mau_current") or 0)
    rev_head = rev.max_points - pts[rev.key]
    mau_head = (mau.max_points - pts[mau.key]) if baseline >= rules.MAU_GROWTH_MIN_BASELINE else Decimal(0)

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
               f"{rules.MAU_GROWTH_MIN_BASELINE}), and the other metrics give at most {reach} points"
               if baseline < rules.MAU_GROWTH_MIN_BASELINE else "the metrics cannot reach it")
        return NextLevel(target, deficit, [], False, f"{target.name} is out of reach: {why}")
    best.sort(key=lambda g: (gap_cost(g), g.metric.number))
    return NextLevel(target, deficit, best)
