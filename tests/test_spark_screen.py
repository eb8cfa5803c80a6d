"""The Spark landing's screen (`pci.land.spark_validation`) never passes what the DuckDB
landing refuses, and what it passes it reads as DuckDB does.

* A fuzz of the CSV files: data lines of a generated export's files broken at
  random (quotes, commas, line ends, bytes that are not UTF-8, digits, signs,
  points, lines dropped or doubled), each file read by DuckDB's landing
  (`stage_file`, `check_parse`) and by Spark's screen (its Python checks, Spark's
  CSV reader, the strict record check). Whenever Spark passes a file, DuckDB
  passes it too and its typed rows equal Spark's, value for value and in order.
  All files of a kind are read by Spark in one job, so hundreds of cases cost
  seconds.
* Refused exports of every kind of check (manifest, format, types, bounds, a
  suite's rule, a rule across files), landed on Spark: refused with the DuckDB
  landing's own report, nothing written.
* Valid exports: passed by Spark itself (``validated_by == "spark"``), also with
  quoted commas and doubled quotes; a quoted line break (allowed, left by the
  screen to the reference) lands DuckDB's reading; a suite the SQL screen cannot
  translate is decided by its Checkpoint through GX's Spark datasource.

Marked ``spark`` (run alone with ``-m spark``); needs Java 17 (`make java`).
"""
from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pci.core import spark as spark_engine
from pci.core.contract import FILES_BY_NAME, parse_month
from pci.land import files, parsing, spark_landing, spark_validation, staging, suite_sql, violations
from pci.land import landing as duck_landing
from pci.land.landing import ValidationFailed, report_path
from tests.support.exports import minimal_valid_tables, write_export, write_manifest

pytestmark = [pytest.mark.spark,
              pytest.mark.skipif(shutil.which("java") is None, reason="Java 17 is needed: make java")]

ROOT = Path(__file__).resolve().parents[1]
MONTH = "2021-08"
M = parse_month(MONTH)
#: the files fuzzed: text with quoted commas and doubled quotes, dates and amounts,
#: integers with a bound, booleans
FUZZED = ("partners", "billing_lines", "seat_snapshots", "tenants")
CASES_PER_FILE = 150
#: what a mutation inserts
PIECES = [b'"', b'""', b",", b"\n", b"\r", b"\r\n", b" ", b"\xe9", b"\xc3\xa9", b"x", b"0", b"9",
          b"-", b".", b"\t", b"e", b"2021-02-30", b"99999999999999", b"true", b"TRUE", b"\xef\xbb\xbf"]


@pytest.fixture(scope="module")
def screen_warehouse(tmp_path_factory):
    yield tmp_path_factory.mktemp("spark-screen-wh")
    spark_engine.stop()


@pytest.fixture
def spark(screen_warehouse):
    """The session of the module's warehouse (a landing test's own warehouse stops it)."""
    return spark_engine.session(screen_warehouse)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """One generated export month (its files hold quoted commas and doubled quotes)."""
    landing = tmp_path_factory.mktemp("screen-generated") / "landing"
    subprocess.run([sys.executable, "-m", "pci", "generate", "--out", str(landing), "--months", "1",
                    "--first", MONTH, "--partners", "60", "--tenants", "400"],
                   check=True, cwd=ROOT, capture_output=True)
    return landing / MONTH


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """``data`` with one to three random breaks after its header line."""
    head, _, body = data.partition(b"\n")
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        lines = body.split(b"\n")
        if op < 0.12 and len(lines) > 2:  # a line dropped or doubled
            i = rng.randrange(len(lines) - 1)
            lines.insert(i, lines[i]) if rng.random() < 0.5 else lines.pop(i)
            body = b"\n".join(lines)
        elif op < 0.25 and body:  # a byte deleted
            i = rng.randrange(len(body))
            body = body[:i] + body[i + 1:]
        else:  # a piece inserted, often beside a quote or a comma
            marks = [i for i, b in enumerate(body) if b in b'",'] or [0]
            i = rng.choice(marks) + rng.randint(0, 1) if rng.random() < 0.6 else rng.randrange(len(body) + 1)
            body = body[:i] + rng.choice(PIECES) + body[i:]
    return head + b"\n" + body


def _duckdb_reading(folder: Path, name: str):
    """(passed, typed rows in file order) of the DuckDB landing's reading of one file."""
    f = FILES_BY_NAME[name]
    con = duckdb.connect()
    try:
        report = violations.Report(MONTH, str(folder))
        if not staging.stage_file(con, folder, f, report, {}, {}, None):
            return False, None
        if parsing.check_parse(con, f, staging.STAGE_TEXT.format(f.name)):
            return False, None
        cols = ", ".join(f'"{c}"' for c in f.column_names)
        rows = con.execute(f"SELECT {cols} FROM (SELECT {parsing.typed_select(f)} "
                           f"FROM {staging.STAGE_TEXT.format(f.name)}) ORDER BY _line").fetchall()
        return True, rows
    finally:
        con.close()


def _spark_readings(spark, paths: list[Path], name: str) -> dict[str, tuple[bool, list | None]]:
    """Per file (its folder's name): (passed, typed rows in file order) of the screen's
    checks of one file, the Spark parts run over every file of ``paths`` at once."""
    f = FILES_BY_NAME[name]
    out, header_of = {}, {}
    for p in paths:
        header = spark_validation._file_checks(f, p, files.scan_file(p), spark_validation.Screen())
        if header is not None and header == f.column_names:
            header_of[p] = header
        else:
            out[p.parent.name] = (False, None)
    read = [p for p in paths if p in header_of]
    from pyspark.sql import functions as F

    text = spark_validation._read_csv(spark, read, len(f.column_names)).withColumn(
        "_path", F.input_file_name())
    text.createOrReplaceTempView("_fuzz_text")
    typed = spark.sql(spark_validation.typed_sql(f, f.column_names, "_fuzz_text", keep=("_path",)))
    bad_col = spark_validation.BAD
    typed = typed.select("_path", spark_validation.LINE_COLUMN, bad_col, *(  # a flagged row's values
        F.when(F.col(bad_col), None).otherwise(F.col(c)).alias(c) for c in f.column_names))  # unread
    rows: dict[str, list] = {}
    bad: set[str] = set()
    for r in typed.orderBy("_path", spark_validation.LINE_COLUMN).collect():
        folder = Path(r["_path"].removeprefix("file:")).parent.name
        rows.setdefault(folder, []).append(tuple(r[c] for c in f.column_names))
        if r[spark_validation.BAD]:
            bad.add(folder)
    lines = spark.read.text([str(p) for p in read]).withColumn("_path", F.input_file_name()).where(
        f"NOT (value RLIKE {spark_engine.quote_literal(spark_validation.RECORD)}) "
        f"OR instr(value, {spark_engine.quote_literal(chr(0xFFFD))}) > 0"
    ).select("_path").distinct().collect()
    bad |= {Path(r[0].removeprefix("file:")).parent.name for r in lines}
    for p in read:
        name_ = p.parent.name
        out[name_] = (False, None) if name_ in bad else (True, rows.get(name_, []))
    return out


@pytest.mark.parametrize("name", FUZZED)
def test_what_the_spark_screen_passes_duckdb_passes_and_reads_the_same(spark, generated, tmp_path, name):
    f = FILES_BY_NAME[name]
    rng = random.Random(f"pci-{name}")
    original = (generated / f.filename).read_bytes()
    paths = []
    for i in range(CASES_PER_FILE):
        folder = tmp_path / f"case{i:03d}"
        folder.mkdir()
        (folder / f.filename).write_bytes(original if i == 0 else _mutate(original, rng))
        paths.append(folder / f.filename)
    spark_says = _spark_readings(spark, paths, name)
    passed = refused_by_duckdb_only = 0
    for p in paths:
        ok, rows = spark_says[p.parent.name]
        duck_ok, duck_rows = _duckdb_reading(p.parent, name)
        if ok:
            passed += 1
            assert duck_ok, f"{p}: Spark passes what DuckDB refuses:\n{p.read_bytes()!r}"
            assert rows == duck_rows, f"{p}: Spark reads other rows than DuckDB"
        elif duck_ok:
            refused_by_duckdb_only += 1  # left to the reference validation: safe, slower
    assert spark_says["case000"][0], "the unbroken file must pass Spark's screen"
    # the fuzz must exercise both sides: many broken files still pass both readers
    # (a digit or a space inserted inside a value), many are refused
    assert 0.2 * CASES_PER_FILE < passed < 0.9 * CASES_PER_FILE, (passed, refused_by_duckdb_only)


# --------------------------------------------------------------------------- exports landed on Spark


def _land_both(spark_wh: Path, duck_wh: Path, landing: Path):
    """(the Spark landing's outcome, the DuckDB landing's) for the month: a LandResult or
    the ValidationFailed raised."""
    outcomes = []
    for land, wh in ((spark_landing.land_month, spark_wh), (duck_landing.land_month, duck_wh)):
        try:
            outcomes.append(land(landing, wh, MONTH))
        except ValidationFailed as exc:
            outcomes.append(exc)
    return outcomes


def _report(exc: ValidationFailed) -> dict:
    d = exc.report.to_dict()
    d.pop("data_docs")
    return d


def _setv(table, i, column, value):
    def mutate(t):
        t[table][i][column] = value
    return mutate


def _append(name: str, data: bytes):
    def damage(folder: Path) -> None:
        with open(folder / name, "ab") as fh:
            fh.write(data)
    return damage


def _crlf_once(folder: Path) -> None:
    p = folder / "tenants.csv"
    p.write_bytes(p.read_bytes().replace(b"\n", b"\r\n", 1))


REFUSED = [
    # id, how the tables are broken, how the written files are broken, manifest written again
    ("manifest_sha256", None, _append("partners.csv", b"P9,X,SE\n"), False),
    ("line_ends_mixed", None, _crlf_once, True),
    ("unterminated_quote", None, _append("partners.csv", b'P9,"x'), True),
    ("text_after_closing_quote", None, _append("partners.csv", b'P9,"x"y,SE\n'), True),
    ("not_utf8", None, _append("partners.csv", b"P9,Caf\xe9,FR\n"), True),
    ("too_few_fields", None, _append("partners.csv", b"P9,x\n"), True),
    ("date_not_a_date", _setv("partner_associations", 0, "valid_from", "2021-02-30"), None, False),
    ("amount_beyond_bound", _setv("billing_lines", 0, "amount_usd", "10000000000"), None, False),
    ("suite_rule", _setv("subscriptions", 0, "sales_channel", "RESELLER"), None, False),
    ("suite_uniqueness", lambda t: t["tenants"].append(dict(t["tenants"][0])), None, False),
    ("cross_file", _setv("subscriptions", 0, "tenant_id", "T999"), None, False),
    ("affiliations_overlap", _setv("partner_people", 0, "valid_to", None), None, False),
]


@pytest.mark.parametrize("mutate,damage,manifest", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_a_refused_export_gets_the_duckdb_landings_report_and_nothing_is_written(
        spark, tmp_path, mutate, damage, manifest):
    tables = minimal_valid_tables(MONTH)
    if mutate:
        mutate(tables)
    folder = write_export(tmp_path / "landing", MONTH, tables)
    if damage:
        damage(folder)
    if manifest:
        write_manifest(folder)
    spark_wh, duck_wh = tmp_path / "spark", tmp_path / "duck" / "pci.duckdb"
    on_spark, on_duckdb = _land_both(spark_wh, duck_wh, tmp_path / "landing")
    assert isinstance(on_duckdb, ValidationFailed), "the case must be one DuckDB refuses"
    assert isinstance(on_spark, ValidationFailed), "Spark landed what DuckDB refuses"
    assert _report(on_spark) == _report(on_duckdb)
    written = json.loads(report_path(spark_wh, MONTH).read_text())
    assert written["status"] == "failed" and written["violations"] == _report(on_duckdb)["violations"]
    assert spark_landing.current_load(spark_engine.session(spark_wh), MONTH) is None


def _raw_rows(spark, name: str) -> list[tuple]:
    f = FILES_BY_NAME[name]
    return sorted(tuple(r) for r in spark.sql(
        f"SELECT {', '.join(f'`{c}`' for c in f.column_names)} FROM raw.{name}").collect())


def _duck_rows(duck_wh: Path, name: str) -> list[tuple]:
    f = FILES_BY_NAME[name]
    con = duckdb.connect(str(duck_wh), read_only=True)
    try:
        cols = ", ".join('"' + c + '"' for c in f.column_names)
        return sorted(con.execute(f"SELECT {cols} FROM raw.{name}").fetchall())
    finally:
        con.close()


def test_a_valid_export_with_quoted_commas_and_quotes_is_passed_by_spark_itself(spark, generated, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(generated, landing / MONTH)
    text = (landing / MONTH / "partners.csv").read_bytes()
    assert b'""' in text and b'",' in text  # doubled quotes and quoted commas
    on_spark, on_duckdb = _land_both(tmp_path / "spark", tmp_path / "duck" / "pci.duckdb", landing)
    assert on_spark.validated_by == "spark" and on_duckdb.validated_by == "duckdb"
    assert on_spark.rows == on_duckdb.rows
    session = spark_engine.session(tmp_path / "spark")
    for name in ("partners", "billing_lines", "subscriptions"):
        assert _raw_rows(session, name) == _duck_rows(tmp_path / "duck" / "pci.duckdb", name)


def test_a_quoted_line_break_is_left_to_the_reference_and_lands_duckdbs_reading(spark, tmp_path):
    tables = minimal_valid_tables(MONTH)
    tables["partners"][0]["partner_name"] = "Contoso\nConsulting"
    write_export(tmp_path / "landing", MONTH, tables)
    on_spark, on_duckdb = _land_both(tmp_path / "spark", tmp_path / "duck" / "pci.duckdb",
                                     tmp_path / "landing")
    assert on_spark.validated_by == "duckdb"  # the screen does not read records across lines
    session = spark_engine.session(tmp_path / "spark")
    assert _raw_rows(session, "partners") == _duck_rows(tmp_path / "duck" / "pci.duckdb", "partners")
    assert "Contoso\nConsulting" in {r[1] for r in _raw_rows(session, "partners")}


def test_a_suite_the_sql_screen_cannot_read_is_decided_by_gx_on_spark(spark, tmp_path, monkeypatch):
    ran = []
    real = spark_validation.expectations._GX.run_spark

    def run_spark(self, name, df, params, run_id):
        ran.append(name)
        return real(self, name, df, params, run_id)

    monkeypatch.setattr(spark_validation.expectations._GX, "run_spark", run_spark)
    monkeypatch.setattr(suite_sql, "screen_flags", lambda *a, **k: None)  # nothing translated
    folder = write_export(tmp_path / "landing", MONTH, minimal_valid_tables(MONTH))
    stage = tmp_path / "stage"
    screen = spark_validation.screen_month(spark, folder, M, stage)
    assert screen.ok and sorted(ran) == sorted(FILES_BY_NAME), (screen.flagged, ran)
    # the counter-case: a rule broken, the Checkpoint on Spark fails the file
    tables = minimal_valid_tables(MONTH)
    tables["billing_lines"][0]["line_type"] = "REFUND"
    folder = write_export(tmp_path / "landing2", MONTH, tables)
    ran.clear()
    screen = spark_validation.screen_month(spark, folder, M, stage)
    assert screen.flagged == ["billing_lines.csv: its suite failed on Spark"], screen.flagged
