"""The GX suites' expectations (``expectations/<file>.json``, the one statement
of the rules) read as DuckDB SQL over a staged typed table, so that landing
never holds a month's rows in pandas (:func:`pci.land.expectations.run_suites`):

* :func:`screen`: one query per file counting, for each expectation, the rows
  it could refuse. The SQL errs towards flagging: an expectation it cannot
  translate, a query DuckDB cannot run, a ``mostly``, a regular expression
  (RE2 accepts no value Python's ``re`` refuses for the suites' patterns) all
  flag the file. A file flagged is validated by its GX Checkpoint, whose
  results make the report; a file not flagged passes its suite.
* :func:`apply_set_wide`: the exact result of the expectations that compare
  rows with each other (a column's or compound columns' uniqueness), which a
  chunk of rows cannot decide, written into GX's result in its own shape.
* :func:`merge`: the results of one suite over consecutive chunks as one.

The screen's SQL is written in a :class:`Dialect`: :data:`DUCKDB` (landing and
the mart's audit on DuckDB) or :data:`SPARK` (the Spark landing's screen,
:mod:`pci.land.spark_validation`).
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from pci.core import spark as spark_sql
from pci.core.warehouse import quote_identifier, quote_literal


@dataclass(frozen=True)
class Dialect:
    """How the screen's SQL spells what the engines spell differently."""

    identifier: Callable[[str], str]  # a quoted identifier
    literal: Callable[[str], str]  # a string literal
    matches: str  # a regular expression found in a value: format of {value} and {pattern}
    row: str  # a row of several columns, one value: format of {columns}


DUCKDB = Dialect(quote_identifier, quote_literal, "regexp_matches({value}, {pattern})",
                 "row({columns})")
#: Spark: backticks, backslashes escaped in literals, RLIKE (Java's regular expressions:
#: for the suites' patterns, the same matches as RE2 and Python's ``re``)
SPARK = Dialect(spark_sql.quote_identifier, spark_sql.quote_literal, "{value} RLIKE {pattern}",
                "struct({columns})")

#: expectations whose verdict on a row depends on that row only (a chunk's results add up)
ROW_LOCAL = {
    "expect_column_values_to_not_be_null", "expect_column_values_to_be_null",
    "expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
    "expect_column_values_to_match_regex", "expect_column_pair_values_a_to_be_greater_than_b",
}
#: expectations comparing rows with each other: decided over the whole table in SQL
SET_WIDE = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}


class _Untranslated(ValueError):
    pass


def chunkable(expectations: list[dict]) -> bool:
    """Whether a suite may be run over chunks of rows: every expectation row-local or
    set-wide, none with a ``mostly`` (a share of the rows: not a sum of the chunks'
    verdicts), no set-wide one with a ``row_condition``."""
    def ok(e: dict) -> bool:
        k = e.get("kwargs") or {}
        return k.get("mostly") is None and (e.get("type") in ROW_LOCAL or (
            e.get("type") in SET_WIDE and k.get("row_condition") is None))
    return all(ok(e) for e in expectations)


def _q(name, d: Dialect = DUCKDB) -> str:
    if not isinstance(name, str) or not name:
        raise _Untranslated(name)
    return d.identifier(name)


def _lit(v, params: dict, d: Dialect = DUCKDB) -> str:
    if isinstance(v, dict) and set(v) == {"$PARAMETER"}:
        if v["$PARAMETER"] not in params:
            raise _Untranslated(v)
        v = params[v["$PARAMETER"]]
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, Decimal)) or (isinstance(v, float) and v == v and abs(v) != float("inf")):
        return repr(v) if not isinstance(v, Decimal) else str(v)
    if isinstance(v, dt.datetime):
        return f"TIMESTAMP '{v.replace(tzinfo=None).isoformat(sep=' ')}'"
    if isinstance(v, dt.date):
        return f"DATE '{v.isoformat()}'"
    if isinstance(v, str):
        return d.literal(v)
    raise _Untranslated(v)


_OPS = {"==": "=", "!=": "IS DISTINCT FROM", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _condition(rc, params: dict, d: Dialect = DUCKDB) -> str:
    """A GX ``row_condition`` (its JSON) as SQL, with pandas' treatment of missing values
    (a missing value is unequal to anything, and no comparison holds for it)."""
    if rc is None:
        return "TRUE"
    if not isinstance(rc, dict) or rc.get("type") != "comparison" or rc.get("operator") not in _OPS:
        raise _Untranslated(rc)
    return f"({_q((rc.get('column') or {}).get('name'), d)} {_OPS[rc['operator']]} " \
           f"{_lit(rc.get('parameter'), params, d)})"


def _refused(e: dict, params: dict, d: Dialect = DUCKDB) -> str:
    """SQL true for a row that the row-local expectation ``e`` may refuse."""
    t, k = e.get("type"), e.get("kwargs") or {}
    if t not in ROW_LOCAL:
        raise _Untranslated(t)
    if t == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = _q(k.get("column_A"), d), _q(k.get("column_B"), d)
        ignore = k.get("ignore_row_if", "both_values_are_missing")
        keep = {"either_value_is_missing": f"{a} IS NOT NULL AND {b} IS NOT NULL",
                "both_values_are_missing": f"NOT ({a} IS NULL AND {b} IS NULL)",
                "neither": "TRUE"}.get(ignore)
        if keep is None:
            raise _Untranslated(ignore)
        op = ">=" if k.get("or_equal") else ">"
        pred = f"({keep}) AND NOT coalesce({a} {op} {b}, FALSE)"
    else:
        c = _q(k.get("column"), d)
        if t == "expect_column_values_to_not_be_null":
            pred = f"{c} IS NULL"
        elif t == "expect_column_values_to_be_null":
            pred = f"{c} IS NOT NULL"
        elif t == "expect_column_values_to_be_in_set":
            values = k.get("value_set")
            if not isinstance(values, list):
                raise _Untranslated(values)
            inside = f"{c} IN ({', '.join(_lit(v, params, d) for v in values)})" if values else "FALSE"
            pred = f"{c} IS NOT NULL AND NOT coalesce({inside}, FALSE)"
        elif t == "expect_column_values_to_match_regex":
            found = d.matches.format(value=c, pattern=_lit(k.get("regex"), params, d))
            pred = f"{c} IS NOT NULL AND NOT coalesce({found}, FALSE)"
        else:  # between
            lo, hi = k.get("min_value"), k.get("max_value")
            if lo is None and hi is None:
                raise _Untranslated(k)
            inside = [] if lo is None else [
                f"{c} {'>' if k.get('strict_min') else '>='} {_lit(lo, params, d)}"]
            inside += [] if hi is None else [
                f"{c} {'<' if k.get('strict_max') else '<='} {_lit(hi, params, d)}"]
            pred = f"{c} IS NOT NULL AND NOT coalesce({' AND '.join(inside)}, FALSE)"
    return f"{_condition(k.get('row_condition'), params, d)} AND ({pred})"


def _group(e: dict, d: Dialect = DUCKDB) -> tuple[list[str], str]:
    """(columns, SQL keeping the rows GX looks at) of a set-wide expectation."""
    k = e.get("kwargs") or {}
    if e.get("type") == "expect_column_values_to_be_unique":
        c = _q(k.get("column"), d)
        return [c], f"{c} IS NOT NULL"
    cols = [_q(c, d) for c in (k.get("column_list") or [])]
    if not cols:
        raise _Untranslated(k)
    keep = {"all_values_are_missing": "NOT (" + " AND ".join(f"{c} IS NULL" for c in cols) + ")",
            "any_value_is_missing": " AND ".join(f"{c} IS NOT NULL" for c in cols),
            "never": "TRUE"}.get(k.get("ignore_row_if", "all_values_are_missing"))
    if keep is None:
        raise _Untranslated(k)
    return cols, keep


def _flag(e: dict, params: dict, d: Dialect = DUCKDB) -> str:
    """SQL aggregate: > 0 when ``e`` may refuse a row of the table."""
    if (e.get("kwargs") or {}).get("mostly") is not None:
        raise _Untranslated("mostly")
    if e.get("type") in SET_WIDE:
        if (e.get("kwargs") or {}).get("row_condition") is not None:
            raise _Untranslated("row_condition")
        cols, keep = _group(e, d)
        key = cols[0] if len(cols) == 1 else d.row.format(columns=", ".join(cols))
        return f"count(*) FILTER (WHERE {keep}) - count(DISTINCT {key}) FILTER (WHERE {keep})"
    return f"count(*) FILTER (WHERE {_refused(e, params, d)})"


def screen_flags(expectations: list[dict], params: dict, d: Dialect = DUCKDB) -> list[str] | None:
    """The screen's aggregates of a suite (one per expectation, each > 0 when the
    expectation may refuse a row); None when one cannot be translated (GX decides)."""
    try:
        return [_flag(e, params, d) for e in expectations]
    except _Untranslated:
        return None


def screen(con, table: str, expectations: list[dict], params: dict) -> bool:
    """True when some expectation of the suite may refuse a row of ``table`` (GX decides)."""
    flags = screen_flags(expectations, params)
    if flags is None:
        return True
    if not flags:
        return False
    try:
        counts = con.execute(f"SELECT {', '.join(flags)} FROM {table}").fetchall()[0]
    except Exception:  # noqa: BLE001 - e.g. a comparison DuckDB cannot type: GX decides
        return True
    return any(n for n in counts)


def _counts(values: list) -> list[dict]:
    try:
        common = Counter(values).most_common()
    except TypeError:  # unhashable (dict) values: GX lists none either
        return []
    return [{"value": v, "count": n} for v, n in common]


def _rates(res: dict) -> None:
    """GX's percentages of a column-map result from its counts."""
    n, missing, bad = res.get("element_count", 0), res.get("missing_count", 0), res["unexpected_count"]
    present = n - missing
    res["missing_percent"] = 100.0 * missing / n if n else None
    res["unexpected_percent"] = 100.0 * bad / present if present else None
    res["unexpected_percent_total"] = 100.0 * bad / n if n else None
    res["unexpected_percent_nonmissing"] = res["unexpected_percent"]


def _restate(suite_result) -> None:
    results = suite_result.results
    good = sum(1 for r in results if r.success)
    suite_result.success = good == len(results)
    stats = dict(suite_result.statistics or {})
    stats.update(evaluated_expectations=len(results), successful_expectations=good,
                 unsuccessful_expectations=len(results) - good,
                 success_percent=100.0 * good / len(results) if results else None)
    suite_result.statistics = stats


def merge(chunks: list, limit: int):
    """The results of one suite over consecutive chunks of rows, as one result (the
    first chunk's, with counts added and the first ``limit`` examples kept)."""
    first = chunks[0]
    for i, r in enumerate(first.results):
        others = [c.results[i] for c in chunks[1:]]
        broken = next((o for o in [r, *others] if (o.exception_info or {}).get("raised_exception")), None)
        if broken is not None:
            first.results[i] = broken
            continue
        res = dict(r.result or {})
        for o in others:
            more = o.result or {}
            for key in ("element_count", "missing_count", "unexpected_count"):
                res[key] = (res.get(key) or 0) + (more.get(key) or 0)
            for key in ("partial_unexpected_list", "partial_unexpected_index_list"):
                if key in res:
                    res[key] = (list(res[key] or []) + list(more.get(key) or []))[:limit]
        if "unexpected_count" in res:
            _rates(res)
            if "partial_unexpected_counts" in res:
                res["partial_unexpected_counts"] = _counts(res.get("partial_unexpected_list") or [])[:limit]
        r.result = res
        r.success = all(o.success for o in [r, *others])
    _restate(first)
    return first


def apply_set_wide(con, table: str, line_column: str, suite_result, limit: int) -> None:
    """Decide the set-wide expectations of ``suite_result`` over the whole ``table``."""
    L = quote_identifier(line_column)
    for r in suite_result.results:
        cfg = r.expectation_config
        if cfg.type not in SET_WIDE or (r.exception_info or {}).get("raised_exception"):
            continue
        e = {"type": cfg.type, "kwargs": dict(cfg.kwargs)}
        cols, keep = _group(e)
        total, kept = con.execute(f"SELECT count(*), count(*) FILTER (WHERE {keep}) "
                                  f"FROM {table}").fetchall()[0]
        cur = con.execute(
            f"SELECT {L} - 2, {', '.join(cols)}, count(*) OVER () FROM ("
            f"SELECT {L}, {', '.join(cols)}, count(*) OVER (PARTITION BY {', '.join(cols)}) AS _n "
            f"FROM {table} WHERE {keep}) WHERE _n > 1 ORDER BY {L} LIMIT {int(limit)}")
        names = [d[0] for d in cur.description][1:-1]
        rows = cur.fetchall()
        values = [row[1] if len(cols) == 1 else dict(zip(names, row[1:-1])) for row in rows]
        res = dict(r.result or {})
        res.update(element_count=total, missing_count=total - kept,
                   unexpected_count=rows[0][-1] if rows else 0,
                   partial_unexpected_list=values,
                   partial_unexpected_index_list=[row[0] for row in rows])
        _rates(res)
        res["partial_unexpected_counts"] = _counts(values)[:limit]
        r.result = res
        r.success = not rows
    _restate(suite_result)
