"""Validating a month's export on Spark: Spark's CSV reader, the rules in Spark SQL,
the GX suites through GX's Spark datasource (:func:`screen_month`).

The Spark landing (:mod:`pci.land.spark_landing`) reads an export with Spark, not
with DuckDB: on a cluster the files and their rows stay with the executors. What
it must never do is pass an export that the DuckDB landing refuses, and its
report must be the DuckDB landing's (lines of the file, the same words). So the
Spark side is a *screen* that either passes the month or hands it to the
reference validation (:func:`pci.land.landing.validate_export` on an in-memory
DuckDB workspace), which then refuses it with its report, or passes it (the
screen erred on the safe side) and the month is loaded from DuckDB's reading.

The screen passes a month only when every check below found nothing; each
check is as strict as the DuckDB landing's, or stricter:

1. the manifest and the files' bytes, by the DuckDB landing's own code
   (:func:`pci.land.files.check_manifest`: links, ``export_month``, sha256; line
   ends; header): the same functions, not a copy;
2. the file's quote characters are even in number (a quote left open ends a
   file as valid for Spark's reader, not for DuckDB's);
3. each CSV read by Spark's CSV reader (``PERMISSIVE``, every column as
   text, named by position as the header says; one record per line): no record
   Spark finds malformed (another number of fields than the header's), no value
   holding a line break or U+FFFD (what Spark makes of bytes that are not
   UTF-8); and, read as lines of text, every line a record quoted strictly as
   RFC 4180 says (:data:`RECORD`). Where the two readers could differ (a quote
   inside an unquoted field, a quoted line break, which the contract allows),
   the file goes to the reference validation, which reads it;
4. every value parses as its column's type and is within the contract's
   bounds, the forms and bounds of :mod:`pci.land.parsing` written in Spark SQL
   (a date of year 0000 is left to the reference);
5. the rows read equal the manifest's counts;
6. each file's GX suite, first as the SQL screen of :mod:`pci.land.suite_sql`
   (in its Spark dialect), and for a file that screen flags, by the suite's
   Checkpoint through GX's Spark datasource (:meth:`pci.land.expectations._GX.run_spark`);
7. the rules across files (:func:`pci.land.parsing.cross_file_queries`, in
   Spark SQL).

The typed rows of each file are written by Spark as Parquet to
``<stage>/<file>/`` (the contract's columns, in its order, plus the screen's
``_bad`` flag and a row number ``_line``); the screen's queries read them there,
and so does the load. The screen stops at the first check that flags the
month (that month goes to the reference anyway).
"""
from __future__ import annotations

import csv
import datetime as dt
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pci.core.contract import AMOUNT_TYPE, FILES, ExportFile, end_of_month
from pci.core.project import EXPECTATIONS_DIR
from pci.core.spark import quote_identifier as q
from pci.core.spark import quote_literal
from pci.land import expectations, files, parsing, suite_sql
from pci.land.violations import LINE_COLUMN

log = logging.getLogger(__name__)

#: the column of Spark's CSV reader holding a record it found malformed
CORRUPT = "_corrupt_record"
#: the column of the staged rows true for a row that the screen cannot pass
BAD = "_bad"
#: characters a value of a record on one line holds only when the bytes were not UTF-8
#: (U+FFFD, what Spark's reader makes of them) or the line ends were not split as the
#: DuckDB landing splits them: a value holding one is left to the reference validation
_SUSPECT_CHARACTERS = ("\r", "\n", "\ufffd")
#: a record on one line quoted as RFC 4180 says: each field either without quotes, or
#: quoted whole with every quote inside it doubled (possessive: no backtracking). A line
#: that is not (a quote inside an unquoted field, text after a closing quote, a quoted
#: line break) is left to the reference validation: the two readers agree on the rest
RECORD = '^(?:"(?:[^"]|"")*+"|[^,"]*+)(?:,(?:"(?:[^"]|"")*+"|[^,"]*+))*+$'

#: per contract type: (the value's whole form as a regular expression, Spark SQL of the
#: typed value of a text ``v`` of that form: NULL when it does not parse)
_SPARK_TYPES = {
    "BOOLEAN": (None, "CASE v WHEN 'true' THEN true WHEN 'false' THEN false END"),
    "DATE": ("[0-9]{4}-[0-9]{2}-[0-9]{2}", "CAST(try_to_timestamp(v, 'yyyy-MM-dd') AS DATE)"),
    "BIGINT": ("-?[0-9]+", "try_cast(v AS BIGINT)"),
    AMOUNT_TYPE: ("-?[0-9]+([.][0-9]{1,6})?", f"try_cast(v AS {AMOUNT_TYPE})"),
}


@dataclass
class Screen:
    """What :func:`screen_month` found: ``ok`` when the month passed every check."""

    flagged: list[str] = field(default_factory=list)  # why the month was not passed (first check)
    counts: dict[str, int] = field(default_factory=dict)  # rows per file name (``x.csv``)
    warnings: list[str] = field(default_factory=list)
    extra_columns: dict[str, list[str]] = field(default_factory=dict)
    staged: dict[str, Path] = field(default_factory=dict)  # file -> Parquet folder of its rows

    @property
    def ok(self) -> bool:
        return not self.flagged


def _sub(expr: str, value: str) -> str:
    """``expr`` with its placeholder ``v`` replaced by the SQL ``value``."""
    return re.sub(r"\bv\b", lambda _m: value, expr)


def _column_sql(c, text: str) -> tuple[str, str | None]:
    """(Spark SQL of the typed value, SQL true when the non-null text ``text`` cannot be
    passed: not of the form, not parsed, beyond the bound; None for a text column)."""
    if c.duckdb_type == "VARCHAR":
        return text, None
    form, typed = _SPARK_TYPES[c.duckdb_type]
    value = _sub(typed, text)
    bad = [f"{value} IS NULL"]
    if c.duckdb_type == "BOOLEAN":
        bad = [f"{text} NOT IN ('true', 'false')"]
    if form:  # the whole value of the form: the longest prefix of the form is the value
        bad.append(f"regexp_extract({text}, {quote_literal('^(' + form + ')')}, 1) <> {text}")
    if c.duckdb_type == "DATE":
        bad.append(f"left({text}, 4) = '0000'")
    if c.digits is not None:  # as pci.land.parsing: digits before the point, sign and zeros left out
        bad.append(f"(length({text}) > {c.digits} AND "
                   f"length(regexp_extract({text}, '^-?0*([0-9]*)', 1)) > {c.digits})")
    return value, f"({text} IS NOT NULL AND ({' OR '.join(bad)}))"


def typed_sql(f: ExportFile, header: list[str], view: str, keep: tuple[str, ...] = ()) -> str:
    """The staged rows of ``f`` from the temp view ``view`` of its text columns (``c<i>``,
    the header's i-th column; the reader's :data:`CORRUPT` column): the contract's
    columns typed, :data:`LINE_COLUMN` a row number and :data:`BAD` the screen's flag
    (and the view's columns ``keep`` as they are)."""
    parts, bad = [q(k) for k in keep], [f"{q(CORRUPT)} IS NOT NULL"]
    for i in range(len(header)):
        col = q(f"c{i}")
        bad.append(f"({col} IS NOT NULL AND ("
                   + " OR ".join(f"instr({col}, {quote_literal(ch)}) > 0" for ch in _SUSPECT_CHARACTERS)
                   + "))")
    for c in f.columns:
        text = f"nullif({q('c' + str(header.index(c.name)))}, '')"
        value, flag = _column_sql(c, text)
        parts.append(f"{value} AS {q(c.name)}")
        if flag:
            bad.append(flag)
    parts.append(f"monotonically_increasing_id() AS {q(LINE_COLUMN)}")
    parts.append(f"({' OR '.join(bad)}) AS {q(BAD)}")
    return f"SELECT {', '.join(parts)} FROM {view}"


def _read_csv(spark, path: Path | list[Path], columns: int):
    """The file (or files, of one header) as Spark's CSV reader reads it: ``c0`` …
    every column text, and :data:`CORRUPT` holding each record with another number
    of fields."""
    from pyspark.sql.types import StringType, StructField, StructType  # noqa: PLC0415

    schema = StructType([StructField(f"c{i}", StringType()) for i in range(columns)]
                        + [StructField(CORRUPT, StringType())])
    paths = [str(p) for p in path] if isinstance(path, list) else str(path)
    return spark.read.csv(paths, schema=schema, header=True, mode="PERMISSIVE",
                          columnNameOfCorruptRecord=CORRUPT, sep=",", quote='"', escape='"',
                          encoding="UTF-8", multiLine=False, enforceSchema=True)


def _parquet(path: Path) -> str:
    return f"parquet.{q(str(path))}"


def _per_file(spark, aggregates: dict[str, list[str]], staged: dict[str, Path]
              ) -> dict[str, list | None]:
    """The ``aggregates`` of each file over its staged rows, in one Spark job; a file
    whose aggregates Spark cannot run (a comparison it cannot type) gets None."""
    def one(name: str) -> str:
        return (f"SELECT {quote_literal(name)} AS f, array({', '.join(aggregates[name])}) AS v "
                f"FROM {_parquet(staged[name])}")
    try:
        return {r[0]: list(r[1]) for r in spark.sql(" UNION ALL ".join(map(one, aggregates))).collect()}
    except Exception as exc:  # noqa: BLE001 - one file at a time then
        if len(aggregates) == 1:
            log.info("%s: the suite's SQL screen did not run on Spark (%s)", next(iter(aggregates)), exc)
            return {name: None for name in aggregates}
        out = {}
        for name in aggregates:
            out.update(_per_file(spark, {name: aggregates[name]}, staged))
        return out


def _file_checks(f: ExportFile, path: Path, scan, screen: Screen) -> list[str] | None:
    """Checks 1-2 of one file: its header (None when a check flagged the file)."""
    if scan is None or scan.line_ends_suspect:
        if files.check_line_endings(path, f.filename):
            screen.flagged.append(f"{f.filename}: line ends")
            return None
    if scan is not None and scan.quotes % 2:
        screen.flagged.append(f"{f.filename}: an odd number of quote characters")
        return None
    try:
        header = files.read_header(path)
    except (UnicodeDecodeError, ValueError, csv.Error) as exc:
        screen.flagged.append(f"{f.filename}: header ({exc})")
        return None
    if files.apply_header(f, header, screen.warnings, screen.extra_columns):
        screen.flagged.append(f"{f.filename}: header")
        return None
    return header


def screen_month(spark, folder: Path, month: dt.date, stage: Path,
                 directory: Path = EXPECTATIONS_DIR) -> Screen:
    """Screen the export in ``folder`` (see the module's docstring), its typed rows
    staged in ``stage`` (emptied first). A month that passed has ``ok`` true, its
    rows per file in ``counts`` and their Parquet folders in ``staged``."""
    screen = Screen()
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    scans: dict[str, files.FileScan] = {}
    manifest, viol, warn = files.check_manifest(folder, month, scans=scans)
    screen.warnings += warn
    if viol:
        screen.flagged.append(f"{viol[0].file}: {viol[0].column_or_rule} ({viol[0].rule})")
        return screen
    params = {"month_start": month, "month_end": end_of_month(month)}
    flags: dict[str, list[str] | None] = {}  # file -> the SQL screen of its suite
    for f in FILES:
        path = folder / f.filename
        header = _file_checks(f, path, scans.get(f.filename), screen)
        if header is None:
            return screen
        view = f"_pci_csv_{f.name}"
        _read_csv(spark, path, len(header)).createOrReplaceTempView(view)
        try:
            out = stage / f.name
            spark.sql(typed_sql(f, header, view)).write.mode("overwrite").parquet(str(out))
        finally:
            spark.catalog.dropTempView(view)
        screen.staged[f.name] = out
        flags[f.name] = suite_sql.screen_flags(
            expectations.load_suite_json(f.name, directory)["expectations"], params, suite_sql.SPARK)
    # one job for the ten files: rows, rows flagged, the suites' screens
    found = _per_file(spark, {f.name: ["count(*)", f"count_if({q(BAD)})", *(flags[f.name] or [])]
                              for f in FILES}, screen.staged)
    suspects = []  # files the SQL screen of their suite flags: their GX Checkpoint decides
    for f in FILES:
        n, bad, *suite = found[f.name] if found[f.name] is not None else (None, None)
        if n is None:  # the suite's screen did not run on Spark: read the counts alone
            n, bad = _per_file(spark, {f.name: ["count(*)", f"count_if({q(BAD)})"]},
                               screen.staged)[f.name]
            suite = [1]
        screen.counts[f.filename] = int(n)
        if bad:
            screen.flagged.append(f"{f.filename}: {bad} rows Spark's reading cannot pass "
                                  f"(malformed, suspect characters, types or bounds)")
            return screen
        if flags[f.name] is None or any(suite):
            suspects.append(f)
    odd = spark.sql(" UNION ALL ".join(
        f"SELECT {i} AS i, count(*) AS n FROM text.{q(str(folder / f.filename))} "
        f"WHERE NOT (value RLIKE {quote_literal(RECORD)}) "
        f"OR instr(value, {quote_literal(chr(0xFFFD))}) > 0" for i, f in enumerate(FILES))).collect()
    odd = [(FILES[r[0]], r[1]) for r in odd if r[1]]
    if odd:
        screen.flagged.append(f"{odd[0][0].filename}: {odd[0][1]} lines not quoted as RFC 4180 "
                              f"says on one line, or not UTF-8")
        return screen
    counts = files.check_row_counts(manifest, screen.counts)
    if counts:
        screen.flagged.append(f"{counts[0].file}: rows ({counts[0].examples[0]})")
        return screen
    if suspects:
        gxs = expectations._GX.get(directory)  # noqa: SLF001 - the process's one GX context
        run = expectations.run_id("landing", month)
        for f in suspects:
            df = spark.read.parquet(str(screen.staged[f.name])).drop(BAD, LINE_COLUMN)
            if not gxs.run_spark(f.name, df, params, run):
                screen.flagged.append(f"{f.filename}: its suite failed on Spark")
                return screen
    tables = {f.name: _parquet(screen.staged[f.name]) for f in FILES}
    queries = parsing.cross_file_queries(tables, q)
    found = spark.sql(" UNION ALL ".join(
        f"SELECT {i} AS i, count(*) AS n FROM ({sql}) AS r{i}"
        for i, (_f, _c, _r, sql) in enumerate(queries))).collect()
    broken = [queries[r[0]] for r in found if r[1]]
    if broken:
        screen.flagged.append(f"{broken[0][0]}.csv: {broken[0][2]}")
    return screen
