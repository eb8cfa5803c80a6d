"""The Spark engine: the one module that starts a Spark session for the package.

A Spark warehouse is a folder ``W`` (``--warehouse W --engine spark``):

* ``W/tables/``: the tables' Parquet files (``spark.sql.warehouse.dir``), one
  folder per table, and one sub-folder per month for a table partitioned by month;
* ``W/metastore_db/``: the catalog (an embedded Derby metastore: one process at a
  time, which the warehouse lock already ensures).

The session's settings are those of the ``spark`` target of ``profiles.yml``
(``server_side_parameters``), rendered here with the same variables, so that the
package and dbt (``method: session``, in the same process) share one session and
one catalog. :func:`session` creates it once per process; :func:`use_warehouse`
points the variables at ``W`` first (the session of a process serves one warehouse).

On a cluster the same code runs in the driver started by ``spark-submit``; the
master and the executors come from Spark's own configuration
(docs/scale-out.md).
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from pci.core.project import PROJECT_DIR

#: the dbt target of the Spark engine (profiles.yml)
TARGET = "spark"

#: the driver's memory of a local session (a cluster sets its own in spark-defaults.conf)
DRIVER_MEMORY = os.environ.get("PCI_SPARK_DRIVER_MEMORY", "4g")

_session = None
_warehouse: Path | None = None


def warehouse_env(warehouse: Path | str) -> dict[str, str]:
    """The variables of the ``spark`` target for the warehouse folder ``warehouse``."""
    folder = Path(warehouse).resolve()
    return {"PCI_SPARK_WAREHOUSE": str(folder / "tables"),
            "PCI_SPARK_METASTORE": str(folder / "metastore_db")}


def use_warehouse(warehouse: Path | str) -> Path:
    """Point the ``spark`` target at ``warehouse`` (creating its folder). A session
    serving another warehouse is stopped first (its catalog is that warehouse's)."""
    folder = Path(warehouse).resolve()
    if _session is not None and _warehouse != folder:
        stop()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.update(warehouse_env(folder))
    return folder


def settings() -> dict[str, str]:
    """The ``server_side_parameters`` of the ``spark`` target, rendered with the
    current environment (``env_var`` as dbt renders it)."""
    import jinja2  # noqa: PLC0415

    profile = yaml.safe_load((PROJECT_DIR / "profiles.yml").read_text(encoding="utf-8"))
    params = profile["pci"]["outputs"][TARGET].get("server_side_parameters", {})

    def env_var(name: str, default: str | None = None) -> str:
        value = os.environ.get(name, default)
        if value is None:
            raise KeyError(f"profiles.yml: environment variable {name} is not set")
        return value

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.globals["env_var"] = env_var
    return {key: env.from_string(str(value)).render() for key, value in params.items()}


def session(warehouse: Path | str):
    """The process's Spark session for ``warehouse`` (created on the first call)."""
    global _session, _warehouse
    folder = use_warehouse(warehouse)
    if _session is None:
        from pyspark.sql import SparkSession  # noqa: PLC0415

        builder = (SparkSession.builder.appName("pci-pipeline").enableHiveSupport()
                   .config("spark.driver.memory", DRIVER_MEMORY)
                   # Derby's log and lock files beside the metastore, not in the working directory
                   .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={folder}")
                   # no progress bars on the commands' terminal
                   .config("spark.ui.showConsoleProgress", "false"))
        if "spark.master" not in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
            builder = builder.master(os.environ.get("PCI_SPARK_MASTER", "local[*]"))
        for key, value in settings().items():
            builder = builder.config(key, value)
        _session = builder.getOrCreate()
        _session.sparkContext.setLogLevel("ERROR")
        _warehouse = folder
    return _session


def stop() -> None:
    """Stop the process's session (the next :func:`session` starts a new one)."""
    global _session, _warehouse
    if _session is not None:
        _session.stop()
    _session, _warehouse = None, None


def quote_identifier(name: str) -> str:
    """``name`` as a Spark SQL identifier: ``a`b`` -> ```a``b```."""
    return "`" + str(name).replace("`", "``") + "`"


def quote_literal(text: str) -> str:
    """``text`` as a Spark SQL string literal: Spark reads a backslash in a literal as
    an escape, so backslashes and quotes are escaped with one (``a\\b'c`` ->
    ``'a\\\\b\\'c'``)."""
    return "'" + str(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


def table_exists(spark, schema: str, table: str) -> bool:
    """Whether ``schema.table`` exists in the session's catalog."""
    return bool(spark.catalog.tableExists(f"{schema}.{table}"))


# ----------------------------------------------------------------------------- types and tables

#: DuckDB's type names of the contract (pci.core.contract) as Spark SQL spells them
_SPARK_TYPES = {"VARCHAR": "STRING", "HUGEINT": "DECIMAL(38,0)"}


def spark_type(duckdb_type: str) -> str:
    """The Spark SQL type of a contract column's DuckDB type (``VARCHAR`` -> ``STRING``)."""
    return _SPARK_TYPES.get(duckdb_type.upper(), duckdb_type.upper())


def create_table_sql(schema: str, table: str, columns, partition_by: str | None = None) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of a Parquet table with ``columns`` ((name,
    DuckDB type) pairs); ``partition_by`` (a month column) is moved last, as Spark
    keeps partition columns after the others."""
    cols = [(n, t) for n, t in columns if n != partition_by]
    if partition_by:
        cols += [(n, t) for n, t in columns if n == partition_by]
    body = ",\n  ".join(f"{quote_identifier(n)} {spark_type(t)}" for n, t in cols)
    sql = f"CREATE TABLE IF NOT EXISTS {schema}.{table} (\n  {body}\n) USING parquet"
    if partition_by:
        sql += f" PARTITIONED BY ({quote_identifier(partition_by)})"
    return sql


def ensure_raw_schema(spark) -> None:
    """The raw and archive databases and their tables, Parquet partitioned by
    ``export_month`` (the loads table is small and not partitioned)."""
    from pci.core.contract import (ARCHIVE_SCHEMA, FILES, LINEAGE_COLUMNS, LOADS_TABLE,  # noqa: PLC0415
                                   RAW_SCHEMA)

    for schema in (RAW_SCHEMA, ARCHIVE_SCHEMA):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
        for f in FILES:
            columns = [(c.name, c.duckdb_type) for c in (*f.columns, *LINEAGE_COLUMNS)]
            spark.sql(create_table_sql(schema, f.name, columns, partition_by="export_month"))
    spark.sql(create_table_sql(RAW_SCHEMA, LOADS_TABLE, LOADS_COLUMNS))


#: raw.loads, as pci.core.contract.LOADS_DDL (no primary key on Spark: one writer
#: holds the warehouse lock)
LOADS_COLUMNS = (("load_id", "VARCHAR"), ("export_month", "DATE"), ("manifest_sha256", "VARCHAR"),
                 ("landed_at", "TIMESTAMP"), ("is_current", "BOOLEAN"), ("file_rows", "VARCHAR"))


def to_workspace(spark, con, schema: str, table: str, sql: str, args: dict | None = None,
                 into_existing: bool = False) -> int:
    """Copy the rows of the Spark query ``sql`` (named parameters ``:name`` bound from
    ``args``) into the DuckDB table ``schema.table`` of ``con`` (a workspace,
    :func:`pci.core.warehouse.workspace`), through Arrow: a new table with Spark's
    types, or (``into_existing``) inserted by column name into the table as the
    workspace created it; returns the number of rows."""
    arrow = (spark.sql(sql, args=args) if args else spark.sql(sql)).toArrow()
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.register("_pci_from_spark", arrow)
    try:
        if into_existing:
            con.execute(f"INSERT INTO {schema}.{table} BY NAME SELECT * FROM _pci_from_spark")
        else:
            con.execute(f"CREATE OR REPLACE TABLE {schema}.{table} AS SELECT * FROM _pci_from_spark")
    finally:
        con.unregister("_pci_from_spark")
    return arrow.num_rows


# ----------------------------------------------------------------------------- a connection

class Connection:
    """The Spark session behind the small part of DuckDB's connection API the
    package's portable SQL uses: ``execute(sql, params)`` with ``?`` parameters
    (Spark binds them itself), then ``fetchall()`` / ``fetchone()``; ``close()``
    leaves the session to the process (dbt shares it). ``engine`` tells the two
    apart (:func:`pci.core.warehouse.table_exists`)."""

    engine = "spark"

    def __init__(self, spark):
        self.spark = spark
        self._rows: list[tuple] = []

    def execute(self, sql: str, params=None) -> "Connection":
        frame = self.spark.sql(sql, args=list(params)) if params else self.spark.sql(sql)
        self._rows = [tuple(r) for r in frame.collect()]
        return self

    def fetchall(self) -> list[tuple]:
        return self._rows

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def table_exists(self, schema: str, table: str) -> bool:
        return table_exists(self.spark, schema, table)

    def close(self) -> None:
        pass
