"""`python -m pci bench`: the benchmark (outside the test suite).

It generates a world once per scale (cached under ``bench/cache/<scale>``),
prepares warehouses once (cached too), and then measures, each ``--runs``
times on a fresh copy of the prepared warehouse, every case as a separate
process (``python -m pci …``), sampling the memory of the whole process tree.

A month-end run finds the warehouse as the previous month's run left it: its
private Airflow home (metadata DB migrated), its dbt target folder and the
record of the dbt unit tests having passed on this project. The end-to-end
cases therefore start from a copy of the whole warehouse folder after a real
``pci run`` of the month before (``ran_NN``); ``fixed_cost_cold`` shows what the
very first run on an empty folder pays on top.

* ``csv_floor``: DuckDB reading all ten CSV files of the last month once,
  typed as landing reads them, into in-memory tables: the floor for landing;
* ``land_month``: ``pci land`` of the last month, the 25 months before it landed;
* ``new_month``: ``pci run`` of the last month end to end through the DAG's
  tasks (land, build, validate, publish), the 25 months before it landed and
  month 25 run and published;
* ``new_month_13``: the same for month 13, with 12 months landed before it and
  month 12 run (the cost of a month must grow with the data, not with the history);
* ``new_month_h12``: ``new_month``'s export on a warehouse holding only the 12
  months before it (month 25 run): history alone, where ``new_month_13``'s export
  is a smaller one (the generated world grows: month 13 has 70 % of month 26's
  tenants);
* ``backfill_14``: ``pci run`` of the last 14 months in one command, all 26
  months landed and nothing run yet (a first backfill: it pays the cold start);
* ``first_backfill``: a new user's first ``pci run`` of the last 14 months on an
  empty warehouse: it lands all 26 months, then scores 14;
* ``fixed_cost``: an export of 1 partner and 1 tenant through the same path as
  ``new_month`` (month 25 of it run before): the fixed cost of the stack;
* ``fixed_cost_cold``: the same month on an empty warehouse folder (Airflow's
  metadata DB migrated, dbt's full parse, the unit tests run);
* ``fixed_land``: the 1-partner month through ``pci land``: the fixed cost of landing
  (imports, the Great Expectations context), subtracted in one of the ratios.

``--engine spark`` measures the same commands with ``pci run --engine spark`` on a
local Spark session (:data:`~.cases.SPARK_CASES`: ``csv_floor``, the reference
measured in the same run, ``fixed_cost``, ``new_month_13`` and ``new_month``; and
``land_month``, ``pci land --engine spark`` of the last month into a new Spark
warehouse folder: the export read and checked by Spark);
its prepared warehouses are Spark warehouse folders under ``bench/cache/<scale>/spark``
(each made by a ``pci run --engine spark`` that lands the months itself).

Results: medians with minimum and maximum, written to ``bench/results.json``
(all scales measured so far; a scale's Spark figures under its ``spark`` key) and
as a Markdown table into ``docs/benchmark.md``, with the machine's cores and
memory; the Spark figures stand beside DuckDB's in the same table.

Modules (each imports only those listed before it):

* :mod:`.measure` - :class:`Sample`, a command measured as a separate process
  (peak memory of its process tree), the unmeasured setup steps;
* :mod:`.world` - the scales, the cached world and prepared warehouses
  (:class:`World`, :func:`prepare_ran`), the fresh copies of a run;
* :mod:`.cases` - the ``case_*`` functions, the fixed landing, :data:`CASES`;
* :mod:`.results` - summary, merge, machine, ratios, targets and verdicts, the
  Markdown of ``docs/benchmark.md``;
* this module - ``configure(parser)`` / ``command(args)``.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from .cases import CASES, SPARK_CASES
from .measure import measure
from .results import DOC, RESULTS, machine, merge_cases, ratios, render_markdown, summarize
from .world import CACHE_DIR, MONTHS, SCALES, World


def configure(parser) -> None:
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                        help="the engine of the measured runs (spark: " + ", ".join(SPARK_CASES) + ")")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", default="all",
                        help="comma-separated subset of: " + ", ".join(CASES)
                             + " (the scale's other cases keep their earlier results)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the Markdown table")
    parser.add_argument("--doc", type=Path, default=DOC, help="where to write the Markdown table")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the results JSON")
    parser.add_argument("--cache", type=Path, default=CACHE_DIR, help="where generated worlds are kept")

def command(args) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    engine = getattr(args, "engine", "duckdb")
    world = World(args.scale, args.cache, engine)
    offered = list(CASES) if engine == "duckdb" else list(SPARK_CASES)
    names = offered if args.cases == "all" else [c.strip() for c in args.cases.split(",")]
    unknown = [n for n in names if n not in offered]
    if unknown:
        console.print(f"[red]unknown case(s): {', '.join(unknown)}[/red]")
        return 2

    def progress(msg: str) -> None:
        console.print(f"[dim]{msg}[/dim]")

    world.generate(progress)
    cases: dict[str, dict] = {}
    work = world.dir / "work"
    for name in names:
        samples = []
        for run in range(args.runs):
            cmd = CASES[name](world, work, progress)
            progress(f"{name}: run {run + 1}/{args.runs}")
            samples.append(measure(cmd))
        cases[name] = summarize(samples)
        console.print(f"{name}: median {cases[name]['median_s']:.2f} s "
                      f"(min {cases[name]['min_s']:.2f}, max {cases[name]['max_s']:.2f}), "
                      f"peak {cases[name]['max_peak_rss_mib']:.0f} MiB")
    shutil.rmtree(work, ignore_errors=True)

    results_path = args.results
    results = json.loads(results_path.read_text()) if results_path.exists() else {"scales": {}}
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for c in cases.values():
        c["measured_at"] = now
    # a run of some cases keeps the other cases of the scale measured before
    # (each case says when it was measured and how many runs it had)
    scale = results["scales"].get(args.scale, {})
    if engine == "duckdb":
        previous = scale.get("cases", {}) if args.cases != "all" else {}
        merged = merge_cases(previous, cases)
        results["scales"][args.scale] = {
            **scale, "partners": world.partners, "tenants": world.tenants, "months": MONTHS,
            "runs": args.runs, "measured_at": now,
            # a ratio not computable from this run's cases keeps the value of the run it was
            # computed in (a ratio is of cases measured in the same run, tools/bench/results.py)
            "machine": machine(), "cases": merged, "ratios": {**scale.get("ratios", {}), **ratios(merged)},
        }
    else:  # beside the scale's DuckDB figures, which stay as they are
        previous = scale.get(engine, {}).get("cases", {}) if args.cases != "all" else {}
        merged = merge_cases(previous, cases)
        results["scales"][args.scale] = {
            "partners": world.partners, "tenants": world.tenants, "months": MONTHS,
            "runs": args.runs, "measured_at": now, "machine": machine(), "cases": {},
            **scale,
            # the DuckDB ratios as this version computes them from the DuckDB cases
            "ratios": {**scale.get("ratios", {}), **ratios(scale.get("cases", {}))},
            engine: {"runs": args.runs, "measured_at": now, "machine": machine(), "cases": merged,
                     "ratios": {**scale.get(engine, {}).get("ratios", {}), **ratios(merged)}},
        }
    shown = results["scales"][args.scale]
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    if not args.no_docs:
        args.doc.parent.mkdir(parents=True, exist_ok=True)
        args.doc.write_text(render_markdown(results))
    console.print(json.dumps(shown[engine]["ratios"] if engine != "duckdb" else shown["ratios"], indent=2))
    return 0
