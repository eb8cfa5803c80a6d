"""The one door of the readers (``explain``, ``report``, ``at-risk``) to the published
tables of either engine: :func:`read_published` runs ``read(mart)`` on the DuckDB
warehouse's mart (:func:`pci.read.mart.read_mart`: its analysts' copy when there is
one) or on what a Spark warehouse published of the month
(:func:`pci.read.spark_mart.read_spark_mart`); :func:`add_arguments` gives the
commands their ``--source`` and ``--engine``.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

from pci.core.warehouse import ENGINES
from pci.read.mart import read_mart


def add_arguments(parser) -> None:
    """``--source`` (DuckDB: the analysts' copy or the warehouse) and ``--engine``."""
    parser.add_argument("--source", choices=("auto", "copy", "warehouse"), default="auto",
                        help="auto (default): the analyst copy when present, else the warehouse")
    parser.add_argument("--engine", choices=ENGINES, default="duckdb",
                        help="the engine of the warehouse (default duckdb); spark: --warehouse is a "
                             "Spark warehouse folder (docs/scale-out.md)")


def read_published(warehouse: Path, source: str, month: date, read, engine: str = "duckdb",
                   partner: str | None = None):
    """``read(mart)`` on the published tables of ``warehouse`` as far as they concern
    ``month`` (and ``partner``, the one a scorecard explains): the whole mart on DuckDB,
    the month, its history and the partner's months on Spark."""
    if engine == "spark":
        from pci.read.spark_mart import read_spark_mart  # noqa: PLC0415 - starts a JVM

        return read_spark_mart(warehouse, month, read, partner)
    return read_mart(Path(warehouse), source, read)
