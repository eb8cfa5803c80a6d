"""From samples to results: the summary of a case's runs, the merge with the
cases measured before, the machine, the ratios, the targets and their verdicts,
and the Markdown of ``docs/benchmark.md``."""
from __future__ import annotations

import os
import platform
import statistics

from .cases import CASES
from .measure import ROOT, Sample
from .world import BENCH_DIR, MONTHS

RESULTS = BENCH_DIR / "results.json"
DOC = ROOT / "docs" / "benchmark.md"

TARGETS = {  # scale -> case -> (seconds, GiB); from the project's performance goals
    "medium": {"new_month": (15, 3), "backfill_14": (40, 3), "fixed_cost": (10, None),
               "first_backfill": (45, None), "land_month": (None, 3)},
    "large": {"new_month": (45, 4), "backfill_14": (150, None), "land_month": (None, 1)},
}

RATIO_TARGETS = {  # scale -> ratio -> upper bound
    "medium": {
        "(land_month - fixed_land) / csv_floor": 5.0,
        "new_month (25 landed) / new_month_13 (12 landed)": 1.10,
    },
    "large": {
        "(land_month - fixed_land) / csv_floor": 5.0,
        "new_month (25 landed) / new_month_13 (12 landed)": 1.10,
        "new_month (25 landed) / new_month_h12 (the same month, 12 landed)": 1.10,
    },
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
    """The ratios of the cases' medians; only of cases measured in the same run (the same
    ``measured_at``): the machine's load changes between runs, a ratio within one does not."""
    def med(name, *others):
        """The median of ``name``; None when one of ``others`` was measured in another run."""
        if any(cases.get(o, {}).get("measured_at") != cases.get(name, {}).get("measured_at")
               for o in others):
            return None
        return cases.get(name, {}).get("median_s")

    out = {}
    if med("land_month", "csv_floor") and med("csv_floor"):
        out["land_month / csv_floor"] = round(med("land_month") / med("csv_floor"), 2)
        if med("fixed_land", "land_month"):
            # the data-dependent part of landing: without the stack's start-up (imports, GX context)
            out["(land_month - fixed_land) / csv_floor"] = round(
                (med("land_month") - med("fixed_land")) / med("csv_floor"), 2)
    if med("new_month", "new_month_13") and med("new_month_13"):
        out["new_month (25 landed) / new_month_13 (12 landed)"] = round(med("new_month") / med("new_month_13"), 3)
    if med("new_month", "new_month_h12") and med("new_month_h12"):
        # history alone: the same export, with 25 or 12 months before it
        out["new_month (25 landed) / new_month_h12 (the same month, 12 landed)"] = round(
            med("new_month") / med("new_month_h12"), 3)
    if med("new_month", "csv_floor") and med("csv_floor"):
        # against the reference of the same run: comparable across engines and runs
        out["new_month / csv_floor"] = round(med("new_month") / med("csv_floor"), 1)
    if med("new_month", "fixed_cost") and med("fixed_cost"):
        out["new_month / fixed_cost"] = round(med("new_month") / med("fixed_cost"), 2)
    if med("backfill_14", "new_month") and med("new_month"):
        out["backfill_14 / new_month"] = round(med("backfill_14") / med("new_month"), 2)
    return out


def _when(engine_results: dict, label: str) -> str:
    """When ``engine_results``' cases were measured: one time, or each run's cases."""
    runs: dict[str, list[str]] = {}
    for name, c in engine_results.get("cases", {}).items():
        runs.setdefault(c.get("measured_at") or engine_results["measured_at"], []).append(name)
    if len(runs) <= 1:
        return f"{label} {engine_results['measured_at']}"
    return f"{label} " + "; ".join(f"{at} ({', '.join(names)})" for at, names in sorted(runs.items(), reverse=True))


def target_verdict(scale: str, case: str, c: dict) -> str:
    target = TARGETS.get(scale, {}).get(case)
    if not target:
        return ""
    seconds, gib = target
    ok_time = seconds is None or c["median_s"] <= seconds
    ok_mem = gib is None or c["max_peak_rss_mib"] <= gib * 1024
    wanted = " and ".join(x for x in (f"≤ {seconds} s" if seconds else "", f"≤ {gib} GiB" if gib else "") if x)
    return f"{wanted}: {'met' if ok_time and ok_mem else 'MISSED'}"


def _spark_cells(spark_case: dict | None, duck_case: dict | None) -> str:
    """The Spark columns of a case's row: median, min–max, peak memory, Spark / DuckDB."""
    if not spark_case:
        return " | | | |"
    c = spark_case
    ratio = (f"{c['median_s'] / duck_case['median_s']:.2f}"
             if duck_case and duck_case.get("median_s") else "")
    return (f" {c['median_s']:.2f} | {c['min_s']:.2f}–{c['max_s']:.2f} | "
            f"{c['median_peak_rss_mib']:.0f} / {c['max_peak_rss_mib']:.0f} | {ratio} |")


def render_markdown(results: dict) -> str:
    lines = ["# Benchmark", "",
             "Produced by `python -m pci bench --scale SCALE --runs N` (or `make bench`); "
             "each figure is the median of N runs (min–max), wall time and peak memory of the "
             "whole process tree. Raw figures: `bench/results.json`. The Spark columns: the "
             "same commands with `--engine spark` (`python -m pci bench --engine spark --scale "
             "SCALE --runs N`, a local Spark session on the same machine).", ""]
    for scale, res in results.get("scales", {}).items():
        m = res["machine"]
        spark = res.get("spark")
        lines += [f"## {scale}: {res['partners']:,} partners, {res['tenants']:,} tenants, {MONTHS} months", "",
                  f"Machine: {m['cores']} cores, {m['memory_gib']} GiB; {_when(res, 'last measured')}"
                  + (f"; {_when(spark, 'Spark last measured')} ({spark['runs']} runs)" if spark else "")
                  + ".", ""]
        head = "| case | runs | median s | min–max s | peak memory MiB (median / max) | target |"
        rule = "|---|---:|---:|---:|---:|---|"
        if spark:
            head += " Spark median s | Spark min–max s | Spark peak MiB (median / max) | Spark / DuckDB |"
            rule += "---:|---:|---:|---:|"
        lines += [head, rule]
        names = list(res["cases"]) + [n for n in (spark or {}).get("cases", {}) if n not in res["cases"]]
        for name in names:
            c = res["cases"].get(name)
            row = (f"| {name} | {c['runs']} | {c['median_s']:.2f} | {c['min_s']:.2f}–{c['max_s']:.2f} | "
                   f"{c['median_peak_rss_mib']:.0f} / {c['max_peak_rss_mib']:.0f} | "
                   f"{target_verdict(scale, name, c)} |") if c else f"| {name} | | | | | |"
            if spark:
                row += _spark_cells(spark["cases"].get(name), c)
            lines.append(row)
        spark_ratios = (spark or {}).get("ratios", {})
        if res.get("ratios") or spark_ratios:
            lines += ["", "| ratio | value | target |" + (" Spark |" if spark else ""),
                      "|---|---:|---|" + ("---:|" if spark else "")]
            for k in list(res.get("ratios", {})) + [k for k in spark_ratios if k not in res.get("ratios", {})]:
                v = res.get("ratios", {}).get(k)
                limit = RATIO_TARGETS.get(scale, {}).get(k)
                verdict = f"≤ {limit}: {'met' if v <= limit else 'MISSED'}" if limit and v is not None else ""
                row = f"| {k} | {'' if v is None else v} | {verdict} |"
                if spark:
                    row += f" {spark_ratios.get(k, '')} |"
                lines.append(row)
        lines.append("")
    return "\n".join(lines)
