"""`python -m pci <command>`: one subcommand per module.

Each command module defines ``configure(parser)`` (adds its arguments) and
``command(args) -> int`` (runs, returns the exit status). Modules are imported
only when their command runs, so `--help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import os

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("tools.generate", "write a generated sample landing (contract-valid exports)"),
    "land": ("pci.land.command", "validate one export month and load it into the warehouse"),
    "score": ("pci.score.scoring", "build the dbt models for a range of score months"),
    "run": ("pci.orchestrate.runner", "land, score, validate and publish months through the DAG's tasks"),
    "demo": ("tools.demo", "generate a sample landing if absent, run it, print the scores"),
    "explain": ("pci.read.explain", "a partner's scorecard for one month"),
    "report": ("pci.read.report", "an offline HTML report of one month"),
    "export": ("pci.read.export", "the published scores of a range of months as one CSV file"),
    "at-risk": ("pci.read.at_risk", "the partners projected to lose their level next month, and how to keep it"),
    "check": ("pci.orchestrate.check", "read every block of the warehouse file (a damaged one exits 7)"),
    "refresh-copy": ("pci.publish.copy_refresh",
                     "refresh the analysts' read-only copy (completes a refresh that failed)"),
    "bench": ("tools.bench", "the benchmark"),
}


def _defaults_env() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


def build_parser(argv: list[str] | None) -> tuple[argparse.ArgumentParser, object | None]:
    from pci import __version__

    parser = argparse.ArgumentParser(prog="pci", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pci-pipeline {__version__}")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")
    chosen = None
    wanted = next((a for a in (argv or []) if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            chosen = importlib.import_module(module_name)
            chosen.configure(p)
            p.set_defaults(_module=chosen)
    return parser, chosen


def main(argv: list[str] | None = None) -> int:
    import sys

    _defaults_env()
    argv = sys.argv[1:] if argv is None else argv
    parser, chosen = build_parser(argv)
    args = parser.parse_args(argv)
    if chosen is None:
        parser.print_help()
        return 2
    return int(chosen.command(args) or 0)
