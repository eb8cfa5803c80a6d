"""Month-partitioned incremental models (macros/pci_partitions.sql) against full rebuilds.

A generated world is landed and scored; then months are landed again with fewer
rows (down to none), with more rows and with a changed partner list, and new
months are landed. After each step the incremental build must give exactly the
rows of a full rebuild (``full_refresh=True``, the models rebuilt from the raw
tables) on a copy of the same warehouse: every column of every row of the
marts, and of the partitions of the month-partitioned models the range reads.
A restatement must derive exactly the partitions that read the restated month,
and nothing else.
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pci.core.contract import BUILD_SCHEMA, add_months, format_month, parse_month
from pci.land.landing import land_month
from pci.score.scoring import build
from tests.support.restatements import add_copies, change_partners, drop_tenants, restate

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

FIRST = "2020-07"
MONTHS = 16
#: model -> (its month column, lookback in months, horizon relative to the first score month)
PARTITIONED = {
    "int_subscription_months": ("month", 0, -24),
    "int_tenant_monthly_seats": ("month", 0, -24),
    "int_subscription_partner_credits": ("month", 0, -23),
    "int_customer_seat_events": ("event_month", 1, -23),
    "int_customer_add_credits": ("add_month", 1, -23),
    "int_ea_first_year_revenue": ("billing_month", 0, -11),
    "int_partner_revenue_credits": ("billing_month", 0, -11),
}
MARTS = ("pci_monthly_scores", "pci_metric_contributions", "pci_next_month_projection")


def _month(i: int) -> str:
    return format_month(add_months(parse_month(FIRST), i))


def _rows(con, sql: str) -> list[tuple]:
    return sorted(con.execute(sql).fetchall(), key=repr)


def content(warehouse: Path, first: str, last: str) -> dict[str, list[tuple]]:
    """Every row of the marts, and of the partitions of the partitioned models the range reads."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        out = {m: _rows(con, f"SELECT * FROM {BUILD_SCHEMA}.{m}") for m in MARTS}
        for model, (column, _, horizon) in PARTITIONED.items():
            lo = add_months(parse_month(first), horizon)  # the model's months the range reads
            out[model] = _rows(con, f"SELECT * FROM {BUILD_SCHEMA}.{model} "
                                    f"WHERE {column} BETWEEN DATE '{lo}' AND DATE '{parse_month(last)}'")
        return out
    finally:
        con.close()


def _newest_stamp(warehouse: Path) -> str:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                             "AND table_name = 'pci_partitions'", [BUILD_SCHEMA]).fetchone()[0]
        return con.execute(f"SELECT coalesce(max(built_at), '') FROM {BUILD_SCHEMA}.pci_partitions"
                           ).fetchone()[0] if exists else ""
    finally:
        con.close()


def score(warehouse: Path, first: str, last: str, full_refresh: bool = False) -> dict[str, list[str]]:
    """Build first..last; return model -> the months (YYYY-MM) this build derived."""
    before = _newest_stamp(warehouse)
    build(warehouse, parse_month(first), parse_month(last), full_refresh=full_refresh)
    return derived_since(warehouse, before)


def derived_since(warehouse: Path, before: str) -> dict[str, list[str]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            f"SELECT model_name, strftime(partition_month, '%Y-%m') FROM {BUILD_SCHEMA}.pci_partitions "
            f"WHERE partition_month IS NOT NULL AND built_at > ? ORDER BY 1, 2", [before]).fetchall()
    finally:
        con.close()
    out: dict[str, list[str]] = {m: [] for m in PARTITIONED}
    for model, month in rows:
        out[model].append(month)
    return out


def assert_same_as_full_rebuild(warehouse: Path, first: str, last: str, tmp_path: Path) -> None:
    copy = tmp_path / f"full-{first}-{last}.duckdb"
    shutil.copyfile(warehouse, copy)
    score(copy, first, last, full_refresh=True)
    incremental, full = content(warehouse, first, last), content(copy, first, last)
    for name in incremental:
        assert incremental[name] == full[name], (
            f"{name}: the incremental build differs from a full rebuild "
            f"({len(incremental[name])} vs {len(full[name])} rows; "
            f"only incremental: {sorted(set(incremental[name]) - set(full[name]), key=repr)[:3]}; "
            f"only full: {sorted(set(full[name]) - set(incremental[name]), key=repr)[:3]})")
    copy.unlink()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A generated landing of 16 months, all landed, the last three scored incrementally."""
    from tools.generate import generate

    root = tmp_path_factory.mktemp("partitions")
    landing = root / "landing"
    generate(landing, first=parse_month(FIRST), months=MONTHS, partners=14, tenants=500, seed=11)
    warehouse = root / "base.duckdb"
    for i in range(MONTHS):
        land_month(landing, warehouse, _month(i))
    score(warehouse, _month(MONTHS - 3), _month(MONTHS - 1))
    return root


def _copy_world(world: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(world / "landing", tmp_path / "landing")
    shutil.copyfile(world / "base.duckdb", tmp_path / "w.duckdb")
    return tmp_path / "landing", tmp_path / "w.duckdb"


def test_a_new_month_derives_only_its_own_partitions(world, tmp_path):
    landing, wh = _copy_world(world, tmp_path)
    assert score(wh, _month(MONTHS - 1), _month(MONTHS - 1)) == {m: [] for m in PARTITIONED}, \
        "an unchanged month was derived again"
    restate(landing, _month(MONTHS - 1), add_copies(5, seed=1))  # stands in for a next month's new load
    land_month(landing, wh, _month(MONTHS - 1))
    got = score(wh, _month(MONTHS - 1), _month(MONTHS - 1))
    last, before = _month(MONTHS - 1), _month(MONTHS - 2)
    assert got["int_subscription_months"] == [last]
    assert got["int_tenant_monthly_seats"] == [last]
    assert got["int_subscription_partner_credits"] == [last]
    assert got["int_customer_seat_events"] == [last]  # reads m-1 and m: only the last month reads it
    assert got["int_customer_add_credits"] == [last]
    assert got["int_ea_first_year_revenue"] == [last]
    assert got["int_partner_revenue_credits"] == [last]
    assert before not in got["int_subscription_months"]


@pytest.mark.parametrize("change, name", [
    (drop_tenants(0.4, seed=3), "fewer rows"),
    (drop_tenants(1.0, seed=4), "no rows at all"),
    (add_copies(40, seed=5), "more rows"),
    (change_partners(seed=6), "changed partner list"),
])
def test_a_restated_month_gives_the_rows_of_a_full_rebuild(world, tmp_path, change, name):
    landing, wh = _copy_world(world, tmp_path)
    first, last = _month(MONTHS - 3), _month(MONTHS - 1)
    restated = _month(MONTHS - 5) if name != "changed partner list" else _month(MONTHS - 2)
    restate(landing, restated, change)
    land_month(landing, wh, restated)
    got = score(wh, first, last)
    # exactly the partitions that read the restated month: its own, and the next month's
    # events and add credits (they read m-1)
    nxt = format_month(add_months(parse_month(restated), 1))
    assert got["int_subscription_months"] == [restated], name
    assert got["int_tenant_monthly_seats"] == [restated], name
    assert got["int_subscription_partner_credits"] == [restated], name
    assert got["int_customer_seat_events"] == [restated, nxt], name
    assert got["int_customer_add_credits"] == [restated, nxt], name
    # revenue is kept for the 12-month windows of the range: F-11 .. L
    in_windows = parse_month(restated) >= add_months(parse_month(first), -11)
    assert got["int_ea_first_year_revenue"] == ([restated] if in_windows else []), name
    assert got["int_partner_revenue_credits"] == ([restated] if in_windows else []), name
    if name == "no rows at all":
        con = duckdb.connect(str(wh), read_only=True)
        try:
            left = con.execute(f"SELECT count(*) FROM {BUILD_SCHEMA}.int_subscription_months "
                               f"WHERE month = DATE '{parse_month(restated)}'").fetchone()[0]
        finally:
            con.close()
        assert left == 0, "a restated month without rows kept rows of its old load"
    assert_same_as_full_rebuild(wh, first, last, tmp_path)


def test_a_random_sequence_of_landings_and_restatements_equals_a_full_rebuild(tmp_path):
    from tools.generate import generate

    rng = random.Random(20261202)
    landing = tmp_path / "landing"
    generate(landing, first=parse_month(FIRST), months=MONTHS, partners=10, tenants=300, seed=5)
    wh = tmp_path / "w.duckdb"
    landed = 13
    for i in range(landed):
        land_month(landing, wh, _month(i))
    score(wh, _month(12), _month(12))
    changes = [lambda s: drop_tenants(0.3, s), lambda s: add_copies(10, s), change_partners,
               lambda s: drop_tenants(1.0, s)]
    for step in range(5):
        if landed < MONTHS and rng.random() < 0.4:
            land_month(landing, wh, _month(landed))
            landed += 1
        else:
            month = _month(rng.randrange(landed))
            restate(landing, month, rng.choice(changes)(step))
            land_month(landing, wh, month)
        last = landed - 1
        first = max(12, last - rng.randrange(3))
        score(wh, _month(first), _month(last))
    assert_same_as_full_rebuild(wh, _month(first), _month(last), tmp_path)


def test_score_full_refresh_on_the_command_line_derives_every_needed_month(world, tmp_path):
    landing, wh = _copy_world(world, tmp_path)
    before = _newest_stamp(wh)
    last = _month(MONTHS - 1)
    res = subprocess.run([sys.executable, "-m", "pci", "score", "--warehouse", str(wh), "--month", last,
                          "--full-refresh"], capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PCI_DBT_UNIT_TESTS": "changed"})
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    got = derived_since(wh, before)
    everything = [_month(i) for i in range(MONTHS)]  # all landed months are within F-24 .. L
    assert got["int_subscription_months"] == everything
    assert got["int_customer_seat_events"] == everything  # the earliest month: derived, no event
    # an incremental build right after derives nothing
    assert score(wh, last, last) == {m: [] for m in PARTITIONED}
