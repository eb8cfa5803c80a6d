"""Filler tenants: the rest of ``--tenants``, beyond those the edge cases and
archetypes need.

They are direct customers of qualifying products, customers of non-qualifying
products (with any partner), MCA/OTHER channels, customers a partner joins
after they came direct, trials (some never paid), non-production tenants and
overlapping partners on one subscription.  Apart from the non-qualifying
products they go to gold partners (or to none), so they do not move silver or
weak partners.
"""
from __future__ import annotations

from .entities import NEVER
from .partners import other_partner_ids
from .state import WorldState


def build_filler(world: WorldState) -> None:
    """Add tenants until the world has ``world.n_tenants``."""
    r = world.rng
    gold = world.by_kind["gold"]
    everyone = other_partner_ids(world)
    while len(world.tenants) < world.n_tenants:
        start_k = r.randint(-24, world.n - 1)
        roll = r.random()
        production = not (0.85 <= roll < 0.92)
        t = world.new_tenant(start_k, production=production)
        start = world.day(start_k, r.randint(1, 28))
        seats, mau = r.randint(1, 60), r.randint(0, 80)
        if roll < 0.40:  # direct customers of qualifying products
            channel = "EA" if r.random() < 0.4 else "WEB_DIRECT"
            s = world.new_sub(t, r.choice(world.qualifying), channel, start)
            partner = None
        elif roll < 0.55:  # non-qualifying products, any partner
            s = world.new_sub(t, r.choice(world.other_products), "CSP", start)
            partner = ("CSP", r.choice(everyone), start)
        elif roll < 0.65:  # non-qualifying channels
            s = world.new_sub(t, r.choice(world.qualifying), r.choice(("MCA", "OTHER")), start)
            partner = ("DPOR", r.choice(gold), start) if r.random() < 0.5 else None
        elif roll < 0.75:  # a partner joins after the customer came direct
            s = world.new_sub(t, r.choice(world.qualifying), "WEB_DIRECT", start)
            partner = (r.choice(("DPOR", "CPOR")), r.choice(gold),
                       world.day(start_k + r.randint(1, 8), r.randint(1, 28)))
        elif roll < 0.85:  # trials (some never paid)
            s = world.new_sub(t, r.choice(world.qualifying), "CSP", start)
            s.paid_from = NEVER if r.random() < 0.3 else start_k + r.randint(1, 3)
            partner = ("CSP", r.choice(gold), start) if r.random() < 0.5 else None
        elif roll < 0.92:  # non-production tenants
            s = world.new_sub(t, r.choice(world.qualifying), "CSP", start)
            partner = ("CSP", r.choice(gold), start)
        else:  # overlaps between gold partners on one subscription
            s = world.new_sub(t, r.choice(world.qualifying), "WEB_DIRECT", start)
            p1, p2 = r.choice(gold), r.choice(gold)
            world.associate(p1, s, "DPOR", start)
            partner = ("CPOR", p2,
                       max(start, world.day(start_k + r.randint(0, 6), r.randint(1, 28))))
        s.seats0, s.seat_step = seats, r.randint(0, 4)
        s.mau0, s.mau_target, s.ramp = r.randint(0, 4), mau, r.randint(0, 4)
        s.growth = r.choice((0.98, 1.0, 1.01, 1.03))
        if r.random() < 0.08:
            s.end_k = r.randint(max(start_k + 1, 1), world.n + 12)
        if r.random() < 0.05:
            g = r.randint(max(start_k + 1, 1), world.n + 2)
            s.gap = (g, g + r.randint(1, 3))
        if partner is not None:
            atype, pid, vfrom = partner
            if atype == "CPOR":
                inc = r.choice(("OSA", "OSU", "BOTH"))
                for i in (("OSA", "OSU") if inc == "BOTH" else (inc,)):
                    world.associate(pid, s, "CPOR", vfrom, incentive=i)
            else:
                world.associate(pid, s, atype, vfrom)
