"""What a refused export is told: :class:`Violation` (file, column, rule, count,
examples) collected in one :class:`Report` (its JSON and its text).

Examples of offending rows carry ``line``, the line of the CSV file (the
header is line 1; a quoted line break inside a value shifts later lines).
A report quotes values only as short excerpts (:func:`excerpt`: at most
:data:`MAX_VALUE_CHARS` characters, control characters escaped), applied once
where a :class:`Violation` is made, so that neither the JSON nor the text
report ever holds a file's content.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

#: how many offending rows a violation shows
MAX_EXAMPLES = 5
#: the column holding a row's line number in the staged tables
LINE_COLUMN = "_line"
#: the longest excerpt of a value a report quotes (control characters escaped)
MAX_VALUE_CHARS = 80


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
            {str(k): excerpt(x) if isinstance(x, str) else x for k, x in clean_row(ex).items()}
            if isinstance(ex, dict) else {"value": excerpt(str(jsonable(ex)))}
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
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=jsonable) + "\n",
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


def jsonable(v: Any) -> Any:
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
    return str(jsonable(v)) if not isinstance(v, (int, float)) else str(v)


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


def clean_row(row: dict) -> dict:
    """JSON-friendly values (dates as ISO strings, decimals as strings)."""
    out = {}
    for k, v in row.items():
        if v is None or isinstance(v, (str, bool, int, float)):
            out[k] = v
        else:
            out[k] = jsonable(v)
    return out
