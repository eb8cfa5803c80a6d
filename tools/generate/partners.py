"""The partner list: ``P00001``-``P00005`` are the scripted edge partners, the rest
get generated names (some with a comma or quotes, to exercise CSV quoting) and a
country (empty for about 5%).  Which archetype each plays is decided in
:func:`.archetypes.assign_archetypes`.
"""
from __future__ import annotations

from .names import COUNTRIES, NAME_A, NAME_B, NAME_C
from .state import WorldState

N_EDGE_PARTNERS = 5
MIN_PARTNERS = N_EDGE_PARTNERS + 3
EDGE_NAMES = ("Edge CSP", "Edge Advisor OSA", "Edge Advisor OSU", "Edge DPOR",
              "Edge MAU Baseline")


def build_partners(world: WorldState, n: int) -> None:
    """Append ``n`` partners ``(partner_id, name, country)`` to ``world.partners``."""
    r = world.rng
    for i in range(1, n + 1):
        pid = f"P{i:05d}"
        if i <= N_EDGE_PARTNERS:
            name = f"{EDGE_NAMES[i - 1]} Partners"
        elif i % 17 == 0:
            name = f"{r.choice(NAME_A)} {r.choice(NAME_B)}, {r.choice(NAME_C)}"
        elif i % 23 == 0:
            name = f'{r.choice(NAME_A)} "{r.choice(NAME_B)}" {r.choice(NAME_C)}'
        else:
            name = f"{r.choice(NAME_A)} {r.choice(NAME_B)} {r.choice(NAME_C)}"
        country = "" if r.random() < 0.05 else r.choice(COUNTRIES)
        world.partners.append((pid, name, country))


def edge_partner_ids(world: WorldState) -> list[str]:
    return [p[0] for p in world.partners[:N_EDGE_PARTNERS]]


def other_partner_ids(world: WorldState) -> list[str]:
    """The partners after the edge partners (the archetype partners), in order."""
    return [p[0] for p in world.partners[N_EDGE_PARTNERS:]]
