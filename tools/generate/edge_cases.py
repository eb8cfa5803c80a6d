"""Scripted edge cases: the first five partners, 28 tenants and nine people.

Months are offsets ``k`` from ``--first``; a case whose month lies beyond the
window simply does not happen.

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

import datetime as dt

from .catalogue import UNKNOWN_PRODUCT
from .entities import NEVER
from .state import WorldState


def build_edge_cases(world: WorldState) -> None:
    """Plant the scripted cases below on the edge partners ``P00001``-``P00005``."""
    P1, P2, P3, P4, P5 = (f"P{i:05d}" for i in range(1, 6))
    d, eom, script, F = world.day, world.eom, world.script, world.first
    before = -14  # a start month before the window

    def customer(name, start_k, product, channel, start_day=8, production=True,
                 tenant=None, **kw):
        t = tenant or world.new_tenant(start_k, f"Edge {len(world.tenants) + 1:02d} {name}",
                                       production)
        s = world.new_sub(t, product, channel, d(start_k, start_day), **kw)
        s.credits = False
        s.seats0, s.mau_target = 10, 8
        return t, s

    # 1 seats drop to zero and come back
    _, s = customer("seats drop to zero and return", before, "D365_SALES", "CSP")
    s.seat_script = script(lambda k: {2: 0, 3: None}.get(k, 10))
    world.associate(P1, s, "CSP", d(before, 8))
    # 2 added in k=1, cancelled in k=6
    _, s = customer("added then lost", 1, "D365_BUSINESS_CENTRAL", "CSP", start_day=10)
    s.seats0, s.end_k = 5, 6
    world.associate(P1, s, "CSP", d(1, 10), d(6, 3))
    # 3 customer before the window, cancelled in k=5
    _, s = customer("old customer lost", -20, "D365_SALES", "CSP")
    s.end_k = 5
    world.associate(P1, s, "CSP", d(-20, 8))
    # 4 direct, partner joins later
    _, s = customer("direct then partner joins", 1, "D365_BUSINESS_CENTRAL", "WEB_DIRECT",
                    start_day=5)
    world.associate(P2, s, "DPOR", d(4, 12))
    # 5 direct, never associated
    customer("direct customer", 2, "D365_SALES", "WEB_DIRECT")
    # 6 all association types on one subscription
    _, s = customer("all association types", 1, "D365_FIELD_SERVICE", "CSP", start_day=3)
    world.associate(P1, s, "CSP", d(1, 3))
    world.associate(P2, s, "CPOR", d(1, 3), incentive="OSA")
    world.associate(P3, s, "CPOR", d(1, 3), incentive="OSU")
    world.associate(P4, s, "DPOR", d(1, 3))
    world.associate(P1, s, "DPOR", d(1, 3))
    # 7 CPOR-OSU and DPOR
    _, s = customer("CPOR OSU and DPOR", before, "D365_CUSTOMER_SERVICE", "WEB_DIRECT")
    world.associate(P3, s, "CPOR", d(before, 8), incentive="OSU")
    world.associate(P4, s, "DPOR", d(before, 8))
    # 8 CPOR-OSA and DPOR
    _, s = customer("CPOR OSA and DPOR", before, "D365_SALES", "WEB_DIRECT")
    world.associate(P2, s, "CPOR", d(before, 8), incentive="OSA")
    world.associate(P4, s, "DPOR", d(before, 8))
    # 9 month-end boundaries
    _, s = customer("associations on month ends", -6, "D365_SALES", "WEB_DIRECT")
    world.associate(P2, s, "DPOR", d(-6, 8), eom(3))
    world.associate(P3, s, "DPOR", eom(3) + dt.timedelta(days=1))
    world.associate(P4, s, "CPOR", eom(5), incentive="OSU")
    world.associate(P1, s, "DPOR", eom(2), eom(2))
    # 10 mid-month handover
    _, s = customer("mid-month handover", -3, "D365_MARKETING", "CSP")
    world.associate(P2, s, "CSP", d(-3, 8), d(6, 15))
    world.associate(P3, s, "CSP", d(6, 16))
    # 11 EA agreement long before the window
    _, s = customer("EA before the window", -30, "D365_FINANCE", "EA", start_day=1)
    world.associate(P2, s, "DPOR", d(-30, 1))
    # 12 EA agreement inside the window
    _, s = customer("EA inside the window", 2, "D365_SUPPLY_CHAIN", "EA", start_day=17)
    s.extra_lines = {14: [(16, "CHARGE", 12345)]}
    world.associate(P3, s, "DPOR", d(2, 17))
    # 13 EA agreement on 29 February
    year = world.last_eom.year
    while not (_is_leap(year) and dt.date(year, 2, 29) <= world.last_eom):
        year -= 1
    leap = dt.date(year, 2, 29)
    lk = world.k_of(leap)
    _, s = customer("EA from 29 February", lk, "D365_SALES", "EA", start_day=29)
    s.extra_lines = {lk + 12: [(27, "CHARGE", 5000)]}
    world.associate(P4, s, "CPOR", leap, incentive="OSA")
    world.associate(P4, s, "CPOR", leap, incentive="OSU")
    # 14 credits
    _, s = customer("credits", before, "D365_MARKETING", "CSP", start_day=4)
    s.extra_lines = {k: [(20, "CREDIT", 9000)] for k in range(0, world.n, 3)}
    s.extra_lines[5] = [(21, "CREDIT", 10 * 7500 + 2500)]
    world.associate(P1, s, "CSP", d(before, 4))
    # 15 non-qualifying products
    t, s = customer("non-qualifying products", before, "M365_E3", "CSP")
    world.associate(P1, s, "CSP", d(before, 8))
    _, s = customer("", before, UNKNOWN_PRODUCT[0], "CSP", tenant=t)
    world.associate(P1, s, "CSP", d(before, 8))
    # 16, 17 non-qualifying channels
    for ch in ("MCA", "OTHER"):
        _, s = customer(f"channel {ch}", before, "D365_SALES", ch)
        s.mau_script = script(lambda k: 3 if k < 6 else 7)
        world.associate(P4, s, "DPOR", d(before, 8))
    # 18 trial, then paid
    _, s = customer("trial then paid", 1, "D365_SALES", "CSP", start_day=6)
    s.paid_from = 3
    s.mau0, s.mau_target, s.ramp = 1, 7, 3
    world.associate(P3, s, "CSP", d(1, 6))
    # 19 never paid
    _, s = customer("never paid", before, "D365_SALES", "CSP")
    s.paid_from = NEVER
    world.associate(P3, s, "CSP", d(before, 8))
    # 20 non-production
    _, s = customer("non-production", 0, "D365_SALES", "CSP", production=False)
    s.mau_script = script(lambda k: 1 if k < 2 else 9)
    world.associate(P3, s, "CSP", d(0, 8))
    # 21-24 MAU around 5
    for label, fn in (("MAU 4 then 5", lambda k: 4 if k < 12 else 5),
                      ("MAU 5 then 6", lambda k: 5 if k < 12 else 6),
                      ("MAU 6, 4, 6", lambda k: 6 if k == 0 else (4 if k <= 12 else 6)),
                      ("MAU always 4", lambda k: 4)):
        _, s = customer(label, before, "D365_BUSINESS_CENTRAL", "CSP")
        s.mau_script = script(fn)
        world.associate(P4, s, "CSP", d(before, 8))
    # 25 the MAU-baseline partner
    _, s = customer("MAU 49, 50, 51", before, "D365_SALES", "CSP")
    s.mau_script = script(lambda k: {0: 49, 1: 50, 2: 51}.get(k, 70))
    world.associate(P5, s, "CSP", d(before, 8))
    # 26 lost more than 12 months after the add
    _, s = customer("lost 13 months after the add", 1, "D365_SALES", "CSP", start_day=2)
    s.end_k = 14
    world.associate(P1, s, "CSP", d(1, 2))
    # 27 one of two subscriptions cancelled
    t, s = customer("one of two subscriptions cancelled", before, "D365_SALES", "CSP")
    s.end_k = 4
    world.associate(P1, s, "CSP", d(before, 8))
    _, s = customer("", before, "D365_BUSINESS_CENTRAL", "CSP", tenant=t)
    world.associate(P1, s, "CSP", d(before, 8))
    # 28 a paid customer without users
    _, s = customer("no users", before, "D365_BUSINESS_CENTRAL", "CSP")
    s.seats0, s.mau_target = 3, 0
    world.associate(P1, s, "CSP", d(before, 8))
    world.n_edge_tenants = len(world.tenants)

    # people
    long_ago = F - dt.timedelta(days=900)
    p = world.new_person()  # 1 moves mid-month
    world.pass_exam(p, "MB-800", long_ago)
    world.affiliate(p, P1, long_ago, d(3, 14))
    world.affiliate(p, P2, d(3, 15))
    p = world.new_person()  # 2 moves at a month end
    world.pass_exam(p, "PL-400", long_ago, long_ago + dt.timedelta(days=3650))
    world.affiliate(p, P2, long_ago, eom(4))
    world.affiliate(p, P3, eom(4) + dt.timedelta(days=1))
    p = world.new_person()  # 3 exam expires exactly at EOM(5)
    world.pass_exam(p, "PL-200", long_ago)
    world.pass_exam(p, "MB-210", eom(5) - dt.timedelta(days=730), eom(5))
    world.affiliate(p, P1, long_ago)
    p = world.new_person()  # 4 expires, passed again later
    world.pass_exam(p, "PL-400", d(3, 10) - dt.timedelta(days=730), d(3, 10))
    world.pass_exam(p, "PL-400", d(6, 22), d(6, 22) + dt.timedelta(days=730))
    world.affiliate(p, P3, long_ago)
    p = world.new_person()  # 5 incomplete combination + F&O developer
    world.pass_exam(p, "PL-200", long_ago)
    world.pass_exam(p, "MB-300", long_ago)
    world.pass_exam(p, "MB-500", long_ago + dt.timedelta(days=40))
    world.affiliate(p, P2, long_ago)
    p = world.new_person()  # 6 consultant and developer
    for code in ("MB-300", "MB-310", "MB-500"):
        world.pass_exam(p, code, long_ago)
    world.affiliate(p, P4, long_ago)
    p = world.new_person()  # 7 passes inside the window
    world.pass_exam(p, "MB-800", d(2, 20))
    world.affiliate(p, P4, long_ago)
    p = world.new_person()  # 8 leaves
    world.pass_exam(p, "PL-200", long_ago)
    world.pass_exam(p, "MB-230", long_ago)
    world.affiliate(p, P4, long_ago, d(7, 9))
    p = world.new_person()  # 9 joins
    world.pass_exam(p, "PL-400", long_ago)
    world.affiliate(p, P4, d(4, 3))


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
