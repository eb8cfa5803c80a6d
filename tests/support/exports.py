"""Write raw exports (shared/spec/raw-exports.md, sections 1-2) for tests.

``write_export(landing, "2021-08", tables)`` writes one export folder: the ten
CSV files with the contract's headers (in the contract's column order) and a
correct ``_manifest.json``. ``minimal_valid_tables(month)`` is a small dataset
that satisfies every rule of the contract; tests copy it and break one thing.

Values are written as the contract spells them: ``None`` -> empty field,
``bool`` -> ``true``/``false``, dates -> ``YYYY-MM-DD``, everything else
``str(value)``.
"""
from __future__ import annotations

import copy
import csv
import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from pci.core.contract import (FILES, FILES_BY_NAME, MANIFEST, add_months, end_of_month, format_month,
                               parse_month)


def _month(month: str | dt.date) -> dt.date:
    if isinstance(month, dt.date):
        return month.replace(day=1)
    return parse_month(month)


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    return str(value)


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, bom: bool = False) -> None:
    """Write one CSV file (RFC 4180 quoting, ``\\n`` line ends)."""
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def write_table(folder: Path, name: str, rows: list[dict]) -> Path:
    """Write ``<name>.csv`` with the contract's header; unknown keys are an error."""
    f = FILES_BY_NAME[name]
    cols = f.column_names
    unknown = sorted({k for r in rows for k in r} - set(cols))
    if unknown:
        raise ValueError(f"{f.filename}: columns not in the contract: {unknown}")
    path = folder / f.filename
    write_csv(path, cols, [[format_value(r.get(c)) for c in cols] for r in rows])
    return path


def count_rows(path: Path) -> int:
    """CSV records after the header (quoted line breaks are part of a record;
    blank lines are not records)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        return max(sum(1 for r in csv.reader(fh) if r) - 1, 0)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(folder: Path, export_month: str | None = None) -> Path:
    """(Re)write ``_manifest.json`` for the contract files present in ``folder``."""
    folder = Path(folder)
    files = {}
    for f in FILES:
        p = folder / f.filename
        if p.exists():
            files[f.filename] = {"rows": count_rows(p), "sha256": sha256_file(p)}
    manifest = {"export_month": export_month or folder.name, "files": files}
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def write_export(landing_dir: Path, month: str | dt.date, tables: dict[str, list[dict]], *,
                 manifest: bool = True) -> Path:
    """Write the export folder ``<landing_dir>/<YYYY-MM>/`` and return it.

    Every contract file is written; a file missing from ``tables`` gets only
    its header. ``manifest=False`` leaves the folder "not ready".
    """
    unknown = sorted(set(tables) - set(FILES_BY_NAME))
    if unknown:
        raise ValueError(f"not export files of the contract: {unknown}")
    folder = Path(landing_dir) / format_month(_month(month))
    folder.mkdir(parents=True, exist_ok=True)
    for f in FILES:
        write_table(folder, f.name, tables.get(f.name, []))
    if manifest:
        write_manifest(folder)
    return folder


def minimal_valid_tables(month: str | dt.date) -> dict[str, list[dict]]:
    """A small export of ``month`` that satisfies every rule of the contract.

    Three partners, three tenants, three products, three subscriptions (CSP,
    EA, WEB_DIRECT), associations of every type, two people (one of them with
    two consecutive affiliations), exam passes, billing lines of both types,
    seats and MAU. A fresh deep copy on every call.
    """
    m = _month(month)
    eom = end_of_month(m)
    d = dt.timedelta
    tables = {
        "partners": [
            {"partner_id": "P001", "partner_name": "Contoso Consulting", "country": "SE"},
            {"partner_id": "P002", "partner_name": "Fabrikam, Inc.", "country": "US"},
            {"partner_id": "P003", "partner_name": "Northwind Traders", "country": None},
        ],
        "tenants": [
            {"tenant_id": "T001", "tenant_name": "Tailspin Toys", "is_production": True},
            {"tenant_id": "T002", "tenant_name": "Wide World Importers", "is_production": True},
            {"tenant_id": "T003", "tenant_name": "Adventure Works (test)", "is_production": False},
        ],
        "products": [
            {"product_id": "D365_SALES", "product_name": "Dynamics 365 Sales"},
            {"product_id": "D365_BUSINESS_CENTRAL", "product_name": "Dynamics 365 Business Central"},
            {"product_id": "M365_E3", "product_name": "Microsoft 365 E3"},
        ],
        "subscriptions": [
            {"subscription_id": "S001", "tenant_id": "T001", "product_id": "D365_SALES",
             "sales_channel": "CSP", "is_paid": True, "ea_agreement_start": None},
            {"subscription_id": "S002", "tenant_id": "T002", "product_id": "D365_BUSINESS_CENTRAL",
             "sales_channel": "EA", "is_paid": True, "ea_agreement_start": add_months(m, -3)},
            {"subscription_id": "S003", "tenant_id": "T003", "product_id": "M365_E3",
             "sales_channel": "WEB_DIRECT", "is_paid": False, "ea_agreement_start": None},
        ],
        "partner_associations": [
            {"association_id": "A001", "partner_id": "P001", "subscription_id": "S001",
             "association_type": "CSP", "cpor_incentive": None,
             "valid_from": add_months(m, -6), "valid_to": None},
            {"association_id": "A002", "partner_id": "P002", "subscription_id": "S002",
             "association_type": "CPOR", "cpor_incentive": "OSA",
             "valid_from": add_months(m, -2), "valid_to": None},
            {"association_id": "A003", "partner_id": "P003", "subscription_id": "S002",
             "association_type": "DPOR", "cpor_incentive": None,
             "valid_from": add_months(m, -12), "valid_to": eom},
            {"association_id": "A004", "partner_id": "P002", "subscription_id": "S003",
             "association_type": "CPOR", "cpor_incentive": "OSU",
             "valid_from": add_months(m, -1), "valid_to": add_months(m, -1)},
        ],
        "partner_people": [
            {"person_id": "U001", "partner_id": "P001", "valid_from": add_months(m, -24),
             "valid_to": add_months(m, -12) - d(days=1)},
            {"person_id": "U001", "partner_id": "P002", "valid_from": add_months(m, -12),
             "valid_to": None},
            {"person_id": "U002", "partner_id": "P001", "valid_from": add_months(m, -6),
             "valid_to": None},
        ],
        "exam_passes": [
            {"person_id": "U001", "exam_code": "PL-200", "passed_on": add_months(m, -10),
             "expires_on": add_months(m, 14)},
            {"person_id": "U001", "exam_code": "MB-210", "passed_on": add_months(m, -9),
             "expires_on": None},
            {"person_id": "U002", "exam_code": "MB-800", "passed_on": add_months(m, -1),
             "expires_on": None},
        ],
        "billing_lines": [
            {"line_id": "B001", "billing_date": m + d(days=4), "subscription_id": "S001",
             "line_type": "CHARGE", "amount_usd": Decimal("1200.50")},
            {"line_id": "B002", "billing_date": m, "subscription_id": "S002",
             "line_type": "CHARGE", "amount_usd": Decimal("3000")},
            {"line_id": "B003", "billing_date": eom, "subscription_id": "S001",
             "line_type": "CREDIT", "amount_usd": Decimal("100.25")},
        ],
        "seat_snapshots": [
            {"subscription_id": "S001", "paid_seats": 10},
            {"subscription_id": "S002", "paid_seats": 25},
            {"subscription_id": "S003", "paid_seats": 0},
        ],
        "mau_snapshots": [
            {"subscription_id": "S001", "monthly_active_users": 8},
            {"subscription_id": "S002", "monthly_active_users": 40},
        ],
    }
    return copy.deepcopy(tables)
