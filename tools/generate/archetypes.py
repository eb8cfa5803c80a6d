"""Partner archetypes: the scored partners and their customers.

The first five partners are the scripted *edge partners* (:mod:`.edge_cases`).
The others are shuffled into archetypes, with volumes aimed well clear of the
thresholds of pci-rules.md for every score month whose 13-month window is
complete:

* ``gold`` (~25%): 6-8 customers before the window, 1.6 new customers a month
  (12-40 seats of qualifying products at 70-210 USD, so well over 30000 USD and
  10 net adds a year), new customers ramp from MAU 0-3 to 12-30 within 1-3
  months (about 19 crossings a year against a threshold of 10), MAU of the
  base grows 2% a month on a baseline of 70-200 (growth far above 35%),
  7 functional consultants and 3 developers with certifications that stay
  active.  Aimed at 95-100 points: ``gold``.
* ``silver`` (~35%): 5-6 customers before the window (some EA with an
  agreement older than a year: no revenue), 1-3 seats of products at 8-70
  USD, 0.25 new customers a month (3 adds a year), base MAU 12-22 per
  customer growing 3.5% a month (a baseline of 60 or more, growth above 50%),
  6 functional consultants and 3 developers.  Full points for people and MAU
  growth (60) plus 2-6 points for revenue and 3 for adds and 4-8 for
  deployments: aimed at 68-75, ``silver``.
* ``weak`` (~40%): 2-3 small customers, 0.12 new customers a month, MAU per
  customer below 9 (over a window of about two years the partner's MAU stays
  below the baseline of 50, so growth is not eligible), at most one
  consultant and one developer: aimed at 5-25, ``none``.

Edge partners land at ``none``.  Checked with an independent row-by-row
implementation of pci-rules.md on worlds of 20 and 200 partners: every
archetype partner landed at its aimed level in every score month with a
complete window.

The customers of other partners (:mod:`.filler`) do not move silver or weak
partners.  ``generate`` refuses a tenant count too small for the archetypes'
customers (:func:`build_archetypes` raises ``ValueError``).
"""
from __future__ import annotations

from .partners import N_EDGE_PARTNERS, edge_partner_ids, other_partner_ids
from .people import archetype_people
from .state import WorldState

GOLD_PRODUCTS = ("D365_SALES", "D365_CUSTOMER_SERVICE", "D365_FIELD_SERVICE",
                 "D365_FINANCE", "D365_SUPPLY_CHAIN", "D365_BUSINESS_CENTRAL",
                 "D365_PLAN1", "D365_PLAN2", "D365_MARKETING", "D365_COMMERCE")
CHEAP_PRODUCTS = ("D365_BUSINESS_CENTRAL", "D365_TEAM_MEMBERS", "D365_MIXED_REALITY",
                  "D365_CAPACITY_STORAGE", "D365_FRAUD_PROTECTION")

KINDS = ("gold", "silver", "weak")
ARCHETYPES = {
    # share, base customers, new customers per month, seats, products,
    # base MAU, base MAU growth a month, new customer MAU target,
    # functional consultants, developers, extra people
    "gold": dict(share=0.25, base=(6, 8), rate=1.6, seats=(12, 40), seat_step=(0, 6),
                 products=GOLD_PRODUCTS, base_ea_old=0.2, mau_base=(12, 25), growth=1.02,
                 new_mau=(12, 30), new_growth=1.01, production=0.95, churn=0.03, gap=0.05,
                 second_qualifying=0.2, fc=(7, 7), dev=(3, 3), extras=(2, 4)),
    "silver": dict(share=0.35, base=(5, 6), rate=0.25, seats=(1, 3), seat_step=(0, 0),
                   products=CHEAP_PRODUCTS, base_ea_old=0.5, mau_base=(12, 22), growth=1.035,
                   new_mau=(8, 15), new_growth=1.01, production=0.95, churn=0.0, gap=0.0,
                   second_qualifying=0.0, fc=(6, 6), dev=(3, 3), extras=(1, 3)),
    "weak": dict(share=0.40, base=(2, 3), rate=0.12, seats=(2, 8), seat_step=(0, 2),
                 products=CHEAP_PRODUCTS + GOLD_PRODUCTS, base_ea_old=0.3, mau_base=(2, 8),
                 growth=1.0, new_mau=(3, 8), new_growth=1.0, production=0.9, churn=0.1,
                 gap=0.05, second_qualifying=0.0, fc=(0, 1), dev=(0, 1), extras=(1, 3)),
}


def assign_archetypes(world: WorldState) -> None:
    """Shuffle the non-edge partners into archetypes; fill ``archetype`` and ``by_kind``."""
    r = world.rng
    rest = other_partner_ids(world)
    n_gold = max(1, round(len(rest) * ARCHETYPES["gold"]["share"]))
    n_silver = max(1, round(len(rest) * ARCHETYPES["silver"]["share"]))
    kinds = ["gold"] * n_gold + ["silver"] * n_silver
    kinds += ["weak"] * (len(rest) - len(kinds))
    r.shuffle(kinds)
    for pid, kind in zip(rest, kinds):
        world.archetype[pid] = kind
    for pid in edge_partner_ids(world):
        world.archetype[pid] = "edge"
    world.by_kind = {k: [p for p in rest if world.archetype[p] == k] for k in KINDS}


def build_archetypes(world: WorldState) -> None:
    """Each archetype partner's customers (before and inside the window) and people."""
    r = world.rng
    for pid in other_partner_ids(world):
        kind = world.archetype[pid]
        a = ARCHETYPES[kind]
        for _ in range(r.randint(*a["base"])):
            _customer(world, pid, kind, -r.randint(2, 36), base=True)
        phase = r.random()
        for k in range(world.n):
            new = int((k + 1) * a["rate"] + phase) - int(k * a["rate"] + phase)
            for _ in range(new):
                _customer(world, pid, kind, k, base=False)
            if len(world.tenants) > world.n_tenants:
                raise ValueError(
                    f"--tenants {world.n_tenants} is too small for {len(world.partners)} "
                    f"partners over {world.n} months: the scripted cases and the "
                    f"archetype partners' customers alone need more; use at least "
                    f"{tenants_needed(world)}")
        archetype_people(world, pid, kind, a)


def tenants_needed(world: WorldState) -> int:
    """An upper bound of the tenants the edge cases and archetypes use."""
    need = world.n_edge_tenants
    for pid, _, _ in world.partners[N_EDGE_PARTNERS:]:
        a = ARCHETYPES[world.archetype[pid]]
        need += a["base"][1] + int(a["rate"] * world.n) + 1
    return need


def _customer(world: WorldState, pid: str, kind: str, start_k: int, base: bool) -> None:
    """A new tenant of ``pid`` from month ``start_k``, with its subscriptions and associations."""
    r, a = world.rng, ARCHETYPES[kind]
    production = r.random() < a["production"] if not base else True
    t = world.new_tenant(start_k, production=production)
    start = world.day(start_k, r.randint(1, 28))
    product = r.choice(a["products"])
    roll = r.random()
    atype = "CSP" if roll < 0.55 else ("DPOR" if roll < 0.8 else "CPOR")
    if atype == "CSP":
        channel = "CSP"
    elif base and r.random() < a["base_ea_old"]:
        channel = "EA"  # agreement older than a year: no revenue credit in the window
        start = world.day(start_k - 12, start.day) if start_k > -13 else start
        t.start_k = min(t.start_k, world.k_of(start))
    else:
        channel = "EA" if r.random() < 0.4 else "WEB_DIRECT"
    s = world.new_sub(t, product, channel, start)
    s.seats0 = r.randint(*a["seats"])
    s.seat_step = r.randint(*a["seat_step"])
    if base:
        s.mau0 = s.mau_target = r.randint(*a["mau_base"])
        s.growth = a["growth"]
    else:
        s.mau0 = r.randint(0, 3) if kind != "weak" else r.randint(0, 2)
        s.mau_target = r.randint(*a["new_mau"])
        s.ramp = r.randint(1, 3) if kind == "gold" else 1
        s.growth = a["new_growth"]
    vto = None
    if r.random() < a["churn"]:
        s.end_k = r.randint(max(s.start_k + 1, 1), world.n + 6)
        if s.end_k < world.n and r.random() < 0.5:
            vto = world.day(s.end_k, r.randint(1, 28))
    if r.random() < a["gap"] and world.n > 3:
        g = r.randint(max(s.start_k + 1, 1), max(s.start_k + 1, 1) + world.n)
        s.gap = (g, g + r.randint(1, 2))
    subs = [s]
    if r.random() < a["second_qualifying"]:
        s2 = world.new_sub(t, r.choice(a["products"]), channel, start,
                           ea_start=s.ea_start)
        s2.seats0, s2.end_k = r.randint(*a["seats"]), s.end_k
        s2.mau0, s2.mau_target, s2.ramp, s2.growth = s.mau0, s.mau_target, s.ramp, s.growth
        subs.append(s2)
    if r.random() < 0.25:
        s3 = world.new_sub(t, r.choice(world.other_products),
                           "CSP" if atype == "CSP" else "WEB_DIRECT", start)
        s3.seats0, s3.mau0, s3.mau_target = r.randint(5, 50), 10, r.randint(5, 60)
        subs.append(s3)
    for sub in subs:
        vfrom = start
        if atype == "CPOR":
            world.associate(pid, sub, "CPOR", vfrom, vto, "OSA")
            world.associate(pid, sub, "CPOR", vfrom, vto, "OSU")
        else:
            world.associate(pid, sub, atype, vfrom, vto)
