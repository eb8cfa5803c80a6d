"""Writing the landing: each export month's ten files and then its manifest.

Semantics of each export month ``m`` (shared/spec/raw-exports.md):

* reference files hold the full state as of ``EOM(m)``: every partner, every
  tenant and subscription created so far (``is_paid`` = paid state in ``m``;
  churned subscriptions stay, unpaid), every association and affiliation with
  ``valid_from <= EOM(m)`` (``valid_to`` is shown once it is ``<= EOM(m)``; an
  end that lies in the future is not known yet, so the row is open), every
  exam pass with ``passed_on <= EOM(m)`` (its ``expires_on`` is known when it
  is passed);
* monthly files hold the facts of ``m``: billing lines dated inside ``m``
  (line ids ``LYYYYMM-nnnnnnn`` are unique across all months), seat and MAU
  snapshots as of ``EOM(m)``.  A zero is written as an explicit ``0`` row in
  some months and omitted in others, so both spellings of "no seats" occur.

Each file's headers are exactly the contract columns (``pci.core.contract``);
rows are written in creation order and streamed to disk while their sha256 is
computed.  ``_manifest.json`` is written last (via a temporary file and an
atomic rename, after removing an old one), so a folder is never "ready"
half-written.  :func:`generate` builds the :class:`.world.World` and writes
all its months.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
from pathlib import Path

from pci.core.contract import FILES, FILES_BY_NAME, MANIFEST, end_of_month, format_month, parse_month

from . import catalogue
from .world import World


class _HashedCsv:
    """A csv writer that streams to ``path`` in chunks and hashes the bytes it writes."""

    CHUNK = 4096

    def __init__(self, path: Path, header: list[str]):
        self.path = path
        self.fh = open(path, "wb")
        self.sha = hashlib.sha256()
        self.buf = io.StringIO()
        self.writer = csv.writer(self.buf, lineterminator="\n")
        self.rows = 0
        self._pending = 0
        self.writer.writerow(header)

    def row(self, values) -> None:
        self.writer.writerow(values)
        self.rows += 1
        self._pending += 1
        if self._pending >= self.CHUNK:
            self._flush()

    def _flush(self) -> None:
        data = self.buf.getvalue().encode("utf-8")
        self.sha.update(data)
        self.fh.write(data)
        self.buf.seek(0)
        self.buf.truncate(0)
        self._pending = 0

    def close(self) -> dict:
        self._flush()
        self.fh.close()
        return {"rows": self.rows, "sha256": self.sha.hexdigest()}


def _iso(d: dt.date | None) -> str:
    return "" if d is None else d.isoformat()


def _amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def write_month(world: World, k: int, folder: Path) -> None:
    """Write the ten files and then the manifest of export month ``k``."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST
    if manifest_path.exists():
        manifest_path.unlink()  # not ready while being rewritten
    month = world.month(k)
    eom = end_of_month(month)
    rng = world.rng
    files: dict[str, dict] = {}

    def out(name: str) -> _HashedCsv:
        f = FILES_BY_NAME[name]
        return _HashedCsv(folder / f.filename, f.column_names)

    w = out("partners")
    for row in world.partners:
        w.row(row)
    files["partners.csv"] = w.close()

    w = out("tenants")
    for t in world.tenants:
        if t.start_k <= k:
            w.row((t.tid, t.name, "true" if t.production else "false"))
    files["tenants.csv"] = w.close()

    w = out("products")
    for row in catalogue.product_rows():
        w.row(row)
    files["products.csv"] = w.close()

    live = [s for s in world.subs if s.start_k <= k]
    w = out("subscriptions")
    for s in live:
        w.row((s.sid, s.tid, s.product, s.channel, "true" if s.paid(k) else "false",
               _iso(s.ea_start)))
    files["subscriptions.csv"] = w.close()

    w = out("partner_associations")
    for a in world.assocs:
        if a.vfrom <= eom:
            vto = a.vto if a.vto is not None and a.vto <= eom else None
            w.row((a.aid, a.pid, a.sid, a.atype, a.incentive, a.vfrom.isoformat(), _iso(vto)))
    files["partner_associations.csv"] = w.close()

    w = out("partner_people")
    for person, pid, vfrom, vto in world.affiliations:
        if vfrom <= eom:
            w.row((person, pid, vfrom.isoformat(),
                   vto.isoformat() if vto is not None and vto <= eom else ""))
    files["partner_people.csv"] = w.close()

    w = out("exam_passes")
    for person, code, passed, expires in world.passes:
        if passed <= eom:
            w.row((person, code, passed.isoformat(), _iso(expires)))
    files["exam_passes.csv"] = w.close()

    # monthly facts
    last_day = eom.day
    prefix = f"L{month.year:04d}{month.month:02d}-"
    n_line = 0
    w = out("billing_lines")
    for s in live:
        lines = []
        if s.paid(k):
            seats = s.seats(k)
            if seats:
                day = min(s.bill_day, last_day)
                cents = seats * s.price
                lines.append((day, "CHARGE", cents))
                if s.credits and rng.random() < 0.03:
                    lines.append((rng.randint(day, last_day), "CREDIT",
                                  cents * rng.randint(10, 50) // 100))
            if s.extra_lines and k in s.extra_lines:
                lines.extend(s.extra_lines[k])
        for day, line_type, cents in lines:
            n_line += 1
            w.row((f"{prefix}{n_line:07d}", month.replace(day=day).isoformat(), s.sid,
                   line_type, _amount(cents)))
    files["billing_lines.csv"] = w.close()

    w = out("seat_snapshots")
    for s in live:
        v = s.seats(k)
        if v is not None:
            w.row((s.sid, v))
    files["seat_snapshots.csv"] = w.close()

    w = out("mau_snapshots")
    for s in live:
        v = s.mau(k)
        if v is not None:
            w.row((s.sid, v))
    files["mau_snapshots.csv"] = w.close()

    manifest = {"export_month": format_month(month),
                "files": {f.filename: files[f.filename] for f in FILES}}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, manifest_path)


def generate(out_dir, first: dt.date, months: int, partners: int, tenants: int, seed: int,
             progress: bool | None = None) -> list[Path]:
    """Write ``months`` export folders under ``out_dir``; return them, oldest first.

    ``first`` is the first export month (a date on the 1st, or ``"YYYY-MM"``).

    ``progress``: show a progress bar on standard error (default: only when
    standard error is a terminal).  Raises ``ValueError`` on arguments the
    world cannot be built from.
    """
    if isinstance(first, str):
        first = parse_month(first)
    if first.day != 1:
        raise ValueError(f"first must be the first day of a month, got {first}")
    world = World(first, months, partners, tenants, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folders = [out / format_month(world.month(k)) for k in range(months)]

    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    show = console.is_terminal if progress is None else progress
    with Progress(console=console, disable=not show, transient=True) as bar:
        task = bar.add_task("generating exports", total=months)
        for k, folder in enumerate(folders):
            bar.update(task, description=f"generating {folder.name}")
            write_month(world, k, folder)
            bar.advance(task)
    return folders
