"""The world's state: its entities in creation order, its calendar and its one rng.

:class:`WorldState` holds what the builders (:mod:`.partners`,
:mod:`.edge_cases`, :mod:`.archetypes`, :mod:`.filler`) fill in and what
:mod:`.writer` reads: partners, tenants, subscriptions, associations,
affiliations and exam passes, each a list kept in creation order (ids are
numbered in that order), plus the month arithmetic on indices ``k`` from the
first export month.  :class:`.world.World` is this state, built.

Determinism: one ``random.Random(seed)`` (``rng``) is the only source of
randomness, and every builder draws from it in a fixed order.
"""
from __future__ import annotations

import datetime as dt
import random

from pci.core.contract import add_months, end_of_month

from . import catalogue
from .entities import Assoc, Sub, Tenant
from .names import NAME_A, TENANT_WORDS


class WorldState:
    def __init__(self, first: dt.date, months: int, tenants: int, seed: int):
        self.first, self.n, self.n_tenants = first, months, tenants
        self.last_eom = end_of_month(add_months(first, months - 1))
        self.rng = random.Random(seed)
        self.partners: list[tuple[str, str, str]] = []
        #: partner id -> "edge", "gold", "silver" or "weak"
        self.archetype: dict[str, str] = {}
        #: archetype -> its partner ids, in partner order
        self.by_kind: dict[str, list[str]] = {}
        self.tenants: list[Tenant] = []
        self.n_edge_tenants = 0
        self.subs: list[Sub] = []
        self.assocs: list[Assoc] = []
        self.affiliations: list[tuple[str, str, dt.date, dt.date | None]] = []
        self.passes: list[tuple[str, str, dt.date, dt.date | None]] = []
        self.n_people = 0
        self.products = catalogue.workloads()
        self.qualifying = tuple(p for p, w in self.products if w != "other")
        self.other_products = tuple(p for p, w in self.products if w == "other")

    # ---- calendar
    def month(self, k: int) -> dt.date:
        return add_months(self.first, k)

    def day(self, k: int, day: int) -> dt.date:
        m = self.month(k)
        return m.replace(day=min(day, end_of_month(m).day))

    def eom(self, k: int) -> dt.date:
        return end_of_month(self.month(k))

    def k_of(self, d: dt.date) -> int:
        return (d.year - self.first.year) * 12 + d.month - self.first.month

    def script(self, fn) -> list:
        return [fn(k) for k in range(self.n)]

    # ---- entities
    def new_tenant(self, start_k: int, name: str | None = None, production: bool = True) -> Tenant:
        i = len(self.tenants) + 1
        if name is None:
            r = self.rng
            name = f"{r.choice(NAME_A)} {r.choice(TENANT_WORDS)} {i}"
        t = Tenant(f"T{i:06d}", name, production, start_k)
        self.tenants.append(t)
        return t

    def new_sub(self, tenant: Tenant, product: str, channel: str, start: dt.date,
                bill_day: int | None = None, ea_start: dt.date | None = None) -> Sub:
        i = len(self.subs) + 1
        k = self.k_of(start)
        if k < tenant.start_k:
            raise AssertionError("a subscription cannot start before its tenant")
        s = Sub(i, f"S{i:07d}", tenant.tid, product, channel, k,
                bill_day if bill_day is not None else start.day)
        if channel == "EA":
            s.ea_start = ea_start or start
        self.subs.append(s)
        return s

    def associate(self, pid: str, sub: Sub, atype: str, vfrom: dt.date,
                  vto: dt.date | None = None, incentive: str = "") -> Assoc:
        if vto is not None and vto < vfrom:
            raise AssertionError("valid_to before valid_from")
        i = len(self.assocs) + 1
        a = Assoc(f"A{i:07d}", pid, sub.sid, atype, incentive, vfrom, vto)
        self.assocs.append(a)
        return a

    def new_person(self) -> str:
        self.n_people += 1
        return f"PE{self.n_people:06d}"

    def affiliate(self, person: str, pid: str, vfrom: dt.date, vto: dt.date | None = None):
        self.affiliations.append((person, pid, vfrom, vto))

    def pass_exam(self, person: str, code: str, passed: dt.date, expires: dt.date | None = None):
        self.passes.append((person, code, passed, expires))
