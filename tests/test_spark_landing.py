"""Landing on Spark (`pci.land.spark_landing`) gives the raw tables DuckDB's landing gives.

One small generated world (4 months, 8 partners, 200 tenants), one Spark warehouse
folder and one DuckDB warehouse file for the whole module: the tests run in order
and each builds on the state the earlier ones left (three months landed, then
one landed again, ...). Every comparison is of every row and column, ``load_id``
and ``export_month`` included (``raw.loads``: but ``landed_at``), in one query per
engine: the values as each engine casts them to text (the same text for the same
value of the contract's types), the Spark tables' types checked apart.

Marked ``spark`` (run alone with ``-m spark``); needs Java 17 (`make java`).
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pci.core import spark as spark_engine
from pci.core.contract import FILES, FILES_BY_NAME, MANIFEST, parse_month
from pci.core.warehouse import connect, landed_months
from pci.land import landing as duck_landing
from pci.land import spark_landing
from pci.land.landing import NotReady, ValidationFailed, report_path
from tests.support.exports import write_manifest

pytestmark = [pytest.mark.spark,
              pytest.mark.skipif(shutil.which("java") is None, reason="Java 17 is needed: make java")]

ROOT = Path(__file__).resolve().parents[1]
RAW, ARCHIVE = "raw", "raw_archive"
LOADS_COLS = ("load_id", "export_month", "manifest_sha256", "is_current", "file_rows")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark-landing")
    landing = root / "landing"
    subprocess.run([sys.executable, "-m", "pci", "generate", "--out", str(landing), "--months", "4",
                    "--partners", "8", "--tenants", "200"], check=True, cwd=ROOT, capture_output=True)
    months = sorted(p.name for p in landing.iterdir() if (p / MANIFEST).is_file())
    assert len(months) == 4
    w = SimpleNamespace(landing=landing, months=months, spark_wh=root / "spark",
                        duck_wh=root / "duck" / "pci.duckdb")
    w.spark = spark_engine.session(w.spark_wh)
    yield w
    spark_engine.stop()


# --------------------------------------------------------------------------- helpers

#: every table landing writes: (schema, table)
TABLES = [(s, f.name) for s in (RAW, ARCHIVE) for f in FILES] + [(RAW, "loads")]


def _columns(name: str) -> list[str]:
    if name == "loads":
        return list(LOADS_COLS)  # all but landed_at
    return [*FILES_BY_NAME[name].column_names, "export_month", "load_id"]


def _snapshot_sql(tables, month: str | None, quote: str, text: str, array) -> str:
    """One query over ``tables``: per row, its table and every column (by name) as
    the engine writes it as text (DATE ``2021-08-01``, BOOLEAN ``true``, a DECIMAL
    with its scale's digits, ...): Spark's and DuckDB's text of a value are the same
    when the values are, and the tables' types are checked apart."""
    where = f" WHERE export_month = DATE '{parse_month(month).isoformat()}'" if month else ""
    return " UNION ALL ".join(
        f"SELECT '{schema}.{name}' AS t, "
        f"{array(', '.join(f'CAST({quote}{c}{quote} AS {text})' for c in _columns(name)))} AS v "
        f"FROM {schema}.{name}{where}" for schema, name in tables)


def _group(tables, rows) -> dict[str, list[tuple]]:
    out = {f"{schema}.{name}": [] for schema, name in tables}
    for table, values in rows:
        out[table].append(tuple(values))
    return {t: sorted(v, key=repr) for t, v in out.items()}


def spark_snapshot(w, tables=TABLES, month: str | None = None) -> dict[str, list[tuple]]:
    """``"schema.table"`` -> its sorted rows (text), on Spark: one Spark job."""
    sql = _snapshot_sql(tables, month, "`", "STRING", lambda v: f"array({v})")
    return _group(tables, ((r[0], r[1]) for r in w.spark.sql(sql).collect()))


def duck_snapshot(w, tables=TABLES, month: str | None = None) -> dict[str, list[tuple]]:
    con = connect(w.duck_wh, read_only=True)
    try:
        sql = _snapshot_sql(tables, month, '"', "VARCHAR", lambda v: f"[{v}]")
        return _group(tables, con.execute(sql).fetchall())
    finally:
        con.close()


def assert_same(w, tables=TABLES) -> dict[str, list[tuple]]:
    """Every row of ``tables`` is the same on Spark and on DuckDB, every column
    (raw.loads: but landed_at); returns the Spark rows."""
    spark, duck = spark_snapshot(w, tables), duck_snapshot(w, tables)
    for table in spark:
        assert spark[table] == duck[table], table
    return spark


def of_month(rows: list[tuple], month: str) -> list[tuple]:
    """The rows of a raw table (export_month next to last) of ``month``."""
    return [r for r in rows if r[-2] == parse_month(month).isoformat()]


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: (size, mtime_ns), to show that nothing was written."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def land_both(w, month: str):
    res = spark_landing.land_month(w.landing, w.spark_wh, month)
    duck = duck_landing.land_month(w.landing, w.duck_wh, month)
    return res, duck


def rewrite_csv(w, month: str, name: str, keep) -> list[list[str]]:
    """Keep the data rows ``keep(rows)`` of the month's ``<name>.csv``, rewrite the
    manifest; returns the rows kept."""
    path = w.landing / month / f"{name}.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    rows = keep(rows)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *rows])
    write_manifest(w.landing / month)
    return rows


# --------------------------------------------------------------------------- tests


def test_three_months_land_as_on_duckdb(world):
    w = world
    assert spark_landing.land_through(w.landing, w.spark_wh, w.months[2]) == w.months[:3]
    for m in w.months[:3]:
        assert duck_landing.land_month(w.landing, w.duck_wh, m).status == "landed"
    snap = assert_same(w)
    for f in FILES:  # the tables as the contract types them (the catalog: no Spark job)
        want = [(c.name, spark_engine.spark_type(c.duckdb_type).lower()) for c in f.columns]
        got = [(c.name, c.dataType.simpleString()) for c in w.spark.table(f"raw.{f.name}").schema]
        assert got == [*want, ("load_id", "string"), ("export_month", "date")]
        assert {r[-2] for r in snap[f"raw.{f.name}"]} <= {parse_month(m).isoformat() for m in w.months[:3]}
        assert snap[f"raw_archive.{f.name}"] == []
    assert [r[0][:12] for r in snap["raw.loads"]] == [f"{m}-001-" for m in w.months[:3]]
    assert {r[3] for r in snap["raw.loads"]} == {"true"}
    assert landed_months(spark_engine.Connection(w.spark)) == [parse_month(m) for m in w.months[:3]]
    assert not (w.spark_wh / spark_landing.HANDOFF_DIR).exists()
    (at,) = w.spark.sql("SELECT max(CAST(landed_at AS TIMESTAMP_NTZ)) FROM raw.loads").collect()[0]
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)  # landed_at: UTC now, naive
    assert dt.timedelta(0) <= now - at < dt.timedelta(minutes=15)
    assert spark_landing.land_through(w.landing, w.spark_wh, w.months[2]) == []


def test_a_changed_export_replaces_the_month_and_archives_the_old_rows(world):
    w = world
    m = w.months[2]
    before = spark_snapshot(w, [(RAW, "seat_snapshots"), (RAW, "loads")], m)
    old_seats, ((old_id, *_),) = before["raw.seat_snapshots"], before["raw.loads"]
    kept = rewrite_csv(w, m, "seat_snapshots", lambda rows: rows[: len(rows) - 7])
    assert spark_landing.needs_landing(w.landing, w.spark, m)

    res, duck = land_both(w, m)
    assert (res.status, res.replaced_load_id, res.load_id) == ("replaced", old_id, duck.load_id)
    assert res.load_id.startswith(f"{m}-002-") and res.rows == duck.rows
    assert res.rows["seat_snapshots.csv"] == len(kept) == len(old_seats) - 7
    snap = assert_same(w)
    new_seats = sorted(((s, str(int(n)), parse_month(m).isoformat(), res.load_id) for s, n in kept), key=repr)
    assert of_month(snap["raw.seat_snapshots"], m) == new_seats
    assert snap["raw_archive.seat_snapshots"] == old_seats
    for f in FILES:  # what was archived is the replaced load's rows (once: as on DuckDB)
        assert {r[-1] for r in snap[f"raw_archive.{f.name}"]} == {old_id}
        assert {r[-1] for r in of_month(snap[f"raw.{f.name}"], m)} <= {res.load_id}
    month_loads = {r[0]: r[3] for r in snap["raw.loads"] if r[1] == parse_month(m).isoformat()}
    assert month_loads == {old_id: "false", res.load_id: "true"}
    assert spark_landing.current_load(w.spark, m) == (res.load_id, res.manifest_sha256)


def test_the_same_manifest_again_is_unchanged_and_writes_nothing(world):
    w = world
    m = w.months[2]
    before = files_of(w.spark_wh / "tables")  # raw, raw_archive and raw.loads
    res = spark_landing.land_month(w.landing, w.spark_wh, m)
    assert res.status == "unchanged" and res.already_landed
    assert files_of(w.spark_wh / "tables") == before
    assert res.load_id == spark_landing.current_load(w.spark, m)[0]
    assert not spark_landing.needs_landing(w.landing, w.spark, m)


def test_a_folder_without_manifest_is_not_ready(world):
    w = world
    (w.landing / "2099-01").mkdir()
    try:
        with pytest.raises(NotReady):
            spark_landing.land_month(w.landing, w.spark_wh, "2099-01")
        assert not spark_landing.needs_landing(w.landing, w.spark, "2099-01")
    finally:
        (w.landing / "2099-01").rmdir()


def test_a_refused_export_writes_nothing_on_spark(world):
    w = world
    m = w.months[3]

    def blank_first_seat_count(rows):
        rows[0][1] = ""  # paid_seats is required
        return rows

    rewrite_csv(w, m, "seat_snapshots", blank_first_seat_count)
    before = files_of(w.spark_wh / "tables")  # raw, raw_archive and raw.loads
    with pytest.raises(ValidationFailed) as info:
        spark_landing.land_month(w.landing, w.spark_wh, m)
    assert "seat_snapshots.csv" in info.value.report.format_text()
    path = report_path(w.spark_wh, m)
    assert info.value.report_path == path and path.parent == w.spark_wh.parent / "validation"
    assert json.loads(path.read_text(encoding="utf-8"))
    with pytest.raises(ValidationFailed):  # the range stops at the refused month
        spark_landing.land_through(w.landing, w.spark_wh, m)
    assert files_of(w.spark_wh / "tables") == before
    assert not (w.spark_wh / spark_landing.HANDOFF_DIR).exists()
    assert spark_landing.needs_landing(w.landing, w.spark, m)


def test_a_monthly_file_without_rows_empties_the_months_partition(world):
    w = world
    m = w.months[1]
    mau = [(RAW, "mau_snapshots"), (ARCHIVE, "mau_snapshots"), (RAW, "loads")]
    old = of_month(spark_snapshot(w, mau)["raw.mau_snapshots"], m)
    assert old
    rewrite_csv(w, m, "mau_snapshots", lambda rows: [])
    res, duck = land_both(w, m)
    assert (res.status, res.load_id, res.rows["mau_snapshots.csv"]) == ("replaced", duck.load_id, 0)
    snap = assert_same(w, mau)
    assert of_month(snap["raw.mau_snapshots"], m) == []
    assert of_month(snap["raw_archive.mau_snapshots"], m) == old
    assert snap["raw.mau_snapshots"]  # the other months keep theirs
