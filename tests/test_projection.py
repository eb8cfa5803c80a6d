"""The next month's projection (models/marts/pci_next_month_projection.sql).

Definition (docs/rules.md, "Next month's projection"): the projection made at M
is the score M+1 would get under the rules if the export of M+1 were the export
of M with no billing lines.

* Hand-computed expectations on a small world of 13 landed months: a gold
  partner whose gold rests on revenue billed in M-11, a partner whose
  consultants' exams expire in M+1, a partner whose MAU baseline (and a
  deployment's crossing baseline) moves from M-12 to M-11, and a partner with
  nothing leaving, whose projection equals its score in every metric column.
* The definition itself, on random worlds of the sample-data generator: the
  projection made at M equals, column by column and partner by partner, the
  score published for M+1 in another warehouse where M+1 was landed as a copy
  of M's export with billing_lines.csv reduced to its header.

The pipeline is driven only through the CLI (``python -m pci run``/``generate``
in a subprocess) and the results are read with duckdb, so that these tests do
not depend on the package's module paths. The exports are written here from
the contract (shared/spec/raw-exports.md, sections 1-3).
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]

#: raw-exports.md, section 3: every file and its columns
CONTRACT_COLUMNS = {
    "partners.csv": ["partner_id", "partner_name", "country"],
    "tenants.csv": ["tenant_id", "tenant_name", "is_production"],
    "products.csv": ["product_id", "product_name"],
    "subscriptions.csv": ["subscription_id", "tenant_id", "product_id", "sales_channel", "is_paid",
                          "ea_agreement_start"],
    "partner_associations.csv": ["association_id", "partner_id", "subscription_id", "association_type",
                                 "cpor_incentive", "valid_from", "valid_to"],
    "partner_people.csv": ["person_id", "partner_id", "valid_from", "valid_to"],
    "exam_passes.csv": ["person_id", "exam_code", "passed_on", "expires_on"],
    "billing_lines.csv": ["line_id", "billing_date", "subscription_id", "line_type", "amount_usd"],
    "seat_snapshots.csv": ["subscription_id", "paid_seats"],
    "mau_snapshots.csv": ["subscription_id", "monthly_active_users"],
}

#: the columns of pci_monthly_scores (raw-exports.md, section 4)
SCORE_COLUMNS = [
    "score_month", "partner_id", "net_new_revenue_usd", "net_customer_adds",
    "functional_consultants", "developers", "new_deployments", "mau_baseline", "mau_current",
    "mau_growth", "points_net_new_revenue", "points_net_customer_adds",
    "points_functional_consultants", "points_developers", "points_new_deployments",
    "points_mau_growth", "pci_score", "competency_level", "window_complete",
]
#: the metric values, points, score and level (what a projection projects)
METRIC_COLUMNS = SCORE_COLUMNS[2:-1]


# ------------------------------------------------------------------ helpers


def month_add(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def fmt(month: dt.date) -> str:
    return f"{month:%Y-%m}"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def count_records(path: Path) -> int:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return max(sum(1 for record in csv.reader(fh) if record) - 1, 0)


def write_manifest(folder: Path, export_month: str) -> None:
    """``_manifest.json`` of the ten files in ``folder`` (raw-exports.md, section 1)."""
    files = {name: {"rows": count_records(folder / name),
                    "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest()}
             for name in CONTRACT_COLUMNS}
    (folder / "_manifest.json").write_text(
        json.dumps({"export_month": export_month, "files": files}, indent=2) + "\n", encoding="utf-8")


def write_export(landing: Path, month: dt.date, tables: dict[str, list[dict]]) -> Path:
    """One export folder: the ten files (a file not in ``tables`` gets its header only)."""
    folder = landing / fmt(month)
    folder.mkdir(parents=True)
    for name, columns in CONTRACT_COLUMNS.items():
        with open(folder / name, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([[_cell(row.get(c)) for c in columns] for row in tables.get(name, [])])
    write_manifest(folder, fmt(month))
    return folder


def write_next_month_without_billing(landing: Path, month: dt.date) -> Path:
    """Export M+1 := a copy of the export of M whose billing_lines.csv is reduced to its
    header, with the manifest's export month, row counts and checksums updated.

    Only billing_lines.csv has dates that the contract forces inside the export
    month (billing_date); the other files are copied byte for byte: the
    reference files are the state of M carried into M+1, and the seats and MAU
    of M+1 are those of M (the projection's definition)."""
    source, target = landing / fmt(month), landing / fmt(month_add(month, 1))
    shutil.copytree(source, target)
    (target / "_manifest.json").unlink()
    billing = target / "billing_lines.csv"
    with open(billing, encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh))
    with open(billing, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerow(header)
    write_manifest(target, fmt(month_add(month, 1)))
    return target


def pci(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m pci ...`` of this checkout, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "pci", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def run_month(landing: Path, warehouse: Path, month: dt.date) -> None:
    done = pci("run", "--landing", str(landing), "--warehouse", str(warehouse),
               "--month", fmt(month), "--quiet")
    assert done.returncode == 0, f"pci run {fmt(month)} failed:\n{done.stdout}\n{done.stderr}"


def fetch(warehouse: Path, sql: str, params: list | None = None) -> dict[str, dict]:
    """partner_id -> row (column -> value) of a query on the warehouse, read-only."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return {row["partner_id"]: row for row in (dict(zip(names, r)) for r in cur.fetchall())}


def projection(warehouse: Path, month: dt.date) -> dict[str, dict]:
    return fetch(warehouse, "SELECT * FROM pci_build.pci_next_month_projection WHERE score_month = ?",
                 [month])


def published_scores(warehouse: Path, month: dt.date) -> dict[str, dict]:
    return fetch(warehouse, "SELECT * FROM main.pci_monthly_scores WHERE score_month = ?", [month])


# ------------------------------------------------------------------ hand-computed world

FIRST = dt.date(2021, 1, 1)
M = dt.date(2022, 1, 1)  # the score month: 13 landed months 2021-01 .. 2022-01
OPEN_SINCE = dt.date(2020, 1, 1)


def hand_world_export(month: dt.date) -> dict[str, list[dict]]:
    """The export of ``month`` (2021-01 .. 2022-01) of the hand-computed world.

    P_A   gold at M only thanks to 24,000 USD billed in M-11 (2021-02); 6,000 more
          in M. 5 consultants, 2 developers, 5 deployed tenants (MAU 6 at M, no
          row before), MAU growth from a subscription at 100 (150 at M).
    P_B   4 consultants (MB-800): one exam expires in M+1 (15 Feb), one on
          EOM(M+1) (28 Feb: no longer active then), one the day after EOM(M+1),
          one never.
    P_C   S_C1 MAU 100 at M-12, 60 from M-11, 120 at M; S_C2 MAU 8 from M-11
          on (no row at M-12): crossed for M (below 5 at M-12), not for M+1.
    P_D   nothing leaves: revenue billed in M-10 and M, one consultant without
          expiry, MAU 80 at M-12 and M-11, 100 at M.
    No seat rows: no customer adds anywhere.
    """
    subscriptions = ["S_A0", *[f"S_A{k}" for k in range(1, 6)], "S_C1", "S_C2", "S_D1"]
    owner = {s: "P_" + s[2] for s in subscriptions}
    tenant = {s: "T_" + s[2:] for s in subscriptions}
    consultants = {**{f"U_A{k}": "P_A" for k in range(1, 6)}, **{f"U_B{k}": "P_B" for k in range(1, 5)},
                   "U_D1": "P_D"}
    developers = {"U_A6": "P_A", "U_A7": "P_A"}
    expiring = {  # person -> (passed_on, expires_on) of their MB-800
        "U_B1": (dt.date(2020, 2, 15), dt.date(2022, 2, 15)),
        "U_B3": (dt.date(2020, 2, 28), dt.date(2022, 2, 28)),
        "U_B4": (dt.date(2020, 3, 1), dt.date(2022, 3, 1)),
    }
    mau = {"S_A0": 150 if month == M else 100, "S_C2": None if month == FIRST else 8,
           "S_C1": 100 if month == FIRST else 120 if month == M else 60,
           "S_D1": 100 if month == M else 80}
    for k in range(1, 6):
        mau[f"S_A{k}"] = 6 if month == M else None
    billing = {
        dt.date(2021, 2, 1): [("L_A1", dt.date(2021, 2, 10), "S_A0", "24000")],
        dt.date(2021, 3, 1): [("L_D1", dt.date(2021, 3, 5), "S_D1", "5000")],
        M: [("L_A2", dt.date(2022, 1, 10), "S_A0", "6000"), ("L_D2", dt.date(2022, 1, 20), "S_D1", "1000")],
    }.get(month, [])
    return {
        "partners.csv": [{"partner_id": p, "partner_name": f"Partner {p[-1]}", "country": "SE"}
                         for p in ("P_A", "P_B", "P_C", "P_D")],
        "tenants.csv": [{"tenant_id": t, "tenant_name": f"Tenant {t}", "is_production": True}
                        for t in sorted(set(tenant.values()))],
        "products.csv": [{"product_id": "D365_SALES", "product_name": "Dynamics 365 Sales"}],
        "subscriptions.csv": [{"subscription_id": s, "tenant_id": tenant[s], "product_id": "D365_SALES",
                               "sales_channel": "CSP", "is_paid": True} for s in subscriptions],
        "partner_associations.csv": [{"association_id": "A_" + s, "partner_id": owner[s],
                                      "subscription_id": s, "association_type": "CSP",
                                      "valid_from": OPEN_SINCE} for s in subscriptions],
        "partner_people.csv": [{"person_id": u, "partner_id": p, "valid_from": OPEN_SINCE}
                               for u, p in {**consultants, **developers}.items()],
        "exam_passes.csv": [
            *[{"person_id": u, "exam_code": "MB-800",
               "passed_on": expiring.get(u, (dt.date(2020, 6, 1), None))[0],
               "expires_on": expiring.get(u, (None, None))[1]} for u in consultants],
            *[{"person_id": u, "exam_code": "PL-400", "passed_on": dt.date(2020, 6, 1)} for u in developers],
        ],
        "billing_lines.csv": [{"line_id": i, "billing_date": d, "subscription_id": s, "line_type": "CHARGE",
                               "amount_usd": a} for i, d, s, a in billing],
        "mau_snapshots.csv": [{"subscription_id": s, "monthly_active_users": n}
                              for s, n in mau.items() if n is not None],
    }


@pytest.fixture(scope="module")
def hand_world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("projection_hand")
    landing, warehouse = folder / "landing", folder / "warehouse.duckdb"
    month = FIRST
    while month <= M:
        write_export(landing, month, hand_world_export(month))
        month = month_add(month, 1)
    run_month(landing, warehouse, M)
    return warehouse


def D(text: str) -> Decimal:
    return Decimal(text)


#: partner -> (score of M, projection made at M), hand-computed from pci-rules.md
HAND_EXPECTED = {
    # revenue 24,000 (M-11) + 6,000 (M): 10 points; 5 consultants 30, 2 developers 5,
    # 5 deployments 10, growth (180 - 100) / 100 = 0.8: 25 -> 80.00 gold.
    # M+1: only the 6,000 of M remain: 2 points -> 72.00 silver.
    "P_A": ({"net_new_revenue_usd": D("30000.00"), "functional_consultants": 5, "developers": 2,
             "new_deployments": 5, "mau_baseline": 100, "mau_current": 180, "mau_growth": 0.8,
             "points_net_new_revenue": D("10.00"), "points_functional_consultants": D("30.00"),
             "points_developers": D("5.00"), "points_new_deployments": D("10.00"),
             "points_mau_growth": D("25.00"), "pci_score": D("80.00"), "competency_level": "gold"},
            {"net_new_revenue_usd": D("6000.00"), "points_net_new_revenue": D("2.00"),
             "pci_score": D("72.00"), "competency_level": "silver"}),
    # 4 consultants at EOM(M); at EOM(M+1) the exams expiring 15 Feb and 28 Feb are no
    # longer active: 2 consultants, 12 points
    "P_B": ({"functional_consultants": 4, "points_functional_consultants": D("24.00"),
             "pci_score": D("24.00"), "competency_level": "none"},
            {"functional_consultants": 2, "points_functional_consultants": D("12.00"),
             "pci_score": D("12.00")}),
    # M: baseline (M-12) 100, current 120 + 8 = 128, growth 0.28: 20 points; S_C2 crossed
    # (no row at M-12): 1 deployment, 2 points -> 22.00.
    # M+1: baseline (M-11) 60 + 8 = 68, growth 60 / 68: 25 points; S_C2 had 8 at M-11:
    # not crossed -> 25.00
    "P_C": ({"new_deployments": 1, "mau_baseline": 100, "mau_current": 128, "mau_growth": 0.28,
             "points_new_deployments": D("2.00"), "points_mau_growth": D("20.00"),
             "pci_score": D("22.00")},
            {"new_deployments": 0, "mau_baseline": 68, "mau_current": 128, "mau_growth": 60 / 68,
             "points_new_deployments": D("0.00"), "points_mau_growth": D("25.00"),
             "pci_score": D("25.00")}),
    # revenue 5,000 (M-10) + 1,000 (M): 2 points; 1 consultant 6; growth (100 - 80) / 80
    # = 0.25: 17.86 -> 25.86, the same at M+1
    "P_D": ({"net_new_revenue_usd": D("6000.00"), "functional_consultants": 1, "mau_baseline": 80,
             "mau_current": 100, "mau_growth": 0.25, "points_net_new_revenue": D("2.00"),
             "points_functional_consultants": D("6.00"), "points_mau_growth": D("17.86"),
             "pci_score": D("25.86"), "competency_level": "none"},
            {}),
}


def _expected_row(values: dict) -> dict:
    zeros = {c: (0 if c in ("net_customer_adds", "functional_consultants", "developers",
                            "new_deployments", "mau_baseline", "mau_current")
                 else None if c == "mau_growth" else "none" if c == "competency_level" else D("0.00"))
             for c in METRIC_COLUMNS}
    return {**zeros, **values}


@pytest.mark.dbt
@pytest.mark.parametrize("partner", sorted(HAND_EXPECTED))
def test_hand_computed_score_and_projection(hand_world, partner):
    score_values, changes = HAND_EXPECTED[partner]
    want_score = _expected_row(score_values)
    want_projection = {**want_score, **changes}
    score = published_scores(hand_world, M)[partner]
    made = projection(hand_world, M)[partner]
    assert {c: score[c] for c in METRIC_COLUMNS} == pytest.approx(want_score)
    assert {c: made[c] for c in METRIC_COLUMNS} == pytest.approx(want_projection)
    assert (made["projected_month"], made["window_complete"], score["window_complete"]) == (
        month_add(M, 1), True, True)


@pytest.mark.dbt
def test_hand_world_gold_on_m_minus_11_revenue_drops_to_silver(hand_world):
    score, made = published_scores(hand_world, M)["P_A"], projection(hand_world, M)["P_A"]
    assert (score["competency_level"], made["competency_level"]) == ("gold", "silver")


@pytest.mark.dbt
def test_hand_world_nothing_leaving_projects_the_score(hand_world):
    score, made = published_scores(hand_world, M)["P_D"], projection(hand_world, M)["P_D"]
    assert {c: made[c] for c in METRIC_COLUMNS} == {c: score[c] for c in METRIC_COLUMNS}


@pytest.mark.dbt
def test_hand_world_projection_has_the_partners_of_the_scores(hand_world):
    assert set(projection(hand_world, M)) == set(published_scores(hand_world, M)) == set(HAND_EXPECTED)
    with duckdb.connect(str(hand_world), read_only=True) as con:
        cols = con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                           "'pci_build' AND table_name = 'pci_next_month_projection' "
                           "ORDER BY ordinal_position").fetchall()
    assert [c for (c,) in cols] == ["score_month", "projected_month", *SCORE_COLUMNS[1:]]


# ------------------------------------------------------------------ the definition, on random worlds

#: (seed, first export month, number of months up to M): M is the last generated month.
#: 14 months: M-12 landed; 12 months: M-11 landed but not M-12 (the score's baseline month
#: is missing, the projection's is there); 9 months: no window complete.
WORLDS = [(11, "2021-01", 14), (12, "2021-03", 12), (13, "2021-05", 9)]


@pytest.mark.dbt
@pytest.mark.slow
def test_projection_is_the_score_of_a_next_month_export_without_billing_lines(tmp_path):
    moved = 0
    for seed, first, months in WORLDS:
        world = tmp_path / f"world{seed}"
        landing = world / "landing"
        done = pci("generate", "--out", str(landing), "--first", first, "--months", str(months),
                   "--partners", "8", "--tenants", "150", "--seed", str(seed))
        assert done.returncode == 0, done.stderr
        month = month_add(dt.date.fromisoformat(first + "-01"), months - 1)
        assert sorted(p.name for p in landing.iterdir())[-1] == fmt(month)

        # warehouse A: the months up to M, scored at M (the export of M+1 does not exist yet)
        at_m = world / "at_m.duckdb"
        run_month(landing, at_m, month)
        made = projection(at_m, month)
        score_m = published_scores(at_m, month)

        # warehouse B: the same months plus M+1 := M's export without billing lines.
        # (B starts as a file copy of A, so that the months up to M are not landed twice;
        # the score of M+1 is built from B's raw tables like any other.)
        write_next_month_without_billing(landing, month)
        at_next = world / "at_next.duckdb"
        shutil.copyfile(at_m, at_next)
        run_month(landing, at_next, month_add(month, 1))
        next_score = published_scores(at_next, month_add(month, 1))

        assert made and set(made) == set(next_score) == set(score_m), seed
        for partner, row in made.items():
            assert row["projected_month"] == month_add(month, 1)
            want = dict(next_score[partner], score_month=month)
            assert {c: row[c] for c in SCORE_COLUMNS} == want, (seed, partner)
        moved += sum(1 for p in made if any(made[p][c] != score_m[p][c] for c in METRIC_COLUMNS))
    assert moved, "no partner's projection differs from its score: the worlds test nothing"
