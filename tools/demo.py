"""`python -m pci demo` (what `make run` runs).

1. Writes the generated sample landing to ``data/landing`` (generator defaults)
   unless that folder already holds export months.
2. Runs the latest three export months through the pci_monthly DAG's tasks
   (the same path as ``python -m pci run``) into ``data/warehouse/pci.duckdb``.
3. Prints the latest month's scores as a table: partner, the six points, the
   PCI score and the competency level (names and ids as rich ``Text`` through
   :func:`pci.core.terminal.for_terminal`: no escape sequence or markup of the data acts).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pci.core.contract import MONTH_RE, add_months, format_month, parse_month
from pci.core.errors import EXIT_BUSY, WarehouseBusy
from pci.core.locking import WarehouseLock
from pci.core.project import PROJECT_DIR
from pci.core.terminal import for_terminal

ROOT = PROJECT_DIR
POINTS = (("points_net_new_revenue", "revenue"), ("points_net_customer_adds", "cust. adds"),
          ("points_functional_consultants", "consultants"), ("points_developers", "developers"),
          ("points_new_deployments", "deployments"), ("points_mau_growth", "MAU growth"))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--landing", type=Path, default=ROOT / "data" / "landing")
    parser.add_argument("--warehouse", type=Path, default=ROOT / "data" / "warehouse" / "pci.duckdb")
    parser.add_argument("--months", type=int, default=3, help="how many of the latest months to run")
    parser.add_argument("--wait", action="store_true", help="wait for a run holding the warehouse")


def _export_months(landing: Path) -> list:
    if not landing.is_dir():
        return []
    return sorted(parse_month(p.name) for p in landing.iterdir()
                  if p.is_dir() and MONTH_RE.match(p.name) and (p / "_manifest.json").is_file())


def scores_table(warehouse: Path, month):
    """The rich Table of one published month (read-only)."""
    import duckdb
    from rich.table import Table
    from rich.text import Text

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cols = ", ".join(c for c, _ in POINTS)
        rows = con.execute(
            f"""SELECT s.partner_id, coalesce(p.partner_name, ''), {cols}, s.pci_score, s.competency_level
                FROM main.pci_monthly_scores s
                LEFT JOIN raw.partners p ON p.partner_id = s.partner_id AND p.export_month = s.score_month
                WHERE s.score_month = ? ORDER BY s.pci_score DESC, s.partner_id""", [month]).fetchall()
    finally:
        con.close()
    table = Table(title=f"PCI scores {format_month(month)} ({len(rows)} partners)")
    table.add_column("partner", no_wrap=True)
    table.add_column("name", no_wrap=True, overflow="ellipsis", max_width=28)
    for _, label in POINTS:
        table.add_column(label, justify="right")
    table.add_column("score", justify="right", style="bold")
    table.add_column("level")
    style = {"gold": "bold yellow", "silver": "bold white", "none": "dim"}
    for pid, name, *pts, score, level in rows:
        table.add_row(Text(for_terminal(pid)), Text(for_terminal(name)),
                      *(f"{p:.2f}" for p in pts), f"{score:.2f}",
                      Text(for_terminal(level), style=style.get(level, "")))
    return table


def command(args) -> int:
    from rich.console import Console

    from pci.orchestrate import runner
    from pci.orchestrate import tasks as pipeline

    runner.quiet_libraries()
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)
    landing, warehouse = args.landing.resolve(), args.warehouse.resolve()
    if not _export_months(landing):
        from tools.generate import DEFAULTS, generate

        console.print(f"writing the sample landing to {landing} …")
        first = DEFAULTS["first"]
        generate(landing, parse_month(first) if isinstance(first, str) else first, DEFAULTS["months"],
                 DEFAULTS["partners"], DEFAULTS["tenants"], DEFAULTS["seed"])
    months = _export_months(landing)
    last = months[-1]
    first = max(months[0], add_months(last, -(max(args.months, 1) - 1)))
    os.environ["PCI_WAREHOUSE"] = str(warehouse)
    os.environ["PCI_LANDING"] = str(landing)
    console.print(f"running {format_month(first)} … {format_month(last)} through the pci_monthly DAG "
                  f"into {warehouse}")
    try:
        with WarehouseLock(warehouse, wait=args.wait):
            status = runner.run_range(pipeline.Paths(landing, warehouse), first, last,
                                        console=console)
    except WarehouseBusy as exc:
        print(f"error: {for_terminal(exc)}", file=sys.stderr)
        return EXIT_BUSY
    if status != 0:
        return status
    console.print(scores_table(warehouse, last))
    return 0
