"""Reading one export file into the landing's temporary tables: its line ends
and header checked first, then DuckDB's CSV reader with every column read as
text (named by the contract, whatever the header's order), its rejected
records counted and shown. A file DuckDB cannot read (mixed line ends, broken
quoting, bytes that are not UTF-8) is a violation, not a traceback.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from pci.core.warehouse import quote_literal
from pci.land import files, parsing, violations

STAGE = "_land_{}"  # staged typed table of a file (temporary)
STAGE_TEXT = "_land_text_{}"  # the file as read, every column VARCHAR (temporary)


def stage_file(con, folder: Path, f, report: violations.Report, counts: dict[str, int],
                extra_columns: dict[str, list[str]], file_scan: files.FileScan | None = None) -> bool:
    """Read one CSV into a temp table of text columns; False when its format is broken."""
    path = folder / f.filename
    if file_scan is None or file_scan.line_ends_suspect:
        viol = files.check_line_endings(path, f.filename)
        if viol:
            report.violations += viol
            return False
    try:
        header = files.read_header(path)
    except UnicodeDecodeError as exc:
        report.violations.append(violations.Violation(
            f.filename, "header", 1,
            [{"line": 1, "error": f"not UTF-8: byte 0x{exc.object[exc.start]:02x} at byte "
                                  f"{exc.start + 1} of the line ({exc.reason})"}],
            "the file is UTF-8 text", "format"))
        return False
    except (ValueError, csv.Error) as exc:
        report.violations.append(violations.Violation(f.filename, "header", 1,
                                             [{"line": 1, "error": str(exc)}],
                                             "the first line names the columns", "format"))
        return False
    viol = files.apply_header(f, header, report.warnings, extra_columns)
    if viol:
        report.violations += viol
        return False

    # Read every column as text, named by position: the header's own names
    # only decide which position is which contract column.
    cols = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header))) + "}"
    text, rej, scan = STAGE_TEXT.format(f.name), f"_land_rej_{f.name}", f"_land_scan_{f.name}"
    for t in (text, rej, scan):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    pick = ", ".join(f'c{header.index(c.name)} AS "{c.name}"' for c in f.columns)
    try:
        con.execute(
            f"CREATE TEMP TABLE {text} AS SELECT {pick} FROM read_csv({quote_literal(str(path))}, "
            f"columns = {cols}, header = true, auto_detect = false, delim = ',', quote = '\"', "
            f"escape = '\"', encoding = 'utf-8', store_rejects = true, "
            f"rejects_table = '{rej}', rejects_scan = '{scan}')")
    except Exception as exc:  # noqa: BLE001 - sorted by _csv_reader_error
        if not _csv_reader_error(exc):
            raise
        report.violations.append(violations.Violation(
            f.filename, "csv format", 1,
            [{"line": _error_line(exc, path, len(header)), "error": _first_line(exc)}],
            "the file is well-formed CSV that DuckDB's CSV reader reads", "format"))
        return False
    # The table keeps the file's order (insertion order is preserved), so a
    # record's line in the file is rowid + 2 (the header is line 1).
    bad_lines = con.execute(
        f"SELECT count(DISTINCT line) FROM {rej}").fetchall()[0][0] if _temp_exists(con, rej) else 0
    n = con.execute(f"SELECT count(*) FROM {text}").fetchall()[0][0]
    counts[f.filename] = n + bad_lines
    if bad_lines:
        rows = parsing.fetch_dicts(con, f"SELECT line, error_type AS error, error_message AS message, "
                                   f"left(csv_line, 200) AS text FROM {rej} ORDER BY line LIMIT {violations.MAX_EXAMPLES}")
        report.violations.append(violations.Violation(
            f.filename, "csv format", int(bad_lines), rows,
            "every record is well-formed CSV with one field per header column", "format"))
        return False
    return True


def _csv_reader_error(exc: BaseException) -> bool:
    """A DuckDB error about the file's content (not about memory, disk or a lock)."""
    import duckdb

    if not isinstance(exc, duckdb.Error):
        return False
    if isinstance(exc, (duckdb.OutOfMemoryException, duckdb.IOException,
                        duckdb.InterruptException, duckdb.FatalException)):
        return False
    return isinstance(exc, (duckdb.InvalidInputException, duckdb.ConversionException)) \
        or "csv" in str(exc).lower()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _error_line(exc: BaseException, path: Path, columns: int) -> int | None:
    """The line of the file DuckDB's error names; else the first record Python's
    csv module finds malformed (or with another number of fields); else None."""
    m = re.search(r"\bline:? (\d+)", str(exc), re.IGNORECASE)
    if m:
        return int(m.group(1))
    reader = None
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            for record in reader:
                if record and len(record) != columns:
                    return reader.line_num
    except csv.Error:
        return reader.line_num if reader is not None and reader.line_num else None
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _temp_exists(con, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                            [name]).fetchall()[0][0])
