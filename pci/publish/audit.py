"""The audit of one built score month before it is published.

Each rule on the mart is checked once, by the tool that checks it best:

* **dbt**, in the build that made the month (``dbt build`` runs them and fails
  on any of them, so a month that breaks one never reaches this audit): the
  enforced model contract (exactly the contract's columns and types,
  raw-exports.md section 4), and the data tests of
  ``models/marts/pci_monthly_scores.yml`` and ``tests/dbt/``: not-null columns,
  ranges, accepted levels, one row per (score_month, partner_id), ``pci_score``
  the sum of the six points, the level from seed ``pci_levels`` [D-3], every
  points column within seed ``pci_metrics``' maximum, ``mau_growth`` null
  exactly when the baseline is below the seed's minimum;
* **this audit**, on the month about to be published, what dbt does not see:

  - :func:`_structural` (SQL): the built relation is there, and so is the
    month's export (``raw.partners``), the reference of the next check;
  - the Great Expectations suite ``expectations/pci_monthly_scores.json``,
    screened in SQL (:mod:`pci.land.suite_sql`) and, when a row may fail it, run
    by its Checkpoint on the month's rows joined (full outer join on
    ``partner_id``) to the partners of the month's export: every partner of the
    export has a row, and every row is of a partner of the export (pci-rules.md,
    "Output: who gets a row"). With dbt's uniqueness test that makes exactly
    one row per partner of the export; a month whose export lists no partner
    has zero rows and passes.

:func:`audit_month` returns a :class:`MartAudit`; ``ok`` is False with every
failure listed (check, column, count, examples) otherwise. When the GX suite
fails, its Data Docs are written to ``<warehouse dir>/data_docs/`` and the
audit's report links them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from pci.core.catalog import SCORES
from pci.core.contract import BUILD_SCHEMA, RAW_SCHEMA, format_month
from pci.core.project import EXPECTATIONS_DIR
from pci.core.warehouse import quote_literal, table_exists
from pci.land import expectations, suite_sql
from pci.land.violations import DataDocs
from pci.publish.publication import fingerprint

SUITE_PATH = EXPECTATIONS_DIR / "pci_monthly_scores.json"
RELATION = f"{BUILD_SCHEMA}.{SCORES}"
EXPORT = f"{RAW_SCHEMA}.partners"
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
    data_docs: DataDocs | None = None  # written when the GX suite failed

    @property
    def ok(self) -> bool:
        return not self.failures

    def report(self) -> str:
        head = (f"audit of {RELATION} for {format_month(self.score_month)}: "
                f"{self.rows} rows, {'passed' if self.ok else f'{len(self.failures)} check(s) failed'}")
        lines = [head, *("  - " + f.line() for f in self.failures)]
        if self.data_docs:
            lines += [f"  data docs: {url}" for url in self.data_docs.pages.values()]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"score_month": format_month(self.score_month), "rows": self.rows, "ok": self.ok,
                "failures": [f.__dict__ | {"examples": [str(e) for e in f.examples]}
                             for f in self.failures],
                "data_docs": self.data_docs.as_dict() if self.data_docs else None}


@lru_cache(maxsize=1)
def _suite_definition() -> dict:
    return json.loads(SUITE_PATH.read_text(encoding="utf-8"))


def load_suite():
    """The GX suite (every expectation loaded, or :class:`pci.land.expectations.SuiteError`)."""
    return expectations.build_suite(_suite_definition(), str(SUITE_PATH))


def _structural(con) -> list[MartFailure]:
    """What the GX suite needs: the built relation and the landed export."""
    if not table_exists(con, BUILD_SCHEMA, SCORES):
        return [MartFailure("relation missing: build the month first", None, 0)]
    if not table_exists(con, RAW_SCHEMA, "partners"):
        return [MartFailure(f"{EXPORT} missing: the month's export is not landed", None, 0)]
    return []


def _beside_export(month: date) -> str:
    """The month's rows beside the partners of its export (full outer join on
    partner_id): a missing side is null."""
    m = f"DATE {quote_literal(month.isoformat())}"
    return f"""
        SELECT coalesce(s.partner_id, p.partner_id) AS partner_id,
               s.partner_id AS scored_partner_id, p.partner_id AS export_partner_id
        FROM (SELECT partner_id FROM {RELATION} WHERE score_month = {m}) s
        FULL JOIN (SELECT DISTINCT partner_id FROM {EXPORT} WHERE export_month = {m}) p
          ON s.partner_id = p.partner_id"""


def _gx(con, month: date) -> tuple[list[MartFailure], DataDocs | None]:
    joined = _beside_export(month)
    # the suite's rules screened in SQL first (pci.land.suite_sql): a month no rule can
    # refuse passes without starting GX; otherwise GX runs the suite and makes the report
    if not suite_sql.screen(con, f"({joined}) AS beside", _suite_definition()["expectations"], {}):
        return [], None
    df = con.execute(f"{joined} ORDER BY 1").df()
    gxs = expectations._GX.get()  # the process's GX context, shared with landing
    name = _suite_definition()["name"]
    if name not in gxs.checkpoints:
        gxs.checkpoint(load_suite(), {"result_format": "SUMMARY",
                                      "partial_unexpected_count": _MAX_EXAMPLES})
    key, result = gxs.run(name, df, {}, expectations.run_id("audit", month))
    failures = []
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        meta, res = cfg.meta or {}, r.result or {}
        info = r.exception_info or {}
        if info.get("raised_exception"):
            count, examples = len(df), [info.get("exception_message")]
        else:
            count = int(res.get("unexpected_count") or 0)
            examples = [df["partner_id"].iloc[int(i)]
                        for i in (res.get("partial_unexpected_index_list") or [])]
            if not examples and "observed_value" in res:
                examples = [f"observed {res['observed_value']}"]
        failures.append(MartFailure(meta.get("rule") or f"GX {cfg.type}",
                                    meta.get("column") or cfg.kwargs.get("column"), count,
                                    examples[:_MAX_EXAMPLES]))
    docs = gxs.write_docs(expectations.data_docs_dir(con), [(key, result)] if failures else [])
    return failures, docs


def audit_month(con, month: date) -> MartAudit:
    """Audit ``pci_build.pci_monthly_scores`` for ``month``; never raises on bad data."""
    failures = _structural(con)
    if failures:
        return MartAudit(month, 0, failures)
    rows = con.execute(f"SELECT count(*) FROM {RELATION} WHERE score_month = ?",
                       [month]).fetchall()[0][0]
    failures, docs = _gx(con, month)
    audit = MartAudit(month, rows, failures, data_docs=docs)
    if audit.ok:
        audit.fingerprint = fingerprint(con, month)
    return audit
