"""The synthetic world, built: :class:`World` is a :class:`.state.WorldState`
filled by the builders, in a fixed order (the order of the rng's draws):

1. partners (:func:`.partners.build_partners`) and their archetypes
   (:func:`.archetypes.assign_archetypes`);
2. the scripted edge cases (:func:`.edge_cases.build_edge_cases`);
3. the archetype partners' customers and people
   (:func:`.archetypes.build_archetypes`);
4. filler tenants up to ``tenants`` (:func:`.filler.build_filler`).

Its month-by-month evolution lies in the subscription plans
(:class:`.entities.Sub`): :mod:`.writer` reads the state of any month ``k``.
"""
from __future__ import annotations

import datetime as dt

from .archetypes import assign_archetypes, build_archetypes
from .edge_cases import build_edge_cases
from .filler import build_filler
from .partners import MIN_PARTNERS, N_EDGE_PARTNERS, build_partners
from .state import WorldState


class World(WorldState):
    """The world of ``months`` months from ``first`` (a date on the 1st).

    Raises ``ValueError`` on arguments it cannot be built from: fewer than one
    month, fewer than :data:`.partners.MIN_PARTNERS` partners, or too few
    tenants for the edge cases and the archetypes' customers.
    """

    def __init__(self, first: dt.date, months: int, partners: int, tenants: int, seed: int):
        if months < 1:
            raise ValueError(f"--months must be at least 1, got {months}")
        if partners < MIN_PARTNERS:
            raise ValueError(f"--partners must be at least {MIN_PARTNERS} "
                             f"({N_EDGE_PARTNERS} scripted edge partners + one per archetype), "
                             f"got {partners}")
        super().__init__(first, months, tenants, seed)
        build_partners(self, partners)
        assign_archetypes(self)
        build_edge_cases(self)
        build_archetypes(self)
        build_filler(self)
