"""The values of an export, in DuckDB SQL over the files as read: every value
parses as its column's type (:func:`typed_select`, :func:`check_parse`: dates
``YYYY-MM-DD``, booleans exactly ``true``/``false``, integers, decimals with
``.`` and at most 6 digits after it) within the contract's bounds (amounts
below 10^10 in absolute value, counts below 10^12); and the rules across the
files of one export (:func:`cross_file_checks`).
"""
from __future__ import annotations

import re

from pci.core.contract import AMOUNT_TYPE, FILES_BY_NAME, ExportFile
from pci.core.warehouse import quote_identifier
from pci.land.violations import LINE_COLUMN, MAX_EXAMPLES, Violation, clean_row

#: per DuckDB type: (the value's form as a regular expression or None, SQL condition
#: true for a value of that form that still does NOT parse, SQL giving the typed value, rule)
_TYPE_RULES = {
    "BOOLEAN": (None, "v NOT IN ('true', 'false')",
                "CASE v WHEN 'true' THEN true WHEN 'false' THEN false END",
                "a boolean: exactly 'true' or 'false'"),
    "DATE": ("[0-9]{4}-[0-9]{2}-[0-9]{2}", "try_strptime(v, '%Y-%m-%d') IS NULL",
             "CAST(try_strptime(v, '%Y-%m-%d') AS DATE)",
             "a date YYYY-MM-DD"),
    "BIGINT": ("-?[0-9]+", "TRY_CAST(v AS BIGINT) IS NULL",
               "TRY_CAST(v AS BIGINT)",
               "an integer"),
    AMOUNT_TYPE: ("-?[0-9]+(\\.[0-9]{1,6})?", f"TRY_CAST(v AS {AMOUNT_TYPE}) IS NULL",
                  f"TRY_CAST(v AS {AMOUNT_TYPE})",
                  "a decimal number with '.' and at most 6 digits after it"),
}
#: digits before the point, leading zeros and sign left out (of a value of the form)
_INTEGER_DIGITS = "length(regexp_extract(v, '^-?0*([0-9]*)', 1))"


def _parse_conditions(c) -> tuple[str, str | None]:
    """SQL conditions on a non-null text value of column ``c``: (does not parse
    as the type, parses but is beyond the contract's bound or None)."""
    form, fails, _typed, _rule = _TYPE_RULES[c.duckdb_type]
    of_form = f"regexp_full_match(v, '{form}')" if form else "true"
    if c.digits is None:
        return _sub(f"NOT {of_form} OR {fails}", c.name), None
    # (a value no longer than the bound's digits is within it: the digits are not counted)
    beyond = f"CASE WHEN length(v) <= {c.digits} THEN false ELSE {_INTEGER_DIGITS} > {c.digits} END"
    # a number of the form but too long for the type is reported as beyond the bound only
    return (_sub(f"NOT {of_form} OR (NOT ({beyond}) AND {fails})", c.name),
            _sub(f"{of_form} AND {beyond}", c.name))


def _bound_rule(c) -> str:
    if c.duckdb_type == AMOUNT_TYPE:
        return f"{c.name} is below 10^{c.digits} in absolute value"
    return f"{c.name} is below 10^{c.digits}"


def _sub(expr: str, column: str) -> str:
    """``expr`` with its placeholder column ``v`` replaced by ``column``."""
    return re.sub(r"\bv\b", quote_identifier(column), expr)


def typed_select(f: ExportFile) -> str:
    """SELECT list turning the staged VARCHAR columns into the contract's types.

    The staged table holds the file's records in file order, so a record's
    line is ``rowid + 2`` (the header is line 1).
    """
    parts = [f"rowid + 2 AS {quote_identifier(LINE_COLUMN)}"]
    for c in f.columns:
        if c.duckdb_type == "VARCHAR":
            parts.append(quote_identifier(c.name))
        else:
            parts.append(f"{_sub(_TYPE_RULES[c.duckdb_type][2], c.name)} AS {quote_identifier(c.name)}")
    return ", ".join(parts)


def check_parse(con, f: ExportFile, table: str) -> list[Violation]:
    """Values of typed columns that do not parse as the type, and values beyond
    the contract's bounds (:attr:`pci.core.contract.Column.digits`), per column."""
    checks = []  # (column, SQL condition, rule, check)
    for c in f.columns:
        if c.duckdb_type == "VARCHAR":
            continue
        bad, beyond = _parse_conditions(c)
        checks.append((c, f"({quote_identifier(c.name)} IS NOT NULL AND ({bad}))",
                       f"{c.name} is {_TYPE_RULES[c.duckdb_type][3]}", "type"))
        if beyond:
            checks.append((c, f"({quote_identifier(c.name)} IS NOT NULL AND ({beyond}))", _bound_rule(c),
                           "bounds"))
    if not checks:
        return []
    counts = con.execute(
        "SELECT " + ", ".join(f"count(*) FILTER (WHERE {cond})" for _c, cond, _r, _k in checks)
        + f" FROM {table}").fetchall()[0]
    viol = []
    for (c, cond, rule, kind), n in zip(checks, counts):
        if not n:
            continue
        show = [*[k for k in f.key if k != c.name], c.name]
        rows = fetch_dicts(con, f"SELECT rowid + 2 AS {quote_identifier(LINE_COLUMN)}, "
                                 f"{', '.join(quote_identifier(x) for x in show)} FROM {table} "
                                 f"WHERE {cond} ORDER BY rowid LIMIT {MAX_EXAMPLES}")
        viol.append(Violation(f.filename, c.name, int(n), [line_first(r) for r in rows],
                              rule, kind))
    return viol


def fetch_dicts(con, sql: str, params: list | None = None) -> list[dict]:
    """Rows of a query as dicts with JSON-friendly values."""
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [clean_row(dict(zip(names, row))) for row in cur.fetchall()]


def line_first(row: dict) -> dict:
    out = {"line": row.get(LINE_COLUMN)}
    out.update({k: v for k, v in row.items() if k != LINE_COLUMN})
    return out


def cross_file_queries(tables: dict[str, str], quote=quote_identifier) -> list[tuple[str, str, str, str]]:
    """The rules between files of the same export: (file, column, rule, SQL selecting the
    offending rows, line first) over the staged typed ``tables`` (file name -> table),
    identifiers quoted by ``quote`` (DuckDB's; the Spark screen passes Spark's)."""
    t = tables
    L = quote(LINE_COLUMN)
    return [
        # (file, column, rule, SQL selecting offending rows with _line first)
        ("subscriptions", "tenant_id", "tenant_id exists in tenants.csv",
         f"SELECT s.{L}, s.subscription_id, s.tenant_id FROM {t['subscriptions']} s "
         f"WHERE s.tenant_id IS NOT NULL AND NOT EXISTS "
         f"(SELECT 1 FROM {t['tenants']} x WHERE x.tenant_id = s.tenant_id)"),
        ("subscriptions", "product_id", "product_id exists in products.csv",
         f"SELECT s.{L}, s.subscription_id, s.product_id FROM {t['subscriptions']} s "
         f"WHERE s.product_id IS NOT NULL AND NOT EXISTS "
         f"(SELECT 1 FROM {t['products']} x WHERE x.product_id = s.product_id)"),
        ("partner_associations", "partner_id", "partner_id exists in partners.csv",
         f"SELECT a.{L}, a.association_id, a.partner_id FROM {t['partner_associations']} a "
         f"WHERE a.partner_id IS NOT NULL AND NOT EXISTS "
         f"(SELECT 1 FROM {t['partners']} x WHERE x.partner_id = a.partner_id)"),
        ("partner_associations", "subscription_id", "subscription_id exists in subscriptions.csv",
         f"SELECT a.{L}, a.association_id, a.subscription_id FROM {t['partner_associations']} a "
         f"WHERE a.subscription_id IS NOT NULL AND NOT EXISTS "
         f"(SELECT 1 FROM {t['subscriptions']} x WHERE x.subscription_id = a.subscription_id)"),
        ("partner_people", "partner_id", "partner_id exists in partners.csv",
         f"SELECT p.{L}, p.person_id, p.partner_id, p.valid_from FROM {t['partner_people']} p "
         f"WHERE p.partner_id IS NOT NULL AND NOT EXISTS "
         f"(SELECT 1 FROM {t['partners']} x WHERE x.partner_id = p.partner_id)"),
        ("billing_lines", "subscription_id", "subscription_id exists in subscriptions.csv",
         f"SELECT b.{L}, b.line_id, b.subscription_id FROM {t['billing_lines']} b "
         f"WHERE b.subscription_id IS NOT NULL AND NOT EXISTS "
         f"(SELECT 1 FROM {t['subscriptions']} x WHERE x.subscription_id = b.subscription_id)"),
        # An affiliation overlaps an earlier one of the same person when it starts
        # on or before the latest end (open = never) among the earlier ones.
        ("partner_people", "person_id, valid_from, valid_to",
         "a person's affiliations do not overlap",
         f"SELECT {L}, person_id, partner_id, valid_from, valid_to, "
         f"overlaps_until AS earlier_affiliation_ends FROM ("
         f"  SELECT *, max(coalesce(valid_to, DATE '9999-12-31')) OVER ("
         f"    PARTITION BY person_id ORDER BY valid_from, partner_id, {L} "
         f"    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS overlaps_until "
         f"  FROM {t['partner_people']} WHERE person_id IS NOT NULL AND valid_from IS NOT NULL"
         f") WHERE overlaps_until >= valid_from"),
    ]


def cross_file_checks(con, tables: dict[str, str]) -> list[Violation]:
    """Rules between files of the same export, in SQL over the staged typed tables."""
    viol = []
    for name, column, rule, sql in cross_file_queries(tables):
        n = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
        if n:
            rows = fetch_dicts(con, f"SELECT * FROM ({sql}) ORDER BY 1 LIMIT {MAX_EXAMPLES}")
            for r in rows:  # "open" affiliations are shown as open, not as 9999-12-31
                if r.get("earlier_affiliation_ends") == "9999-12-31":
                    r["earlier_affiliation_ends"] = "open"
            viol.append(Violation(FILES_BY_NAME[name].filename, column, int(n),
                                  [line_first(r) for r in rows], rule, "cross-file"))
    return viol
