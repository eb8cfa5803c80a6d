"""A small, hand-made published mart for the analysts' tools and their tests.

:func:`build_mart` writes a DuckDB file holding, in schema ``main``, the two
published tables with exactly the contract's columns and types:
``pci_monthly_scores`` (raw-exports.md, section 4) and
``pci_metric_contributions`` (docs/architecture.md, "The marts"), plus the
current ``raw.partners`` rows (names and countries), for nine partners over
the score months 2021-07, 2021-08 and 2021-09.

The data is written as *contributions* (the billing lines, customer adds and
losses, certified people, deployed tenants and MAU per subscription behind
each metric); the metric values are the sums of their contributions, and the
points, score and level are computed from the values with the rules of
pci-rules.md ("Points"). So the two tables always agree with each other and
with the rules, and :data:`EXPECTED` holds the score rows as Python values for
tests to derive their expectations from.

The partners, as of 2021-09 (score):

* P1001 Contoso        gold, 100 points, every metric at full points
* P1002 Fabrikam       silver (was gold in 2021-08), 71.93
* P1003 Northwind      none, MAU baseline below 50 (growth not eligible)
* P1004 Adatum         none, within 5 points of silver
* P1005 Litware        silver (was none), within 5 points of gold
* P1006 Tailspin       a new partner in 2021-09, no contributions, score 0
* P1007 Wingtip        none, a revenue credit, net customer adds below 0
* P1008 Proseware      gold (was silver)
* P1009 Woodgrove      silver, many revenue lines (for "… and N more")
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb

from pci.core import rules
from pci.core.contract import add_months

MONTHS = (dt.date(2021, 7, 1), dt.date(2021, 8, 1), dt.date(2021, 9, 1))
LATEST = MONTHS[-1]

#: metric -> (threshold, max points): pci-rules.md, "Points"
RULES = {
    "net_new_revenue": (Decimal("30000"), 10),
    "net_customer_adds": (Decimal("10"), 10),
    "functional_consultants": (Decimal("5"), 30),
    "developers": (Decimal("2"), 5),
    "new_deployments": (Decimal("10"), 20),
    "mau_growth": (Decimal("0.35"), 25),
}

PARTNERS = {
    "P1001": ("Contoso Dynamics AB", "SE"),
    "P1002": ("Fabrikam Consulting AS", "NO"),
    "P1003": ("Northwind Traders ApS", "DK"),
    "P1004": ("Adatum Oy", "FI"),
    "P1005": ("Litware Solutions AB", "SE"),
    "P1006": ("Tailspin Advisory AS", "NO"),
    "P1007": ("Wingtip Systems GmbH", "DE"),
    "P1008": ("Proseware Partners AB", "SE"),
    "P1009": ("Woodgrove Digital Ltd", ""),
}

SCORE_COLUMNS = (
    ("score_month", "DATE"), ("partner_id", "VARCHAR"),
    ("net_new_revenue_usd", "DECIMAL(18,2)"), ("net_customer_adds", "INTEGER"),
    ("functional_consultants", "INTEGER"), ("developers", "INTEGER"),
    ("new_deployments", "INTEGER"), ("mau_baseline", "BIGINT"), ("mau_current", "BIGINT"),
    ("mau_growth", "DOUBLE"),
    ("points_net_new_revenue", "DECIMAL(5,2)"), ("points_net_customer_adds", "DECIMAL(5,2)"),
    ("points_functional_consultants", "DECIMAL(5,2)"), ("points_developers", "DECIMAL(5,2)"),
    ("points_new_deployments", "DECIMAL(5,2)"), ("points_mau_growth", "DECIMAL(5,2)"),
    ("pci_score", "DECIMAL(5,2)"), ("competency_level", "VARCHAR"), ("window_complete", "BOOLEAN"),
)
CONTRIBUTION_COLUMNS = (
    ("score_month", "DATE"), ("partner_id", "VARCHAR"), ("metric", "VARCHAR"),
    ("contributor_kind", "VARCHAR"), ("contributor_id", "VARCHAR"), ("tenant_id", "VARCHAR"),
    ("subscription_id", "VARCHAR"), ("event_month", "DATE"), ("detail", "VARCHAR"),
    ("amount", "DECIMAL(38,6)"),
)

CE_FC = "CE Functional Consultant Associate"
BC_FC = "Business Central Functional Consultant Associate"
CE_DEV = "CE Developer Associate"


@dataclass
class Spec:
    """What is behind one partner's score in one month."""
    revenue: list = field(default_factory=list)   # (amount, months back); negative = credit
    adds: int = 0
    losses: int = 0
    consultants: int = 0
    developers: int = 0
    deployments: int = 0
    mau: list = field(default_factory=list)       # (baseline, current) per subscription


def S(**kw) -> Spec:
    return Spec(**kw)


#: partner -> month -> Spec; a partner absent from a month has no row that month
SPECS: dict[str, dict[dt.date, Spec]] = {
    "P1001": {
        MONTHS[0]: S(revenue=[(18000, 1), (9000, 4)], adds=9, consultants=5, developers=2,
                     deployments=9, mau=[(60, 80), (60, 70)]),
        MONTHS[1]: S(revenue=[(20000, 0), (9000, 5)], adds=11, consultants=5, developers=2,
                     deployments=10, mau=[(60, 85), (60, 78)]),
        MONTHS[2]: S(revenue=[(20000, 1), (10000, 0), (6000, 6)], adds=12, consultants=5,
                     developers=2, deployments=10, mau=[(60, 90), (60, 80)]),
    },
    "P1002": {
        MONTHS[0]: S(revenue=[(26000, 2), (6000, 3)], adds=9, consultants=5, developers=1,
                     deployments=8, mau=[(100, 140)]),
        MONTHS[1]: S(revenue=[(25000, 3), (6000, 4)], adds=9, consultants=4, developers=1,
                     deployments=9, mau=[(100, 136)]),
        MONTHS[2]: S(revenue=[(15000, 0), (9000, 2)], adds=7, losses=1, consultants=3,
                     developers=1, deployments=8, mau=[(100, 130)]),
    },
    "P1003": {
        MONTHS[0]: S(revenue=[(4000, 1)], adds=1, consultants=1, deployments=1, mau=[(30, 40)]),
        MONTHS[1]: S(revenue=[(4000, 2), (2000, 0)], adds=2, consultants=1, deployments=1,
                     mau=[(30, 45)]),
        MONTHS[2]: S(revenue=[(6000, 1)], adds=2, consultants=1, developers=1, deployments=2,
                     mau=[(30, 60)]),
    },
    "P1004": {
        MONTHS[0]: S(revenue=[(21000, 3)], adds=4, consultants=2, developers=1, deployments=4,
                     mau=[(200, 230)]),
        MONTHS[1]: S(revenue=[(24000, 1), (3000, 0)], adds=5, consultants=2, developers=2,
                     deployments=5, mau=[(200, 240)]),
        MONTHS[2]: S(revenue=[(24000, 2), (6000, 0)], adds=5, consultants=2, developers=2,
                     deployments=5, mau=[(120, 150), (80, 100)]),
    },
    "P1005": {
        MONTHS[0]: S(revenue=[(30000, 2)], adds=6, consultants=2, deployments=5, mau=[(80, 90)]),
        MONTHS[1]: S(revenue=[(30000, 3)], adds=7, consultants=2, deployments=6, mau=[(80, 92)]),
        MONTHS[2]: S(revenue=[(30000, 4), (15000, 0)], adds=10, consultants=4, deployments=7,
                     mau=[(80, 100)]),
    },
    "P1006": {
        MONTHS[2]: S(),
    },
    "P1007": {
        MONTHS[0]: S(revenue=[(10000, 0)], adds=3, consultants=1, deployments=2, mau=[(50, 48)]),
        MONTHS[1]: S(revenue=[(10000, 1), (-1000, 0)], adds=3, losses=2, consultants=1,
                     deployments=2, mau=[(50, 46)]),
        MONTHS[2]: S(revenue=[(10000, 2), (-2500, 0)], adds=2, losses=4, consultants=1,
                     deployments=2, mau=[(50, 45)]),
    },
    "P1008": {
        MONTHS[0]: S(revenue=[(12000, 1)], adds=4, consultants=4, developers=1, deployments=6,
                     mau=[(300, 360)]),
        MONTHS[1]: S(revenue=[(15000, 1)], adds=5, consultants=4, developers=1, deployments=6,
                     mau=[(300, 370)]),
        MONTHS[2]: S(revenue=[(15000, 2), (9000, 0)], adds=8, consultants=5, developers=1,
                     deployments=8, mau=[(300, 400)]),
    },
    "P1009": {
        MONTHS[1]: S(revenue=[(1500 + 250 * i, i % 12) for i in range(10)], adds=6,
                     consultants=3, developers=2, deployments=6, mau=[(70, 80), (40, 55)]),
        MONTHS[2]: S(revenue=[(1500 + 250 * i, i % 12) for i in range(14)], adds=6,
                     consultants=3, developers=2, deployments=7, mau=[(70, 85), (40, 60)]),
    },
}


def round2(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def points(metric: str, value) -> Decimal:
    """pci-rules.md: max_points × min(max(value, 0) / threshold, 1), rounded half-up."""
    threshold, max_points = RULES[metric]
    if value is None:
        return Decimal("0.00")
    v = max(Decimal(str(value)), Decimal(0))
    return round2(max_points * min(v / threshold, Decimal(1)))


def level(score: Decimal) -> str:
    return "gold" if score >= 80 else "silver" if score >= 60 else "none"


def _contributions(partner: str, month: dt.date, spec: Spec) -> list[tuple]:
    n = partner[1:]
    rows = []

    def add(metric, kind, cid, tenant, sub, event, detail, amount):
        rows.append((month, partner, metric, kind, cid, tenant, sub, event, detail,
                     Decimal(str(amount)).quantize(Decimal("0.0001"))))

    for i, (amount, back) in enumerate(spec.revenue, 1):
        sub, tenant = f"S-{n}-{i:02d}", f"T-{n}-{i:02d}"
        add("net_new_revenue", "subscription", sub, tenant, sub, add_months(month, -back),
            "CREDIT" if amount < 0 else "CHARGE", amount)
    for i in range(spec.adds):
        t = f"T-{n}-{i + 1:02d}"
        add("net_customer_adds", "tenant", t, t, None, add_months(month, -(i % 12)), "add", 1)
    for i in range(spec.losses):
        t = f"T-{n}-{50 + i:02d}"
        add("net_customer_adds", "tenant", t, t, None, add_months(month, -(i % 3)), "loss", -1)
    for i in range(spec.consultants):
        add("functional_consultants", "person", f"PER-{n}-{i + 1:02d}", None, None, None,
            CE_FC if i % 2 == 0 else BC_FC, 1)
    for i in range(spec.developers):
        add("developers", "person", f"PER-{n}-{i + 1:02d}", None, None, None, CE_DEV, 1)
    for i in range(spec.deployments):
        t = f"T-{n}-{i + 1:02d}"
        add("new_deployments", "tenant", t, t, None, None, f"S-{n}-{i + 1:02d}", 1)
    for i, (baseline, current) in enumerate(spec.mau, 1):
        sub, tenant = f"S-{n}-{i:02d}", f"T-{n}-{i:02d}"
        add("mau_growth", "subscription", sub, tenant, sub, None, "baseline", baseline)
        add("mau_growth", "subscription", sub, tenant, sub, None, "current", current)
    return rows


def _score_row(partner: str, month: dt.date, contributions: list[tuple]) -> dict:
    def total(metric, detail=None):
        return sum((r[9] for r in contributions
                    if r[2] == metric and (detail is None or r[8] == detail)), Decimal(0))

    baseline = int(total("mau_growth", "baseline"))
    current = int(total("mau_growth", "current"))
    growth = (current - baseline) / baseline if baseline >= 50 else None
    row = {
        "score_month": month, "partner_id": partner,
        "net_new_revenue_usd": round2(total("net_new_revenue")),
        "net_customer_adds": int(total("net_customer_adds")),
        "functional_consultants": int(total("functional_consultants")),
        "developers": int(total("developers")),
        "new_deployments": int(total("new_deployments")),
        "mau_baseline": baseline, "mau_current": current, "mau_growth": growth,
    }
    value_col = {"net_new_revenue": "net_new_revenue_usd"}
    for metric in RULES:
        row[f"points_{metric}"] = points(metric, row[value_col.get(metric, metric)])
    row["pci_score"] = sum((row[f"points_{m}"] for m in RULES), Decimal("0.00"))
    row["competency_level"] = level(row["pci_score"])
    row["window_complete"] = False
    return row


def _build() -> tuple[list[dict], list[tuple]]:
    scores, contributions = [], []
    for partner, by_month in SPECS.items():
        for month, spec in by_month.items():
            rows = _contributions(partner, month, spec)
            contributions.extend(rows)
            scores.append(_score_row(partner, month, rows))
    scores.sort(key=lambda r: (r["score_month"], r["partner_id"]))
    return scores, contributions


#: the score rows the fixture writes, as Python values (Decimal for DECIMAL columns)
EXPECTED, CONTRIBUTIONS = _build()


def expected(month: dt.date = LATEST) -> dict[str, dict]:
    """partner_id -> score row of ``month``."""
    return {r["partner_id"]: r for r in EXPECTED if r["score_month"] == month}


def create_tables(con) -> None:
    cols = ", ".join(f"{n} {t}" for n, t in SCORE_COLUMNS)
    con.execute(f"CREATE TABLE main.pci_monthly_scores ({cols}, PRIMARY KEY (score_month, partner_id))")
    cols = ", ".join(f"{n} {t}" for n, t in CONTRIBUTION_COLUMNS)
    con.execute(f"CREATE TABLE main.pci_metric_contributions ({cols})")


def populate(con) -> None:
    """Create and fill the two published tables (and raw.partners) on ``con``."""
    create_tables(con)
    names = [n for n, _ in SCORE_COLUMNS]
    con.executemany(
        f"INSERT INTO main.pci_monthly_scores ({', '.join(names)}) "
        f"VALUES ({', '.join('?' * len(names))})",
        [[r[n] for n in names] for r in EXPECTED])
    con.executemany(
        f"INSERT INTO main.pci_metric_contributions VALUES ({', '.join('?' * 10)})",
        [list(r) for r in CONTRIBUTIONS])
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute("CREATE TABLE raw.partners (partner_id VARCHAR, partner_name VARCHAR, "
                "country VARCHAR, export_month DATE, load_id VARCHAR)")
    con.executemany("INSERT INTO raw.partners VALUES (?, ?, ?, ?, ?)",
                    [[p, name, country or None, m, f"load-{m:%Y-%m}"]
                     for m in MONTHS for p, (name, country) in PARTNERS.items()
                     if m in SPECS[p] or m == LATEST])


def build_mart(path: Path) -> Path:
    """Write the fixture warehouse to ``path`` (a new DuckDB file) and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        populate(con)
    finally:
        con.close()
    return path


def projection_warehouse(path: Path) -> Path:
    """The fixture warehouse with a published projection made at LATEST, in which
    every partner has lost its revenue and customer-add points (the other columns as the
    score), and its analysts' copy."""
    warehouse = build_mart(path)
    levels = sorted(rules.levels(), key=lambda lv: lv.min_score)
    left = "pci_score - points_net_new_revenue - points_net_customer_adds"
    case = " ".join(f"WHEN {left} >= {lv.min_score} THEN '{lv.name}'"
                    for lv in reversed(levels))
    with duckdb.connect(str(warehouse)) as con:
        from pci.core.catalog import ensure_publish_schema

        ensure_publish_schema(con)
        con.execute(f"""INSERT INTO main.pci_next_month_projection
            SELECT score_month, CAST(score_month + INTERVAL 1 MONTH AS DATE) AS projected_month,
                   partner_id, 0::DECIMAL(18,2) AS net_new_revenue_usd,
                   0 AS net_customer_adds, functional_consultants, developers, new_deployments,
                   mau_baseline, mau_current, mau_growth, 0::DECIMAL(5,2) AS points_net_new_revenue,
                   0::DECIMAL(5,2) AS points_net_customer_adds, points_functional_consultants,
                   points_developers,
                   points_new_deployments, points_mau_growth,
                   CAST({left} AS DECIMAL(5,2)) AS pci_score,
                   CASE {case} END AS competency_level, window_complete
            FROM main.pci_monthly_scores WHERE score_month = ?""", [LATEST])
        from pci.publish.analyst_copy import publish_read_only_copy

        publish_read_only_copy(con, warehouse)
    return warehouse


# --------------------------------------------------------------------------- a run holding the warehouse

_HOLDER = r"""
import sys, duckdb
con = duckdb.connect(sys.argv[1])          # the one writer of the file
if sys.argv[3] == "copy":
    from pci.publish.analyst_copy import publish_read_only_copy
    publish_read_only_copy(con, sys.argv[1])
con.execute("BEGIN TRANSACTION")           # a run in the middle of replacing a month
con.execute("DELETE FROM main.pci_monthly_scores WHERE score_month = DATE '2021-09-01'")
print("holding", flush=True)
sys.stdin.readline()
con.execute("ROLLBACK")
con.close()
"""


class HeldWarehouse:
    """Context manager: another process holds ``path`` open for writing, with an
    uncommitted transaction, until the block ends. ``copy=True`` makes it
    publish the analysts' copy first, through its own write connection."""

    def __init__(self, path: Path, copy: bool = False):
        self.path, self.copy, self.proc = Path(path), copy, None

    def __enter__(self):
        import subprocess
        import sys

        root = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(self.path), str(root),
             "copy" if self.copy else "no-copy"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "holding":
            self.proc.kill()
            raise RuntimeError(f"the holding process did not start: {self.proc.stderr.read()}")
        return self

    def __exit__(self, *exc):
        try:
            self.proc.stdin.write("\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except Exception:  # noqa: BLE001
            self.proc.kill()
            self.proc.wait()
            raise
