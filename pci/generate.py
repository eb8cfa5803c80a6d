"""Sample-data generator: contract-valid export folders for a synthetic world.

``python -m pci generate --out DIR --first YYYY-MM --months N --partners N
--tenants N --seed S`` writes ``DIR/YYYY-MM/`` for ``N`` consecutive months,
each with the ten files of ``pci.contract.FILES`` (headers exactly the contract
columns) and ``_manifest.json`` (written last, so a folder is never "ready"
half-written).  :func:`generate` does the same from Python.

The output is a pure function of the arguments: one ``random.Random(seed)``
drives everything, entities are kept and written in creation order, and no
clock, uuid or hash-seeded ordering is used.  The same arguments give
byte-identical files.

The world is simulated month by month with compact per-subscription plans
(start, churn, seats, MAU curve, price, billing day), so memory stays bounded
by the number of entities and every file is streamed to disk while its sha256
is computed.

Semantics of each export month ``m`` (shared/spec/raw-exports.md):

* reference files hold the full state as of ``EOM(m)``: every partner, every
  tenant and subscription created so far (``is_paid`` = paid state in ``m``;
  churned subscriptions stay, unpaid), every association and affiliation with
  ``valid_from <= EOM(m)`` (``valid_to`` is shown once it is ``<= EOM(m)``; an
  end that lies in the future is not known yet, so the row is open), every
  exam pass with ``passed_on <= EOM(m)`` (its ``expires_on`` is known when it
  is passed);
* monthly files hold the facts of ``m``: billing lines dated inside ``m``
  (line ids ``LYYYYMM-nnnnnnn`` are unique across all months), seat and MAU
  snapshots as of ``EOM(m)``.  A zero is written as an explicit ``0`` row in
  some months and omitted in others, so both spellings of "no seats" occur.

Partner archetypes
------------------
The first five partners are the scripted *edge partners* (below).  The others
are shuffled into archetypes, with volumes aimed well clear of the thresholds
of pci-rules.md for every score month whose 13-month window is complete:

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

Partners that join customers later, overlaps, non-production tenants,
MCA/OTHER channels and trials of the *filler* tenants (those not needed by the
archetypes) go to gold partners or to non-qualifying products, so they do
not move silver or weak partners.  ``generate`` refuses a tenant count too
small for the archetypes' customers.

Scripted edge cases (months as offsets ``k`` from ``--first``; a case whose
month lies beyond the window simply does not happen)
-----------------------------------------------------------------------------
Partners: ``P00001`` Edge CSP, ``P00002`` Edge Advisor OSA, ``P00003`` Edge
Advisor OSU, ``P00004`` Edge DPOR, ``P00005`` Edge MAU baseline (its only
customer is T000025).

Tenants (the first 28):

* T000001 seats 10 before the window, 0 in k=2 (explicit ``0`` row) and k=3
  (no row), back to 10 in k=4 (loss in k=2, add in k=4).
* T000002 added in k=1 through CSP P00001, cancelled in k=6 (loss debited:
  the add is within 12 months).
* T000003 customer since before the window, cancelled in k=5 (loss of a spell
  that began before the earliest month: debited to nobody).
* T000004 came direct in k=1 (WEB_DIRECT, no partner); P00002 joins as DPOR
  on the 12th of k=4 (no add credit for it).
* T000005 direct customer from k=2, never associated.
* T000006 one CSP-channel subscription with CSP P00001, CPOR-OSA P00002,
  CPOR-OSU P00003, DPOR P00004, and a second association of P00001 (DPOR).
* T000007 WEB_DIRECT: CPOR-OSU P00003 and DPOR P00004 (DPOR keeps the
  transaction family).
* T000008 WEB_DIRECT: CPOR-OSA P00002 and DPOR P00004 (DPOR keeps usage).
* T000009 month ends: DPOR P00002 ends on EOM(k=3) exactly, DPOR P00003
  starts the next day; CPOR-OSU P00004 starts on EOM(k=5) exactly; DPOR
  P00001 valid only on EOM(k=2) (valid_from = valid_to).
* T000010 mid-month: CSP P00002 ends on the 15th of k=6, CSP P00003 starts
  on the 16th.
* T000011 EA agreement 30 months before the window (DPOR P00002).
* T000012 EA agreement on the 17th of k=2 (DPOR P00003), billed on the
  17th; in the anniversary month an extra line on the 16th (the last day of
  the first year).
* T000013 EA agreement on the latest 29 February on or before the end of the
  window (CPOR-OSA and CPOR-OSU P00004); billed on the 29th/28th, and in
  the anniversary February an extra line on the 27th (the first year ends on
  the 28th, exclusive).
* T000014 credits: a CREDIT every third month, and in k=5 a credit larger
  than that month's charge (CSP P00001).
* T000015 non-qualifying products: M365_E3 (workload ``other``) and the
  unknown product ``LEGACY_CRM_ONPREM`` (listed in products.csv, not in the
  catalogue), both CSP P00001, with seats, MAU and billing.
* T000016 channel MCA, T000017 channel OTHER, both DPOR P00004.
* T000018 trial: seats and MAU from k=1, unpaid until k=2, paid from k=3
  (CSP P00003).
* T000019 never paid, with seats and MAU (CSP P00003).
* T000020 non-production tenant, MAU 1 -> 9 crossing (CSP P00003).
* T000021 MAU 4 in k=0..11, 5 from k=12 (crosses for the score month k=12).
* T000022 MAU 5 in k=0..11, 6 after (never crosses: the baseline is not < 5).
* T000023 MAU 6 in k=0, 4 in k=1..12, 6 from k=13 (crosses for k=13).
* T000024 MAU 4 always (never crosses).  T000021-T000024 are CSP P00004.
* T000025 P00005's only subscription: MAU 49 (k=0), 50 (k=1), 51 (k=2),
  70 after: baselines just below, at and above 50 for k=12, 13, 14.
* T000026 added in k=1, lost in k=14 (more than 12 months later: no debit).
* T000027 two qualifying subscriptions; one is cancelled in k=4 while the
  other keeps seats (no loss).
* T000028 seats 3 and MAU 0/omitted rows only (a paid customer with no users).

People (the first nine, all with edge partners):

* PE000001 MB-800 (never expires), at P00001 until the 14th of k=3, at
  P00002 from the 15th (moves mid-month).
* PE000002 PL-400, at P00002 until EOM(k=4), at P00003 from the 1st of k=5.
* PE000003 PL-200 + MB-210, MB-210 expires exactly on EOM(k=5) (active at
  EOM(k=4), not at EOM(k=5)).
* PE000004 PL-400 expiring on the 10th of k=3, passed again in k=6.
* PE000005 PL-200 alone (an incomplete combination) and MB-300 + MB-500.
* PE000006 MB-300 + MB-310 + MB-500 (counts as consultant and developer).
* PE000007 MB-800 passed on the 20th of k=2.
* PE000008 PL-200 + MB-230, leaves P00004 on the 9th of k=7.
* PE000009 PL-400, joins P00004 on the 3rd of k=4.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import json
import os
import random
import sys
from pathlib import Path

from pci.contract import (
    FILES,
    FILES_BY_NAME,
    MANIFEST,
    add_months,
    end_of_month,
    format_month,
    parse_month,
)

#: the sample used by ``make run`` (quick to generate and to land)
DEFAULTS = {
    "out": "data/landing",
    "first": dt.date(2020, 7, 1),
    "months": 26,
    "partners": 60,
    "tenants": 3000,
    "seed": 7,
}

CATALOGUE_PATH = Path(__file__).resolve().parent / "data" / "product_catalogue.csv"
#: a product id that is in every export's products.csv but not in the catalogue
UNKNOWN_PRODUCT = ("LEGACY_CRM_ONPREM", "Legacy CRM (on-premises, retired)")

N_EDGE_PARTNERS = 5
MIN_PARTNERS = N_EDGE_PARTNERS + 3

#: list price per seat and month, USD cents
PRICES = {
    "D365_SALES": 9500, "D365_MARKETING": 7500, "D365_CUSTOMER_SERVICE": 9500,
    "D365_FIELD_SERVICE": 9500, "D365_PROJECT_SERVICE": 9500, "D365_PLAN1": 11500,
    "MS_RELATIONSHIP_SALES": 16200, "D365_BUSINESS_CENTRAL": 7000,
    "D365_CAPACITY_STORAGE": 4000, "D365_FINANCE": 18000, "D365_SUPPLY_CHAIN": 18000,
    "D365_COMMERCE": 18000, "D365_HUMAN_RESOURCES": 12000, "D365_FRAUD_PROTECTION": 5000,
    "D365_PLAN2": 21000, "D365_MIXED_REALITY": 6500, "D365_TEAM_MEMBERS": 800,
    "D365_CUSTOMER_INSIGHTS": 10000, "M365_E3": 3600, "M365_BUSINESS_PREMIUM": 2200,
    "POWER_BI_PRO": 1000, "POWER_APPS_PER_USER": 2000, "AZURE_PLAN": 15000,
    "DYNAMICS_GP_ONPREM": 3000, UNKNOWN_PRODUCT[0]: 4500,
}
DEFAULT_PRICE = 5000

GOLD_PRODUCTS = ("D365_SALES", "D365_CUSTOMER_SERVICE", "D365_FIELD_SERVICE",
                 "D365_FINANCE", "D365_SUPPLY_CHAIN", "D365_BUSINESS_CENTRAL",
                 "D365_PLAN1", "D365_PLAN2", "D365_MARKETING", "D365_COMMERCE")
CHEAP_PRODUCTS = ("D365_BUSINESS_CENTRAL", "D365_TEAM_MEMBERS", "D365_MIXED_REALITY",
                  "D365_CAPACITY_STORAGE", "D365_FRAUD_PROTECTION")

CE_FC_SECOND = ("MB-210", "MB-220", "MB-230", "MB-240")
FO_FC_SECOND = ("MB-310", "MB-320", "MB-330")
FO_DEV_SECOND = ("MB-500", "MB-700")
FUNDAMENTALS = ("PL-900", "MB-910", "MB-920", "AZ-900")

COUNTRIES = ("US", "GB", "DE", "FR", "SE", "NL", "DK", "NO", "FI", "ES", "IT", "CA",
             "AU", "JP", "IN", "BR", "PL", "IE", "CH", "AT", "NZ", "ZA", "MX", "SG")
NAME_A = ("Northwind", "Contoso", "Fabrikam", "Adatum", "Litware", "Proseware",
          "Tailspin", "Wingtip", "Woodgrove", "Alpine", "Blue Yonder", "Coho",
          "Humongous", "Lucerne", "Margie's", "Trey", "Wide World", "Fourth Coffee",
          "Relecloud", "VanArsdel", "Datum", "Graphic Design", "Southridge", "Lamna")
NAME_B = ("Consulting", "Solutions", "Digital", "Cloud", "Partners", "Systems",
          "Advisory", "Group", "Technologies", "Services")
NAME_C = ("Ltd", "Inc.", "AB", "GmbH", "BV", "Oy", "AS", "LLC", "S.A.", "Pty Ltd")
TENANT_WORDS = ("Bakery", "Logistics", "Clinic", "Foods", "Motors", "Retail",
                "Energy", "Textiles", "Studios", "Holdings", "Farms", "Labs",
                "Freight", "Hotels", "Pharma", "Builders", "Marine", "Media")

NEVER = 10 ** 6  # a month index that is never reached
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


# --------------------------------------------------------------------------- entities

class Tenant:
    __slots__ = ("tid", "name", "production", "start_k")

    def __init__(self, tid, name, production, start_k):
        self.tid, self.name, self.production, self.start_k = tid, name, production, start_k


class Sub:
    """One subscription's plan: every monthly value is a function of it and ``k``."""

    __slots__ = ("idx", "sid", "tid", "product", "channel", "ea_start", "start_k", "end_k",
                 "paid_from", "seats0", "seat_step", "gap", "mau0", "mau_target", "ramp",
                 "growth", "price", "bill_day", "seat_script", "mau_script", "paid_script",
                 "extra_lines", "credits")

    def __init__(self, idx, sid, tid, product, channel, start_k, bill_day):
        self.idx, self.sid, self.tid, self.product, self.channel = idx, sid, tid, product, channel
        self.start_k, self.bill_day = start_k, bill_day
        self.ea_start = None
        self.end_k = NEVER
        self.paid_from = -NEVER
        self.seats0, self.seat_step, self.gap = 1, 0, None
        self.mau0, self.mau_target, self.ramp, self.growth = 0, 0, 0, 1.0
        self.price = PRICES.get(product, DEFAULT_PRICE)
        self.seat_script = self.mau_script = self.paid_script = None
        self.extra_lines = None  # {k: [(day, line_type, cents), ...]}
        self.credits = True  # random credits

    def paid(self, k):
        if k >= self.end_k:
            return False
        if self.paid_script is not None:
            return self.paid_script[k]
        return k >= self.paid_from

    def seats(self, k):
        """Seats as of EOM(k); None = no row."""
        if k >= self.end_k:
            return None
        if self.seat_script is not None:
            return self.seat_script[k]
        if self.gap is not None and self.gap[0] <= k < self.gap[1]:
            return None if (k + self.idx) % 2 else 0
        return self.seats0 + (self.seat_step * (k - self.start_k)) // 12

    def mau(self, k):
        """Monthly active users measured at EOM(k); None = no row."""
        if k >= self.end_k:
            return None
        if self.mau_script is not None:
            return self.mau_script[k]
        age = k - self.start_k
        if age < self.ramp:
            v = self.mau0 + (self.mau_target - self.mau0) * age // self.ramp
        else:
            v = int(self.mau_target * self.growth ** (age - self.ramp))
        if v == 0 and (k + self.idx) % 2:
            return None
        return v


class Assoc:
    __slots__ = ("aid", "pid", "sid", "atype", "incentive", "vfrom", "vto")

    def __init__(self, aid, pid, sid, atype, incentive, vfrom, vto):
        self.aid, self.pid, self.sid, self.atype = aid, pid, sid, atype
        self.incentive, self.vfrom, self.vto = incentive, vfrom, vto


# --------------------------------------------------------------------------- the world

class World:
    def __init__(self, first: dt.date, months: int, partners: int, tenants: int, seed: int):
        if months < 1:
            raise ValueError(f"--months must be at least 1, got {months}")
        if partners < MIN_PARTNERS:
            raise ValueError(f"--partners must be at least {MIN_PARTNERS} "
                             f"({N_EDGE_PARTNERS} scripted edge partners + one per archetype), "
                             f"got {partners}")
        self.first, self.n, self.n_tenants = first, months, tenants
        self.last_eom = end_of_month(add_months(first, months - 1))
        self.rng = random.Random(seed)
        self.partners: list[tuple[str, str, str]] = []
        self.archetype: dict[str, str] = {}
        self.tenants: list[Tenant] = []
        self.subs: list[Sub] = []
        self.assocs: list[Assoc] = []
        self.affiliations: list[tuple[str, str, dt.date, dt.date | None]] = []
        self.passes: list[tuple[str, str, dt.date, dt.date | None]] = []
        self.n_people = 0
        self.products = self._catalogue()
        self.qualifying = tuple(p for p, w in self.products if w != "other")
        self.other_products = tuple(p for p, w in self.products if w == "other")
        self._build_partners(partners)
        self._build_edge_cases()
        self._build_archetypes()
        self._build_filler()

    # ---- helpers
    @staticmethod
    def _catalogue() -> list[tuple[str, str]]:
        with open(CATALOGUE_PATH, newline="", encoding="utf-8") as fh:
            return [(r["product_id"], r["workload"]) for r in csv.DictReader(fh)]

    def product_rows(self) -> list[tuple[str, str]]:
        with open(CATALOGUE_PATH, newline="", encoding="utf-8") as fh:
            rows = [(r["product_id"], r["product_name"]) for r in csv.DictReader(fh)]
        return rows + [UNKNOWN_PRODUCT]

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

    # ---- partners
    def _build_partners(self, n: int) -> None:
        r = self.rng
        edge_names = ("Edge CSP", "Edge Advisor OSA", "Edge Advisor OSU", "Edge DPOR",
                      "Edge MAU Baseline")
        for i in range(1, n + 1):
            pid = f"P{i:05d}"
            if i <= N_EDGE_PARTNERS:
                name = f"{edge_names[i - 1]} Partners"
            elif i % 17 == 0:
                name = f"{r.choice(NAME_A)} {r.choice(NAME_B)}, {r.choice(NAME_C)}"
            elif i % 23 == 0:
                name = f'{r.choice(NAME_A)} "{r.choice(NAME_B)}" {r.choice(NAME_C)}'
            else:
                name = f"{r.choice(NAME_A)} {r.choice(NAME_B)} {r.choice(NAME_C)}"
            country = "" if r.random() < 0.05 else r.choice(COUNTRIES)
            self.partners.append((pid, name, country))
        rest = [p[0] for p in self.partners[N_EDGE_PARTNERS:]]
        n_gold = max(1, round(len(rest) * ARCHETYPES["gold"]["share"]))
        n_silver = max(1, round(len(rest) * ARCHETYPES["silver"]["share"]))
        kinds = ["gold"] * n_gold + ["silver"] * n_silver
        kinds += ["weak"] * (len(rest) - len(kinds))
        r.shuffle(kinds)
        for pid, kind in zip(rest, kinds):
            self.archetype[pid] = kind
        for pid in [p[0] for p in self.partners[:N_EDGE_PARTNERS]]:
            self.archetype[pid] = "edge"
        self.by_kind = {k: [p for p in rest if self.archetype[p] == k]
                        for k in ("gold", "silver", "weak")}

    # ---- scripted edge cases
    def _build_edge_cases(self) -> None:
        P1, P2, P3, P4, P5 = (f"P{i:05d}" for i in range(1, 6))
        d, eom, script, F = self.day, self.eom, self.script, self.first
        before = -14  # a start month before the window

        def customer(name, start_k, product, channel, start_day=8, production=True,
                     tenant=None, **kw):
            t = tenant or self.new_tenant(start_k, f"Edge {len(self.tenants) + 1:02d} {name}",
                                          production)
            s = self.new_sub(t, product, channel, d(start_k, start_day), **kw)
            s.credits = False
            s.seats0, s.mau_target = 10, 8
            return t, s

        # 1 seats drop to zero and come back
        _, s = customer("seats drop to zero and return", before, "D365_SALES", "CSP")
        s.seat_script = script(lambda k: {2: 0, 3: None}.get(k, 10))
        self.associate(P1, s, "CSP", d(before, 8))
        # 2 added in k=1, cancelled in k=6
        _, s = customer("added then lost", 1, "D365_BUSINESS_CENTRAL", "CSP", start_day=10)
        s.seats0, s.end_k = 5, 6
        self.associate(P1, s, "CSP", d(1, 10), d(6, 3))
        # 3 customer before the window, cancelled in k=5
        _, s = customer("old customer lost", -20, "D365_SALES", "CSP")
        s.end_k = 5
        self.associate(P1, s, "CSP", d(-20, 8))
        # 4 direct, partner joins later
        _, s = customer("direct then partner joins", 1, "D365_BUSINESS_CENTRAL", "WEB_DIRECT",
                        start_day=5)
        self.associate(P2, s, "DPOR", d(4, 12))
        # 5 direct, never associated
        customer("direct customer", 2, "D365_SALES", "WEB_DIRECT")
        # 6 all association types on one subscription
        _, s = customer("all association types", 1, "D365_FIELD_SERVICE", "CSP", start_day=3)
        self.associate(P1, s, "CSP", d(1, 3))
        self.associate(P2, s, "CPOR", d(1, 3), incentive="OSA")
        self.associate(P3, s, "CPOR", d(1, 3), incentive="OSU")
        self.associate(P4, s, "DPOR", d(1, 3))
        self.associate(P1, s, "DPOR", d(1, 3))
        # 7 CPOR-OSU and DPOR
        _, s = customer("CPOR OSU and DPOR", before, "D365_CUSTOMER_SERVICE", "WEB_DIRECT")
        self.associate(P3, s, "CPOR", d(before, 8), incentive="OSU")
        self.associate(P4, s, "DPOR", d(before, 8))
        # 8 CPOR-OSA and DPOR
        _, s = customer("CPOR OSA and DPOR", before, "D365_SALES", "WEB_DIRECT")
        self.associate(P2, s, "CPOR", d(before, 8), incentive="OSA")
        self.associate(P4, s, "DPOR", d(before, 8))
        # 9 month-end boundaries
        _, s = customer("associations on month ends", -6, "D365_SALES", "WEB_DIRECT")
        self.associate(P2, s, "DPOR", d(-6, 8), eom(3))
        self.associate(P3, s, "DPOR", eom(3) + dt.timedelta(days=1))
        self.associate(P4, s, "CPOR", eom(5), incentive="OSU")
        self.associate(P1, s, "DPOR", eom(2), eom(2))
        # 10 mid-month handover
        _, s = customer("mid-month handover", -3, "D365_MARKETING", "CSP")
        self.associate(P2, s, "CSP", d(-3, 8), d(6, 15))
        self.associate(P3, s, "CSP", d(6, 16))
        # 11 EA agreement long before the window
        _, s = customer("EA before the window", -30, "D365_FINANCE", "EA", start_day=1)
        self.associate(P2, s, "DPOR", d(-30, 1))
        # 12 EA agreement inside the window
        _, s = customer("EA inside the window", 2, "D365_SUPPLY_CHAIN", "EA", start_day=17)
        s.extra_lines = {14: [(16, "CHARGE", 12345)]}
        self.associate(P3, s, "DPOR", d(2, 17))
        # 13 EA agreement on 29 February
        year = self.last_eom.year
        while not (_is_leap(year) and dt.date(year, 2, 29) <= self.last_eom):
            year -= 1
        leap = dt.date(year, 2, 29)
        lk = self.k_of(leap)
        _, s = customer("EA from 29 February", lk, "D365_SALES", "EA", start_day=29)
        s.extra_lines = {lk + 12: [(27, "CHARGE", 5000)]}
        self.associate(P4, s, "CPOR", leap, incentive="OSA")
        self.associate(P4, s, "CPOR", leap, incentive="OSU")
        # 14 credits
        _, s = customer("credits", before, "D365_MARKETING", "CSP", start_day=4)
        s.extra_lines = {k: [(20, "CREDIT", 9000)] for k in range(0, self.n, 3)}
        s.extra_lines[5] = [(21, "CREDIT", 10 * 7500 + 2500)]
        self.associate(P1, s, "CSP", d(before, 4))
        # 15 non-qualifying products
        t, s = customer("non-qualifying products", before, "M365_E3", "CSP")
        self.associate(P1, s, "CSP", d(before, 8))
        _, s = customer("", before, UNKNOWN_PRODUCT[0], "CSP", tenant=t)
        self.associate(P1, s, "CSP", d(before, 8))
        # 16, 17 non-qualifying channels
        for ch in ("MCA", "OTHER"):
            _, s = customer(f"channel {ch}", before, "D365_SALES", ch)
            s.mau_script = script(lambda k: 3 if k < 6 else 7)
            self.associate(P4, s, "DPOR", d(before, 8))
        # 18 trial, then paid
        _, s = customer("trial then paid", 1, "D365_SALES", "CSP", start_day=6)
        s.paid_from = 3
        s.mau0, s.mau_target, s.ramp = 1, 7, 3
        self.associate(P3, s, "CSP", d(1, 6))
        # 19 never paid
        _, s = customer("never paid", before, "D365_SALES", "CSP")
        s.paid_from = NEVER
        self.associate(P3, s, "CSP", d(before, 8))
        # 20 non-production
        _, s = customer("non-production", 0, "D365_SALES", "CSP", production=False)
        s.mau_script = script(lambda k: 1 if k < 2 else 9)
        self.associate(P3, s, "CSP", d(0, 8))
        # 21-24 MAU around 5
        for label, fn in (("MAU 4 then 5", lambda k: 4 if k < 12 else 5),
                          ("MAU 5 then 6", lambda k: 5 if k < 12 else 6),
                          ("MAU 6, 4, 6", lambda k: 6 if k == 0 else (4 if k <= 12 else 6)),
                          ("MAU always 4", lambda k: 4)):
            _, s = customer(label, before, "D365_BUSINESS_CENTRAL", "CSP")
            s.mau_script = script(fn)
            self.associate(P4, s, "CSP", d(before, 8))
        # 25 the MAU-baseline partner
        _, s = customer("MAU 49, 50, 51", before, "D365_SALES", "CSP")
        s.mau_script = script(lambda k: {0: 49, 1: 50, 2: 51}.get(k, 70))
        self.associate(P5, s, "CSP", d(before, 8))
        # 26 lost more than 12 months after the add
        _, s = customer("lost 13 months after the add", 1, "D365_SALES", "CSP", start_day=2)
        s.end_k = 14
        self.associate(P1, s, "CSP", d(1, 2))
        # 27 one of two subscriptions cancelled
        t, s = customer("one of two subscriptions cancelled", before, "D365_SALES", "CSP")
        s.end_k = 4
        self.associate(P1, s, "CSP", d(before, 8))
        _, s = customer("", before, "D365_BUSINESS_CENTRAL", "CSP", tenant=t)
        self.associate(P1, s, "CSP", d(before, 8))
        # 28 a paid customer without users
        _, s = customer("no users", before, "D365_BUSINESS_CENTRAL", "CSP")
        s.seats0, s.mau_target = 3, 0
        self.associate(P1, s, "CSP", d(before, 8))
        self.n_edge_tenants = len(self.tenants)

        # people
        long_ago = F - dt.timedelta(days=900)
        p = self.new_person()  # 1 moves mid-month
        self.pass_exam(p, "MB-800", long_ago)
        self.affiliate(p, P1, long_ago, d(3, 14))
        self.affiliate(p, P2, d(3, 15))
        p = self.new_person()  # 2 moves at a month end
        self.pass_exam(p, "PL-400", long_ago, long_ago + dt.timedelta(days=3650))
        self.affiliate(p, P2, long_ago, eom(4))
        self.affiliate(p, P3, eom(4) + dt.timedelta(days=1))
        p = self.new_person()  # 3 exam expires exactly at EOM(5)
        self.pass_exam(p, "PL-200", long_ago)
        self.pass_exam(p, "MB-210", eom(5) - dt.timedelta(days=730), eom(5))
        self.affiliate(p, P1, long_ago)
        p = self.new_person()  # 4 expires, passed again later
        self.pass_exam(p, "PL-400", d(3, 10) - dt.timedelta(days=730), d(3, 10))
        self.pass_exam(p, "PL-400", d(6, 22), d(6, 22) + dt.timedelta(days=730))
        self.affiliate(p, P3, long_ago)
        p = self.new_person()  # 5 incomplete combination + F&O developer
        self.pass_exam(p, "PL-200", long_ago)
        self.pass_exam(p, "MB-300", long_ago)
        self.pass_exam(p, "MB-500", long_ago + dt.timedelta(days=40))
        self.affiliate(p, P2, long_ago)
        p = self.new_person()  # 6 consultant and developer
        for code in ("MB-300", "MB-310", "MB-500"):
            self.pass_exam(p, code, long_ago)
        self.affiliate(p, P4, long_ago)
        p = self.new_person()  # 7 passes inside the window
        self.pass_exam(p, "MB-800", d(2, 20))
        self.affiliate(p, P4, long_ago)
        p = self.new_person()  # 8 leaves
        self.pass_exam(p, "PL-200", long_ago)
        self.pass_exam(p, "MB-230", long_ago)
        self.affiliate(p, P4, long_ago, d(7, 9))
        p = self.new_person()  # 9 joins
        self.pass_exam(p, "PL-400", long_ago)
        self.affiliate(p, P4, d(4, 3))

    # ---- archetype partners
    def _customer(self, pid: str, kind: str, start_k: int, base: bool) -> None:
        r, a = self.rng, ARCHETYPES[kind]
        production = r.random() < a["production"] if not base else True
        t = self.new_tenant(start_k, production=production)
        start = self.day(start_k, r.randint(1, 28))
        product = r.choice(a["products"])
        roll = r.random()
        atype = "CSP" if roll < 0.55 else ("DPOR" if roll < 0.8 else "CPOR")
        if atype == "CSP":
            channel = "CSP"
        elif base and r.random() < a["base_ea_old"]:
            channel = "EA"  # agreement older than a year: no revenue credit in the window
            start = self.day(start_k - 12, start.day) if start_k > -13 else start
            t.start_k = min(t.start_k, self.k_of(start))
        else:
            channel = "EA" if r.random() < 0.4 else "WEB_DIRECT"
        s = self.new_sub(t, product, channel, start)
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
            s.end_k = r.randint(max(s.start_k + 1, 1), self.n + 6)
            if s.end_k < self.n and r.random() < 0.5:
                vto = self.day(s.end_k, r.randint(1, 28))
        if r.random() < a["gap"] and self.n > 3:
            g = r.randint(max(s.start_k + 1, 1), max(s.start_k + 1, 1) + self.n)
            s.gap = (g, g + r.randint(1, 2))
        subs = [s]
        if r.random() < a["second_qualifying"]:
            s2 = self.new_sub(t, r.choice(a["products"]), channel, start,
                              ea_start=s.ea_start)
            s2.seats0, s2.end_k = r.randint(*a["seats"]), s.end_k
            s2.mau0, s2.mau_target, s2.ramp, s2.growth = s.mau0, s.mau_target, s.ramp, s.growth
            subs.append(s2)
        if r.random() < 0.25:
            s3 = self.new_sub(t, r.choice(self.other_products),
                              "CSP" if atype == "CSP" else "WEB_DIRECT", start)
            s3.seats0, s3.mau0, s3.mau_target = r.randint(5, 50), 10, r.randint(5, 60)
            subs.append(s3)
        for sub in subs:
            vfrom = start
            if atype == "CPOR":
                self.associate(pid, sub, "CPOR", vfrom, vto, "OSA")
                self.associate(pid, sub, "CPOR", vfrom, vto, "OSU")
            else:
                self.associate(pid, sub, atype, vfrom, vto)

    def _people(self, pid: str, kind: str) -> None:
        r, a = self.rng, ARCHETYPES[kind]
        window_end = self.last_eom

        def stable_passes(person, codes):
            for code in codes:
                passed = self.first - dt.timedelta(days=r.randint(30, 900))
                if r.random() < 0.5:
                    self.pass_exam(person, code, passed)
                    continue
                while True:  # two-year certifications, renewed before they lapse
                    expires = passed + dt.timedelta(days=730)
                    self.pass_exam(person, code, passed, expires)
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

        since = lambda: self.first - dt.timedelta(days=r.randint(60, 2000))  # noqa: E731
        for _ in range(r.randint(*a["fc"])):
            p = self.new_person()
            codes = fc_codes()
            if r.random() < 0.3:
                codes.append(r.choice(FUNDAMENTALS))
            stable_passes(p, codes)
            self.affiliate(p, pid, since())
        for _ in range(r.randint(*a["dev"])):
            p = self.new_person()
            stable_passes(p, dev_codes())
            self.affiliate(p, pid, since())
        for _ in range(r.randint(*a["extras"])):
            p = self.new_person()
            role = r.choice(("uncertified", "partial", "expiring", "mover", "joiner", "leaver"))
            in_window = self.day(r.randint(0, self.n - 1), r.randint(1, 28))
            if role == "uncertified":
                stable_passes(p, [r.choice(FUNDAMENTALS)])
            elif role == "partial":
                stable_passes(p, [r.choice(("PL-200", "MB-300", "MB-210", "MB-310"))])
            elif role == "expiring":
                codes = dev_codes() if kind == "weak" else fc_codes()
                for code in codes:
                    self.pass_exam(p, code, in_window - dt.timedelta(days=730), in_window)
            elif kind != "weak":
                stable_passes(p, fc_codes() if r.random() < 0.6 else dev_codes())
            else:
                stable_passes(p, [r.choice(FUNDAMENTALS)])
            if role == "mover":
                others = [q for q in self.by_kind[kind] if q != pid]
                if others:
                    self.affiliate(p, pid, since(), in_window)
                    self.affiliate(p, r.choice(others), in_window + dt.timedelta(days=1))
                    continue
            if role == "joiner":
                self.affiliate(p, pid, in_window)
            elif role == "leaver":
                self.affiliate(p, pid, since(), in_window)
            else:
                self.affiliate(p, pid, since())

    def _build_archetypes(self) -> None:
        r = self.rng
        for pid, _, _ in self.partners[N_EDGE_PARTNERS:]:
            kind = self.archetype[pid]
            a = ARCHETYPES[kind]
            for _ in range(r.randint(*a["base"])):
                self._customer(pid, kind, -r.randint(2, 36), base=True)
            phase = r.random()
            for k in range(self.n):
                new = int((k + 1) * a["rate"] + phase) - int(k * a["rate"] + phase)
                for _ in range(new):
                    self._customer(pid, kind, k, base=False)
                if len(self.tenants) > self.n_tenants:
                    raise ValueError(
                        f"--tenants {self.n_tenants} is too small for {len(self.partners)} "
                        f"partners over {self.n} months: the scripted cases and the "
                        f"archetype partners' customers alone need more; use at least "
                        f"{self._tenants_needed()}")
            self._people(pid, kind)

    def _tenants_needed(self) -> int:
        """An upper bound of the tenants the edge cases and archetypes use."""
        need = self.n_edge_tenants
        for pid, _, _ in self.partners[N_EDGE_PARTNERS:]:
            a = ARCHETYPES[self.archetype[pid]]
            need += a["base"][1] + int(a["rate"] * self.n) + 1
        return need

    # ---- filler tenants: not needed by the archetypes
    def _build_filler(self) -> None:
        r = self.rng
        gold = self.by_kind["gold"]
        everyone = [p[0] for p in self.partners[N_EDGE_PARTNERS:]]
        while len(self.tenants) < self.n_tenants:
            start_k = r.randint(-24, self.n - 1)
            roll = r.random()
            production = not (0.85 <= roll < 0.92)
            t = self.new_tenant(start_k, production=production)
            start = self.day(start_k, r.randint(1, 28))
            seats, mau = r.randint(1, 60), r.randint(0, 80)
            if roll < 0.40:  # direct customers of qualifying products
                channel = "EA" if r.random() < 0.4 else "WEB_DIRECT"
                s = self.new_sub(t, r.choice(self.qualifying), channel, start)
                partner = None
            elif roll < 0.55:  # non-qualifying products, any partner
                s = self.new_sub(t, r.choice(self.other_products), "CSP", start)
                partner = ("CSP", r.choice(everyone), start)
            elif roll < 0.65:  # non-qualifying channels
                s = self.new_sub(t, r.choice(self.qualifying), r.choice(("MCA", "OTHER")), start)
                partner = ("DPOR", r.choice(gold), start) if r.random() < 0.5 else None
            elif roll < 0.75:  # a partner joins after the customer came direct
                s = self.new_sub(t, r.choice(self.qualifying), "WEB_DIRECT", start)
                partner = (r.choice(("DPOR", "CPOR")), r.choice(gold),
                           self.day(start_k + r.randint(1, 8), r.randint(1, 28)))
            elif roll < 0.85:  # trials (some never paid)
                s = self.new_sub(t, r.choice(self.qualifying), "CSP", start)
                s.paid_from = NEVER if r.random() < 0.3 else start_k + r.randint(1, 3)
                partner = ("CSP", r.choice(gold), start) if r.random() < 0.5 else None
            elif roll < 0.92:  # non-production tenants
                s = self.new_sub(t, r.choice(self.qualifying), "CSP", start)
                partner = ("CSP", r.choice(gold), start)
            else:  # overlaps between gold partners on one subscription
                s = self.new_sub(t, r.choice(self.qualifying), "WEB_DIRECT", start)
                p1, p2 = r.choice(gold), r.choice(gold)
                self.associate(p1, s, "DPOR", start)
                partner = ("CPOR", p2,
                           max(start, self.day(start_k + r.randint(0, 6), r.randint(1, 28))))
            s.seats0, s.seat_step = seats, r.randint(0, 4)
            s.mau0, s.mau_target, s.ramp = r.randint(0, 4), mau, r.randint(0, 4)
            s.growth = r.choice((0.98, 1.0, 1.01, 1.03))
            if r.random() < 0.08:
                s.end_k = r.randint(max(start_k + 1, 1), self.n + 12)
            if r.random() < 0.05:
                g = r.randint(max(start_k + 1, 1), self.n + 2)
                s.gap = (g, g + r.randint(1, 3))
            if partner is not None:
                atype, pid, vfrom = partner
                if atype == "CPOR":
                    inc = r.choice(("OSA", "OSU", "BOTH"))
                    for i in (("OSA", "OSU") if inc == "BOTH" else (inc,)):
                        self.associate(pid, s, "CPOR", vfrom, incentive=i)
                else:
                    self.associate(pid, s, atype, vfrom)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


# --------------------------------------------------------------------------- writing

class _HashedCsv:
    """A csv writer that streams to ``path`` in chunks and hashes the bytes it writes."""

    CHUNK = 4096

    def __init__(self, path: Path, header: list[str]):
        self.path = path
        self.fh = open(path, "wb")
        self.sha = hashlib.sha256()
        self.buf = io.StringIO()
        self.writer = csv.writer(self.buf, lineterminator="\n")
        self.rows = 0
        self._pending = 0
        self.writer.writerow(header)

    def row(self, values) -> None:
        self.writer.writerow(values)
        self.rows += 1
        self._pending += 1
        if self._pending >= self.CHUNK:
            self._flush()

    def _flush(self) -> None:
        data = self.buf.getvalue().encode("utf-8")
        self.sha.update(data)
        self.fh.write(data)
        self.buf.seek(0)
        self.buf.truncate(0)
        self._pending = 0

    def close(self) -> dict:
        self._flush()
        self.fh.close()
        return {"rows": self.rows, "sha256": self.sha.hexdigest()}


def _iso(d: dt.date | None) -> str:
    return "" if d is None else d.isoformat()


def _amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _write_month(world: World, k: int, folder: Path) -> None:
    """Write the ten files and then the manifest of export month ``k``."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST
    if manifest_path.exists():
        manifest_path.unlink()  # not ready while being rewritten
    month = world.month(k)
    eom = end_of_month(month)
    rng = world.rng
    files: dict[str, dict] = {}

    def out(name: str) -> _HashedCsv:
        f = FILES_BY_NAME[name]
        return _HashedCsv(folder / f.filename, f.column_names)

    w = out("partners")
    for row in world.partners:
        w.row(row)
    files["partners.csv"] = w.close()

    w = out("tenants")
    for t in world.tenants:
        if t.start_k <= k:
            w.row((t.tid, t.name, "true" if t.production else "false"))
    files["tenants.csv"] = w.close()

    w = out("products")
    for row in world.product_rows():
        w.row(row)
    files["products.csv"] = w.close()

    live = [s for s in world.subs if s.start_k <= k]
    w = out("subscriptions")
    for s in live:
        w.row((s.sid, s.tid, s.product, s.channel, "true" if s.paid(k) else "false",
               _iso(s.ea_start)))
    files["subscriptions.csv"] = w.close()

    w = out("partner_associations")
    for a in world.assocs:
        if a.vfrom <= eom:
            vto = a.vto if a.vto is not None and a.vto <= eom else None
            w.row((a.aid, a.pid, a.sid, a.atype, a.incentive, a.vfrom.isoformat(), _iso(vto)))
    files["partner_associations.csv"] = w.close()

    w = out("partner_people")
    for person, pid, vfrom, vto in world.affiliations:
        if vfrom <= eom:
            w.row((person, pid, vfrom.isoformat(),
                   vto.isoformat() if vto is not None and vto <= eom else ""))
    files["partner_people.csv"] = w.close()

    w = out("exam_passes")
    for person, code, passed, expires in world.passes:
        if passed <= eom:
            w.row((person, code, passed.isoformat(), _iso(expires)))
    files["exam_passes.csv"] = w.close()

    # monthly facts
    last_day = eom.day
    prefix = f"L{month.year:04d}{month.month:02d}-"
    n_line = 0
    w = out("billing_lines")
    for s in live:
        lines = []
        if s.paid(k):
            seats = s.seats(k)
            if seats:
                day = min(s.bill_day, last_day)
                cents = seats * s.price
                lines.append((day, "CHARGE", cents))
                if s.credits and rng.random() < 0.03:
                    lines.append((rng.randint(day, last_day), "CREDIT",
                                  cents * rng.randint(10, 50) // 100))
            if s.extra_lines and k in s.extra_lines:
                lines.extend(s.extra_lines[k])
        for day, line_type, cents in lines:
            n_line += 1
            w.row((f"{prefix}{n_line:07d}", month.replace(day=day).isoformat(), s.sid,
                   line_type, _amount(cents)))
    files["billing_lines.csv"] = w.close()

    w = out("seat_snapshots")
    for s in live:
        v = s.seats(k)
        if v is not None:
            w.row((s.sid, v))
    files["seat_snapshots.csv"] = w.close()

    w = out("mau_snapshots")
    for s in live:
        v = s.mau(k)
        if v is not None:
            w.row((s.sid, v))
    files["mau_snapshots.csv"] = w.close()

    manifest = {"export_month": format_month(month),
                "files": {f.filename: files[f.filename] for f in FILES}}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, manifest_path)


def generate(out_dir, first: dt.date, months: int, partners: int, tenants: int, seed: int,
             progress: bool | None = None) -> list[Path]:
    """Write ``months`` export folders under ``out_dir``; return them, oldest first.

    ``first`` is the first export month (a date on the 1st, or ``"YYYY-MM"``).

    ``progress``: show a progress bar on standard error (default: only when
    standard error is a terminal).  Raises ``ValueError`` on arguments the
    world cannot be built from.
    """
    if isinstance(first, str):
        first = parse_month(first)
    if first.day != 1:
        raise ValueError(f"first must be the first day of a month, got {first}")
    world = World(first, months, partners, tenants, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folders = [out / format_month(world.month(k)) for k in range(months)]

    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    show = console.is_terminal if progress is None else progress
    with Progress(console=console, disable=not show, transient=True) as bar:
        task = bar.add_task("generating exports", total=months)
        for k, folder in enumerate(folders):
            bar.update(task, description=f"generating {folder.name}")
            _write_month(world, k, folder)
            bar.advance(task)
    return folders


# --------------------------------------------------------------------------- CLI

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
