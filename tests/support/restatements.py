"""A month's export rewritten for a restatement: fewer rows, more rows, a changed
partner list (the next landing of the month is a new load)."""
from __future__ import annotations

import csv
import random
from pathlib import Path

from tests.support.exports import write_manifest


def _read(folder: Path, name: str) -> tuple[list[str], list[dict]]:
    with (folder / f"{name}.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames), list(reader)


def _write(folder: Path, name: str, header: list[str], rows: list[dict]) -> None:
    with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def restate(landing: Path, month: str, change) -> None:
    """Rewrite the export of ``month`` with ``change(tables)`` (name -> (header, rows)) and a
    new manifest: the next landing of the month is a new load."""
    folder = landing / month
    tables = {p.stem: _read(folder, p.stem) for p in folder.glob("*.csv")}
    change(tables)
    for name, (header, rows) in tables.items():
        _write(folder, name, header, rows)
    write_manifest(folder)


def drop_tenants(share: float, seed: int):
    """Fewer rows: a share of the tenants leave the export with everything that is theirs
    (share 1.0: no tenant, subscription, seat, usage or billing row at all)."""
    def change(tables):
        rng = random.Random(seed)
        tenants = [r["tenant_id"] for r in tables["tenants"][1]]
        gone = set(rng.sample(tenants, int(len(tenants) * share)))
        subs = {r["subscription_id"] for r in tables["subscriptions"][1] if r["tenant_id"] in gone}
        for name, (header, rows) in tables.items():
            rows[:] = [r for r in rows if r.get("tenant_id") not in gone and r.get("subscription_id") not in subs]
    return change


def add_copies(count: int, seed: int):
    """More rows: copies of some subscriptions (new ids), with their seats, usage, billing
    lines and partner associations."""
    def change(tables):
        rng = random.Random(seed)
        subs = rng.sample(tables["subscriptions"][1], min(count, len(tables["subscriptions"][1])))
        copied = {r["subscription_id"]: r["subscription_id"] + "-R" for r in subs}
        for name, (header, rows) in tables.items():
            if "subscription_id" not in header:
                continue
            extra = []
            for r in rows:
                if r["subscription_id"] in copied:
                    new = dict(r, subscription_id=copied[r["subscription_id"]])
                    for key in ("association_id", "line_id"):
                        if key in new:
                            new[key] = new[key] + "-R"
                    extra.append(new)
            rows.extend(extra)
    return change


def change_partners(seed: int):
    """A changed partner list: one partner leaves the export with its associations and
    people, a new one appears."""
    def change(tables):
        rng = random.Random(seed)
        gone = rng.choice(tables["partners"][1])["partner_id"]
        for name, (header, rows) in tables.items():
            rows[:] = [r for r in rows if r.get("partner_id") != gone]
        tables["partners"][1].append({"partner_id": f"PNEW{seed}", "partner_name": "New partner",
                                      "country": "DE"})
    return change
