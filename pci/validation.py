"""The rules of the input contract (shared/spec/raw-exports.md, sections 1-3).

Four kinds of checks, each returning :class:`Violation` objects collected in
one :class:`Report`:

* the manifest (:func:`check_manifest`, :func:`check_row_counts`): all ten
  files listed and present, sha256 and row counts as listed, ``export_month``
  equal to the folder's name; a file (or the month folder) that is a link to a
  path outside the landing folder is refused without being read;
* the file format (:func:`check_line_endings`, :func:`check_header`,
  :func:`check_parse`): line ends (LF or CRLF, the same on every line),
  header, CSV structure, and every value parses as its column's type (dates
  ``YYYY-MM-DD``, booleans exactly ``true``/``false``, integers, decimals
  with ``.`` and at most 6 digits after it) within the contract's bounds
  (amounts below 10^10 in absolute value, counts below 10^12);
* the rules of section 3 that concern one file, as Great Expectations suites
  kept in ``expectations/<file>.json`` (:func:`run_suites`), each run by its
  Checkpoint on the pandas engine over the typed rows; when one fails, its
  Data Docs are written to ``<warehouse dir>/data_docs/`` and the report links
  them (``data_docs`` in the JSON, a ``data docs:`` line in the text);
* the rules across files (:func:`cross_file_checks`), in DuckDB SQL.

Examples of offending rows carry ``line``, the line of the CSV file (the
header is line 1; a quoted line break inside a value shifts later lines).
A report quotes values only as short excerpts (:func:`excerpt`: at most
:data:`MAX_VALUE_CHARS` characters, control characters escaped), applied once
where a :class:`Violation` is made, so that neither the JSON nor the text
report ever holds a file's content.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pci.contract import (AMOUNT_TYPE, FILES, FILES_BY_NAME, MANIFEST, ExportFile, end_of_month,
                          format_month)
from pci.warehouse import quote_identifier

log = logging.getLogger(__name__)

#: the GX suites of the ten export files, one JSON file each
EXPECTATIONS_DIR = Path(__file__).resolve().parents[1] / "expectations"
#: where the Data Docs of failed GX validations are written, beside the warehouse
DATA_DOCS_DIR = "data_docs"
_DOCS_SITE = "pci"  # the GX name of that site
_DOCS_RESULTS = "pci_docs_results"  # the failed results it shows, kept in <site>/results/
_DOCS_SUITES = "pci_docs_suites"  # and their suites, in <site>/suites/
#: how many offending rows a violation shows
MAX_EXAMPLES = 5
#: the column holding a row's line number in the staged tables
LINE_COLUMN = "_line"
#: the longest excerpt of a value a report quotes (control characters escaped)
MAX_VALUE_CHARS = 80
#: the longest header line read (a longer first line is refused, not read whole)
MAX_HEADER_BYTES = 1 << 16
#: the rule of a file that resolves outside the landing folder
LINK_RULE = "the file is a link to a path outside the landing folder; it was not read"


# --------------------------------------------------------------------------- report


@dataclass
class DataDocs:
    """Where the Data Docs of a failed validation were written (``file://`` URLs)."""

    index: str  # the site's index page: every failed validation, newest first
    pages: dict[str, str] = field(default_factory=dict)  # file or suite -> the page of its result

    def as_dict(self) -> dict:
        return {"index": self.index, "pages": dict(self.pages)}


@dataclass
class Violation:
    """One broken rule: where, which rule, how many rows, a few of them."""

    file: str  # e.g. "billing_lines.csv"; "_manifest.json" for the manifest itself
    column_or_rule: str  # the column(s), or the name of a rule spanning files
    count: int  # offending rows (1 for a file-level problem)
    examples: list[dict] = field(default_factory=list)
    rule: str = ""  # the rule in words
    check: str = ""  # "manifest", "link", "format", "type", "bounds", the GX expectation type,
    # or "cross-file"
    #: a violation found by a GX suite: the Data Docs of the run (not part of the violation's
    #: format: the report links them once, see :attr:`Report.data_docs`)
    data_docs: DataDocs | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        # the one place where what a report quotes is made safe: JSON-friendly
        # values, every text a short excerpt with control characters escaped
        self.column_or_rule = excerpt(str(self.column_or_rule))
        self.examples = [
            {str(k): excerpt(x) if isinstance(x, str) else x for k, x in _clean(ex).items()}
            if isinstance(ex, dict) else {"value": excerpt(str(_jsonable(ex)))}
            for ex in self.examples]

    def format(self) -> str:
        unit = "row" if self.count == 1 else "rows"
        head = f"{self.file} | {self.column_or_rule} | {self.rule}"
        if self.check:
            head += f" [{self.check}]"
        lines = [f"{head}: {self.count} {unit}"]
        for ex in self.examples[:MAX_EXAMPLES]:
            lines.append("    " + ", ".join(f"{k}={_show(v)}" for k, v in ex.items()))
        return "\n".join(lines)


@dataclass
class Report:
    """The outcome of validating one export month."""

    month: str  # YYYY-MM
    folder: str
    violations: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def data_docs(self) -> DataDocs | None:
        """The Data Docs written for the violations found by GX suites (None: none written)."""
        docs = [v.data_docs for v in self.violations if v.data_docs is not None]
        if not docs:
            return None
        return DataDocs(docs[0].index, {k: u for d in docs for k, u in d.pages.items()})

    def to_dict(self) -> dict:
        docs = self.data_docs
        return {
            "export_month": self.month,
            "folder": self.folder,
            "status": "passed" if self.ok else "failed",
            "violation_count": len(self.violations),
            "violations": [{k: x for k, x in asdict(v).items() if k != "data_docs"}
                           for v in self.violations],
            "warnings": list(self.warnings),
            "data_docs": docs.as_dict() if docs else None,
        }

    def write_json(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=_jsonable) + "\n",
                       encoding="utf-8")
        tmp.replace(path)
        return path

    def __str__(self) -> str:
        return self.format_text()

    def format_text(self) -> str:
        if self.ok:
            return f"export {self.month} ({self.folder}): valid"
        n = len(self.violations)
        lines = [f"export {self.month} ({self.folder}) refused: "
                 f"{n} violation{'s' if n != 1 else ''} (file | column or rule | rule: rows)"]
        lines += [v.format() for v in self.violations]
        lines += [f"warning: {w}" for w in self.warnings]
        if self.data_docs:
            lines.append(f"data docs: {self.data_docs.index}")
        return "\n".join(lines)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return str(v)


def _show(v: Any) -> str:
    if v is None:
        return "(empty)"
    if isinstance(v, str):  # already an excerpt (Violation.__post_init__)
        return f"'{v}'"
    return str(_jsonable(v)) if not isinstance(v, (int, float)) else str(v)


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch.isprintable():
        return ch
    o = ord(ch)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def excerpt(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """``text`` as a report may quote it: control and other non-printable
    characters escaped (``\\n``, ``\\x1b``, ``\\u202e``), at most ``limit``
    characters; a longer text is cut and ends with ``...``."""
    pieces = [_escape_char(ch) for ch in text[:limit + 1]]
    if len(text) <= limit and sum(map(len, pieces)) <= limit:
        return "".join(pieces)
    out, n = [], 0
    for p in pieces:
        if n + len(p) > limit - 3:
            break
        out.append(p)
        n += len(p)
    return "".join(out) + "..."


def _clean(row: dict) -> dict:
    """JSON-friendly values (dates as ISO strings, decimals as strings)."""
    out = {}
    for k, v in row.items():
        if v is None or isinstance(v, (str, bool, int, float)):
            out[k] = v
        else:
            out[k] = _jsonable(v)
    return out


# --------------------------------------------------------------------------- manifest


def sha256_file(path: Path) -> str:
    return scan_file(path).sha256


@dataclass
class FileScan:
    """What one pass over a file's bytes tells: its sha256 and its line ends.

    Counting every line end of every chunk would cost as much as the hash, so
    a chunk without a CR only records whether it holds an LF (``plain_lf``);
    the counts cover the chunks holding a CR. That is enough to tell a file
    whose lines all end in LF, or all in CRLF, from one that needs a closer
    look (:func:`check_line_endings`).
    """

    sha256: str
    size: int = 0
    crlf: int = 0  # CR LF pairs (also when a chunk boundary splits one)
    cr: int = 0  # CRs (of chunks holding one)
    lf: int = 0  # LFs of chunks holding a CR
    plain_lf: bool = False  # an LF in a chunk without CR

    @property
    def bare_cr(self) -> int:
        return self.cr - self.crlf

    @property
    def has_bare_lf(self) -> bool:
        return self.plain_lf or self.lf > self.crlf

    @property
    def line_ends_suspect(self) -> bool:
        """A CR that does not end a CRLF, or both CRLF and bare LF (either may
        still be inside quoted values, which the contract allows)."""
        return self.bare_cr > 0 or (self.crlf > 0 and self.has_bare_lf)


def scan_file(path: Path, chunk_size: int = 1 << 20) -> FileScan:
    """sha256 and line-end counts of a file, in one read."""
    h = hashlib.sha256()
    scan = FileScan("")
    prev_cr = False
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            h.update(chunk)
            scan.size += len(chunk)
            start = 0
            if prev_cr and chunk[:1] == b"\n":  # a CRLF split by the chunk boundary
                scan.crlf += 1
                scan.lf += 1
                start = 1
            if b"\r" in chunk:
                scan.cr += chunk.count(b"\r")
                scan.lf += chunk.count(b"\n", start)
                scan.crlf += chunk.count(b"\r\n")
            elif not scan.plain_lf and chunk.find(b"\n", start) >= 0:
                scan.plain_lf = True
            prev_cr = chunk[-1:] == b"\r"
    scan.sha256 = h.hexdigest()
    return scan


def outside_landing(path: Path, landing: Path) -> bool:
    """True when ``path`` resolves (through links) to a place outside ``landing``
    (a link that cannot be resolved, e.g. a loop, counts as outside)."""
    try:
        return not Path(path).resolve().is_relative_to(Path(landing).resolve())
    except (OSError, RuntimeError):
        return True


def _link_violation(file: str, shown: str, what: str = "file") -> Violation:
    """``shown``: the link's own path in the landing folder (never its target)."""
    rule = LINK_RULE if what == "file" else LINK_RULE.replace("the file", "the month folder")
    return Violation(file, what, 1, [{"path": shown}], rule, "link")


def check_manifest(folder: Path, month: dt.date, *, landing: Path | None = None,
                   scans: dict[str, FileScan] | None = None
                   ) -> tuple[dict, list[Violation], list[str]]:
    """Check ``_manifest.json`` against the folder: returns (manifest, violations, warnings).

    Checks: the month folder, the manifest and each file resolve inside the
    landing folder (``landing``, by default the folder's parent: a link out of
    it is refused without reading what it points to); readable JSON object;
    ``export_month`` equals the folder's name (and the month asked for); each
    of the ten files listed, present, and with the listed sha256. Row counts
    are checked later, once the files are read (:func:`check_row_counts`).
    The pass that hashes a file also counts its line ends: ``scans`` (if
    given) receives the :class:`FileScan` of each file, by file name.
    """
    folder = Path(folder)
    landing = Path(landing) if landing is not None else folder.parent
    path = folder / MANIFEST
    viol: list[Violation] = []
    warn: list[str] = []
    if outside_landing(folder, landing):
        return {}, [_link_violation(folder.name, folder.name, "folder")], warn
    if outside_landing(path, landing):
        return {}, [_link_violation(MANIFEST, f"{folder.name}/{MANIFEST}")], warn
    try:
        manifest = json.loads(path.read_text(encoding="utf-8-sig"))
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        return {}, [Violation(MANIFEST, "manifest", 1, [{"error": str(exc)}],
                              "the manifest is a readable JSON object", "manifest")], warn

    expected = format_month(month)
    em = manifest.get("export_month")
    if em != folder.name or em != expected:
        viol.append(Violation(MANIFEST, "export_month", 1,
                              [{"export_month": em, "folder": folder.name}],
                              f"export_month equals the folder name ({folder.name})", "manifest"))
    files = manifest.get("files")
    if not isinstance(files, dict):
        viol.append(Violation(MANIFEST, "files", 1, [{"files": files}],
                              "the manifest has a 'files' object listing the ten files",
                              "manifest"))
        return manifest, viol, warn
    unknown = sorted(set(files) - {f.filename for f in FILES})
    if unknown:
        warn.append(f"{MANIFEST}: lists files that are not part of the contract, ignored: "
                    f"{_names(unknown)}")
    for f in FILES:
        p = folder / f.filename
        entry = files.get(f.filename)
        if not p.is_file():
            viol.append(Violation(f.filename, "file", 1, [{"path": f"{folder.name}/{f.filename}"}],
                                  "every file of the contract is present", "manifest"))
            continue
        if outside_landing(p, landing):
            viol.append(_link_violation(f.filename, f"{folder.name}/{f.filename}"))
            continue
        if not isinstance(entry, dict):
            viol.append(Violation(f.filename, "manifest entry", 1, [{"entry": entry}],
                                  "every file of the contract is listed in the manifest "
                                  "with rows and sha256", "manifest"))
            continue
        listed_sha = entry.get("sha256")
        scan = scan_file(p)
        if scans is not None:
            scans[f.filename] = scan
        actual = scan.sha256
        if not isinstance(listed_sha, str) or listed_sha.lower() != actual:
            viol.append(Violation(f.filename, "sha256", 1,
                                  [{"manifest": listed_sha, "actual": actual}],
                                  "the file's sha256 equals the manifest's", "manifest"))
        rows = entry.get("rows")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            viol.append(Violation(f.filename, "rows", 1, [{"manifest": rows}],
                                  "the manifest lists the row count as an integer >= 0",
                                  "manifest"))
    return manifest, viol, warn


def check_row_counts(manifest: dict, counts: dict[str, int]) -> list[Violation]:
    """Rows read (header excluded, malformed records included) vs. the manifest's."""
    viol = []
    files = manifest.get("files") or {}
    for filename, actual in counts.items():
        listed = (files.get(filename) or {}).get("rows")
        if listed != actual:
            viol.append(Violation(filename, "rows", 1, [{"manifest": listed, "actual": actual}],
                                  "the file's row count (header excluded) equals the "
                                  "manifest's", "manifest"))
    return viol


# --------------------------------------------------------------------------- format


def _names(names: list[str], most: int = 10) -> str:
    """Names taken from a file, as a warning may quote them."""
    shown = ", ".join(excerpt(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def read_header(path: Path) -> list[str]:
    """The column names of a CSV file's first record (a UTF-8 BOM is dropped).

    Raises ValueError (UnicodeDecodeError for bytes that are not UTF-8) when
    the first line is longer than :data:`MAX_HEADER_BYTES`, and csv.Error when
    it is not a CSV record.
    """
    with open(path, "rb") as fh:
        first = fh.readline(MAX_HEADER_BYTES + 1)
    if len(first) > MAX_HEADER_BYTES:
        raise ValueError(f"the first line is longer than {MAX_HEADER_BYTES} bytes")
    return next(csv.reader([first.decode("utf-8-sig").rstrip("\r\n")]), [])


_LINE_END = re.compile(rb'["\r\n]')


def check_line_endings(path: Path, filename: str) -> list[Violation]:
    """The lines of the file that do not end as its first line does (LF or
    CRLF), and every line ending in a bare CR; line ends inside quoted values
    do not count (the contract allows any line break there).

    Reads the whole file: called only for a file whose :class:`FileScan`
    found a bare CR or both kinds of line end.
    """
    expected: bytes | None = None
    offenses: list[tuple[int, bytes, bytes | None]] = []
    count = 0
    line, in_quote, pending_cr = 1, False, None  # pending_cr: (offset, in_quote) of a CR
    names = {b"\n": "LF", b"\r\n": "CRLF", b"\r": "CR"}

    def end(kind: bytes, quoted: bool) -> None:
        nonlocal expected, count, line
        if not quoted:
            if kind != b"\r" and expected is None:
                expected = kind
            if kind == b"\r" or kind != expected:
                count += 1
                if len(offenses) < MAX_EXAMPLES:
                    offenses.append((line, kind, expected))
        line += 1

    offset = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            for m in _LINE_END.finditer(chunk):
                pos, tok = offset + m.start(), m.group()
                if pending_cr is not None:
                    if tok == b"\n" and pending_cr[0] == pos - 1:
                        end(b"\r\n", pending_cr[1])
                        pending_cr = None
                        continue
                    end(b"\r", pending_cr[1])
                    pending_cr = None
                if tok == b'"':
                    in_quote = not in_quote
                elif tok == b"\r":
                    pending_cr = (pos, in_quote)
                else:
                    end(b"\n", in_quote)
            offset += len(chunk)
    if pending_cr is not None:
        end(b"\r", pending_cr[1])
    if not count:
        return []
    examples = [{"line": n, "ends_with": names[kind],
                 "expected": names[exp] + " (as line 1)" if exp and n > 1 else "LF or CRLF"}
                for n, kind, exp in offenses]
    return [Violation(filename, "line endings", count, examples,
                      "every line ends with LF, or every line with CRLF (not a bare CR, "
                      "not a mix)", "format")]


def check_header(f: ExportFile, header: list[str]) -> tuple[list[Violation], list[str]]:
    """Missing or duplicate columns are violations; extra columns are warnings."""
    viol, warn = [], []
    if not header:
        return [Violation(f.filename, "header", 1, [],
                          "the first line names the columns", "format")], warn
    dups = sorted({c for c in header if header.count(c) > 1})
    if dups:
        viol.append(Violation(f.filename, ", ".join(dups), len(dups),
                              [{"column": c, "times": header.count(c)} for c in dups],
                              "each column appears once in the header", "format"))
    missing = [c for c in f.column_names if c not in header]
    for c in missing:
        viol.append(Violation(f.filename, c, 1, [{"header": ", ".join(header)}],
                              "the column is missing from the header", "format"))
    extra = [c for c in header if c not in f.column_names]
    if extra:
        warn.append(f"{f.filename}: extra column{'s' if len(extra) > 1 else ''} ignored: "
                    f"{_names(extra)}")
    return viol, warn


#: per DuckDB type: (the value's form as a regular expression or None, SQL condition
#: true for a value of that form that still does NOT parse, SQL giving the typed value, rule)
_TYPE_RULES = {
    "BOOLEAN": (None, "v NOT IN ('true', 'false')",
                "CASE v WHEN 'true' THEN true WHEN 'false' THEN false END",
                "a boolean: exactly 'true' or 'false'"),
    "DATE": ("[0-9]{4}-[0-9]{2}-[0-9]{2}", "try_strptime(v, '%Y-%m-%d') IS NULL",
             "CAST(try_strptime(v, '%Y-%m-%d') AS DATE)",
             "a date YYYY-MM-DD"),
    "BIGINT": ("-?[0-9]+", "TRY_CAST(v AS BIGINT) IS NULL",
               "TRY_CAST(v AS BIGINT)",
               "an integer"),
    AMOUNT_TYPE: ("-?[0-9]+(\\.[0-9]{1,6})?", f"TRY_CAST(v AS {AMOUNT_TYPE}) IS NULL",
                  f"TRY_CAST(v AS {AMOUNT_TYPE})",
                  "a decimal number with '.' and at most 6 digits after it"),
}
#: digits before the point, leading zeros and sign left out (of a value of the form)
_INTEGER_DIGITS = "length(regexp_extract(v, '^-?0*([0-9]*)', 1))"


def _parse_conditions(c) -> tuple[str, str | None]:
    """SQL conditions on a non-null text value of column ``c``: (does not parse
    as the type, parses but is beyond the contract's bound or None)."""
    form, fails, _typed, _rule = _TYPE_RULES[c.duckdb_type]
    of_form = f"regexp_full_match(v, '{form}')" if form else "true"
    if c.digits is None:
        return _sub(f"NOT {of_form} OR {fails}", c.name), None
    beyond = f"{_INTEGER_DIGITS} > {c.digits}"
    # a number of the form but too long for the type is reported as beyond the bound only
    return (_sub(f"NOT {of_form} OR (NOT ({beyond}) AND {fails})", c.name),
            _sub(f"{of_form} AND {beyond}", c.name))


def _bound_rule(c) -> str:
    if c.duckdb_type == AMOUNT_TYPE:
        return f"{c.name} is below 10^{c.digits} in absolute value"
    return f"{c.name} is below 10^{c.digits}"


def _sub(expr: str, column: str) -> str:
    """``expr`` with its placeholder column ``v`` replaced by ``column``."""
    return re.sub(r"\bv\b", quote_identifier(column), expr)


def typed_select(f: ExportFile) -> str:
    """SELECT list turning the staged VARCHAR columns into the contract's types.

    The staged table holds the file's records in file order, so a record's
    line is ``rowid + 2`` (the header is line 1).
    """
    parts = [f"rowid + 2 AS {quote_identifier(LINE_COLUMN)}"]
    for c in f.columns:
        if c.duckdb_type == "VARCHAR":
            parts.append(quote_identifier(c.name))
        else:
            parts.append(f"{_sub(_TYPE_RULES[c.duckdb_type][2], c.name)} AS {quote_identifier(c.name)}")
    return ", ".join(parts)


def check_parse(con, f: ExportFile, table: str) -> list[Violation]:
    """Values of typed columns that do not parse as the type, and values beyond
    the contract's bounds (:attr:`pci.contract.Column.digits`), per column."""
    checks = []  # (column, SQL condition, rule, check)
    for c in f.columns:
        if c.duckdb_type == "VARCHAR":
            continue
        bad, beyond = _parse_conditions(c)
        checks.append((c, f"({quote_identifier(c.name)} IS NOT NULL AND ({bad}))",
                       f"{c.name} is {_TYPE_RULES[c.duckdb_type][3]}", "type"))
        if beyond:
            checks.append((c, f"({quote_identifier(c.name)} IS NOT NULL AND ({beyond}))", _bound_rule(c),
                           "bounds"))
    if not checks:
        return []
    counts = con.execute(
        "SELECT " + ", ".join(f"count(*) FILTER (WHERE {cond})" for _c, cond, _r, _k in checks)
        + f" FROM {table}").fetchall()[0]
    viol = []
    for (c, cond, rule, kind), n in zip(checks, counts):
        if not n:
            continue
        show = [*[k for k in f.key if k != c.name], c.name]
        rows = fetch_dicts(con, f"SELECT rowid + 2 AS {quote_identifier(LINE_COLUMN)}, "
                                 f"{', '.join(quote_identifier(x) for x in show)} FROM {table} "
                                 f"WHERE {cond} ORDER BY rowid LIMIT {MAX_EXAMPLES}")
        viol.append(Violation(f.filename, c.name, int(n), [_line_first(r) for r in rows],
                              rule, kind))
    return viol


def fetch_dicts(con, sql: str, params: list | None = None) -> list[dict]:
    """Rows of a query as dicts with JSON-friendly values."""
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [_clean(dict(zip(names, row))) for row in cur.fetchall()]


def _line_first(row: dict) -> dict:
    out = {"line": row.get(LINE_COLUMN)}
    out.update({k: v for k, v in row.items() if k != LINE_COLUMN})
    return out


# --------------------------------------------------------------------------- GX suites


class SuiteError(RuntimeError):
    """An expectation suite file that GX does not load as written."""


def load_suite_json(name: str, directory: Path = EXPECTATIONS_DIR) -> dict:
    path = Path(directory) / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SuiteError(f"expectation suite {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise SuiteError(f"expectation suite {path}: no 'expectations' list")
    return data


def build_suite(data: dict, source: str = "<suite>"):
    """A GX ExpectationSuite from its JSON; every expectation must survive loading.

    GX drops an expectation whose type it does not know with only a log line;
    that would silently switch a rule off, so a count mismatch is an error.
    """
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=data.get("name") or Path(source).stem,
                                expectations=data["expectations"], meta=data.get("meta") or {})
    wanted, got = len(data["expectations"]), len(suite.expectations)
    if got != wanted:
        loaded = {e.expectation_type if hasattr(e, "expectation_type") else e.type
                  for e in suite.expectations}
        lost = [e.get("type") for e in data["expectations"] if e.get("type") not in loaded]
        raise SuiteError(f"expectation suite {source}: {wanted} expectations written, "
                         f"{got} loaded by Great Expectations; not loaded: {lost}")
    return suite


def data_docs_dir(con) -> Path | None:
    """``<warehouse dir>/data_docs``, beside the DuckDB file ``con`` is connected to
    (None for an in-memory database)."""
    path = con.execute("SELECT path FROM duckdb_databases() "
                       "WHERE database_name = current_database()").fetchall()
    return Path(path[0][0]).resolve().parent / DATA_DOCS_DIR if path and path[0][0] else None


class _GX:
    """The process's one GX context (ephemeral: nothing of GX is kept between runs
    but the Data Docs), created on first use and shared by landing and the mart
    audit (:mod:`pci.mart_validation`).

    Each suite is run by its own Checkpoint, over a pandas dataframe asset. The
    ten landing suites are loaded when the context is made; :meth:`checkpoint`
    adds further ones once. Data Docs are written by :meth:`write_docs`, once a
    run and for the failed results only (building the site costs a few tenths
    of a second: its static files, pages and index), so a landing or an audit
    that passes writes nothing.
    """

    _instance: "_GX | None" = None

    def __init__(self, directory: Path):
        import great_expectations as gx
        from great_expectations.data_context.types.base import (DataContextConfig,
                                                                 InMemoryStoreBackendDefaults,
                                                                 ProgressBarsConfig)

        # GX logs routine steps at INFO: they are not the pipeline's output
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        self.directory = directory
        # in-memory stores and no docs site yet: no temporary folder is made for one
        self.context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            progress_bars=ProgressBarsConfig(globally=False)))
        self.datasource = self.context.data_sources.add_pandas("pci")
        self.checkpoints: dict[str, Any] = {}
        self.columns: dict[str, list[str]] = {}
        self._docs_dir: Path | None = None
        for f in FILES:
            data = load_suite_json(f.name, directory)
            suite = build_suite(data, str(Path(directory) / f"{f.name}.json"))
            used = {c for e in data["expectations"] for c in _involved_columns(e["kwargs"])}
            unknown = sorted(used - set(f.column_names))
            if data.get("name") != f.name or unknown:
                raise SuiteError(f"expectation suite {directory}/{f.name}.json: name "
                                 f"{data.get('name')!r}, columns not in {f.filename}: {unknown}")
            self.columns[f.name] = [c for c in f.column_names if c in used]
            self.checkpoint(suite, {"result_format": "SUMMARY",
                                    "partial_unexpected_count": MAX_EXAMPLES})

    @classmethod
    def get(cls, directory: Path = EXPECTATIONS_DIR) -> "_GX":
        if cls._instance is None or cls._instance.directory != directory:
            cls._instance = _GX(directory)
        return cls._instance

    def checkpoint(self, suite, result_format: dict):
        """The Checkpoint running ``suite`` over a dataframe (made on first use)."""
        import great_expectations as gx

        name = suite.name
        if name not in self.checkpoints:
            suite = self.context.suites.add(suite)
            batch = self.datasource.add_dataframe_asset(name).add_batch_definition_whole_dataframe(
                "whole")
            validation = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch, suite=suite))
            self.checkpoints[name] = self.context.checkpoints.add(gx.Checkpoint(
                name=name, validation_definitions=[validation], result_format=result_format))
        return self.checkpoints[name]

    def run(self, name: str, df, params: dict, run_id):
        """Run the Checkpoint of suite ``name`` over ``df``: (result identifier, result)."""
        result = self.checkpoints[name].run(batch_parameters={"dataframe": df},
                                            expectation_parameters=params, run_id=run_id)
        return next(iter(result.run_results.items()))

    def write_docs(self, docs_dir: Path | None, failed: list) -> DataDocs | None:
        """Render the failed results (``[(identifier, result)]``) and their suites into the
        Data Docs site in ``docs_dir``. A site that cannot be written is logged, never
        raised: the validation's outcome is reported either way."""
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier)

        if not failed or docs_dir is None:
            return None
        try:
            self._use_docs_dir(docs_dir)
            shown = []
            for key, result in failed:
                suite = ExpectationSuiteIdentifier(name=key.expectation_suite_identifier.name)
                self.context.stores[_DOCS_RESULTS].set(key, result)
                self.context.stores[_DOCS_SUITES].set(
                    suite, self.checkpoints[suite.name].validation_definitions[0].suite)
                shown += [key, suite]
            self.context.build_data_docs(site_names=[_DOCS_SITE], resource_identifiers=shown)

            def url(key=None) -> str:
                return self.context.get_docs_sites_urls(resource_identifier=key,
                                                        site_names=[_DOCS_SITE])[0]["site_url"]

            return DataDocs(url(), {key.expectation_suite_identifier.name: url(key)
                                    for key, _ in failed})
        except Exception as exc:  # noqa: BLE001 - GX's store and render errors have no common base
            log.warning("Data Docs not written to %s: %s", docs_dir, exc)
            return None

    def _use_docs_dir(self, docs_dir: Path) -> None:
        """Point the docs site and the stores it shows at ``docs_dir`` (once per folder):
        the failed results and their suites are kept there as JSON, so that the site
        keeps the pages of earlier runs (GX drops a page whose source is gone)."""
        if self._docs_dir == docs_dir:
            return
        for name, kind, folder in ((_DOCS_RESULTS, "ValidationResultsStore", "results"),
                                   (_DOCS_SUITES, "ExpectationsStore", "suites")):
            self.context.add_store(name, {
                "class_name": kind,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(docs_dir / folder)}})
        site = {"class_name": "SiteBuilder", "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(docs_dir)},
                "site_section_builders": {"expectations": {"source_store_name": _DOCS_SUITES},
                                          "validations": {"source_store_name": _DOCS_RESULTS},
                                          "profiling": "None"}}
        if _DOCS_SITE in self.context.list_data_docs_sites():
            self.context.update_data_docs_site(_DOCS_SITE, site)
        else:
            self.context.add_data_docs_site(_DOCS_SITE, site)
        self._docs_dir = docs_dir


def run_id(kind: str, month: dt.date):
    """The GX run of ``kind`` ("landing", "audit") for ``month``: its name in the Data Docs."""
    from great_expectations.core.run_identifier import RunIdentifier

    return RunIdentifier(run_name=f"{kind}-{format_month(month)}",
                         run_time=dt.datetime.now(dt.timezone.utc))


def _pandas_frame(con, f: ExportFile, table: str, columns: list[str]):
    """The typed rows as a pandas DataFrame (index i = i-th row of the file).

    Only ``columns`` (those the suite looks at) are converted: free-text
    columns such as names are not checked and would only cost time.
    """
    import pandas as pd

    cols = ", ".join(quote_identifier(c) for c in columns)
    df = con.sql(f"SELECT {cols} FROM {table} ORDER BY {quote_identifier(LINE_COLUMN)}").df()
    for c in f.columns:
        if c.duckdb_type == "DATE" and c.name in columns:
            try:  # GX compares nanosecond datetimes vectorised, others row by row
                df[c.name] = df[c.name].astype("datetime64[ns]")
            except (pd.errors.OutOfBoundsDatetime, OverflowError, ValueError):
                pass
    return df


def _involved_columns(kwargs: dict) -> list[str]:
    cols = []
    for k in ("column", "column_A", "column_B"):
        if kwargs.get(k):
            cols.append(kwargs[k])
    cols += list(kwargs.get("column_list") or [])
    rc = kwargs.get("row_condition")
    if isinstance(rc, dict) and isinstance(rc.get("column"), dict):
        cols.append(rc["column"]["name"])
    elif rc is not None and hasattr(rc, "column"):
        cols.append(rc.column.name)
    return cols


def run_suites(con, tables: dict[str, str], month: dt.date,
               directory: Path = EXPECTATIONS_DIR) -> list[Violation]:
    """Run each file's GX suite, through its Checkpoint, over its staged typed table
    (``tables``: file name -> SQL table).

    Suite parameters: ``month_start`` and ``month_end`` (first and last day
    of the export month). When a suite fails, the Data Docs of the failed
    results are written beside the warehouse (:func:`data_docs_dir`) and each
    of its violations carries them (``data_docs``; the report links them).
    """
    import pandas as pd

    gxs = _GX.get(directory)
    params = {"month_start": pd.Timestamp(month), "month_end": pd.Timestamp(end_of_month(month))}
    run = run_id("landing", month)
    viol: list[Violation] = []
    failed = []  # (identifier, result) of the suites that failed
    for f in FILES:
        table = tables[f.name]
        df = _pandas_frame(con, f, table, gxs.columns[f.name])
        key, res = gxs.run(f.name, df, params, run)
        if not res.success:
            failed.append((key, res))
        for r in res.results:
            if r.success:
                continue
            cfg = r.expectation_config
            kwargs = dict(cfg.kwargs)
            rule = (cfg.meta or {}).get("rule") or cfg.type
            cols = _involved_columns(kwargs)
            where = ", ".join(dict.fromkeys(c for c in (kwargs.get("column"), kwargs.get("column_A"),
                                                        kwargs.get("column_B")) if c)) \
                or ", ".join(kwargs.get("column_list") or []) or cfg.type
            info = r.exception_info or {}
            if info.get("raised_exception"):
                viol.append(Violation(f.filename, where, len(df),
                                      [{"error": info.get("exception_message")}],
                                      f"{rule} (the check could not be evaluated)", cfg.type))
                continue
            result = r.result or {}
            count = int(result.get("unexpected_count") or 0)
            idx = [i for i in (result.get("partial_unexpected_index_list") or [])
                   if isinstance(i, (int,)) or hasattr(i, "__index__")]
            show = list(dict.fromkeys([LINE_COLUMN, *f.key, *cols]))
            examples = []
            if idx:
                lines = sorted({int(i) + 2 for i in idx})[:MAX_EXAMPLES]
                rows = fetch_dicts(
                    con, f"SELECT {', '.join(quote_identifier(c) for c in show)} FROM {table} "
                         f"WHERE {quote_identifier(LINE_COLUMN)} IN ({', '.join(str(x) for x in lines)}) "
                         f"ORDER BY {quote_identifier(LINE_COLUMN)}")
                examples = [_line_first(x) for x in rows]
            elif result.get("partial_unexpected_list"):
                examples = [_clean(x) if isinstance(x, dict) else {"value": _jsonable(x)}
                            for x in result["partial_unexpected_list"][:MAX_EXAMPLES]]
            viol.append(Violation(f.filename, where, count or len(examples), examples, rule,
                                  cfg.type))
        del df
    docs = gxs.write_docs(data_docs_dir(con), failed)
    if docs is not None:
        docs.pages = {FILES_BY_NAME[name].filename: url for name, url in docs.pages.items()}
        for v in viol:
            v.data_docs = docs
    return viol


# --------------------------------------------------------------------------- cross-file


def cross_file_checks(con, tables: dict[str, str]) -> list[Violation]:
    """Rules between files of the same export, in SQL over the staged typed tables."""
    t = tables
    L = quote_identifier(LINE_COLUMN)
    checks = [
        # (file, column, rule, SQL selecting offending rows with _line first)
        ("subscriptions", "tenant_id", "tenant_id exists in tenants.csv",
         f"SELECT s.{L}, s.subscription_id, s.tenant_id FROM {t['subscriptions']} s "
         f"WHERE s.tenant_id IS NOT NULL AND NOT EXISTS "
         f"(SELECT 1 FROM {t['tenants']} x WHERE x.tenant_id = s.tenant_id)"),
        ("subscriptions", "product_id", "product_id exists in products.csv",
         f"SELECT s.{L}, s.subscription_id, s.product_id FROM {t['subscriptions']} s "
         f"WHERE s.product_id IS NOT NULL AND NOT EXISTS "
         f"(SELECT 1 FROM {t['products']} x WHERE x.product_id = s.product_id)"),
        ("partner_associations", "partner_id", "partner_id exists in partners.csv",
         f"SELECT a.{L}, a.association_id, a.partner_id FROM {t['partner_associations']} a "
         f"WHERE a.partner_id IS NOT NULL AND NOT EXISTS "
         f"(SELECT 1 FROM {t['partners']} x WHERE x.partner_id = a.partner_id)"),
        ("partner_associations", "subscription_id", "subscription_id exists in subscriptions.csv",
         f"SELECT a.{L}, a.association_id, a.subscription_id FROM {t['partner_associations']} a "
         f"WHERE a.subscription_id IS NOT NULL AND NOT EXISTS "
         f"(SELECT 1 FROM {t['subscriptions']} x WHERE x.subscription_id = a.subscription_id)"),
        ("partner_people", "partner_id", "partner_id exists in partners.csv",
         f"SELECT p.{L}, p.person_id, p.partner_id, p.valid_from FROM {t['partner_people']} p "
         f"WHERE p.partner_id IS NOT NULL AND NOT EXISTS "
         f"(SELECT 1 FROM {t['partners']} x WHERE x.partner_id = p.partner_id)"),
        ("billing_lines", "subscription_id", "subscription_id exists in subscriptions.csv",
         f"SELECT b.{L}, b.line_id, b.subscription_id FROM {t['billing_lines']} b "
         f"WHERE b.subscription_id IS NOT NULL AND NOT EXISTS "
         f"(SELECT 1 FROM {t['subscriptions']} x WHERE x.subscription_id = b.subscription_id)"),
        # An affiliation overlaps an earlier one of the same person when it starts
        # on or before the latest end (open = never) among the earlier ones.
        ("partner_people", "person_id, valid_from, valid_to",
         "a person's affiliations do not overlap",
         f"SELECT {L}, person_id, partner_id, valid_from, valid_to, "
         f"overlaps_until AS earlier_affiliation_ends FROM ("
         f"  SELECT *, max(coalesce(valid_to, DATE '9999-12-31')) OVER ("
         f"    PARTITION BY person_id ORDER BY valid_from, partner_id, {L} "
         f"    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS overlaps_until "
         f"  FROM {t['partner_people']} WHERE person_id IS NOT NULL AND valid_from IS NOT NULL"
         f") WHERE overlaps_until >= valid_from"),
    ]
    viol = []
    for name, column, rule, sql in checks:
        n = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
        if n:
            rows = fetch_dicts(con, f"SELECT * FROM ({sql}) ORDER BY 1 LIMIT {MAX_EXAMPLES}")
            for r in rows:  # "open" affiliations are shown as open, not as 9999-12-31
                if r.get("earlier_affiliation_ends") == "9999-12-31":
                    r["earlier_affiliation_ends"] = "open"
            viol.append(Violation(FILES_BY_NAME[name].filename, column, int(n),
                                  [_line_first(r) for r in rows], rule, "cross-file"))
    return viol
