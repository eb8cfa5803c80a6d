"""The world's entities: tenants, subscription plans and partner associations.

Months are indices ``k`` from the first export month (negative = before the
window).  A :class:`Sub` is a compact plan (start, churn, seats, MAU curve,
price, billing day, optional per-month scripts): every monthly value is a
function of the plan and ``k``, so the world evolves month by month without
storing a history.
"""
from __future__ import annotations

from .catalogue import price

NEVER = 10 ** 6  # a month index that is never reached


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
        self.price = price(product)
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
