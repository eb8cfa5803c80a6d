"""The checks of an export's files before any value is read: the manifest
(:func:`check_manifest`, :func:`check_row_counts`: all ten files listed and
present, sha256 and row counts as listed, ``export_month`` equal to the
folder's name; a file, or the month folder, that is a link to a path outside
the landing folder is refused without being read), the line ends
(:func:`check_line_endings`: LF or CRLF, the same on every line) and the
header (:func:`check_header`). Each returns :class:`~pci.land.violations.Violation` objects.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from pci.core.contract import FILES, MANIFEST, ExportFile, format_month
from pci.land.violations import MAX_EXAMPLES, Violation, excerpt

log = logging.getLogger(__name__)

#: the longest header line read (a longer first line is refused, not read whole)
MAX_HEADER_BYTES = 1 << 16
#: the rule of a file that resolves outside the landing folder
LINK_RULE = "the file is a link to a path outside the landing folder; it was not read"


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
    quotes: int = 0  # '"' characters (even in a file quoted as RFC 4180 says)

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
            scan.quotes += chunk.count(b'"')
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


def apply_header(f: ExportFile, header: list[str], warnings: list[str],
                 extra_columns: dict[str, list[str]]) -> list[Violation]:
    """:func:`check_header` of a file as landing applies it (both engines): its warnings
    logged and added to ``warnings``, its extra columns recorded in ``extra_columns``
    (file name -> the columns ignored); returns its violations."""
    viol, warn = check_header(f, header)
    warnings += warn
    for w in warn:
        log.warning(w)
    extra = [c for c in header if c not in f.column_names]
    if extra:
        extra_columns[f.filename] = extra
    return viol
