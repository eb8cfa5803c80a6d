"""The published scores of a Spark warehouse, for ``python -m pci export --engine spark``.

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

from pci.core.catalog import PUBLICATIONS, PUBLISH_SCHEMA, SCORE_NAMES, SCORES
from pci.core.contract import format_month, month_range
from pci.core.errors import EXIT_USAGE, Refusal
from pci.core.spark import quote_identifier, session, table_exists, warehouse_env
from pci.read.mart import MartUnavailable


def _span(first: date, last: date) -> str:
    return format_month(first) if first == last else f"{format_month(first)} … {format_month(last)}"


def read_published_scores(warehouse: Path | str, first: date, last: date) -> tuple[list[str], list[tuple]]:
    """``(columns, rows)``: the published score rows of ``first`` … ``last`` in the Spark
    warehouse folder ``warehouse`` (see the module's docstring)."""
    if not Path(warehouse_env(warehouse)["PCI_SPARK_METASTORE"]).is_dir():
        raise MartUnavailable(f"{warehouse}: not a Spark warehouse (no metastore_db): run the "
                              f"pipeline with --engine spark first", EXIT_USAGE)
    spark = session(warehouse)
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
