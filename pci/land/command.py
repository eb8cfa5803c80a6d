"""`python -m pci land`: validate one export month and load it into the warehouse,
on DuckDB (:mod:`pci.land.landing`) or on Spark (:mod:`pci.land.spark_landing`).
Exit status: 0 landed (or already landed), 1 refused, 3 not ready, 4 busy, 2 usage."""
from __future__ import annotations

import sys
from pathlib import Path

from pci.core.contract import format_month, parse_month
from pci.core.errors import (EXIT_BUSY, EXIT_NOT_READY, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, PipelineFault,
                             WarehouseBusy)
from pci.core.faults import classify
from pci.core.terminal import for_terminal
from pci.core.warehouse import ENGINES
from pci.land import expectations, landing, spark_landing


def configure(parser) -> None:
    parser.add_argument("--landing", required=True, type=Path,
                        help="the landing folder (holding one YYYY-MM folder per export)")
    parser.add_argument("--warehouse", required=True, type=Path,
                        help="the warehouse: a DuckDB file, or a folder with --engine spark")
    parser.add_argument("--engine", choices=ENGINES, default="duckdb",
                        help="the warehouse's engine (default duckdb); spark: read and checked by "
                             "Spark (docs/scale-out.md)")
    parser.add_argument("--month", required=True, help="the export month, YYYY-MM")
    parser.add_argument("--wait", action="store_true",
                        help="wait for a warehouse held by another run instead of failing")


def command(args) -> int:
    err = sys.stderr
    try:
        month = parse_month(args.month)
    except ValueError as exc:
        print(f"pci land: {exc}", file=err)
        return EXIT_USAGE
    try:
        land = spark_landing.land_month if args.engine == "spark" else landing.land_month
        res = land(args.landing, args.warehouse, month, wait=args.wait)
    except landing.NotReady as exc:
        print(f"pci land: {exc}", file=err)
        return EXIT_NOT_READY
    except landing.ValidationFailed as exc:
        print(exc.report.format_text(), file=err)
        if exc.report_path:
            print(f"report: {exc.report_path}", file=err)
        print(f"pci land: export {format_month(month)} refused; nothing was loaded", file=err)
        return EXIT_REFUSED
    except WarehouseBusy as exc:
        print(f"pci land: {exc}", file=err)
        return EXIT_BUSY
    except expectations.SuiteError as exc:
        print(f"pci land: {exc}", file=err)
        return EXIT_REFUSED
    except Exception as exc:  # noqa: BLE001 - a fault of the machine or of the warehouse file
        fault = exc if isinstance(exc, PipelineFault) else classify(exc, args.warehouse)
        if fault is None:
            raise
        print(f"pci land: {for_terminal(fault)}", file=err)
        return EXIT_BUSY if isinstance(fault, WarehouseBusy) else fault.exit_status
    for w in res.warnings:
        print(f"warning: {w}", file=err)
    if res.already_landed:
        print(f"export {format_month(month)}: already landed with this manifest "
              f"(load {res.load_id}); nothing to do")
    else:
        total = sum(res.rows.values())
        what = f"replaced load {res.replaced_load_id}" if res.replaced_load_id else "first load"
        print(f"export {format_month(month)}: landed {total} rows from {len(res.rows)} files "
              f"as load {res.load_id} ({what})")
    return EXIT_OK
