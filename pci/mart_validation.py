"""The audit of one built score month before it is published.

Two layers, both on ``pci_build`` and both required to pass:

* structural checks in SQL: the relation has exactly the contract's columns and
  DuckDB types (raw-exports.md, section 4), one row per partner of the month's
  export, ``pci_score`` is the sum of the six points and the level follows the
  score (pci-rules.md, D-3);
* the Great Expectations suite ``expectations/pci_monthly_scores.json`` on the
  month's rows (non-null metrics, points within ``0 … max_points``, levels in
  the allowed set, unique partners, the month under audit only).

:func:`audit_month` returns a :class:`MartAudit`; ``ok`` is False with every
failure listed (check, column, count, examples) otherwise.
"""
from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

from pci.contract import BUILD_SCHEMA, RAW_SCHEMA, format_month
from pci.publish import SCORE_COLUMNS, SCORES, fingerprint

SUITE_PATH = Path(__file__).resolve().parents[1] / "expectations" / "pci_monthly_scores.json"
RELATION = f"{BUILD_SCHEMA}.{SCORES}"
_MAX_EXAMPLES = 5


@dataclass
class MartFailure:
    check: str
    column: str | None
    count: int
    examples: list = field(default_factory=list)

    def line(self) -> str:
        col = f" [{self.column}]" if self.column else ""
        ex = f"; e.g. {', '.join(map(str, self.examples[:_MAX_EXAMPLES]))}" if self.examples else ""
        return f"{RELATION}{col}: {self.check} - {self.count} row(s){ex}"


@dataclass
class MartAudit:
    score_month: date
    rows: int
    failures: list[MartFailure]
    fingerprint: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def report(self) -> str:
        head = (f"audit of {RELATION} for {format_month(self.score_month)}: "
                f"{self.rows} rows, {'passed' if self.ok else f'{len(self.failures)} check(s) failed'}")
        return "\n".join([head, *("  - " + f.line() for f in self.failures)])

    def as_dict(self) -> dict:
        return {"score_month": format_month(self.score_month), "rows": self.rows, "ok": self.ok,
                "failures": [f.__dict__ | {"examples": [str(e) for e in f.examples]}
                             for f in self.failures]}


@lru_cache(maxsize=1)
def _suite_definition() -> dict:
    return json.loads(SUITE_PATH.read_text(encoding="utf-8"))


def load_suite(score_month: date):
    """The GX suite with ``$score_month`` bound to the month under audit."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx  # noqa: PLC0415 - heavy import, only when auditing

    definition = copy.deepcopy(_suite_definition())
    for exp in definition["expectations"]:
        kw = exp["kwargs"]
        if kw.get("value_set") == ["$score_month"]:
            kw["value_set"] = [score_month.isoformat()]
    suite = gx.ExpectationSuite(name=definition["name"], expectations=definition["expectations"],
                                meta=definition.get("meta"))
    if len(suite.expectations) != len(definition["expectations"]):
        raise ValueError(f"{SUITE_PATH}: {len(definition['expectations']) - len(suite.expectations)} "
                         f"expectation(s) could not be read by Great Expectations")
    return suite


def _structural(con, month: date) -> list[MartFailure]:
    out: list[MartFailure] = []
    actual = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [BUILD_SCHEMA, SCORES]).fetchall()
    if not actual:
        return [MartFailure("relation missing: build the month first", None, 0)]
    expected = list(SCORE_COLUMNS)
    if [tuple(a) for a in actual] != expected:
        diffs = [f"{e[0]} {e[1]} != {a[0] if a else '-'} {a[1] if a else '-'}"
                 for e, a in zip(expected, list(actual) + [None] * len(expected)) if tuple(a or ()) != e]
        extra = [f"{a[0]} (not in contract)" for a in actual[len(expected):]]
        out.append(MartFailure("columns and types must be exactly the contract's (raw-exports.md §4)",
                               None, len(diffs) + len(extra), diffs + extra))
        return out
    rel = RELATION

    def check(name, column, sql, params):
        rows = con.execute(sql, params).fetchall()
        if rows:
            out.append(MartFailure(name, column, len(rows), [r[0] for r in rows[:_MAX_EXAMPLES]]))

    points = " + ".join(c for c, _ in SCORE_COLUMNS if c.startswith("points_"))
    check("pci_score must equal the sum of the six points", "pci_score",
          f"SELECT partner_id FROM {rel} WHERE score_month = ? AND pci_score <> {points} ORDER BY 1",
          [month])
    check("competency_level must be gold (>= 80), silver (>= 60) or none (D-3)", "competency_level",
          f"""SELECT partner_id || ' ' || pci_score || ' ' || competency_level FROM {rel}
              WHERE score_month = ? AND competency_level IS DISTINCT FROM
                CASE WHEN pci_score >= 80 THEN 'gold' WHEN pci_score >= 60 THEN 'silver' ELSE 'none' END
              ORDER BY 1""", [month])
    check("mau_growth must be null exactly when mau_baseline < 50", "mau_growth",
          f"""SELECT partner_id FROM {rel} WHERE score_month = ?
              AND ((mau_baseline >= 50) <> (mau_growth IS NOT NULL)) ORDER BY 1""", [month])
    has_partners = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = 'partners'",
        [RAW_SCHEMA]).fetchall()[0][0]
    if has_partners:
        check("every partner of the month's export must have exactly one row", "partner_id",
              f"""SELECT p.partner_id FROM {RAW_SCHEMA}.partners p
                  WHERE p.export_month = $1 AND p.partner_id NOT IN
                    (SELECT partner_id FROM {rel} WHERE score_month = $1) ORDER BY 1""", [month])
        check("rows for partners not in the month's export", "partner_id",
              f"""SELECT s.partner_id FROM {rel} s WHERE s.score_month = $1 AND s.partner_id NOT IN
                    (SELECT partner_id FROM {RAW_SCHEMA}.partners WHERE export_month = $1) ORDER BY 1""",
              [month])
    return out


def _gx(con, month: date) -> tuple[list[MartFailure], int]:
    cols = ", ".join(f"CAST(score_month AS VARCHAR) AS score_month" if c == "score_month" else c
                     for c, _ in SCORE_COLUMNS)
    df = con.execute(f"SELECT {cols} FROM {RELATION} WHERE score_month = ? ORDER BY partner_id",
                     [month]).df()
    import great_expectations as gx  # noqa: PLC0415

    suite = load_suite(month)
    from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: PLC0415

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas(name="pci_build")
    asset = source.add_dataframe_asset(name=SCORES)
    batch = asset.add_batch_definition_whole_dataframe("month").get_batch(
        batch_parameters={"dataframe": df})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE",
                                                  "partial_unexpected_count": _MAX_EXAMPLES})
    failures = []
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        kwargs = dict(cfg.kwargs)
        res = r.result or {}
        examples = res.get("partial_unexpected_list") or res.get("details", {}).get("mismatched") or []
        if not examples and "observed_value" in res:
            examples = [f"observed {res['observed_value']}"]
        if r.exception_info and r.exception_info.get("raised_exception"):
            examples = [r.exception_info.get("exception_message")]
        count = res.get("unexpected_count")
        failures.append(MartFailure(
            f"GX {cfg.type}" + "".join(f" {k}={v}" for k, v in kwargs.items()
                                       if k not in ("column", "batch_id", "column_list")),
            kwargs.get("column"), int(count) if count is not None else len(df),
            list(examples)[:_MAX_EXAMPLES]))
    return failures, len(df)


def audit_month(con, month: date) -> MartAudit:
    """Audit ``pci_build.pci_monthly_scores`` for ``month``; never raises on bad data."""
    failures = _structural(con, month)
    if failures and failures[0].check.startswith(("relation missing", "columns and types")):
        return MartAudit(month, 0, failures)
    gx_failures, rows = _gx(con, month)
    failures += gx_failures
    audit = MartAudit(month, rows, failures)
    if audit.ok:
        audit.fingerprint = fingerprint(con, month)
    return audit
