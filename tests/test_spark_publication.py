"""The audit and the publication of built months on Apache Spark
(pci.publish.spark_publication) and the reader of the published scores
(pci.read.spark_mart), each checked against the DuckDB code on the same rows.

No dbt: the built months of tests/support/mart_fixture.py (2021-07 … 2021-09,
nine partners) are written into ``pci_build`` of a DuckDB warehouse, with a
projection, ``raw.partners``, ``raw.loads``, a month whose export lists no partner
(2021-10: no rows) and a month whose export lists a partner without a row
(2021-11: the audit fails). The same tables are copied into ONE Spark warehouse
(Parquet, through Arrow). The story runs once, in stages (module fixtures, each
building on the previous one), on both engines side by side:

1. the audits of 2021-08, 2021-09 and 2021-11;
2. the first publication of 2021-08 … 2021-10;
3. 2021-09 published again, unchanged;
4. 2021-08 landed again with no partners (no rows) and 2021-09 landed again with one
   partner changed, published together: first by a process that dies before the
   record (after the marts), then again: both restated;
then a fingerprint that no longer matches is refused, and the reader reads.
"""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import duckdb
import pytest

from pci.core.catalog import (CONTRIBUTION_COLUMNS, CONTRIBUTIONS, PROJECTION, PROJECTION_COLUMNS,
                              PUBLICATION_ROWS, PUBLICATIONS, SCORE_COLUMNS, SCORE_NAMES, SCORES,
                              stale_months)
from pci.core.contract import LOADS_DDL
from pci.core.errors import EXIT_USAGE, Refusal
from pci.core.spark import LOADS_COLUMNS, create_table_sql, session, stop
from pci.publish.audit import audit_month
from pci.publish.publication import PublishError, publish_months
from pci.publish.spark_publication import (PARTNER_COLUMNS, PUBLICATION_COLUMNS, audit_month_spark,
                                           publish_months_spark, stale_months_spark)
from pci.read.mart import MartUnavailable
from pci.read.spark_mart import read_published_scores
from tests.support import mart_fixture as fx

pytestmark = pytest.mark.spark

JUL, AUG, SEP = fx.MONTHS
OCT, NOV = dt.date(2021, 10, 1), dt.date(2021, 11, 1)
MARTS = ((SCORES, SCORE_COLUMNS), (CONTRIBUTIONS, CONTRIBUTION_COLUMNS), (PROJECTION, PROJECTION_COLUMNS))
#: the tables copied from DuckDB into Spark: (schema, table, columns, partitioned by)
COPIED = (*(("pci_build", t, c, None) for t, c in MARTS),
          ("raw", "partners", PARTNER_COLUMNS, "export_month"), ("raw", "loads", LOADS_COLUMNS, None))


# --------------------------------------------------------------------------- the warehouses

def build_duckdb(con) -> None:
    """pci_build (scores, contributions, a projection), raw.partners and raw.loads."""
    fx.populate(con)  # main.pci_monthly_scores, main.pci_metric_contributions, raw.partners
    con.execute("CREATE SCHEMA pci_build")
    for table in (SCORES, CONTRIBUTIONS):
        con.execute(f"CREATE TABLE pci_build.{table} AS SELECT * FROM main.{table}")
        con.execute(f"DROP TABLE main.{table}")
    names = [n for n, _ in PROJECTION_COLUMNS]
    con.execute(f"CREATE TABLE pci_build.{PROJECTION} ("
                f"{', '.join(f'{n} {t}' for n, t in PROJECTION_COLUMNS)})")
    con.execute(f"""INSERT INTO pci_build.{PROJECTION} ({', '.join(names)})
        SELECT {', '.join('CAST(score_month + INTERVAL 1 MONTH AS DATE)' if n == 'projected_month'
                          else '0' if n == 'points_net_new_revenue' else n for n in names)}
        FROM pci_build.{SCORES}""")
    con.execute(LOADS_DDL)
    for m in (*fx.MONTHS, OCT, NOV):
        con.execute("INSERT INTO raw.loads VALUES (?, ?, 'sha', TIMESTAMP '2021-12-01 08:00:00', "
                    "true, '{}')", [f"load-{m:%Y-%m}", m])
    con.execute("INSERT INTO raw.partners VALUES ('P1001', 'Contoso', 'SE', ?, 'load-2021-11')", [NOV])


def to_spark(spark, con, *, create: bool) -> None:
    """Write DuckDB's rows of :data:`COPIED` into their Spark copies (created when
    ``create``, else replaced), through Arrow."""
    for schema, table, columns, partition_by in COPIED:
        if create:
            spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
            spark.sql(create_table_sql(schema, table, columns, partition_by))
        elif partition_by:  # an overwrite replaces only the partitions it writes
            spark.sql(f"TRUNCATE TABLE {schema}.{table}")
        order = [n for n, _ in columns if n != partition_by] + ([partition_by] if partition_by else [])
        arrow = con.sql(f"SELECT {', '.join(order)} FROM {schema}.{table}").to_arrow_table()
        spark.createDataFrame(arrow).write.insertInto(f"{schema}.{table}",
                                                      overwrite=not create and not partition_by)


def _key(row):
    return tuple((True, 0) if v is None else (False, v) for v in row)


def published(engine, world, table, columns, where="true"):
    """Every row of main.``table`` (columns in the contract's order), sorted."""
    sql = f"SELECT {', '.join(n for n, _ in columns)} FROM main.{table} WHERE {where}"
    rows = (world.spark.sql(sql).collect() if engine == "spark" else world.duck.execute(sql).fetchall())
    return sorted((tuple(r) for r in rows), key=_key)


def history(engine, world):
    """The publication records and their rows, ids and times replaced by each
    publication's place among its month's publications."""
    run = (lambda sql: [tuple(r) for r in world.spark.sql(sql).collect()]) if engine == "spark" else (
        lambda sql: world.duck.execute(sql).fetchall())
    pubs = run(f"SELECT publication_id, score_month, supersedes, run_id, input_load_ids, row_count, "
               f"scores_sha256, contributions_sha256, changed_partners FROM main.{PUBLICATIONS} "
               f"ORDER BY score_month, published_at")
    place, records, previous = {}, [], {}
    for pid, month, supersedes, *rest in pubs:
        place[pid] = (month, sum(1 for p in place.values() if p[0] == month))
        assert supersedes == previous.get(month)  # each supersedes its month's previous one
        previous[month] = pid
        records.append((*place[pid], *rest))
    rows = run(f"SELECT publication_id, {', '.join(SCORE_NAMES)} FROM main.{PUBLICATION_ROWS}")
    # (rows of an id without a record: left by a publication that died before its record)
    return records, sorted(((*place[r[0]], *r[1:]) for r in rows if r[0] in place), key=_key)


def same_published_state(world):
    for table, columns in MARTS:
        assert published("spark", world, table, columns) == published("duckdb", world, table, columns), table
    assert history("spark", world) == history("duckdb", world)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("spark-publication")
    duck = duckdb.connect(str(base / "w.duckdb"))
    build_duckdb(duck)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PCI_SPARK_SHUFFLE_PARTITIONS", "1")  # tiny tables: one task per shuffle
        stop()
        spark = session(base / "spark")
    to_spark(spark, duck, create=True)
    yield SimpleNamespace(duck=duck, spark=spark, warehouse=base / "spark", base=base)
    duck.close()
    stop()


@pytest.fixture(scope="module")
def audits(world):
    return {m: (audit_month(world.duck, m), audit_month_spark(world.warehouse, m))
            for m in (AUG, SEP, NOV)}


@pytest.fixture(scope="module")
def first(world, audits):
    empty = audit_month(world.duck, OCT)  # (the Spark audit of a month with no rows: restated)
    assert empty.ok and empty.rows == 0
    duck = publish_months(world.duck, [(AUG, audits[AUG][0].fingerprint),
                                       (SEP, audits[SEP][0].fingerprint), (OCT, empty.fingerprint)],
                          run_id="r1")
    spark = publish_months_spark(world.warehouse, [(AUG, audits[AUG][1].fingerprint),
                                                   (SEP, audits[SEP][1].fingerprint),
                                                   (OCT, empty.fingerprint)], "r1")
    return duck, spark


@pytest.fixture(scope="module")
def again(world, audits, first):
    fp = audits[SEP][1].fingerprint
    return (publish_months(world.duck, [(SEP, fp)], run_id="r2"),
            publish_months_spark(world.warehouse, [(SEP, fp)], "r2"))


@pytest.fixture(scope="module")
def restated(world, again):
    con = world.duck
    for table, _ in MARTS:  # 2021-08: its export now lists no partner, so no rows
        con.execute(f"DELETE FROM pci_build.{table} WHERE score_month = ?", [AUG])
    con.execute("DELETE FROM raw.partners WHERE export_month = ?", [AUG])
    con.execute("UPDATE pci_build.pci_monthly_scores SET net_customer_adds = net_customer_adds + 1 "
                "WHERE score_month = ? AND partner_id = 'P1002'", [SEP])
    for m in (AUG, SEP):
        con.execute("UPDATE raw.loads SET is_current = false WHERE export_month = ?", [m])
        con.execute("INSERT INTO raw.loads VALUES (?, ?, 'sha2', TIMESTAMP '2021-12-02 08:00:00', "
                    "true, '{}')", [f"load-{m:%Y-%m}-b", m])
    to_spark(world.spark, con, create=False)
    audited = {m: (audit_month(con, m), audit_month_spark(world.warehouse, m)) for m in (AUG, SEP)}
    duck = publish_months(con, [(m, a[0].fingerprint) for m, a in audited.items()], run_id="r3")
    on_spark = [(m, a[1].fingerprint) for m, a in audited.items()]

    def dies(*args, **kwargs):
        raise RuntimeError("the process died here")

    with pytest.MonkeyPatch.context() as mp:  # a publication that dies before its record
        mp.setattr(world.spark, "createDataFrame", dies)
        with pytest.raises(RuntimeError, match="died"):
            publish_months_spark(world.warehouse, on_spark, "r3-died")
    died = SimpleNamespace(
        scores=published("spark", world, SCORES, SCORE_COLUMNS, "partner_id = 'P1002'"),
        records=world.spark.sql(f"SELECT count(*) FROM main.{PUBLICATIONS}").collect()[0][0])
    spark = publish_months_spark(world.warehouse, on_spark, "r3")  # run again: repaired
    return audited, duck, spark, died


# --------------------------------------------------------------------------- the audit

def test_the_spark_audit_is_duckdbs_audit_on_the_same_rows(audits):
    for month, (duck, spark) in audits.items():
        assert (spark.ok, spark.rows, spark.fingerprint) == (duck.ok, duck.rows, duck.fingerprint), month
        assert [f.__dict__ for f in spark.failures] == [f.__dict__ for f in duck.failures]
        assert spark.report().splitlines() == [line for line in duck.report().splitlines()
                                               if "data docs:" not in line]
    assert [m for m, (_, spark) in audits.items() if spark.ok] == [AUG, SEP]
    assert audits[SEP][1].rows == 9
    assert [f.examples for f in audits[NOV][1].failures] == [["P1001"]]


# --------------------------------------------------------------------------- publication

def test_first_publication_publishes_the_same_rows_and_history_as_duckdb(world, first):
    duck, spark = first
    assert [r.status for r in spark] == ["published"] * 3
    assert [r.as_dict() | {"publication_id": None} for r in spark] == [
        r.as_dict() | {"publication_id": None} for r in duck]
    assert [r.rows for r in spark] == [8, 9, 0]
    same_published_state(world)
    # the projection is published with its month; the contract's columns, in order
    assert published("spark", world, PROJECTION, PROJECTION_COLUMNS, f"score_month = DATE '{SEP}'")
    described = world.spark.sql(f"DESCRIBE TABLE main.{SCORES}").collect()
    assert [r[0] for r in described[:len(SCORE_NAMES)]] == [*SCORE_NAMES[1:], "score_month"]


def test_a_month_published_again_unchanged_records_nothing(world, first, again):
    duck, spark = again
    assert [r.status for r in spark] == [r.status for r in duck] == ["unchanged"]
    assert spark[0].publication_id == first[1][1].publication_id
    assert world.spark.sql(f"SELECT count(*) FROM main.{PUBLICATIONS}").collect()[0][0] == 3


def test_a_restatement_names_the_same_changed_partners_and_stale_months(world, restated):
    audited, duck, spark, _ = restated
    for d, s in audited.values():
        assert (s.ok, s.rows, s.fingerprint) == (d.ok, d.rows, d.fingerprint)
    assert audited[AUG][1].rows == 0 and audited[AUG][1].fingerprint["rows"] == 0
    assert [r.as_dict() | {"publication_id": None} for r in spark] == [
        r.as_dict() | {"publication_id": None} for r in duck]
    aug, sep = spark
    assert (aug.status, aug.rows, len(aug.changed_partners)) == ("restated", 0, 8)
    assert (sep.status, sep.changed_partners) == ("restated", ["P1002"])
    assert aug.stale_later_months == sep.stale_later_months == [OCT]
    assert stale_months_spark(world.spark) == stale_months(world.duck) == [OCT]
    same_published_state(world)


def test_a_publication_that_died_before_its_record_is_repaired_by_running_it_again(world, restated):
    """The marts were written (2021-09's new P1002 row is there), the record was not;
    the run again is the restatement DuckDB made (the previous test: same status,
    changed partners, history), not an 'unchanged' or a restatement with no changes."""
    _, duck, spark, died = restated
    assert died.records == 3  # the died publication recorded nothing
    new_p1002 = published("duckdb", world, SCORES, SCORE_COLUMNS, "partner_id = 'P1002'")
    assert died.scores == new_p1002  # ... but its marts were written
    assert [r.changed_partners for r in spark] == [r.changed_partners for r in duck]
    assert world.spark.sql(f"SELECT count(*) FROM main.{PUBLICATIONS}").collect()[0][0] == 5


def test_a_month_restated_with_no_rows_leaves_its_partitions_empty(world, restated):
    for table, columns in MARTS:
        assert published("spark", world, table, columns, f"score_month = DATE '{AUG}'") == []
        partitions = [r[0] for r in world.spark.sql(f"SHOW PARTITIONS main.{table}").collect()]
        assert f"score_month={AUG}" in partitions and f"score_month={SEP}" in partitions
    assert published("spark", world, SCORES, SCORE_COLUMNS, f"score_month = DATE '{SEP}'")


def test_rows_changed_after_the_audit_are_refused_and_nothing_changes(world, restated):
    from pci.publish.spark_publication import _select

    def checksums():
        """count and sum of row hashes of every published table, in one query"""
        tables = (*MARTS, (PUBLICATIONS, PUBLICATION_COLUMNS),
                  (PUBLICATION_ROWS, (("publication_id", "VARCHAR"), *SCORE_COLUMNS)))
        return world.spark.sql(" UNION ALL ".join(
            f"SELECT '{t}', count(*), sum(CAST(xxhash64({', '.join(n for n, _ in c)}) AS DECIMAL(38,0))) "
            f"FROM main.{t}" for t, c in tables)).collect()

    audited = restated[0][SEP][1]
    before = checksums()
    assert all(n for _, n, _ in before)
    extra = _select(SCORE_COLUMNS).replace("CAST(`partner_id` AS STRING)", "'P1999'")
    world.spark.sql(f"INSERT INTO pci_build.{SCORES} SELECT {extra} FROM pci_build.{SCORES} "
                    f"WHERE score_month = DATE '{SEP}' AND partner_id = 'P1001'")
    with pytest.raises(PublishError, match="changed after the audit"):
        publish_months_spark(world.warehouse, [(SEP, audited.fingerprint)], "r4")
    assert checksums() == before


# --------------------------------------------------------------------------- the reader

def test_the_reader_returns_exactly_the_published_rows(world, restated):
    columns, rows = read_published_scores(world.warehouse, AUG, OCT)
    assert columns == list(SCORE_NAMES)
    assert rows == world.duck.execute(
        f"SELECT {', '.join(SCORE_NAMES)} FROM main.{SCORES} WHERE score_month BETWEEN ? AND ? "
        f"ORDER BY score_month, partner_id", [AUG, OCT]).fetchall()
    assert [r[0] for r in rows] == [SEP] * 9
    types = {type(v).__name__ for r in rows for v in r}
    assert types <= {"date", "Decimal", "int", "float", "bool", "str", "NoneType"}
    # what `python -m pci export --engine spark` reads (pci.read.export dispatches to it)
    from pci.read import export

    assert export.read_published_scores("spark", world.warehouse, AUG, OCT) == (columns, rows)


def test_the_reader_refuses_a_month_that_is_not_published(world, restated, tmp_path):
    with pytest.raises(Refusal, match=r"not published: 2021-07, 2021-11 .*are 2021-08, 2021-09, 2021-10"):
        read_published_scores(world.warehouse, JUL, NOV)
    with pytest.raises(MartUnavailable) as err:
        read_published_scores(tmp_path / "nowhere", SEP, SEP)
    assert err.value.exit_status == EXIT_USAGE and not (tmp_path / "nowhere").exists()
