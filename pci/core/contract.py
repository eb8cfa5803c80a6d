"""The input contract (shared/spec/raw-exports.md, sections 1-3) as data.

Single source of truth for the ten export files: their columns, the DuckDB type
each column is read as, and the key.  The generator writes these columns, the
landing step reads them with these types, the raw tables in the warehouse have
these columns plus ``export_month`` and ``load_id``, and the dbt sources
describe the same tables.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

MANIFEST = "_manifest.json"
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

#: warehouse schema holding the current load of every landed month
RAW_SCHEMA = "raw"
#: warehouse schema holding superseded loads (a month landed again)
ARCHIVE_SCHEMA = "raw_archive"
#: bookkeeping table of every load, in RAW_SCHEMA
LOADS_TABLE = "loads"
#: schema dbt builds into; never read by analysts
BUILD_SCHEMA = "pci_build"

SALES_CHANNELS = ("EA", "CSP", "WEB_DIRECT", "MCA", "OTHER")
ASSOCIATION_TYPES = ("CSP", "CPOR", "DPOR")
CPOR_INCENTIVES = ("OSA", "OSU")
LINE_TYPES = ("CHARGE", "CREDIT")
EXAM_CODE_PATTERN = r"^[A-Z]{2,3}-[0-9]{3}$"

# Bounds of the numbers (raw-exports.md, section 2): an amount has at most 6
# digits after the point and is below 10^10 in absolute value; a seat or MAU
# count is an integer below 10^12. A value beyond them is refused at landing.
#
# Amounts are held as DECIMAL(20,6). Every contract-valid amount needs at most
# 16 digits (10 before the point, 6 after), so it is held exactly; the 4 spare
# digits make the type a superset of the DECIMAL(18,4) that warehouses landed
# before, so migrating their raw tables (ensure_raw_schema) is lossless and
# cannot fail. The bound itself is checked at landing, not left to the type.
AMOUNT_TYPE = "DECIMAL(20,6)"
AMOUNT_DIGITS = 10  # |amount| < 10^10
COUNT_DIGITS = 12  # 0 <= count < 10^12 (fits BIGINT; a sum of 9.2 million of them still does)


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    required: bool = False  # null not allowed
    #: at most this many digits before the point: |value| < 10**digits (None: no bound)
    digits: int | None = None


@dataclass(frozen=True)
class ExportFile:
    name: str  # e.g. "billing_lines"
    kind: str  # "reference" or "monthly"
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _c(name: str, typ: str = "VARCHAR", required: bool = False,
       digits: int | None = None) -> Column:
    return Column(name, typ, required, digits)


FILES: tuple[ExportFile, ...] = (
    ExportFile("partners", "reference",
               (_c("partner_id", required=True), _c("partner_name"), _c("country")),
               ("partner_id",)),
    ExportFile("tenants", "reference",
               (_c("tenant_id", required=True), _c("tenant_name"),
                _c("is_production", "BOOLEAN", True)),
               ("tenant_id",)),
    ExportFile("products", "reference",
               (_c("product_id", required=True), _c("product_name")),
               ("product_id",)),
    ExportFile("subscriptions", "reference",
               (_c("subscription_id", required=True), _c("tenant_id", required=True),
                _c("product_id", required=True), _c("sales_channel", required=True),
                _c("is_paid", "BOOLEAN", True), _c("ea_agreement_start", "DATE")),
               ("subscription_id",)),
    ExportFile("partner_associations", "reference",
               (_c("association_id", required=True), _c("partner_id", required=True),
                _c("subscription_id", required=True), _c("association_type", required=True),
                _c("cpor_incentive"), _c("valid_from", "DATE", True), _c("valid_to", "DATE")),
               ("association_id",)),
    ExportFile("partner_people", "reference",
               (_c("person_id", required=True), _c("partner_id", required=True),
                _c("valid_from", "DATE", True), _c("valid_to", "DATE")),
               ("person_id", "partner_id", "valid_from")),
    ExportFile("exam_passes", "reference",
               (_c("person_id", required=True), _c("exam_code", required=True),
                _c("passed_on", "DATE", True), _c("expires_on", "DATE")),
               ("person_id", "exam_code", "passed_on")),
    ExportFile("billing_lines", "monthly",
               (_c("line_id", required=True), _c("billing_date", "DATE", True),
                _c("subscription_id", required=True), _c("line_type", required=True),
                _c("amount_usd", AMOUNT_TYPE, True, AMOUNT_DIGITS)),
               ("line_id",)),
    ExportFile("seat_snapshots", "monthly",
               (_c("subscription_id", required=True),
                _c("paid_seats", "BIGINT", True, COUNT_DIGITS)),
               ("subscription_id",)),
    ExportFile("mau_snapshots", "monthly",
               (_c("subscription_id", required=True),
                _c("monthly_active_users", "BIGINT", True, COUNT_DIGITS)),
               ("subscription_id",)),
)

FILES_BY_NAME = {f.name: f for f in FILES}
FILENAMES = tuple(f.filename for f in FILES)

#: columns every raw table has after the file's own columns
LINEAGE_COLUMNS = (Column("export_month", "DATE", True), Column("load_id", "VARCHAR", True))


def parse_month(text: str) -> dt.date:
    """'2021-08' -> date(2021, 8, 1); raises ValueError on anything else."""
    if not isinstance(text, str) or not MONTH_RE.match(text):
        raise ValueError(f"not a month (YYYY-MM): {text!r}")
    return dt.date(int(text[:4]), int(text[5:7]), 1)


def format_month(month: dt.date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def add_months(month: dt.date, n: int) -> dt.date:
    idx = month.year * 12 + (month.month - 1) + n
    return dt.date(idx // 12, idx % 12 + 1, 1)


def end_of_month(month: dt.date) -> dt.date:
    return add_months(month, 1) - dt.timedelta(days=1)


def month_range(first: dt.date, last: dt.date) -> list[dt.date]:
    out, m = [], first
    while m <= last:
        out.append(m)
        m = add_months(m, 1)
    return out


def raw_table_ddl(f: ExportFile, schema: str = RAW_SCHEMA) -> str:
    cols = ",\n  ".join(f"{c.name} {c.duckdb_type}" for c in (*f.columns, *LINEAGE_COLUMNS))
    return f"CREATE TABLE IF NOT EXISTS {schema}.{f.name} (\n  {cols}\n)"


LOADS_DDL = f"""CREATE TABLE IF NOT EXISTS {RAW_SCHEMA}.{LOADS_TABLE} (
  load_id VARCHAR PRIMARY KEY,
  export_month DATE NOT NULL,
  manifest_sha256 VARCHAR NOT NULL,
  landed_at TIMESTAMP NOT NULL,
  is_current BOOLEAN NOT NULL,
  file_rows VARCHAR NOT NULL
)"""


#: column types an existing raw table may still have, and the contract type each
#: is altered to (every value of the old type is a value of the new one)
MIGRATIONS = {("DECIMAL(18,4)", AMOUNT_TYPE)}


def ensure_raw_schema(con) -> None:
    """Create the raw and archive schemas and their (empty) tables if missing,
    and bring the columns of existing tables to the contract's types (see
    :data:`MIGRATIONS`; a warehouse already migrated is left as it is)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {ARCHIVE_SCHEMA}")
    con.execute(LOADS_DDL)
    for f in FILES:
        con.execute(raw_table_ddl(f, RAW_SCHEMA))
        con.execute(raw_table_ddl(f, ARCHIVE_SCHEMA))
    migrate_raw_types(con)


def migrate_raw_types(con) -> list[str]:
    """ALTER the raw and archive columns whose type is an older one of the
    contract's (e.g. amount_usd DECIMAL(18,4) -> DECIMAL(20,6)); returns the
    columns altered ("schema.table.column"), none when run again."""
    wanted = {(f.name, c.name): c.duckdb_type for f in FILES for c in f.columns}
    rows = con.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema IN (?, ?)", [RAW_SCHEMA, ARCHIVE_SCHEMA]).fetchall()
    altered = []
    for schema, table, column, have in rows:
        want = wanted.get((table, column))
        if want and have != want and (have, want) in MIGRATIONS:
            con.execute(f'ALTER TABLE {schema}.{table} ALTER COLUMN "{column}" TYPE {want}')
            altered.append(f"{schema}.{table}.{column}")
    return altered
