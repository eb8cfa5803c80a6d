"""The sample-data generator: determinism, manifests, the contract's rules, edge cases."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from pci import cli
from pci.core.contract import (ASSOCIATION_TYPES, CPOR_INCENTIVES, FILES, LINE_TYPES, MANIFEST,
                               SALES_CHANNELS, add_months, format_month, month_range)
from tools.generate import CATALOGUE_PATH, UNKNOWN_PRODUCT, World, generate

FIRST = dt.date(2020, 7, 1)
MONTHS = 14
PARTNERS = 20
TENANTS = 400
SEED = 11
ARGS = (FIRST, MONTHS, PARTNERS, TENANTS, SEED)
MONTH_LIST = month_range(FIRST, add_months(FIRST, MONTHS - 1))


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "landing"
    folders = generate(out, *ARGS)
    assert [f.name for f in folders] == [format_month(m) for m in MONTH_LIST]
    return out


@pytest.fixture(scope="module")
def con(world_dir):
    """Every file of every month as a table with the contract's types + export_month."""
    c = duckdb.connect()
    for f in FILES:
        cols = "{" + ", ".join(f"'{col.name}': '{col.duckdb_type}'" for col in f.columns) + "}"
        selects = [
            f"SELECT *, DATE '{m.isoformat()}' AS export_month FROM read_csv("
            f"'{world_dir / format_month(m) / f.filename}', header = true, "
            f"auto_detect = false, columns = {cols})"
            for m in MONTH_LIST
        ]
        c.execute(f"CREATE TABLE {f.name} AS " + " UNION ALL ".join(selects))
    yield c
    c.close()


def rows(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def none_of(con, sql: str, what: str) -> None:
    """``sql`` selects the rows breaking a rule: there must be none."""
    bad = rows(con, sql)
    assert not bad, f"{what}: {len(bad)} rows, e.g. {bad[:5]}"


def some_of(con, sql: str, what: str) -> list[tuple]:
    found = rows(con, sql)
    assert found, f"edge case missing: {what}"
    return found


def manifests(root: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(root.glob(f"*/{MANIFEST}"))}


# --------------------------------------------------------------------------- determinism

def test_same_arguments_give_identical_bytes(world_dir, tmp_path):
    again = tmp_path / "again"
    generate(again, *ARGS)
    assert manifests(again) == manifests(world_dir)
    for m in MONTH_LIST:
        for name in (*[f.filename for f in FILES], MANIFEST):
            a = (world_dir / format_month(m) / name).read_bytes()
            b = (again / format_month(m) / name).read_bytes()
            assert a == b, f"{format_month(m)}/{name} differs between two runs"


def test_another_seed_gives_another_world(world_dir, tmp_path):
    other = tmp_path / "other"
    generate(other, FIRST, MONTHS, PARTNERS, TENANTS, SEED + 1)
    last = format_month(MONTH_LIST[-1])
    a, b = manifests(world_dir)[last]["files"], manifests(other)[last]["files"]
    differing = [n for n in a if a[n]["sha256"] != b[n]["sha256"]]
    assert {"subscriptions.csv", "billing_lines.csv", "mau_snapshots.csv"} <= set(differing)


def test_regenerating_into_the_same_folder_rewrites_it(tmp_path):
    out = tmp_path / "l"
    generate(out, FIRST, 2, 8, 120, 1)
    before = manifests(out)
    generate(out, FIRST, 2, 8, 120, 2)
    after = manifests(out)
    assert before.keys() == after.keys()
    assert before != after
    for month, man in after.items():
        for name, entry in man["files"].items():
            data = (out / month / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert not list(out.glob("*/*.tmp"))


# --------------------------------------------------------------------------- manifests, headers

def test_every_manifest_matches_its_files(world_dir):
    found = manifests(world_dir)
    assert sorted(found) == [format_month(m) for m in MONTH_LIST]
    for month, man in found.items():
        assert man["export_month"] == month
        assert list(man["files"]) == [f.filename for f in FILES]
        for name, entry in man["files"].items():
            path = world_dir / month / name
            data = path.read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{month}/{name}"
            with open(path, newline="", encoding="utf-8") as fh:
                n = sum(1 for _ in csv.reader(fh)) - 1
            assert n == entry["rows"], f"{month}/{name}: {n} rows, manifest says {entry['rows']}"


def test_headers_are_exactly_the_contract_columns(world_dir):
    for m in MONTH_LIST:
        for f in FILES:
            with open(world_dir / format_month(m) / f.filename, newline="", encoding="utf-8") as fh:
                assert next(csv.reader(fh)) == f.column_names, f"{format_month(m)}/{f.filename}"


def test_world_has_the_requested_size(con):
    last = MONTH_LIST[-1]
    count = "SELECT count(*) FROM {} WHERE export_month = '{}'"
    assert rows(con, count.format("partners", last)) == [(PARTNERS,)]
    assert rows(con, count.format("tenants", last)) == [(TENANTS,)]
    # every file has rows in every month
    for f in FILES:
        per_month = dict(rows(con, f"SELECT export_month, count(*) FROM {f.name} GROUP BY 1"))
        assert all(per_month.get(m, 0) > 0 for m in MONTH_LIST), f.name


# --------------------------------------------------------------------------- contract rules

def test_keys_are_unique_and_required_columns_filled(con):
    for f in FILES:
        key = ", ".join(f.key)
        none_of(con, f"SELECT export_month, {key}, count(*) FROM {f.name} "
                     f"GROUP BY ALL HAVING count(*) > 1", f"{f.name}: duplicate key")
        for col in f.columns:
            if col.required:
                none_of(con, f"SELECT * FROM {f.name} WHERE {col.name} IS NULL",
                        f"{f.name}.{col.name}: null")


def test_line_ids_are_unique_across_months(con):
    none_of(con, "SELECT line_id, count(*) FROM billing_lines GROUP BY 1 HAVING count(*) > 1",
            "billing_lines.line_id reused")


def test_value_sets_and_formats(con):
    def in_set(values):
        return "(" + ", ".join(f"'{v}'" for v in values) + ")"

    none_of(con, f"SELECT * FROM subscriptions WHERE sales_channel NOT IN {in_set(SALES_CHANNELS)}",
            "sales_channel")
    none_of(con, "SELECT * FROM partner_associations WHERE association_type NOT IN "
                 f"{in_set(ASSOCIATION_TYPES)}", "association_type")
    none_of(con, f"SELECT * FROM billing_lines WHERE line_type NOT IN {in_set(LINE_TYPES)}",
            "line_type")
    none_of(con, "SELECT * FROM partners WHERE country IS NOT NULL "
                 "AND NOT regexp_full_match(country, '[A-Z]{2}')", "country not alpha-2")
    none_of(con, "SELECT * FROM exam_passes WHERE NOT regexp_full_match(exam_code, "
                 "'[A-Z]{2,3}-[0-9]{3}')", "exam_code")
    none_of(con, "SELECT * FROM billing_lines WHERE amount_usd < 0", "amount_usd < 0")
    none_of(con, "SELECT * FROM seat_snapshots WHERE paid_seats < 0", "paid_seats < 0")
    none_of(con, "SELECT * FROM mau_snapshots WHERE monthly_active_users < 0", "mau < 0")


def test_iff_rules(con):
    none_of(con, "SELECT * FROM subscriptions WHERE (sales_channel = 'EA') "
                 "<> (ea_agreement_start IS NOT NULL)", "ea_agreement_start iff EA")
    none_of(con, "SELECT * FROM partner_associations WHERE (association_type = 'CPOR') "
                 "<> (cpor_incentive IS NOT NULL)", "cpor_incentive iff CPOR")
    none_of(con, "SELECT * FROM partner_associations WHERE cpor_incentive NOT IN "
                 f"('{CPOR_INCENTIVES[0]}', '{CPOR_INCENTIVES[1]}')", "cpor_incentive")


def test_dates_are_ordered_and_as_of_the_month_end(con):
    none_of(con, "SELECT * FROM partner_associations WHERE valid_to < valid_from",
            "association valid_to < valid_from")
    none_of(con, "SELECT * FROM partner_people WHERE valid_to < valid_from",
            "affiliation valid_to < valid_from")
    none_of(con, "SELECT * FROM exam_passes WHERE expires_on <= passed_on",
            "expires_on <= passed_on")
    none_of(con, "SELECT * FROM billing_lines WHERE date_trunc('month', billing_date) "
                 "<> export_month", "billing_date outside the export month")
    eom = "last_day(export_month)"
    none_of(con, f"SELECT * FROM partner_associations WHERE valid_from > {eom} "
                 f"OR valid_to > {eom}", "association from the future")
    none_of(con, f"SELECT * FROM partner_people WHERE valid_from > {eom} OR valid_to > {eom}",
            "affiliation from the future")
    none_of(con, f"SELECT * FROM exam_passes WHERE passed_on > {eom}", "pass from the future")


def test_referential_integrity_within_each_export(con):
    checks = [
        ("subscriptions", "tenant_id", "tenants", "tenant_id"),
        ("subscriptions", "product_id", "products", "product_id"),
        ("partner_associations", "partner_id", "partners", "partner_id"),
        ("partner_associations", "subscription_id", "subscriptions", "subscription_id"),
        ("partner_people", "partner_id", "partners", "partner_id"),
        ("billing_lines", "subscription_id", "subscriptions", "subscription_id"),
        ("seat_snapshots", "subscription_id", "subscriptions", "subscription_id"),
        ("mau_snapshots", "subscription_id", "subscriptions", "subscription_id"),
    ]
    for child, col, parent, pcol in checks:
        none_of(con, f"SELECT c.export_month, c.{col} FROM {child} c ANTI JOIN {parent} p "
                     f"ON p.{pcol} = c.{col} AND p.export_month = c.export_month",
                f"{child}.{col} not in {parent} of the same export")


def test_affiliations_of_a_person_never_overlap(con):
    none_of(con, """
        SELECT a.export_month, a.person_id, a.partner_id, b.partner_id
        FROM partner_people a JOIN partner_people b
          ON a.export_month = b.export_month AND a.person_id = b.person_id
         AND (a.partner_id, a.valid_from) < (b.partner_id, b.valid_from)
        WHERE a.valid_from <= coalesce(b.valid_to, DATE '9999-12-31')
          AND b.valid_from <= coalesce(a.valid_to, DATE '9999-12-31')
    """, "overlapping affiliations")


def test_reference_files_only_grow_and_never_rewrite_history(con):
    """What an export says about the past stays true in every later export."""
    for f, ident in (("tenants", "tenant_id, tenant_name, is_production"),
                     ("subscriptions", "subscription_id, tenant_id, product_id, sales_channel, "
                                       "ea_agreement_start"),
                     ("partner_associations", "association_id, partner_id, subscription_id, "
                                              "association_type, cpor_incentive, valid_from"),
                     ("partner_people", "person_id, partner_id, valid_from"),
                     ("exam_passes", "person_id, exam_code, passed_on, expires_on")):
        none_of(con, f"""
            SELECT a.export_month, {", ".join("a." + c.strip() for c in ident.split(","))}
            FROM {f} a
            WHERE a.export_month < (SELECT max(export_month) FROM {f})
              AND NOT EXISTS (SELECT 1 FROM {f} b
                              WHERE b.export_month = a.export_month + INTERVAL 1 MONTH
                                AND ({ident}) IS NOT DISTINCT FROM
                                    ({", ".join("a." + c.strip() for c in ident.split(","))}))
        """, f"{f}: a row vanished or changed in the next export")
    none_of(con, """
        SELECT a.association_id, a.export_month FROM partner_associations a
        JOIN partner_associations b ON a.association_id = b.association_id
         AND b.export_month > a.export_month
        WHERE a.valid_to IS NOT NULL AND b.valid_to IS DISTINCT FROM a.valid_to
    """, "an association's end changed after it was exported")


# --------------------------------------------------------------------------- edge cases

def test_edge_associations_on_month_ends_and_mid_month(con):
    some_of(con, "SELECT * FROM partner_associations WHERE valid_to = last_day(valid_to)",
            "an association ending exactly on a month end")
    some_of(con, "SELECT * FROM partner_associations WHERE valid_from = last_day(valid_from)",
            "an association starting exactly on a month end")
    some_of(con, "SELECT * FROM partner_associations a JOIN partner_associations b "
                 "ON a.export_month = b.export_month AND a.subscription_id = b.subscription_id "
                 "AND b.valid_from = a.valid_to + 1 WHERE a.valid_to <> last_day(a.valid_to)",
            "a mid-month handover between two partners")
    some_of(con, "SELECT * FROM partner_associations WHERE valid_to = valid_from",
            "a one-day association")


def test_edge_association_overlaps_on_one_subscription(con):
    last = MONTH_LIST[-1]
    types = dict(rows(con, f"""
        SELECT subscription_id,
               list(DISTINCT association_type || coalesce('-' || cpor_incentive, ''))
        FROM partner_associations WHERE export_month = '{last}' GROUP BY 1"""))
    kinds = [set(v) for v in types.values()]
    assert any({"CPOR-OSU", "DPOR"} <= k and "CPOR-OSA" not in k for k in kinds)
    assert any({"CPOR-OSA", "DPOR"} <= k and "CPOR-OSU" not in k for k in kinds)
    assert any({"CSP", "CPOR-OSA", "CPOR-OSU", "DPOR"} <= k for k in kinds)
    some_of(con, f"SELECT subscription_id, partner_id FROM partner_associations "
                 f"WHERE export_month = '{last}' GROUP BY ALL HAVING count(*) > 1",
            "a partner holding two associations to one subscription")


def test_edge_partner_joins_later_and_direct_customers(con):
    some_of(con, """
        SELECT a.association_id FROM partner_associations a
        JOIN subscriptions s ON s.subscription_id = a.subscription_id
         AND s.export_month = date_trunc('month', a.valid_from) - INTERVAL 1 MONTH
        JOIN seat_snapshots z ON z.subscription_id = s.subscription_id
         AND z.export_month = s.export_month AND z.paid_seats > 0
        WHERE s.is_paid
    """, "a partner associated with a subscription that already had seats")
    last = MONTH_LIST[-1]
    some_of(con, f"""
        SELECT s.subscription_id FROM subscriptions s
        JOIN seat_snapshots z USING (subscription_id, export_month)
        WHERE s.export_month = '{last}' AND s.is_paid AND z.paid_seats > 0
          AND s.sales_channel IN ('EA', 'WEB_DIRECT')
          AND s.subscription_id NOT IN (SELECT subscription_id FROM partner_associations
                                        WHERE export_month = '{last}')
    """, "a paid customer with no partner at all")


def test_edge_seats_drop_to_zero_and_come_back(con):
    # tenants' seat series over the months (no row = 0)
    series = rows(con, """
        WITH months AS (SELECT DISTINCT export_month FROM subscriptions),
        t AS (SELECT DISTINCT tenant_id FROM subscriptions
              WHERE export_month = (SELECT min(export_month) FROM months))
        SELECT t.tenant_id, list(coalesce(x.seats, 0) ORDER BY m.export_month)
        FROM t CROSS JOIN months m
        LEFT JOIN (SELECT s.tenant_id, s.export_month, sum(z.paid_seats) AS seats
                   FROM subscriptions s JOIN seat_snapshots z USING (subscription_id, export_month)
                   WHERE s.is_paid GROUP BY ALL) x
          ON x.tenant_id = t.tenant_id AND x.export_month = m.export_month
        GROUP BY 1""")
    def back(seq):
        s = "".join("1" if v > 0 else "0" for v in seq)
        return "10" in s and "01" in s[s.index("10"):]
    assert any(back(seq) for _, seq in series), "no tenant whose seats drop to 0 and return"
    # both spellings of zero seats for a paid subscription: an explicit 0 row, and no row
    some_of(con, "SELECT * FROM seat_snapshots WHERE paid_seats = 0", "an explicit 0 seats row")
    some_of(con, """
        SELECT s.subscription_id, s.export_month FROM subscriptions s
        ANTI JOIN seat_snapshots z USING (subscription_id, export_month)
        WHERE s.is_paid
    """, "a paid subscription with no seat row")


def test_edge_ea_agreements(con):
    eas = dict(rows(con, f"""
        SELECT ea_agreement_start, count(*) FROM subscriptions
        WHERE export_month = '{MONTH_LIST[-1]}' AND sales_channel = 'EA' GROUP BY 1"""))
    assert any(d.month == 2 and d.day == 29 for d in eas), "no EA agreement on 29 February"
    assert any(d < FIRST - dt.timedelta(days=366) for d in eas), "no EA older than a year"
    assert any(FIRST <= d for d in eas), "no EA agreement starting inside the window"
    # the leap-day agreement is billed on the last day of a non-leap February too
    some_of(con, """
        SELECT * FROM billing_lines b JOIN subscriptions s USING (subscription_id, export_month)
        WHERE month(s.ea_agreement_start) = 2 AND day(s.ea_agreement_start) = 29
          AND month(b.billing_date) = 2 AND day(b.billing_date) IN (27, 28)
    """, "billing around the first anniversary of a 29 February agreement")


def test_edge_credits_products_and_channels(con):
    some_of(con, "SELECT * FROM billing_lines WHERE line_type = 'CREDIT' AND amount_usd > 0",
            "a credit line")
    some_of(con, """
        SELECT subscription_id, export_month FROM billing_lines GROUP BY ALL
        HAVING sum(amount_usd) FILTER (line_type = 'CREDIT')
             > coalesce(sum(amount_usd) FILTER (line_type = 'CHARGE'), 0)
    """, "a month where a subscription's credits exceed its charges")
    with open(CATALOGUE_PATH, newline="", encoding="utf-8") as fh:
        catalogue = {r["product_id"]: r["workload"] for r in csv.DictReader(fh)}
    last = MONTH_LIST[-1]
    used = {p for (p,) in rows(con, f"SELECT DISTINCT product_id FROM subscriptions s "
                                    f"JOIN billing_lines USING (subscription_id, export_month) "
                                    f"WHERE export_month = '{last}'")}
    assert any(catalogue.get(p) == "other" for p in used), "no billed non-qualifying product"
    assert UNKNOWN_PRODUCT[0] in used and UNKNOWN_PRODUCT[0] not in catalogue
    channels = {c for (c,) in rows(con, "SELECT DISTINCT sales_channel FROM subscriptions")}
    assert channels == set(SALES_CHANNELS)
    some_of(con, "SELECT * FROM subscriptions s JOIN seat_snapshots z "
                 "USING (subscription_id, export_month) WHERE NOT s.is_paid AND z.paid_seats > 0",
            "an unpaid subscription with seats")
    some_of(con, "SELECT s.subscription_id FROM subscriptions s JOIN subscriptions t "
                 "ON s.subscription_id = t.subscription_id "
                 "AND t.export_month = s.export_month + INTERVAL 1 MONTH "
                 "WHERE NOT s.is_paid AND t.is_paid", "a subscription that becomes paid")
    some_of(con, "SELECT * FROM tenants WHERE NOT is_production", "a non-production tenant")


def test_edge_mau_around_the_thresholds(con):
    values = {v for (v,) in rows(con, "SELECT DISTINCT monthly_active_users FROM mau_snapshots")}
    assert {0, 4, 5, 6} <= values
    first, m12 = MONTH_LIST[0], MONTH_LIST[12]
    crossing = some_of(con, f"""
        SELECT a.subscription_id FROM mau_snapshots a JOIN mau_snapshots b USING (subscription_id)
        WHERE a.export_month = '{first}' AND a.monthly_active_users = 4
          AND b.export_month = '{m12}' AND b.monthly_active_users = 5
    """, "a subscription going from MAU 4 to exactly 5 twelve months later")
    assert crossing
    some_of(con, f"""
        SELECT a.subscription_id FROM mau_snapshots a JOIN mau_snapshots b USING (subscription_id)
        WHERE a.export_month = '{first}' AND a.monthly_active_users = 5
          AND b.export_month = '{m12}' AND b.monthly_active_users > 5
    """, "a subscription at exactly 5 in the baseline month")
    # the baseline partner's MAU: 49, 50, 51 in the first three months
    got = rows(con, """
        SELECT m.export_month, sum(m.monthly_active_users) FROM mau_snapshots m
        JOIN partner_associations a USING (subscription_id, export_month)
        WHERE a.partner_id = 'P00005' GROUP BY 1 ORDER BY 1 LIMIT 3""")
    assert [v for _, v in got] == [49, 50, 51]


def test_edge_exams_and_people(con):
    some_of(con, f"""
        SELECT * FROM exam_passes WHERE expires_on BETWEEN DATE '{FIRST}'
          AND last_day(DATE '{MONTH_LIST[-1]}') AND export_month = '{MONTH_LIST[-1]}'
    """, "an exam expiring inside the window")
    some_of(con, "SELECT * FROM exam_passes WHERE expires_on = last_day(expires_on)",
            "an exam expiring exactly on a month end")
    some_of(con, f"SELECT person_id, exam_code FROM exam_passes "
                 f"WHERE export_month = '{MONTH_LIST[-1]}' GROUP BY ALL HAVING count(*) > 1",
            "an exam passed again")
    movers = some_of(con, """
        SELECT a.person_id, a.partner_id, b.partner_id, a.valid_to
        FROM partner_people a JOIN partner_people b
          ON a.export_month = b.export_month AND a.person_id = b.person_id
         AND b.valid_from = a.valid_to + 1 AND a.partner_id <> b.partner_id
    """, "a person moving between partners")
    assert any((v + dt.timedelta(days=1)).day == 1 for *_, v in movers), \
        "no move at a month end"
    assert any((v + dt.timedelta(days=1)).day != 1 for *_, v in movers), "no mid-month move"


# --------------------------------------------------------------------------- archetypes

def test_archetypes_spread_over_the_levels():
    w = World(*ARGS)
    kinds = [w.archetype[p] for p, _, _ in w.partners]
    assert kinds[:5] == ["edge"] * 5
    counts = {k: kinds.count(k) for k in ("gold", "silver", "weak")}
    n = PARTNERS - 5
    assert counts["gold"] == round(0.25 * n)
    assert counts["silver"] == round(0.35 * n)
    assert counts["weak"] == n - counts["gold"] - counts["silver"]


FC_SQL = """(list_contains(ex, 'PL-200')
                AND list_has_any(ex, ['MB-210', 'MB-220', 'MB-230', 'MB-240']))
           OR (list_contains(ex, 'MB-300') AND list_has_any(ex, ['MB-310', 'MB-320', 'MB-330']))
           OR list_contains(ex, 'MB-800')"""
DEV_SQL = """list_contains(ex, 'PL-400')
           OR (list_contains(ex, 'MB-300') AND list_has_any(ex, ['MB-500', 'MB-700']))"""


def test_archetype_people_land_on_their_side_of_the_thresholds(con):
    """Certified people at every month end: gold and silver partners keep at least
    5 consultants and 2 developers, weak partners have at most one of each."""
    w = World(*ARGS)
    eom = "last_day(export_month)"
    got = {(p, m): (fc, dev) for p, m, fc, dev in rows(con, f"""
        WITH active AS (
            SELECT export_month, person_id, list(DISTINCT exam_code) AS ex FROM exam_passes
            WHERE passed_on <= {eom} AND (expires_on IS NULL OR expires_on > {eom})
            GROUP BY ALL),
        certs AS (SELECT export_month, person_id, {FC_SQL} AS fc, {DEV_SQL} AS dev
                  FROM active)
        SELECT a.partner_id, a.export_month, count(*) FILTER (c.fc), count(*) FILTER (c.dev)
        FROM partner_people a JOIN certs c USING (export_month, person_id)
        WHERE a.valid_to IS NULL OR a.valid_to >= last_day(a.export_month)
        GROUP BY ALL""")}
    for m in MONTH_LIST:
        for pid, kind in w.archetype.items():
            fc, dev = got.get((pid, m), (0, 0))
            if kind in ("gold", "silver"):
                assert fc >= 5 and dev >= 2, (pid, kind, m, fc, dev)
            elif kind == "weak":
                assert fc <= 1 and dev <= 1, (pid, kind, m, fc, dev)


def test_archetype_mau_growth_lands_on_its_side_of_the_thresholds(con):
    """MAU of the paid qualifying subscriptions a partner advises or resells (a close
    proxy of metric 6): gold and silver grow at least 35% on a baseline of at least 50,
    weak partners stay below the baseline of 50."""
    w = World(*ARGS)
    with open(CATALOGUE_PATH, newline="", encoding="utf-8") as fh:
        qualifying = [r["product_id"] for r in csv.DictReader(fh) if r["workload"] != "other"]
    mau = {(p, m): v for p, m, v in rows(con, f"""
        SELECT a.partner_id, a.export_month, sum(coalesce(u.monthly_active_users, 0))
        FROM (SELECT DISTINCT partner_id, subscription_id, export_month
              FROM partner_associations
              WHERE (association_type <> 'CPOR' OR cpor_incentive = 'OSU')
                AND valid_from <= last_day(export_month)
                AND (valid_to IS NULL OR valid_to >= last_day(export_month))) a
        JOIN subscriptions s USING (subscription_id, export_month)
        LEFT JOIN mau_snapshots u USING (subscription_id, export_month)
        WHERE s.is_paid AND s.product_id IN ({", ".join(f"'{q}'" for q in qualifying)})
        GROUP BY ALL""")}
    for pid, kind in w.archetype.items():
        baseline, current = mau.get((pid, MONTH_LIST[0]), 0), mau.get((pid, MONTH_LIST[12]), 0)
        if kind in ("gold", "silver"):
            assert baseline >= 50 and current >= 1.35 * baseline, (pid, kind, baseline, current)
        elif kind == "weak":
            assert max(mau.get((pid, m), 0) for m in MONTH_LIST) < 50, (pid, kind)


# --------------------------------------------------------------------------- CLI and arguments

def test_cli_writes_the_landing(tmp_path, capsys):
    out = tmp_path / "landing"
    status = cli.main(["generate", "--out", str(out), "--first", "2021-11", "--months", "3",
                       "--partners", "8", "--tenants", "150", "--seed", "5"])
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ["2021-11", "2021-12", "2022-01"]
    assert "2021-11..2022-01" in capsys.readouterr().out
    assert manifests(out) == manifests(_gen(tmp_path / "py", dt.date(2021, 11, 1), 3, 8, 150, 5))


def _gen(out, *args) -> Path:
    generate(out, *args)
    return out


@pytest.mark.parametrize("argv, message", [
    (["--partners", "3"], "--partners must be at least"),
    (["--partners", "20", "--tenants", "50"], "--tenants 50 is too small"),
])
def test_cli_refuses_impossible_worlds(tmp_path, capsys, argv, message):
    out = tmp_path / "landing"
    status = cli.main(["generate", "--out", str(out), "--months", "3", *argv])
    assert status == 2
    assert message in capsys.readouterr().err
    assert not list(out.glob(f"*/{MANIFEST}"))


def test_cli_rejects_a_bad_month(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["generate", "--out", str(tmp_path), "--first", "2021-13"])
    assert exc.value.code == 2
    assert "not a month" in capsys.readouterr().err


def test_output_does_not_depend_on_the_interpreter_hash_seed(tmp_path):
    """Two processes with different string-hash seeds write the same bytes."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"h{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-m", "pci", "generate", "--out", str(out),
                        "--months", "4", "--partners", "10", "--tenants", "200", "--seed", "9"],
                       cwd=root, env=env, check=True, capture_output=True)
        outs.append(manifests(out))
    assert outs[0] == outs[1]
    assert len(outs[0]) == 4
