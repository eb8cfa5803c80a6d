"""``python -m pci generate``: ``configure(parser)`` adds the arguments,
``command(args)`` writes the landing (exit status 2 on arguments the world
cannot be built from, with the reason on standard error).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys

from pci.core.contract import format_month, parse_month

from .partners import MIN_PARTNERS
from .writer import generate

#: the sample used by ``make run`` (quick to generate and to land)
DEFAULTS = {
    "out": "data/landing",
    "first": dt.date(2020, 7, 1),
    "months": 26,
    "partners": 60,
    "tenants": 3000,
    "seed": 7,
}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _month(text: str) -> dt.date:
    try:
        return parse_month(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def configure(parser: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    parser.add_argument("--out", default=d["out"], help=f"landing folder (default {d['out']})")
    parser.add_argument("--first", type=_month, default=d["first"],
                        help=f"first export month YYYY-MM (default {format_month(d['first'])})")
    parser.add_argument("--months", type=_positive, default=d["months"],
                        help=f"number of months (default {d['months']})")
    parser.add_argument("--partners", type=_positive, default=d["partners"],
                        help=f"number of partners, at least {MIN_PARTNERS} "
                             f"(default {d['partners']})")
    parser.add_argument("--tenants", type=_positive, default=d["tenants"],
                        help=f"number of tenants (default {d['tenants']})")
    parser.add_argument("--seed", type=int, default=d["seed"],
                        help=f"random seed (default {d['seed']})")


def command(args: argparse.Namespace) -> int:
    try:
        folders = generate(args.out, args.first, args.months, args.partners, args.tenants,
                           args.seed)
    except ValueError as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(folders)} export months {folders[0].name}..{folders[-1].name} "
          f"to {args.out}")
    return 0
