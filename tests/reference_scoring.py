"""Reference scoring: the rules of pci-rules.md computed row by row in Python.

Independent of the dbt models on purpose: it reads the raw tables into plain
Python dicts and lists and applies each rule as written, one partner and month
at a time, without reusing any SQL. The scoring tests compare every column of
the dbt mart against it.

Decisions it shares with the project (docs/rules.md): the state of month m is
read from the export of month m; a metric's points are computed from the
metric value as published (revenue rounded half-up to cents).
"""
from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from pci.core.contract import FILES, FILES_BY_NAME, add_months, end_of_month, ensure_raw_schema, month_range

QUALIFYING_PRODUCTS = {
    "D365_SALES", "D365_MARKETING", "D365_CUSTOMER_SERVICE", "D365_FIELD_SERVICE",
    "D365_PROJECT_SERVICE", "D365_PLAN1", "MS_RELATIONSHIP_SALES",
    "D365_BUSINESS_CENTRAL", "D365_CAPACITY_STORAGE", "D365_FINANCE", "D365_SUPPLY_CHAIN",
    "D365_COMMERCE", "D365_HUMAN_RESOURCES", "D365_FRAUD_PROTECTION", "D365_PLAN2",
    "D365_MIXED_REALITY", "D365_TEAM_MEMBERS",
}
QUALIFYING_CHANNELS = {"EA", "CSP", "WEB_DIRECT"}

# certification -> (metric number, list of allowed exam combinations)
CERTIFICATIONS = {
    "CE Functional Consultant Associate":
        (3, [{"PL-200", x} for x in ("MB-210", "MB-220", "MB-230", "MB-240")]),
    "F&O Functional Consultant Associate":
        (3, [{"MB-300", x} for x in ("MB-310", "MB-320", "MB-330")]),
    "Business Central Functional Consultant Associate": (3, [{"MB-800"}]),
    "CE Developer Associate": (4, [{"PL-400"}]),
    "F&O Developer Associate": (4, [{"MB-300", x} for x in ("MB-500", "MB-700")]),
}

# metric -> (threshold, max points)
POINTS = {
    "net_new_revenue": (Fraction(30000), 10),
    "net_customer_adds": (Fraction(10), 10),
    "functional_consultants": (Fraction(5), 30),
    "developers": (Fraction(2), 5),
    "new_deployments": (Fraction(10), 20),
    "mau_growth": (Fraction(35, 100), 25),
}

COLUMNS = [
    "score_month", "partner_id", "net_new_revenue_usd", "net_customer_adds",
    "functional_consultants", "developers", "new_deployments", "mau_baseline", "mau_current",
    "mau_growth", "points_net_new_revenue", "points_net_customer_adds",
    "points_functional_consultants", "points_developers", "points_new_deployments",
    "points_mau_growth", "pci_score", "competency_level", "window_complete",
]


def one_year_after(d: dt.date) -> dt.date:
    try:
        return d.replace(year=d.year + 1)
    except ValueError:  # 29 February -> 28 February
        return d.replace(year=d.year + 1, day=28)


def in_effect(valid_from: dt.date, valid_to: dt.date | None, month: dt.date) -> bool:
    eom = end_of_month(month)
    return valid_from <= eom and (valid_to is None or valid_to >= eom)


def points(value: Fraction, metric: str) -> Decimal:
    threshold, max_points = POINTS[metric]
    share = min(max(value, Fraction(0)) / threshold, Fraction(1))
    hundredths = Fraction(max_points) * share * 100
    rounded = (hundredths + Fraction(1, 2)).__floor__()  # half-up, value >= 0
    return Decimal(rounded) / 100


class RawWorld:
    """The raw tables, per export month, as Python dicts."""

    def __init__(self, con):
        self.landed = {r[0] for r in con.execute(
            "SELECT DISTINCT export_month FROM raw.loads WHERE is_current").fetchall()}
        self.rows: dict[str, dict[dt.date, list[dict]]] = {}
        for f in FILES:
            cols = f.column_names
            data = con.execute(
                f"SELECT {', '.join(cols)}, export_month FROM raw.{f.name}").fetchall()
            per_month: dict[dt.date, list[dict]] = defaultdict(list)
            for r in data:
                per_month[r[-1]].append(dict(zip(cols, r[:-1])))
            self.rows[f.name] = per_month
        self.subs = {m: {s["subscription_id"]: s for s in rows}
                     for m, rows in self.rows["subscriptions"].items()}
        self.seats = {m: {s["subscription_id"]: s["paid_seats"] for s in rows}
                      for m, rows in self.rows["seat_snapshots"].items()}
        self.mau = {m: {s["subscription_id"]: s["monthly_active_users"] for s in rows}
                    for m, rows in self.rows["mau_snapshots"].items()}
        self.tenants = {m: {t["tenant_id"]: t for t in rows}
                        for m, rows in self.rows["tenants"].items()}
        self.assocs: dict[dt.date, dict[str, list[dict]]] = {}
        for m, rows in self.rows["partner_associations"].items():
            by_sub: dict[str, list[dict]] = defaultdict(list)
            for a in rows:
                by_sub[a["subscription_id"]].append(a)
            self.assocs[m] = by_sub
        self.subs_by_tenant: dict[dt.date, dict[str, list[dict]]] = {}
        for m, subs in self.subs.items():
            by_tenant: dict[str, list[dict]] = defaultdict(list)
            for s in subs.values():
                by_tenant[s["tenant_id"]].append(s)
            self.subs_by_tenant[m] = by_tenant
        self.all_tenants = sorted({s["tenant_id"] for subs in self.subs.values()
                                   for s in subs.values()})
        self._credit_cache: dict = {}
        self._seat_cache: dict = {}

    # ---- credit (who gets credit for a subscription)
    def credited(self, month: dt.date, sub_id: str, family: str) -> set[str]:
        key = (month, sub_id, family)
        if key in self._credit_cache:
            return self._credit_cache[key]
        out: set[str] = set()
        sub = self.subs.get(month, {}).get(sub_id) if month in self.landed else None
        if sub is not None and sub["is_paid"]:
            live = [a for a in self.assocs.get(month, {}).get(sub_id, [])
                    if in_effect(a["valid_from"], a["valid_to"], month)]
            incentive = "OSA" if family == "transaction" else "OSU"
            csp = {a["partner_id"] for a in live if a["association_type"] == "CSP"}
            cpor = {a["partner_id"] for a in live
                    if a["association_type"] == "CPOR" and a["cpor_incentive"] == incentive}
            dpor = {a["partner_id"] for a in live if a["association_type"] == "DPOR"}
            out = csp | (cpor if cpor else dpor)
        self._credit_cache[key] = out
        return out

    # ---- metric 1
    def revenue(self, partner: str, month: dt.date) -> Decimal:
        total = Decimal(0)
        for k in range(-11, 1):
            m = add_months(month, k)
            if m not in self.landed:
                continue
            for line in self.rows["billing_lines"].get(m, []):
                sub = self.subs.get(m, {}).get(line["subscription_id"])
                if sub is None:
                    continue
                if sub["product_id"] not in QUALIFYING_PRODUCTS:
                    continue
                if sub["sales_channel"] not in QUALIFYING_CHANNELS:
                    continue
                if sub["sales_channel"] == "EA":
                    start = sub["ea_agreement_start"]
                    if not (start <= line["billing_date"] < one_year_after(start)):
                        continue
                billing_month = line["billing_date"].replace(day=1)
                if partner not in self.credited(billing_month, line["subscription_id"],
                                                "transaction"):
                    continue
                amount = Decimal(line["amount_usd"])
                total += amount if line["line_type"] == "CHARGE" else -amount
        return total

    # ---- metric 2
    def counting_subs(self, tenant: str, month: dt.date) -> list[str]:
        return [s["subscription_id"] for s in self.subs_by_tenant.get(month, {}).get(tenant, [])
                if s["is_paid"]
                and s["product_id"] in QUALIFYING_PRODUCTS
                and s["sales_channel"] in QUALIFYING_CHANNELS]

    def tenant_seats(self, tenant: str, month: dt.date) -> int:
        key = (tenant, month)
        if key not in self._seat_cache:
            self._seat_cache[key] = sum(self.seats.get(month, {}).get(s, 0)
                                        for s in self.counting_subs(tenant, month))
        return self._seat_cache[key]

    def add_partners(self, tenant: str, month: dt.date) -> set[str]:
        out: set[str] = set()
        for s in self.counting_subs(tenant, month):
            out |= self.credited(month, s, "transaction")
        return out

    def customer_adds(self, partner: str, month: dt.date) -> int:
        tenants = self.all_tenants
        value = 0
        for k in range(-11, 1):
            m = add_months(month, k)
            prev = add_months(m, -1)
            if m not in self.landed or prev not in self.landed:
                continue
            for t in tenants:
                before, now = self.tenant_seats(t, prev), self.tenant_seats(t, m)
                if before == 0 and now > 0 and partner in self.add_partners(t, m):
                    value += 1
                if before > 0 and now == 0:
                    # walk back to the first month of the spell the loss ends
                    start = prev
                    while (add_months(start, -1) in self.landed
                           and self.tenant_seats(t, add_months(start, -1)) > 0):
                        start = add_months(start, -1)
                    if add_months(start, -1) not in self.landed:
                        continue  # spell began before the earliest landed month
                    if start < add_months(m, -12):
                        continue  # add older than 12 months
                    if partner in self.add_partners(t, start):
                        value -= 1
        return value

    # ---- metrics 3 and 4
    def certified(self, partner: str, month: dt.date) -> tuple[int, int]:
        eom = end_of_month(month)
        people = {p["person_id"] for p in self.rows["partner_people"].get(month, [])
                  if p["partner_id"] == partner and in_effect(p["valid_from"], p["valid_to"], month)}
        consultants, developers = set(), set()
        for person in people:
            active = {e["exam_code"] for e in self.rows["exam_passes"].get(month, [])
                      if e["person_id"] == person and e["passed_on"] <= eom
                      and (e["expires_on"] is None or e["expires_on"] > eom)}
            for metric, combos in CERTIFICATIONS.values():
                if any(c <= active for c in combos):
                    (consultants if metric == 3 else developers).add(person)
        return len(consultants), len(developers)

    # ---- metrics 5 and 6
    def sub_mau(self, sub_id: str, month: dt.date) -> int:
        if month not in self.landed:
            return 0
        return self.mau.get(month, {}).get(sub_id, 0)

    def deployments(self, partner: str, month: dt.date) -> int:
        tenants = set()
        for s in self.subs.get(month, {}).values():
            if not s["is_paid"] or s["product_id"] not in QUALIFYING_PRODUCTS:
                continue
            sid = s["subscription_id"]
            crossed = (self.sub_mau(sid, add_months(month, -12)) < 5
                       and any(self.sub_mau(sid, add_months(month, k)) >= 5 for k in range(-11, 1)))
            if not crossed or partner not in self.credited(month, sid, "usage"):
                continue
            tenant = self.tenants.get(month, {}).get(s["tenant_id"])
            if tenant is not None and tenant["is_production"]:
                tenants.add(s["tenant_id"])
        return len(tenants)

    def partner_mau(self, partner: str, month: dt.date) -> int:
        if month not in self.landed:
            return 0
        return sum(self.sub_mau(s["subscription_id"], month)
                   for s in self.subs.get(month, {}).values()
                   if s["is_paid"] and s["product_id"] in QUALIFYING_PRODUCTS
                   and partner in self.credited(month, s["subscription_id"], "usage"))

    # ---- a row of the mart
    def score(self, partner: str, month: dt.date) -> dict:
        revenue = self.revenue(partner, month).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        adds = self.customer_adds(partner, month)
        consultants, developers = self.certified(partner, month)
        deployments = self.deployments(partner, month)
        current = self.partner_mau(partner, month)
        baseline = self.partner_mau(partner, add_months(month, -12))
        eligible = baseline >= 50
        growth = (current - baseline) / baseline if eligible else None
        pts = {
            "points_net_new_revenue": points(Fraction(revenue), "net_new_revenue"),
            "points_net_customer_adds": points(Fraction(adds), "net_customer_adds"),
            "points_functional_consultants": points(Fraction(consultants), "functional_consultants"),
            "points_developers": points(Fraction(developers), "developers"),
            "points_new_deployments": points(Fraction(deployments), "new_deployments"),
            "points_mau_growth": (points(Fraction(current - baseline, baseline), "mau_growth")
                                  if eligible else Decimal("0.00")),
        }
        score = sum(pts.values(), Decimal("0.00"))
        level = "gold" if score >= 80 else "silver" if score >= 60 else "none"
        return {
            "score_month": month, "partner_id": partner,
            "net_new_revenue_usd": revenue, "net_customer_adds": adds,
            "functional_consultants": consultants, "developers": developers,
            "new_deployments": deployments, "mau_baseline": baseline, "mau_current": current,
            "mau_growth": growth, **pts, "pci_score": score, "competency_level": level,
            "window_complete": all(add_months(month, -k) in self.landed for k in range(13)),
        }

    def scores(self, month: dt.date) -> list[dict]:
        partners = sorted(p["partner_id"] for p in self.rows["partners"].get(month, []))
        return [self.score(p, month) for p in partners]


# ---------------------------------------------------------------------------
# A small random world written straight into the raw tables, for the tests.
#
# Seeded and deterministic. It is built to hit the edges of the rules: CSP,
# CPOR (OSA and OSU) and DPOR on one subscription, associations starting or
# ending on an end of month, seats dropping to zero and coming back, EA
# agreements (one starting on 29 February), credits, non-qualifying products
# and channels, unpaid months, exams expiring on an end of month, MAU around 5
# and partner MAU baselines around 50, a partner that joins later.

QUALIFYING = ["D365_SALES", "D365_BUSINESS_CENTRAL", "D365_FINANCE", "D365_TEAM_MEMBERS",
              "MS_RELATIONSHIP_SALES"]
NON_QUALIFYING = ["M365_E3", "POWER_BI_PRO", "D365_CUSTOMER_INSIGHTS", "UNKNOWN_PRODUCT"]
CHANNELS = ["EA", "CSP", "WEB_DIRECT", "MCA", "OTHER"]
EXAMS = ["PL-200", "MB-210", "MB-220", "MB-300", "MB-310", "MB-500", "MB-700", "MB-800",
         "PL-400", "MB-230", "AZ-900"]


def _insert(con, name: str, rows: list[tuple], month: dt.date, load_id: str) -> None:
    if not rows:
        return
    f = FILES_BY_NAME[name]
    cols = [*f.column_names, "export_month", "load_id"]
    placeholders = ", ".join("?" for _ in cols)
    con.executemany(f"INSERT INTO raw.{name} ({', '.join(cols)}) VALUES ({placeholders})",
                    [(*r, month, load_id) for r in rows])


def _date_near_eom(rng: random.Random, months: list[dt.date]) -> dt.date:
    m = rng.choice(months)
    eom = end_of_month(m)
    return rng.choice([eom, eom - dt.timedelta(days=1), add_months(m, 1), m,
                       m + dt.timedelta(days=rng.randrange(0, 27))])


def build_world(con, first: dt.date = dt.date(2021, 1, 1), n_months: int = 15,
                n_partners: int = 10, n_tenants: int = 60, seed: int = 7,
                skip_months: tuple[dt.date, ...] = ()) -> list[dt.date]:
    """Write a random world into raw.* (creating the tables); return the landed months."""
    rng = random.Random(seed)
    ensure_raw_schema(con)
    months = [m for m in month_range(first, add_months(first, n_months - 1))]
    landed = [m for m in months if m not in skip_months]
    all_ms = [add_months(first, -3), *months]
    partners = [f"P{i:02d}" for i in range(1, n_partners + 1)]
    late_partner, late_from = partners[-1], add_months(first, 4)

    tenants = [f"T{i:03d}" for i in range(1, n_tenants + 1)]
    production = {t: rng.random() < 0.8 for t in tenants}
    subs: list[dict] = []
    for t in tenants:
        for _ in range(rng.choice([1, 1, 2, 3])):
            sid = f"S{len(subs) + 1:04d}"
            product = rng.choice(QUALIFYING * 3 + NON_QUALIFYING)
            channel = rng.choice(CHANNELS + ["CSP", "EA", "WEB_DIRECT"])
            ea_start = None
            if channel == "EA":
                ea_start = rng.choice([dt.date(2020, 2, 29), add_months(first, -6),
                                       add_months(first, rng.randrange(0, n_months)) +
                                       dt.timedelta(days=rng.randrange(0, 28))])
            # months in which the subscription exists and is paid
            start = (rng.choice([-2, -1, 0, 0, 1, 2]) if rng.random() < 0.7
                     else rng.randrange(0, n_months))
            subs.append({"id": sid, "tenant": t, "product": product, "channel": channel,
                         "ea_start": ea_start, "start": start,
                         "unpaid": {k for k in range(n_months) if rng.random() < 0.08},
                         "big": rng.random() < 0.3})
    assocs: list[dict] = []
    for s in subs:
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
            p = rng.choice(partners)
            typ = rng.choice(["CSP", "CPOR", "CPOR", "DPOR", "DPOR"])
            inc = rng.choice(["OSA", "OSU"]) if typ == "CPOR" else None
            vf = _date_near_eom(rng, all_ms[:-2])
            vt = None if rng.random() < 0.6 else max(vf, _date_near_eom(rng, months))
            if p == late_partner and vf < late_from:
                vf = late_from + dt.timedelta(days=3)
                if vt is not None and vt < vf:
                    vt = None
            assocs.append({"id": f"A{len(assocs) + 1:04d}", "partner": p, "sub": s["id"],
                           "type": typ, "inc": inc, "from": vf, "to": vt})
    persons = [f"U{i:03d}" for i in range(1, 31)]
    affiliations: list[tuple] = []
    for person in persons:
        p1 = rng.choice(partners[:-1])
        if rng.random() < 0.3:
            switch = end_of_month(rng.choice(months[2:-2]))
            affiliations.append((person, p1, add_months(first, -12), switch))
            affiliations.append((person, rng.choice(partners), switch + dt.timedelta(days=1), None))
        else:
            affiliations.append((person, p1, add_months(first, -12),
                                 None if rng.random() < 0.8 else end_of_month(rng.choice(months))))
    passes: list[tuple] = []
    for person in persons:
        for code in rng.sample(EXAMS, rng.randrange(0, 5)):
            passed = _date_near_eom(rng, all_ms)
            expires = None
            if rng.random() < 0.5:
                expires = max(passed + dt.timedelta(days=1), _date_near_eom(rng, months))
            passes.append((person, code, passed, expires))

    seat_state = {s["id"]: rng.choice([0, 0, 1, 3, 10]) for s in subs}
    for k, m in enumerate(months):
        if m not in landed:
            continue
        load_id = f"load-{m.isoformat()}"
        con.execute("INSERT INTO raw.loads VALUES (?, ?, ?, ?, ?, ?)",
                    [load_id, m, "0" * 64, dt.datetime(2022, 6, 1), True, "{}"])
        eom = end_of_month(m)
        month_partners = [p for p in partners if p != late_partner or m >= late_from]
        _insert(con, "partners", [(p, f"Partner {p}", "SE") for p in month_partners], m, load_id)
        _insert(con, "tenants", [(t, f"Tenant {t}", production[t] if rng.random() > 0.05
                                  else not production[t]) for t in tenants], m, load_id)
        products = sorted({s["product"] for s in subs})
        _insert(con, "products", [(p, p.title()) for p in products], m, load_id)
        live = [s for s in subs if s["start"] <= k]
        live_ids = {s["id"] for s in live}
        _insert(con, "subscriptions",
                [(s["id"], s["tenant"], s["product"], s["channel"], k not in s["unpaid"],
                  s["ea_start"]) for s in live], m, load_id)
        _insert(con, "partner_associations",
                [(a["id"], a["partner"], a["sub"], a["type"], a["inc"], a["from"], a["to"])
                 for a in assocs if a["sub"] in live_ids
                 and (a["partner"] != late_partner or m >= late_from)], m, load_id)
        _insert(con, "partner_people",
                [r for r in affiliations if r[1] != late_partner or m >= late_from], m, load_id)
        _insert(con, "exam_passes", passes, m, load_id)
        lines, seats, maus = [], [], []
        for s in live:
            # seats: runs of zero and non-zero, sometimes no row at all
            r = rng.random()
            if r < 0.15:
                seat_state[s["id"]] = 0
            elif r < 0.3:
                seat_state[s["id"]] = rng.choice([1, 2, 5, 20])
            if rng.random() > 0.1:
                seats.append((s["id"], seat_state[s["id"]]))
            # MAU around 5; big subscriptions around 20-60 (partner baselines ~50)
            if rng.random() > 0.1:
                mau = rng.choice([0, 3, 4, 5, 6, 12]) if not s["big"] else rng.randrange(10, 90)
                maus.append((s["id"], mau))
            for _ in range(rng.choice([0, 1, 1, 2])):
                day = m + dt.timedelta(days=rng.randrange(0, eom.day))
                typ = "CREDIT" if rng.random() < 0.2 else "CHARGE"
                cents = rng.randrange(0, 900_000)
                amount = Decimal(cents) / 100
                if rng.random() < 0.1:
                    amount += Decimal(rng.choice([5, 50])) / 10000
                lines.append((f"L{m:%Y%m}-{len(lines) + 1:05d}", day, s["id"], typ, amount))
        _insert(con, "billing_lines", lines, m, load_id)
        _insert(con, "seat_snapshots", seats, m, load_id)
        _insert(con, "mau_snapshots", maus, m, load_id)
    return landed
