"""The rule tables of pci-rules.md, read from the dbt seeds: the one place they are written.

dbt scores with the seeds (``ref('pci_metrics')``, ``ref('pci_levels')``, …);
the Python side reads the same CSV files here, so a threshold, a maximum or a
level band changed in ``seeds/`` is followed by both, and no copy of a rule
constant lives in Python:

* :func:`metrics`: the six metrics of "Points" (``seeds/pci_metrics.csv``:
  threshold and maximum points, the developers' threshold as [D-4] reads);
* :func:`levels`, :func:`level_of`: the competency levels by minimum score
  [D-3] (``seeds/pci_levels.csv``);
* :func:`constants`: the single-valued rules (``seeds/pci_rule_constants.csv``,
  one row): ``mau_growth_min_baseline``, the MAU baseline below which metric 6
  is not eligible, and ``deployment_mau_threshold``, the MAU a subscription
  reaches to count as deployed (metric 5). Each is also a module attribute,
  its name in capitals, read from the seed on first use:
  ``rules.MAU_GROWTH_MIN_BASELINE``, ``rules.DEPLOYMENT_MAU_THRESHOLD``.

Every function takes ``seeds`` (default: the project's ``seeds/`` folder) so
that a copy of the folder can be read instead.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

from pci.core.project import SEEDS_DIR

SEEDS = SEEDS_DIR
METRICS_SEED = "pci_metrics.csv"
LEVELS_SEED = "pci_levels.csv"
CONSTANTS_SEED = "pci_rule_constants.csv"

#: the mart column holding a metric's value, where it is not the metric's key
_VALUE_COLUMNS = {"net_new_revenue": "net_new_revenue_usd"}


class RuleTableError(ValueError):
    """A seed that is missing or does not hold the rule table it should."""


@dataclass(frozen=True)
class Metric:
    key: str            # as in pci_metric_contributions.metric
    number: int         # 1..6, pci-rules.md's numbering
    label: str
    unit: str
    threshold: Decimal  # the value at which the metric reaches its maximum points
    max_points: Decimal

    @property
    def value_column(self) -> str:
        """The column of pci_monthly_scores holding the metric's value."""
        return _VALUE_COLUMNS.get(self.key, self.key)

    @property
    def points_column(self) -> str:
        return f"points_{self.key}"


@dataclass(frozen=True)
class Level:
    name: str
    min_score: Decimal  # the lowest pci_score that reaches the level (inclusive)


def _rows(seeds: Path | str, name: str, columns: set[str]) -> list[dict]:
    path = Path(seeds) / name
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            have = set(reader.fieldnames or ())
    except OSError as exc:
        raise RuleTableError(f"rule table {path}: {exc.strerror or exc}") from exc
    if not columns <= have:
        raise RuleTableError(f"rule table {path}: columns {sorted(columns - have)} missing")
    if not rows:
        raise RuleTableError(f"rule table {path}: no rows")
    return rows


def _decimal(path: str, row: dict, column: str) -> Decimal:
    try:
        return Decimal(row[column].strip())
    except (InvalidOperation, AttributeError) as exc:
        value = row[column]
        raise RuleTableError(f"rule table {path}: {column} {value!r} is not a number") from exc


def metrics(seeds: Path | str = SEEDS) -> list[Metric]:
    """The metrics of ``pci_metrics.csv``, in their order (``metric_number``)."""
    path = f"{Path(seeds) / METRICS_SEED}"
    rows = _rows(seeds, METRICS_SEED,
                 {"metric", "metric_number", "label", "unit", "threshold", "max_points"})
    out = [Metric(r["metric"], int(_decimal(path, r, "metric_number")), r["label"], r["unit"],
                  _decimal(path, r, "threshold"), _decimal(path, r, "max_points")) for r in rows]
    if len({m.key for m in out}) != len(out) or len({m.number for m in out}) != len(out):
        raise RuleTableError(f"rule table {path}: metric and metric_number must be unique")
    if any(m.threshold <= 0 for m in out):
        raise RuleTableError(f"rule table {path}: every threshold must be above 0")
    return sorted(out, key=lambda m: m.number)


def levels(seeds: Path | str = SEEDS) -> list[Level]:
    """The levels of ``pci_levels.csv``, highest minimum score first; the lowest starts at 0."""
    path = f"{Path(seeds) / LEVELS_SEED}"
    out = sorted((Level(r["level"], _decimal(path, r, "min_score"))
                  for r in _rows(seeds, LEVELS_SEED, {"level", "min_score"})),
                 key=lambda lv: lv.min_score, reverse=True)
    if len({lv.min_score for lv in out}) != len(out) or out[-1].min_score != 0:
        raise RuleTableError(f"rule table {path}: min_score must be unique and the lowest 0 "
                             f"(every score has a level)")
    return out


def level_of(score, table: list[Level] | None = None) -> Level:
    """The level of ``score``: the one of ``table`` (default: :func:`levels`) with the
    highest ``min_score`` not above it [D-3]."""
    table = levels() if table is None else table
    score = Decimal(str(score))
    for lv in sorted(table, key=lambda lv: lv.min_score, reverse=True):
        if score >= lv.min_score:
            return lv
    raise RuleTableError(f"no level for score {score}: the lowest min_score is above it")


def constants(seeds: Path | str = SEEDS) -> dict[str, Decimal]:
    """The single-valued rules of ``pci_rule_constants.csv`` (one row, a column per
    constant): name -> value."""
    path = f"{Path(seeds) / CONSTANTS_SEED}"
    rows = _rows(seeds, CONSTANTS_SEED, set())
    if len(rows) != 1:
        raise RuleTableError(f"rule table {path}: one row expected, found {len(rows)}")
    return {name: _decimal(path, rows[0], name) for name in rows[0]}


def constant(name: str, seeds: Path | str = SEEDS) -> Decimal:
    table = constants(seeds)
    if name not in table:
        raise RuleTableError(f"rule table {Path(seeds) / CONSTANTS_SEED}: no column {name!r}")
    return table[name]


def __getattr__(name: str):
    """A constant of ``pci_rule_constants.csv`` as a module attribute, its column name in
    capitals (``MAU_GROWTH_MIN_BASELINE``), read from the seed on first use."""
    if not name.isupper():
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = constant(name.lower())
    except RuleTableError as exc:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}: {exc}") from exc
    value = int(value) if value == value.to_integral_value() else value
    globals()[name] = value
    return value


#: points are rounded to the cent (pci-rules.md, "Points")
CENT = Decimal("0.01")


def round_points(x: Decimal) -> Decimal:
    """Half-up to 2 decimals (pci-rules.md, "Points")."""
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def points_for(metric: Metric, value) -> Decimal:
    """pci-rules.md: ``max_points × min(max(value, 0) / threshold, 1)``, half-up to 2 decimals."""
    if value is None:
        return Decimal("0.00")
    v = max(Decimal(str(value)), Decimal(0))
    return round_points(metric.max_points * min(v / metric.threshold, Decimal(1)))
