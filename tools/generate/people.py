"""An archetype partner's people: certified consultants and developers, and extras.

``profile["fc"]`` functional consultants and ``profile["dev"]`` developers
hold a certification combination that stays active through the window (either
non-expiring or a two-year certification renewed before it lapses), so gold
and silver partners keep their counts in every month and weak partners never
exceed one of each.  ``profile["extras"]`` more people play one role each:
uncertified, a partial combination, a certification expiring inside the window,
a move to another partner of the same archetype, a join or a leave inside the
window.
"""
from __future__ import annotations

import datetime as dt

from .state import WorldState

CE_FC_SECOND = ("MB-210", "MB-220", "MB-230", "MB-240")
FO_FC_SECOND = ("MB-310", "MB-320", "MB-330")
FO_DEV_SECOND = ("MB-500", "MB-700")
FUNDAMENTALS = ("PL-900", "MB-910", "MB-920", "AZ-900")


def archetype_people(world: WorldState, pid: str, kind: str, profile: dict) -> None:
    """Add the people of partner ``pid`` (archetype ``kind`` with ``profile``)."""
    r, a = world.rng, profile
    window_end = world.last_eom

    def stable_passes(person, codes):
        for code in codes:
            passed = world.first - dt.timedelta(days=r.randint(30, 900))
            if r.random() < 0.5:
                world.pass_exam(person, code, passed)
                continue
            while True:  # two-year certifications, renewed before they lapse
                expires = passed + dt.timedelta(days=730)
                world.pass_exam(person, code, passed, expires)
                if expires > window_end:
                    break
                passed = expires - dt.timedelta(days=r.randint(1, 60))

    def fc_codes():
        roll = r.random()
        if roll < 0.5:
            return ["PL-200", r.choice(CE_FC_SECOND)]
        if roll < 0.75:
            return ["MB-300", r.choice(FO_FC_SECOND)]
        return ["MB-800"]

    def dev_codes():
        return ["PL-400"] if r.random() < 0.7 else ["MB-300", r.choice(FO_DEV_SECOND)]

    since = lambda: world.first - dt.timedelta(days=r.randint(60, 2000))  # noqa: E731
    for _ in range(r.randint(*a["fc"])):
        p = world.new_person()
        codes = fc_codes()
        if r.random() < 0.3:
            codes.append(r.choice(FUNDAMENTALS))
        stable_passes(p, codes)
        world.affiliate(p, pid, since())
    for _ in range(r.randint(*a["dev"])):
        p = world.new_person()
        stable_passes(p, dev_codes())
        world.affiliate(p, pid, since())
    for _ in range(r.randint(*a["extras"])):
        p = world.new_person()
        role = r.choice(("uncertified", "partial", "expiring", "mover", "joiner", "leaver"))
        in_window = world.day(r.randint(0, world.n - 1), r.randint(1, 28))
        if role == "uncertified":
            stable_passes(p, [r.choice(FUNDAMENTALS)])
        elif role == "partial":
            stable_passes(p, [r.choice(("PL-200", "MB-300", "MB-210", "MB-310"))])
        elif role == "expiring":
            codes = dev_codes() if kind == "weak" else fc_codes()
            for code in codes:
                world.pass_exam(p, code, in_window - dt.timedelta(days=730), in_window)
        elif kind != "weak":
            stable_passes(p, fc_codes() if r.random() < 0.6 else dev_codes())
        else:
            stable_passes(p, [r.choice(FUNDAMENTALS)])
        if role == "mover":
            others = [q for q in world.by_kind[kind] if q != pid]
            if others:
                world.affiliate(p, pid, since(), in_window)
                world.affiliate(p, r.choice(others), in_window + dt.timedelta(days=1))
                continue
        if role == "joiner":
            world.affiliate(p, pid, in_window)
        elif role == "leaver":
            world.affiliate(p, pid, since(), in_window)
        else:
            world.affiliate(p, pid, since())
