"""`python -m pci export`: the published scores of a range of months as one CSV file.

::

    python -m pci export --warehouse W [--engine duckdb|spark] --month YYYY-MM
                         [--through YYYY-MM] --out FILE.csv

**The contract of the file.** UTF-8 without BOM, comma separated, RFC 4180
quoting, ``\\n`` line ends (the CSV format of raw-exports.md, section 2):

* one header row: the columns of ``pci_monthly_scores`` in the order of the
  output contract (raw-exports.md, section 4), read from the dbt model contract
  like every other reader does (:data:`pci.core.catalog.SCORE_NAMES`);
* then every published row of the score months ``--month`` … ``--through``
  (default: ``--month`` alone), ordered by ``score_month``, then ``partner_id``;
* values as stored: dates ``YYYY-MM-DD`` (``score_month`` is the first day of
  the month); DECIMAL columns written from their exact decimal value with all
  their digits (``1234.50``, ``7.00``: never through a float); integers as
  integers; ``mau_growth`` (DOUBLE) as the shortest text that reads back as the
  same double; booleans ``true``/``false``; a null is an empty field.

**What is read.** The published mart, as ``explain`` reads it
(:func:`pci.read.mart.read_mart`): the analysts' read-only copy when there is
one (it never waits for a run nor blocks one), else the warehouse read-only;
should the copy lack a month (its last refresh failed), the warehouse itself.
A copy that is out of date gives a warning on stderr. ``--source`` chooses as in
``explain``.

**All or nothing.** Every month of the range must be published: a month with
no published rows (and no publication "with no partners") is refused, the
message names every such month, and no file is written. A month published
with no partners (its partners export held none) has no rows in the file, and
a note on stderr says so. The file is written to a temporary file beside
``--out`` and renamed over it at the end: a failed export leaves no half file
and an earlier file at ``--out`` as it was.

**Engines.** :func:`read_published_scores` is the one place that reads the
rows, dispatching on ``--engine``: ``duckdb`` (the default) reads the DuckDB
warehouse through :mod:`pci.core.warehouse`. ``spark`` is read by
:mod:`pci.read.spark_mart` (``read_published_scores(warehouse, first, last) ->
(columns, rows)``: the contract's columns, rows in the order above, a month not
published refused with a :class:`pci.core.errors.Refusal`); an installation
without Spark (no pyspark) makes ``--engine spark`` a usage error, "not
available in this build".

Exit statuses: 0 written; 1 a month of the range is not published; 2 usage (bad
month, ``--through`` before ``--month``, no such warehouse, no folder for
``--out``, an engine not available); 4 the warehouse is being written and has
no analyst copy yet; 6 the file could not be written (full disk, folder not
writable, I/O error).
"""
from __future__ import annotations

import csv
import datetime as dt
import importlib
import os
import sys
from decimal import Decimal
from pathlib import Path

from pci.core.catalog import SCORE_NAMES, SCORES, copy_path
from pci.core.contract import format_month, month_range, parse_month
from pci.core.errors import EXIT_ENVIRONMENT, EXIT_REFUSED, EXIT_USAGE, PipelineFault, Refusal
from pci.core.faults import classify
from pci.core.terminal import for_terminal
from pci.core.warehouse import ENGINES, quote_identifier
from pci.read.mart import Mart, MartUnavailable, MonthNotPublished, read_mart, stale_warning
from pci.read.scorecard import empty_month_message

#: the module that reads the published scores with Spark, when this build has one
SPARK_MODULE = "pci.read.spark_mart"


class ExportError(RuntimeError):
    """The export cannot be made; ``exit_status`` says why (see the module's docstring)."""

    def __init__(self, message: str, exit_status: int = EXIT_REFUSED):
        super().__init__(message)
        self.exit_status = exit_status


def _span(first: dt.date, last: dt.date) -> str:
    if first == last:
        return format_month(first)
    return f"{format_month(first)} … {format_month(last)}"


# --------------------------------------------------------------------------- reading

def _duckdb_rows(mart: Mart, first: dt.date, last: dt.date,
                 notes: list[tuple[str, str]]) -> tuple[list, list]:
    """The contract's columns and the published rows of ``first`` … ``last`` in ``mart``;
    :class:`MonthNotPublished` naming every month of the range that is not published."""
    con = mart.con
    with_rows = {r[0] for r in con.execute(
        f"SELECT DISTINCT score_month FROM main.{SCORES} WHERE score_month BETWEEN ? AND ?",
        [first, last]).fetchall()}
    empty = [m for m in mart.empty_months() if first <= m <= last]
    missing = [m for m in month_range(first, last) if m not in with_rows and m not in empty]
    if missing:
        raise MonthNotPublished(
            f"not published: {', '.join(format_month(m) for m in missing)} (the export of "
            f"{_span(first, last)} needs every month of the range); the published score months "
            f"are {', '.join(mart.score_months()) or 'none'}; nothing was written")
    columns = list(SCORE_NAMES)
    rows = con.execute(
        f"SELECT {', '.join(quote_identifier(c) for c in columns)} FROM main.{SCORES} "
        f"WHERE score_month BETWEEN ? AND ? ORDER BY score_month, partner_id",
        [first, last]).fetchall()
    stale = stale_warning(mart)
    notes.extend([*([("warning", stale)] if stale else []),
                  *(("note", empty_month_message(mart, m) + ": it has no rows in the file")
                    for m in empty)])
    return columns, rows


def _spark_reader():
    """``read_published_scores`` of :data:`SPARK_MODULE`, or a usage error saying that
    this build has no Spark reader."""
    try:
        module = importlib.import_module(SPARK_MODULE)
    except ModuleNotFoundError as exc:
        why = (f"there is no Spark reader ({SPARK_MODULE})" if exc.name == SPARK_MODULE
               else f"{SPARK_MODULE} needs {exc.name or exc}, which is not installed")
        raise ExportError(f"--engine spark: not available in this build: {why}; use "
                          f"--engine duckdb", EXIT_USAGE) from None
    except ImportError as exc:
        raise ExportError(f"--engine spark: not available in this build: cannot import "
                          f"{SPARK_MODULE}: {exc}; use --engine duckdb", EXIT_USAGE) from None
    reader = getattr(module, "read_published_scores", None)
    if not callable(reader):
        raise ExportError(f"--engine spark: not available in this build: {SPARK_MODULE} has no "
                          f"read_published_scores(); use --engine duckdb", EXIT_USAGE)
    return reader


def read_published_scores(engine: str, warehouse: Path, first: dt.date, last: dt.date, *,
                          source: str = "auto", warn=None) -> tuple[list[str], list[tuple]]:
    """``(columns, rows)``: the contract's columns of ``pci_monthly_scores`` and the
    published rows of the score months ``first`` … ``last``, ordered by score month
    then partner, values as the engine holds them (``Decimal`` for DECIMAL columns).

    The one place that reads them; ``engine`` is ``duckdb`` (``source`` as in
    :func:`pci.read.mart.open_mart`) or ``spark`` (:data:`SPARK_MODULE`, when this
    build has it). ``warn(kind, text)`` is called with each ``warning`` (the
    analysts' copy read is out of date) and ``note`` (a month published with no
    partners). Raises :class:`MartUnavailable` / :class:`~pci.core.errors.Refusal`
    (a month not published, the mart unreadable) or :class:`ExportError`, each
    with its ``exit_status``.
    """
    if last < first:
        raise ExportError(f"--through {format_month(last)} is before --month {format_month(first)}",
                          EXIT_USAGE)
    notes: list[tuple[str, str]] = []
    if engine == "duckdb":
        columns, rows = read_mart(Path(warehouse), source,
                                  lambda mart: _duckdb_rows(mart, first, last, notes))
    elif engine == "spark":
        columns, rows = _spark_reader()(Path(warehouse), first, last)
        columns = list(columns)
    else:
        raise ExportError(f"--engine: unknown engine {engine!r} (one of {', '.join(ENGINES)})",
                          EXIT_USAGE)
    if columns != list(SCORE_NAMES):
        raise ExportError(f"the {engine} reader gave the columns {', '.join(columns)}, not the "
                          f"contract's ({', '.join(SCORE_NAMES)}); nothing was written")
    for kind, text in notes:
        if warn is not None:
            warn(kind, text)
    return columns, list(rows)


# --------------------------------------------------------------------------- writing

def csv_value(value) -> str:
    """One value as the file holds it (see the module's docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")          # every stored digit, never an exponent
    if isinstance(value, float):
        return repr(value)                 # the shortest text that reads back as this double
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def write_csv(out: Path, columns: list[str], rows: list[tuple]) -> int:
    """Write ``columns`` then ``rows`` to ``out`` through a temporary file beside it,
    renamed over ``out`` at the end (removed on failure); return the rows written."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([csv_value(v) for v in row] for row in rows)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return len(rows)


def _check_out(out: Path, warehouse: Path) -> None:
    """A usage error when ``--out`` cannot be the file to write."""
    if out.is_dir():
        raise ExportError(f"--out {out} is a folder: name the CSV file to write", EXIT_USAGE)
    if not out.parent.is_dir():
        raise ExportError(f"--out {out}: no folder {out.parent}", EXIT_USAGE)
    resolved = out.resolve()
    if resolved in (Path(warehouse).resolve(), copy_path(warehouse).resolve()):
        raise ExportError(f"--out {out} is the warehouse (or its analysts' copy): choose another "
                          f"file", EXIT_USAGE)


# --------------------------------------------------------------------------- CLI

def configure(parser) -> None:
    parser.add_argument("--warehouse", required=True, type=Path,
                        help="the warehouse DuckDB file (its analyst copy is read when present)")
    parser.add_argument("--engine", choices=ENGINES, default="duckdb",
                        help="the engine that reads the published scores (default duckdb)")
    parser.add_argument("--month", required=True, help="first score month, YYYY-MM")
    parser.add_argument("--through", help="last score month, YYYY-MM (default: --month)")
    parser.add_argument("--out", required=True, type=Path, help="the CSV file to write")
    parser.add_argument("--source", choices=("auto", "copy", "warehouse"), default="auto",
                        help="auto (default): the analyst copy when present, else the warehouse")


def _error(message) -> None:
    print(f"error: {for_terminal(message)}", file=sys.stderr)


def command(args) -> int:
    try:
        first = parse_month(args.month)
    except ValueError as exc:
        _error(f"--month: {exc}")
        return EXIT_USAGE
    try:
        last = parse_month(args.through) if args.through else first
    except ValueError as exc:
        _error(f"--through: {exc}")
        return EXIT_USAGE
    notes: list[tuple[str, str]] = []
    try:
        if last < first:
            raise ExportError(f"--through {args.through} is before --month {args.month}",
                              EXIT_USAGE)
        _check_out(args.out, args.warehouse)
        columns, rows = read_published_scores(args.engine, args.warehouse, first, last,
                                              source=args.source,
                                              warn=lambda kind, text: notes.append((kind, text)))
        written = write_csv(args.out, columns, rows)
    except (MartUnavailable, ExportError, Refusal) as exc:
        _error(exc)
        return exc.exit_status
    except (OSError, PipelineFault) as exc:
        fault = classify(exc, args.out)
        if fault is None:
            fault = ExportError(f"cannot write {args.out}: {exc}; nothing was written",
                                EXIT_ENVIRONMENT)
        _error(fault)
        return fault.exit_status
    for kind, text in notes:
        print(f"{kind}: {for_terminal(text)}", file=sys.stderr)
    print(f"{for_terminal(args.out)}: {written} rows of {_span(first, last)}")
    return 0
