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
* ``backfill_14``: ``pci run`` of the last 14 months in one command, all 26
  months landed and nothing run yet (a first backfill: it pays the cold start);
* ``fixed_cost``: an export of 1 partner and 1 tenant through the same path as
  ``new_month`` (month 25 of it run before): the fixed cost of the stack;
* ``fixed_cost_cold``: the same month on an empty warehouse folder (Airflow's
  metadata DB migrated, dbt's full parse, the unit tests run);
* ``fixed_land``: the 1-partner month through ``pci land``: the fixed cost of landing
  (imports, the Great Expectations context), subtracted in one of the ratios.

Results: medians with minimum and maximum, written to ``bench/results.json``
(all scales measured so far) and as a Markdown table into
``docs/benchmark.md``, with the machine's cores and memory.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pci.contract import FILES, MANIFEST, add_months, format_month, parse_month

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
CACHE_DIR = BENCH_DIR / "cache"
RESULTS = BENCH_DIR / "results.json"
DOC = ROOT / "docs" / "benchmark.md"

FIRST = "2020-07"
MONTHS = 26
SEED = 20211

SCALES = {
    "small": (100, 5_000),
    "medium": (2_000, 100_000),
    "large": (20_000, 1_000_000),
}

TARGETS = {  # scale -> case -> (seconds, GiB); from the project's performance goals
    "medium": {"new_month": (30, 3), "backfill_14": (120, 3), "land_month": (None, 3)},
    "large": {"new_month": (600, 16)},
}


def configure(parser) -> None:
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", default="all",
                        help="comma-separated subset of: " + ", ".join(CASES)
                             + " (the scale's other cases keep their earlier results)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the Markdown table")
    parser.add_argument("--doc", type=Path, default=DOC, help="where to write the Markdown table")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the results JSON")
    parser.add_argument("--cache", type=Path, default=CACHE_DIR, help="where generated worlds are kept")

RATIO_TARGETS = {  # scale -> ratio -> upper bound; the ratio targets are set at medium
    "medium": {
        "land_month / csv_floor": 3.0,
        "(land_month - fixed_land) / csv_floor": 3.0,
        "new_month (25 landed) / new_month_13 (12 landed)": 1.15,
    },
}


@dataclass
class Sample:
    seconds: float
    peak_rss_bytes: int


def _py(*args: str) -> list[str]:
    return [sys.executable, "-m", "pci", *args]


def measure(cmd: list[str], *, env: dict | None = None, cwd: Path = ROOT) -> Sample:
    """Run cmd; wall time and peak RSS summed over the whole process tree."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [ps, *ps.children(recursive=True)]
            rss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark step failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-4000:]}")
    return Sample(seconds, peak)


def _run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"benchmark setup failed: {' '.join(cmd)}\n{res.stderr[-4000:]}")


def _month(i: int) -> str:
    """The i-th month of the world, 1-based."""
    return format_month(add_months(parse_month(FIRST), i - 1))


class World:
    def __init__(self, scale: str, cache: Path = CACHE_DIR):
        self.scale = scale
        self.cache = cache
        self.partners, self.tenants = SCALES[scale]
        self.dir = cache / scale
        self.landing = self.dir / "landing"

    def generate(self, progress) -> None:
        done = self.dir / ".generated"
        if done.exists():
            return
        progress(f"generating the {self.scale} world ({self.partners} partners, {self.tenants} tenants, {MONTHS} months)")
        shutil.rmtree(self.landing, ignore_errors=True)
        _run(_py("generate", "--out", str(self.landing), "--first", FIRST, "--months", str(MONTHS),
                 "--partners", str(self.partners), "--tenants", str(self.tenants), "--seed", str(SEED)))
        done.write_text("ok\n")

    def landed_warehouse(self, through: int, progress) -> Path:
        """A warehouse with months 1..through landed (cached)."""
        wh = self.dir / f"landed_{through:02d}" / "pci.duckdb"
        if (wh.parent / ".ready").exists():
            return wh
        shutil.rmtree(wh.parent, ignore_errors=True)
        wh.parent.mkdir(parents=True)
        # continue from the largest prepared warehouse with fewer months, if any
        start = 1
        for k in range(through - 1, 0, -1):
            prev = self.dir / f"landed_{k:02d}"
            if (prev / ".ready").exists():
                shutil.copy2(prev / "pci.duckdb", wh)
                start = k + 1
                break
        for i in range(start, through + 1):
            progress(f"preparing: landing {_month(i)} into a {through}-month warehouse")
            _run(_py("land", "--landing", str(self.landing), "--warehouse", str(wh), "--month", _month(i)))
        (wh.parent / ".ready").write_text("ok\n")
        return wh

    def ran_warehouse(self, through: int, progress) -> Path:
        """The warehouse of months 1..through after a ``pci run`` of month ``through``
        (cached): the state a month-end run finds, sidecar folders included."""
        return _ran(self.dir / f"ran_{through:02d}",
                    lambda: self.landed_warehouse(through, progress), self.landing,
                    _month(through), progress)


def _ran(folder: Path, landed, landing: Path, month: str, progress) -> Path:
    """Prepare (once per version of the dbt project) ``folder`` by a ``pci run`` of
    ``month`` on a copy of ``landed()`` (None: an empty warehouse)."""
    from pci.scoring import project_fingerprint

    wh = folder / "pci.duckdb"
    stamp = f"project {project_fingerprint()}\n"
    if (folder / ".ready").exists() and (folder / ".ready").read_text() == stamp:
        return wh
    src = landed()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if src is not None:
        shutil.copy2(src, wh)
    progress(f"preparing: pci run of {month} in {folder.name}")
    _run(_py("run", "--landing", str(landing), "--warehouse", str(wh), "--month", month, "--quiet"))
    # the unit tests ran and passed on this project: the measured runs skip them, as
    # a month-end run after the first one does; a changed project prepares anew
    (folder / ".ready").write_text(stamp)
    return wh


def _fresh_folder_copy(src_wh: Path, work: Path) -> Path:
    """A copy of the warehouse's whole folder (its sidecar folders included)."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src_wh.parent, work, symlinks=True,
                    ignore=shutil.ignore_patterns(".ready", "*.lock"))
    return work / src_wh.name


def _fresh_copy(src: Path, work: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    dst = work / src.name
    shutil.copy2(src, dst)
    return dst


def case_csv_floor(world: World, work: Path) -> list[str]:
    folder = world.landing / _month(MONTHS)
    reads = []
    for f in FILES:
        cols = ", ".join(f"'{c.name}': '{c.duckdb_type}'" for c in f.columns)
        reads.append(f"CREATE TABLE {f.name} AS SELECT * FROM read_csv('{folder / f.filename}', "
                     f"header=true, auto_detect=false, columns={{{cols}}}, dateformat='%Y-%m-%d')")
    script = "import duckdb\ncon = duckdb.connect()\n" + "".join(
        f"con.execute({q!r}).fetchall()\n" for q in reads)
    return [sys.executable, "-c", script]


def case_land_month(world: World, work: Path, progress) -> list[str]:
    wh = _fresh_copy(world.landed_warehouse(MONTHS - 1, progress), work)
    return _py("land", "--landing", str(world.landing), "--warehouse", str(wh), "--month", _month(MONTHS))


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)


def case_new_month(world: World, work: Path, progress, month_no: int = MONTHS) -> list[str]:
    wh = _fresh_folder_copy(world.ran_warehouse(month_no - 1, progress), work)
    landing = work / "landing"  # only the months up to month_no are visible
    landing.mkdir()
    for i in range(1, month_no + 1):  # hard links: the files are in this landing folder (a
        # symbolic link out of it is refused, raw-exports.md), and nothing is copied
        shutil.copytree(world.landing / _month(i), landing / _month(i), copy_function=_link_or_copy)
    return _py("run", "--landing", str(landing), "--warehouse", str(wh), "--month", _month(month_no))


def case_new_month_13(world: World, work: Path, progress) -> list[str]:
    return case_new_month(world, work, progress, 13)


def case_backfill_14(world: World, work: Path, progress) -> list[str]:
    wh = _fresh_copy(world.landed_warehouse(MONTHS, progress), work)
    return _py("run", "--landing", str(world.landing), "--warehouse", str(wh),
               "--month", _month(MONTHS - 13), "--through", _month(MONTHS))


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

    from pci.validation import sha256_file

    one = world.cache / "fixed" / "landing"
    for month in (_month(MONTHS - 1), _month(MONTHS)):
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
    ran = _ran(world.cache / "fixed" / f"ran_{MONTHS - 1:02d}", lambda: None, one,
               _month(MONTHS - 1), progress)
    wh = _fresh_folder_copy(ran, work)
    return _py("run", "--landing", str(one), "--warehouse", str(wh), "--month", _month(MONTHS))


def case_fixed_cost_cold(world: World, work: Path, progress) -> list[str]:
    one = _fixed_landing(world)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return _py("run", "--landing", str(one), "--warehouse", str(work / "pci.duckdb"), "--month", _month(MONTHS))


def case_fixed_land(world: World, work: Path, progress) -> list[str]:
    one = _fixed_landing(world)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return _py("land", "--landing", str(one), "--warehouse", str(work / "pci.duckdb"), "--month", _month(MONTHS))


# in an order that prepares each landed warehouse from the previous one
CASES = {
    "csv_floor": lambda w, work, progress: case_csv_floor(w, work),
    "fixed_land": case_fixed_land,
    "fixed_cost": case_fixed_cost,
    "fixed_cost_cold": case_fixed_cost_cold,
    "new_month_13": case_new_month_13,
    "land_month": case_land_month,
    "new_month": case_new_month,
    "backfill_14": case_backfill_14,
}


def merge_cases(previous: dict, measured: dict) -> dict:
    """The cases measured now, and those measured before that were not measured now,
    in the order of CASES."""
    return {name: measured.get(name) or previous[name] for name in CASES
            if name in measured or name in previous}


def summarize(samples: list[Sample]) -> dict:
    secs = [s.seconds for s in samples]
    mem = [s.peak_rss_bytes for s in samples]
    return {
        "runs": len(samples),
        "median_s": round(statistics.median(secs), 3),
        "min_s": round(min(secs), 3),
        "max_s": round(max(secs), 3),
        "median_peak_rss_mib": round(statistics.median(mem) / 2**20, 1),
        "max_peak_rss_mib": round(max(mem) / 2**20, 1),
    }


def machine() -> dict:
    import psutil

    return {"cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def ratios(cases: dict) -> dict:
    def med(name):
        return cases.get(name, {}).get("median_s")

    out = {}
    if med("land_month") and med("csv_floor"):
        out["land_month / csv_floor"] = round(med("land_month") / med("csv_floor"), 2)
        if med("fixed_land"):
            # the data-dependent part of landing: without the stack's start-up (imports, GX context)
            out["(land_month - fixed_land) / csv_floor"] = round(
                (med("land_month") - med("fixed_land")) / med("csv_floor"), 2)
    if med("new_month") and med("new_month_13"):
        out["new_month (25 landed) / new_month_13 (12 landed)"] = round(med("new_month") / med("new_month_13"), 3)
    if med("new_month") and med("fixed_cost"):
        out["new_month / fixed_cost"] = round(med("new_month") / med("fixed_cost"), 2)
    if med("backfill_14") and med("new_month"):
        out["backfill_14 / new_month"] = round(med("backfill_14") / med("new_month"), 2)
    return out


def target_verdict(scale: str, case: str, c: dict) -> str:
    target = TARGETS.get(scale, {}).get(case)
    if not target:
        return ""
    seconds, gib = target
    ok_time = seconds is None or c["median_s"] <= seconds
    ok_mem = c["max_peak_rss_mib"] <= gib * 1024
    wanted = " and ".join(x for x in (f"≤ {seconds} s" if seconds else "", f"≤ {gib} GiB") if x)
    return f"{wanted}: {'met' if ok_time and ok_mem else 'MISSED'}"


def render_markdown(results: dict) -> str:
    lines = ["# Benchmark", "",
             "Produced by `python -m pci bench --scale SCALE --runs N` (or `make bench`); "
             "each figure is the median of N runs (min–max), wall time and peak memory of the "
             "whole process tree. Raw figures: `bench/results.json`.", ""]
    for scale, res in results.get("scales", {}).items():
        m = res["machine"]
        lines += [f"## {scale}: {res['partners']:,} partners, {res['tenants']:,} tenants, {MONTHS} months", "",
                  f"Machine: {m['cores']} cores, {m['memory_gib']} GiB; last measured {res['measured_at']}.", "",
                  "| case | runs | median s | min–max s | peak memory MiB (median / max) | target |",
                  "|---|---:|---:|---:|---:|---|"]
        for name, c in res["cases"].items():
            lines.append(f"| {name} | {c['runs']} | {c['median_s']:.2f} | {c['min_s']:.2f}–{c['max_s']:.2f} | "
                         f"{c['median_peak_rss_mib']:.0f} / {c['max_peak_rss_mib']:.0f} | "
                         f"{target_verdict(scale, name, c)} |")
        if res.get("ratios"):
            lines += ["", "| ratio | value | target |", "|---|---:|---|"]
            for k, v in res["ratios"].items():
                limit = RATIO_TARGETS.get(scale, {}).get(k)
                verdict = f"≤ {limit}: {'met' if v <= limit else 'MISSED'}" if limit else ""
                lines.append(f"| {k} | {v} | {verdict} |")
        lines.append("")
    return "\n".join(lines)


def command(args) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    world = World(args.scale, args.cache)
    names = list(CASES) if args.cases == "all" else [c.strip() for c in args.cases.split(",")]
    unknown = [n for n in names if n not in CASES]
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
    previous = results["scales"].get(args.scale, {}).get("cases", {}) if args.cases != "all" else {}
    merged = merge_cases(previous, cases)
    results["scales"][args.scale] = {
        "partners": world.partners, "tenants": world.tenants, "months": MONTHS,
        "runs": args.runs, "measured_at": now,
        "machine": machine(), "cases": merged, "ratios": ratios(merged),
    }
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    if not args.no_docs:
        args.doc.parent.mkdir(parents=True, exist_ok=True)
        args.doc.write_text(render_markdown(results))
    console.print(json.dumps(results["scales"][args.scale]["ratios"], indent=2))
    return 0
