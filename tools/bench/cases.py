"""The measured cases: each prepares its fresh copy and returns the command to
measure (see the package docstring for what each one measures), and :data:`CASES`."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from pci.core.contract import FILES, MANIFEST

from .measure import pci_command
from .world import (MONTHS, World, engine_args, fresh_copy, fresh_folder_copy, link_months, nth_month,
                    prepare_ran)


def case_csv_floor(world: World, work: Path) -> list[str]:
    folder = world.landing / nth_month(MONTHS)
    reads = []
    for f in FILES:
        cols = ", ".join(f"'{c.name}': '{c.duckdb_type}'" for c in f.columns)
        reads.append(f"CREATE TABLE {f.name} AS SELECT * FROM read_csv('{folder / f.filename}', "
                     f"header=true, auto_detect=false, columns={{{cols}}}, dateformat='%Y-%m-%d')")
    script = "import duckdb\ncon = duckdb.connect()\n" + "".join(
        f"con.execute({q!r}).fetchall()\n" for q in reads)
    return [sys.executable, "-c", script]


def case_land_month(world: World, work: Path, progress) -> list[str]:
    if world.engine != "duckdb":  # a new Spark warehouse folder: the month read and checked by Spark
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        return pci_command("land", *engine_args(world.engine), "--landing", str(world.landing),
                           "--warehouse", str(work / "warehouse"), "--month", nth_month(MONTHS))
    wh = fresh_copy(world.landed_warehouse(MONTHS - 1, progress), work)
    return pci_command("land", "--landing", str(world.landing), "--warehouse", str(wh),
                       "--month", nth_month(MONTHS))


def case_new_month(world: World, work: Path, progress, month_no: int = MONTHS, first: int = 1) -> list[str]:
    """``pci run`` of month ``month_no`` on the warehouse of months ``first`` … ``month_no - 1``
    (the one before run): only those months and the new one are in its landing folder."""
    ran = (world.ran_warehouse(month_no - 1, progress) if first == 1
           else world.ran_window(first, month_no - 1, progress))
    wh = fresh_folder_copy(ran, work)
    landing = work / "landing"
    link_months(world.landing, landing, range(first, month_no + 1))
    return pci_command("run", *engine_args(world.engine), "--landing", str(landing), "--warehouse", str(wh),
                       "--month", nth_month(month_no))


#: the history of ``new_month_h12``: the 12 months before the last one
H12_FIRST = MONTHS - 12


def case_new_month_h12(world: World, work: Path, progress) -> list[str]:
    """The last month, as ``new_month``, on a warehouse holding only the 12 months before
    it (month 25 run): the same export as ``new_month`` with half its history."""
    return case_new_month(world, work, progress, MONTHS, first=H12_FIRST)


def case_new_month_13(world: World, work: Path, progress) -> list[str]:
    return case_new_month(world, work, progress, 13)


def case_backfill_14(world: World, work: Path, progress) -> list[str]:
    wh = fresh_copy(world.landed_warehouse(MONTHS, progress), work)
    return pci_command("run", "--landing", str(world.landing), "--warehouse", str(wh),
                       "--month", nth_month(MONTHS - 13), "--through", nth_month(MONTHS))


def case_first_backfill(world: World, work: Path, progress) -> list[str]:
    """A new user's first run: an empty warehouse, every month of the landing landed,
    the last 14 scored (one ``pci run``)."""
    return pci_command("run", "--landing", str(world.landing), "--warehouse", str(work / "pci.duckdb"),
                       "--month", nth_month(MONTHS - 13), "--through", nth_month(MONTHS))


FIXED_ROWS = {  # one partner, one tenant, one of everything
    "partners": [["P1", "Fixed Cost Partner", "SE"]],
    "tenants": [["T1", "Fixed Cost Tenant", "true"]],
    "products": [["D365_SALES", "Dynamics 365 Sales"]],
    "subscriptions": [["S1", "T1", "D365_SALES", "CSP", "true", ""]],
    "partner_associations": [["A1", "P1", "S1", "CSP", "", "{first}", ""]],
    "partner_people": [["U1", "P1", "{first}", ""]],
    "exam_passes": [["U1", "MB-800", "{first}", ""]],
    "billing_lines": [["L1", "{first}", "S1", "CHARGE", "100.00"]],
    "seat_snapshots": [["S1", "3"]],
    "mau_snapshots": [["S1", "6"]],
}


def _fixed_landing(world: World) -> Path:
    """An export of 1 partner and 1 tenant for the last two months of the world:
    the fixed cost of the stack."""
    import csv

    from pci.land.files import sha256_file

    one = world.cache / "fixed" / "landing"
    for month in (nth_month(MONTHS - 1), nth_month(MONTHS)):
        folder = one / month
        if (folder / MANIFEST).exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for f in FILES:
            path = folder / f.filename
            with open(path, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh, lineterminator="\n")
                w.writerow(f.column_names)
                rows = [[v.format(first=month + "-01") for v in r] for r in FIXED_ROWS[f.name]]
                w.writerows(rows)
            files[f.filename] = {"rows": len(rows), "sha256": sha256_file(path)}
        (folder / MANIFEST).write_text(json.dumps({"export_month": month, "files": files}) + "\n")
    return one


def case_fixed_cost(world: World, work: Path, progress) -> list[str]:
    one = _fixed_landing(world)
    prepared = world.cache / "fixed" if world.engine == "duckdb" else world.cache / "fixed" / world.engine
    ran = prepare_ran(prepared / f"ran_{MONTHS - 1:02d}", lambda: None, one,
                      nth_month(MONTHS - 1), progress, at=work, engine=world.engine)
    wh = fresh_folder_copy(ran, work)
    return pci_command("run", *engine_args(world.engine), "--landing", str(one), "--warehouse", str(wh),
                       "--month", nth_month(MONTHS))


def case_fixed_cost_cold(world: World, work: Path, progress) -> list[str]:
    one = _fixed_landing(world)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return pci_command("run", "--landing", str(one), "--warehouse", str(work / "pci.duckdb"),
                       "--month", nth_month(MONTHS))


def case_fixed_land(world: World, work: Path, progress) -> list[str]:
    one = _fixed_landing(world)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return pci_command("land", "--landing", str(one), "--warehouse", str(work / "pci.duckdb"),
                       "--month", nth_month(MONTHS))


# in an order that prepares each landed warehouse from the previous one
CASES = {
    "csv_floor": lambda w, work, progress: case_csv_floor(w, work),
    "fixed_land": case_fixed_land,
    "fixed_cost": case_fixed_cost,
    "fixed_cost_cold": case_fixed_cost_cold,
    "new_month_13": case_new_month_13,
    "land_month": case_land_month,
    "new_month": case_new_month,
    "new_month_h12": case_new_month_h12,
    "backfill_14": case_backfill_14,
    "first_backfill": case_first_backfill,
}

#: the cases measured with ``--engine spark``: the reference of the same run
#: (``csv_floor``, engine-free), the stack's fixed cost, and a new month with 12 and
#: with 25 months of history (every one a ``pci run --engine spark``, landing included);
#: ``land_month``: the last month landed into a new Spark warehouse (``pci land --engine spark``)
SPARK_CASES = ("csv_floor", "fixed_cost", "new_month_13", "new_month", "land_month")
