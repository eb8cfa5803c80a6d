"""The published tables of a Spark warehouse, for the readers: ``export``, and
``explain``, ``report`` and ``at-risk`` with ``--engine spark``.

:func:`read_spark_mart` gives the readers of :mod:`pci.read.mart` (scorecard,
history, transitions, projection, report) what they read of a month ``M``, on a
:class:`~pci.read.mart.Mart` whose connection is a DuckDB *workspace* in memory
(:func:`pci.core.warehouse.workspace`) filled from Spark through Arrow
(:func:`pci.core.spark.to_workspace`), so that the same code reads either engine:

* ``main.pci_monthly_scores``: the months ``M-12`` … ``M`` (a partner's last 12
  months, the transitions), reaching back further to the latest month published
  before ``M`` when that is older, and every month of the one partner explained
  (``partner``: the months it was scored in, named when it has no score in ``M``);
* ``main.pci_metric_contributions`` and ``main.pci_next_month_projection``: ``M``;
* ``main.pci_score_publications``: every publication (the months published, and
  those published with no partners);
* ``raw.partners``: each partner's latest name up to ``M``.

A month whose publication is not recorded is not published (the readers say so,
as on DuckDB). Spark's readers never block its writer, so there is no analysts'
copy: the mart's ``kind`` is ``Spark warehouse`` (what the readers name as their source).

:func:`read_published_scores` is the Spark side of
:func:`pci.read.export.read_published_scores`:

* the columns of ``pci_monthly_scores`` in the order of the output contract
  (raw-exports.md, section 4; :data:`pci.core.catalog.SCORE_NAMES`);
* the rows of ``main.pci_monthly_scores`` (Parquet, partitioned by ``score_month``,
  written by :mod:`pci.publish.spark_publication`) of the score months
  ``first`` … ``last``, ordered by ``score_month`` then ``partner_id``, as Python
  values: ``date``, ``Decimal`` (DECIMAL columns, every digit), ``int``, ``float``,
  ``bool``, ``str``, ``None``;
* a month is published when ``main.pci_score_publications`` holds a publication of
  it (a month published with no partners has no rows, and is published). A range
  with a month that is not is refused (:class:`pci.core.errors.Refusal`, exit 1)
  naming every such month, and nothing is read. A month whose marts were written
  by a publication that died before its record (see
  :mod:`pci.publish.spark_publication`) is not published.

A folder that is not a Spark warehouse (no metastore) is a usage error (exit 2):
nothing is created there.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

from pci.core.catalog import (CONTRIBUTIONS, PROJECTION, PUBLICATIONS, PUBLISH_SCHEMA, SCORE_NAMES, SCORES,
                              ensure_publish_schema)
from pci.core.contract import RAW_SCHEMA, add_months, format_month, month_range
from pci.core.errors import EXIT_USAGE, Refusal
from pci.core.spark import quote_identifier, session, table_exists, to_workspace, warehouse_env
from pci.core.warehouse import workspace
from pci.read.mart import Mart, MartUnavailable

#: the months of scores before M a reader needs (a partner's last 12 months)
HISTORY_MONTHS = 12


def _span(first: date, last: date) -> str:
    return format_month(first) if first == last else f"{format_month(first)} … {format_month(last)}"


def _spark(warehouse: Path | str):
    """The session of the Spark warehouse folder ``warehouse`` (a folder that is not
    one is a usage error, and nothing is created there)."""
    if not Path(warehouse_env(warehouse)["PCI_SPARK_METASTORE"]).is_dir():
        raise MartUnavailable(f"{warehouse}: not a Spark warehouse (no metastore_db): run the "
                              f"pipeline with --engine spark first", EXIT_USAGE)
    return session(warehouse)


class SparkMart(Mart):
    """The published tables a reader needs of one month, copied from Spark."""

    def score_months(self) -> list[str]:
        """Every published month (from the publications: the copy holds only some
        months' rows), those published with no partners marked so."""
        empty = set(self.empty_months())
        return [format_month(m) + (" (no partners)" if m in empty else "") for (m,) in self.con.execute(
            f"SELECT DISTINCT score_month FROM main.{PUBLICATIONS} ORDER BY 1").fetchall()]


def _copy_month(spark, con, month: date, partner: str | None = None) -> None:
    """Fill the workspace ``con`` with what the readers read of ``month`` (module
    docstring): the published tables as the DuckDB warehouse holds them (its columns
    in the contract's order, its types), their rows from Spark."""
    ensure_publish_schema(con)
    previous = spark.sql(f"SELECT max(score_month) FROM {PUBLISH_SCHEMA}.{PUBLICATIONS} "
                         f"WHERE score_month < :m", args={"m": month}).collect()[0][0]
    first = add_months(month, -HISTORY_MONTHS)
    first = min(first, previous) if previous else first

    def copy(table: str, where: str = "", args: dict | None = None) -> None:
        if table_exists(spark, PUBLISH_SCHEMA, table):
            to_workspace(spark, con, PUBLISH_SCHEMA, table, f"SELECT * FROM {PUBLISH_SCHEMA}.{table}{where}",
                         args, into_existing=True)

    copy(PUBLICATIONS)
    if partner is None:
        copy(SCORES, " WHERE score_month BETWEEN :first AND :m", {"first": first, "m": month})
    else:
        copy(SCORES, " WHERE score_month BETWEEN :first AND :m OR partner_id = :partner",
             {"first": first, "m": month, "partner": str(partner)})
    for table in (CONTRIBUTIONS, PROJECTION):
        copy(table, " WHERE score_month = :m", {"m": month})
    if table_exists(spark, RAW_SCHEMA, "partners"):
        to_workspace(spark, con, RAW_SCHEMA, "partners",
                     f"SELECT partner_id, max_by(partner_name, export_month) AS partner_name, "
                     f"max(export_month) AS export_month FROM {RAW_SCHEMA}.partners "
                     f"WHERE export_month <= :m GROUP BY partner_id", {"m": month})


def read_spark_mart(warehouse: Path | str, month: date, read, partner: str | None = None):
    """``read(mart)`` on a :class:`SparkMart` holding what the readers need of ``month``
    (and of ``partner``) of the Spark warehouse folder ``warehouse``. A warehouse
    that has published nothing is :class:`~pci.read.mart.MartUnavailable` (exit 1)."""
    spark = _spark(warehouse)
    if not table_exists(spark, PUBLISH_SCHEMA, PUBLICATIONS) or not table_exists(spark, PUBLISH_SCHEMA, SCORES):
        raise MartUnavailable(f"{warehouse}: no published scores (table {PUBLISH_SCHEMA}.{SCORES} is missing)")
    con = workspace()
    try:
        _copy_month(spark, con, month, partner)
        with SparkMart(con, Path(warehouse), "Spark warehouse") as mart:
            return read(mart)
    finally:
        con.close()


def read_published_scores(warehouse: Path | str, first: date, last: date) -> tuple[list[str], list[tuple]]:
    """``(columns, rows)``: the published score rows of ``first`` … ``last`` in the Spark
    warehouse folder ``warehouse`` (see the module's docstring)."""
    spark = _spark(warehouse)
    published = []
    if table_exists(spark, PUBLISH_SCHEMA, PUBLICATIONS):
        published = [r[0] for r in spark.sql(
            f"SELECT DISTINCT score_month FROM {PUBLISH_SCHEMA}.{PUBLICATIONS} "
            f"ORDER BY score_month").collect()]
    missing = [m for m in month_range(first, last) if m not in set(published)]
    if missing:
        raise Refusal(
            f"not published: {', '.join(format_month(m) for m in missing)} (the export of "
            f"{_span(first, last)} needs every month of the range); the published score months "
            f"are {', '.join(format_month(m) for m in published) or 'none'}; nothing was written")
    columns = list(SCORE_NAMES)
    rows = spark.sql(
        f"SELECT {', '.join(quote_identifier(c) for c in columns)} FROM {PUBLISH_SCHEMA}.{SCORES} "
        f"WHERE score_month BETWEEN :first AND :last ORDER BY score_month, partner_id",
        args={"first": first, "last": last}).collect()
    return columns, [tuple(r) for r in rows]
