"""The DAG's task functions.

``dags/pci_monthly.py`` is a thin Airflow DAG: each of its tasks calls one
function here with the score month and the two paths. ``python -m pci run``
(:mod:`pci.orchestrate.runner`) runs that same DAG, in-process, once per month,
and reads each month's outcome from what these tasks write (:func:`report`,
:mod:`pci.orchestrate.outcomes`), so a command-line run and a scheduled run
execute the same task code in the same order:

    wait_for_export -> land_and_validate -> build_month -> validate_mart -> publish -> report

Every task that touches the warehouse holds the warehouse lock
(:mod:`pci.core.locking`); the lock is re-entrant inside the ``run`` process.

What a failure stands for (a refusal, final; or a fault, retried) is
:mod:`pci.orchestrate.outcomes`.
"""
from __future__ import annotations

import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pci.core.contract import (BUILD_SCHEMA, LOADS_TABLE, MANIFEST, RAW_SCHEMA, format_month,
                               parse_month)
from pci.core.locking import WarehouseLock
from pci.core.preflight import check_before_writing
from pci.core.project import DEFAULT_LANDING, DEFAULT_WAREHOUSE
from pci.core.warehouse import ENGINES, connect, open_warehouse, table_exists
from pci.orchestrate.outcomes import AuditFailed, MonthRefused, is_refusal, refusal_report, write_report

log = logging.getLogger(__name__)

DAG_ID = "pci_monthly"
BUILD_STATE = "pci_build_state"  # table in pci_build: which months the last build holds



# --------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class Paths:
    landing: Path
    warehouse: Path
    #: "duckdb" (a warehouse file, the default) or "spark" (a Spark warehouse folder)
    engine: str = "duckdb"


def _variable(name: str) -> str | None:
    try:
        from airflow.sdk import Variable  # noqa: PLC0415

        return Variable.get(name, default=None)
    except Exception:  # noqa: BLE001 - no Airflow context (CLI) or no such variable
        return None


def resolve_paths(conf: dict | None = None, use_variables: bool = True) -> Paths:
    """Landing dir, warehouse and engine: run conf, then Airflow Variables ``pci_landing`` /
    ``pci_warehouse`` / ``pci_engine``, then env ``PCI_LANDING`` / ``PCI_WAREHOUSE`` /
    ``PCI_ENGINE``, then defaults (the engine: duckdb)."""
    conf = conf or {}
    variable = _variable if use_variables else (lambda name: None)
    landing = (conf.get("landing") or variable("pci_landing") or os.environ.get("PCI_LANDING")
               or DEFAULT_LANDING)
    warehouse = (conf.get("warehouse") or variable("pci_warehouse")
                 or os.environ.get("PCI_WAREHOUSE") or DEFAULT_WAREHOUSE)
    engine = (conf.get("engine") or variable("pci_engine") or os.environ.get("PCI_ENGINE")
              or "duckdb").strip().lower()
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (run conf, Variable pci_engine or PCI_ENGINE): "
                         f"one of {', '.join(ENGINES)}")
    return Paths(Path(landing).resolve(), Path(warehouse).resolve(), engine)


def score_month_of(data_interval_start, params: dict | None = None) -> date:
    """The month a run scores: the ``score_month`` param when given (manual runs),
    else the month of the run's data interval start."""
    wanted = (params or {}).get("score_month")
    if wanted:
        return parse_month(str(wanted))
    if data_interval_start is None:
        raise ValueError("a run without data interval needs the score_month param (YYYY-MM)")
    return date(data_interval_start.year, data_interval_start.month, 1)


@contextmanager
def writing(warehouse: Path, thorough: bool = False, rolling: int | None = None):
    """Hold the warehouse lock (re-entrant) and check, before anything is written,
    that the folder is writable, has space and that the warehouse file is intact
    (:func:`pci.core.preflight.check_before_writing`: the cheap level, or ``rolling``
    rows of the rolling scrub, or with ``thorough`` every block)."""
    with WarehouseLock(warehouse):
        check_before_writing(Path(warehouse), thorough=thorough, rolling=rolling)
        yield


@contextmanager
def _opened(warehouse: Path, read_only: bool = False, engine: str = "duckdb"):
    # DuckDB through connect (the name tests patch to stop a run at its commit)
    con = (connect(Path(warehouse), read_only=read_only) if engine == "duckdb"
           else open_warehouse(Path(warehouse), engine, read_only=read_only))
    try:
        yield con
    finally:
        con.close()


# --------------------------------------------------------------------------- tasks

def export_ready(landing: Path, month: date) -> bool:
    """The sensor's test: the month's folder has its ``_manifest.json``."""
    return (Path(landing) / format_month(month) / MANIFEST).is_file()


def land_through(landing: Path, warehouse: Path, month: date, restate: bool = True,
                 engine: str = "duckdb") -> dict:
    """Land every ready export up to ``month`` that is not landed yet or whose
    manifest changed since it was landed, oldest first. Raises the landing
    module's ``ValidationFailed`` for the first invalid month.

    Then flags the published months that now read superseded data
    (``pci_score_publications.stale``, :func:`pci.core.catalog.mark_stale`);
    ``restate`` lists those before ``month`` that this run republishes with
    ``month`` (none when ``restate`` is False). What stays stale after the run is
    read after its publication (:func:`publish`)."""
    from pci.core.catalog import mark_stale  # noqa: PLC0415
    from pci.core.contract import ensure_raw_schema  # noqa: PLC0415
    from pci.land import landing as landing_mod  # noqa: PLC0415

    if engine == "spark":
        from pci.core.spark import session as spark_session  # noqa: PLC0415
        from pci.land import spark_landing  # noqa: PLC0415
        from pci.publish.spark_publication import stale_months_spark  # noqa: PLC0415

        with writing(warehouse):
            try:
                landed = spark_landing.land_through(Path(landing), Path(warehouse), month)
            except Exception as exc:  # noqa: BLE001
                if is_refusal(exc) and getattr(exc, "report", None) is not None:
                    raise MonthRefused("land_and_validate", parse_month(exc.report.month),
                                       refusal_report(exc)) from exc
                raise
            stale = stale_months_spark(spark_session(Path(warehouse)))
        return {"score_month": format_month(month), "landed": landed,
                "restate": [format_month(m) for m in stale if m < month] if restate else []}
    landed = []
    with writing(warehouse), _opened(warehouse) as con:  # one connection for the range
        ensure_raw_schema(con)
        for m in landing_mod.ready_months(landing, month):
            if landing_mod.needs_landing(Path(landing), con, m):
                try:
                    landing_mod.land_month(Path(landing), Path(warehouse), m, con=con)
                except Exception as exc:  # noqa: BLE001
                    if is_refusal(exc):  # name the month; keep the landing report
                        raise MonthRefused("land_and_validate", m, refusal_report(exc)) from exc
                    raise
                landed.append(format_month(m))
        stale = mark_stale(con)
    return {"score_month": format_month(month), "landed": landed,
            "restate": [format_month(m) for m in stale if m < month] if restate else []}


def _current_loads(con) -> list[list]:
    if not table_exists(con, RAW_SCHEMA, LOADS_TABLE):
        return []
    return [[format_month(m), lid] for m, lid in con.execute(
        "SELECT export_month, load_id FROM raw.loads WHERE is_current ORDER BY 1, 2").fetchall()]


def _build_state(con) -> dict | None:
    if not table_exists(con, BUILD_SCHEMA, BUILD_STATE):
        return None
    rows = con.execute(f"SELECT state FROM {BUILD_SCHEMA}.{BUILD_STATE}").fetchall()
    return json.loads(rows[0][0]) if rows else None


def _set_build_state(con, state: dict | None) -> None:
    # SQL both engines read: dropped and created again (Spark deletes rows only from v2 tables)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {BUILD_SCHEMA}")
    con.execute(f"DROP TABLE IF EXISTS {BUILD_SCHEMA}.{BUILD_STATE}")
    con.execute(f"CREATE TABLE {BUILD_SCHEMA}.{BUILD_STATE} (state STRING)")
    if state is not None:
        con.execute(f"INSERT INTO {BUILD_SCHEMA}.{BUILD_STATE} VALUES (?)", [json.dumps(state)])


def build_months(warehouse: Path, first: date, last: date, token: str | None = None,
                 full_refresh: bool = False, engine: str = "duckdb") -> dict:
    """One ``dbt build`` of score months ``first … last`` into ``pci_build``.

    Raises ``NotScorable`` (scoring module) when a month lacks its inputs. The
    build is recorded in ``pci_build.pci_build_state`` with the loads it read and
    ``token``, so that a later task of the same ``run`` can use it (see
    :func:`build_month`). ``full_refresh`` rebuilds the month-partitioned models
    from the raw tables (the same rows)."""
    from pci.score import scoring  # noqa: PLC0415

    warehouse = Path(warehouse)
    with writing(warehouse):
        with _opened(warehouse, engine=engine) as con:
            scoring.check_scorable(con, first, last)
            _set_build_state(con, None)  # a build killed half-way leaves no valid state
        started = time.monotonic()
        # needs the file free of our connections
        scoring.build(warehouse, first, last, full_refresh=full_refresh, engine=engine)
        with _opened(warehouse, engine=engine) as con:
            state = {"first": format_month(first), "last": format_month(last), "token": token,
                     "loads": _current_loads(con)}
            _set_build_state(con, state)
    return {"first": format_month(first), "last": format_month(last),
            "seconds": round(time.monotonic() - started, 1), "reused": False}


def _months(month: date, restate) -> list[date]:
    """The months a DAG run publishes: the stale months it restates, then its own."""
    return sorted({*(parse_month(m) if isinstance(m, str) else m for m in restate or ()), month})


def _build_holds(state: dict | None, loads: list, months: list[date]) -> bool:
    return bool(state and state.get("loads") == loads
                and parse_month(state["first"]) <= months[0]
                and months[-1] <= parse_month(state["last"]))


def build_month(warehouse: Path, month: date, token: str | None = None, restate=(),
                full_refresh: bool = False, engine: str = "duckdb") -> dict:
    """Build the month (and the earlier stale months it restates) into ``pci_build``
    unless the ``run`` command that passed ``token`` already built a range holding
    them from the same loads. One dbt build covers them all."""
    warehouse = Path(warehouse)
    months = _months(month, restate)
    restated = [format_month(m) for m in months if m != month]
    if token and not full_refresh:
        with WarehouseLock(warehouse), _opened(warehouse, read_only=True, engine=engine) as con:
            state = _build_state(con)
            loads = _current_loads(con)
        if state and state.get("token") == token and _build_holds(state, loads, months):
            return {"first": state["first"], "last": state["last"], "seconds": 0.0, "reused": True,
                    "restate": restated}
    return build_months(warehouse, months[0], month, token, full_refresh, engine) | {"restate": restated}


def validate_mart(warehouse: Path, month: date, restate=(), engine: str = "duckdb") -> dict:
    """Audit the built month, and each earlier stale month it restates (GX suite +
    structural checks). Returns the month's audited fingerprint, with the restated
    months' fingerprints under ``also``; raises :class:`AuditFailed` with the report
    otherwise. Each report is also written to
    ``<warehouse dir>/reports/mart-YYYY-MM-<time>.json``."""
    from pci.publish.audit import audit_month  # noqa: PLC0415

    warehouse = Path(warehouse)
    months = _months(month, restate)
    with writing(warehouse):
        with _opened(warehouse, read_only=True, engine=engine) as con:
            state, loads = _build_state(con), _current_loads(con)
        if not _build_holds(state, loads, months):
            # another run replaced pci_build since build_month (each task holds the
            # lock only while it runs): audit a build of these months, never another one
            log.warning("pci_build no longer holds %s from the current loads: building it again",
                        ", ".join(format_month(m) for m in months))
            build_months(warehouse, months[0], month, engine=engine)
        if engine == "spark":  # the same audit, on a workspace copy of the month's rows
            from pci.publish.spark_publication import audit_month_spark  # noqa: PLC0415

            audits = [audit_month_spark(warehouse, m) for m in months]
        else:
            with _opened(warehouse, read_only=True) as con:
                audits = [audit_month(con, m) for m in months]
    fingerprints = {}
    for audit in audits:
        m = audit.score_month
        path = write_report(warehouse, f"mart-{format_month(m)}", audit.as_dict())
        if not audit.ok:
            raise AuditFailed("validate_mart", m, f"{audit.report()}\n(report: {path})")
        fingerprints[m] = audit.fingerprint
    return fingerprints[month] | {"also": [fingerprints[m] for m in months if m != month]}


def publish(warehouse: Path, month: date, run_id: str | None, audited: dict,
            engine: str = "duckdb", refresh_copy: bool = True) -> dict:
    """Swap the audited month, and the earlier stale months audited with it
    (``audited["also"]``), into ``main`` in one transaction; then refresh the
    analysts' copy, unless ``refresh_copy`` is false (``pci run`` refreshes it once
    after the last month of a range: :func:`refresh_analyst_copy`). The result is the
    month's publication, with the restated months' publications under ``restated``."""
    from pci.core.catalog import stale_months
    from pci.publish.copy_refresh import refresh_copy as _refresh_copy  # noqa: PLC0415
    from pci.publish.publication import publish_months  # noqa: PLC0415

    warehouse = Path(warehouse)
    todo = [(parse_month(a["score_month"]), a) for a in audited.get("also", [])]
    todo.append((month, audited))
    if engine == "spark":  # no analysts' copy: Spark's readers do not block its writer
        from pci.core.spark import session as spark_session  # noqa: PLC0415
        from pci.publish.spark_publication import publish_months_spark, stale_months_spark  # noqa: PLC0415

        with writing(warehouse):
            results = publish_months_spark(warehouse, todo, run_id=run_id)
            stale = stale_months_spark(spark_session(warehouse))
        own = results[-1].as_dict()
        own["analyst_copy"] = {}
        own["restated"] = [r.as_dict() for r in results[:-1]]
        own["stale_months"] = [format_month(m) for m in stale]
        return own
    with writing(warehouse), _opened(warehouse) as con:
        results = publish_months(con, todo, run_id=run_id)
        stale = stale_months(con)
        # also when unchanged: a run killed after the commit may not have refreshed it.
        # A failed refresh is reported, never a refusal: the publication has committed.
        copy = _refresh_copy(con, warehouse) if refresh_copy else None
    own = results[-1].as_dict()
    own["analyst_copy"] = _copy_outcome(copy) if copy else {"ok": True, "deferred": True}
    own["restated"] = [r.as_dict() for r in results[:-1]]
    # what still reads superseded data after this publication (pci_score_publications.stale)
    own["stale_months"] = [format_month(m) for m in stale]
    return own


def refresh_analyst_copy(warehouse: Path) -> dict:
    """Refresh the analysts' copy of a DuckDB warehouse (what :func:`publish` does after
    its publication): ``pci run`` calls it when a range stops after months whose DAG
    runs deferred it. Never raises for a failed copy (``ok`` False, the error)."""
    from pci.publish.copy_refresh import refresh_copy  # noqa: PLC0415

    with writing(warehouse), _opened(warehouse) as con:
        return _copy_outcome(refresh_copy(con, Path(warehouse)))


def _copy_outcome(copy) -> dict:
    """What a run report says of a refresh of the analysts' copy."""
    return {"ok": copy.ok, "path": str(copy.path), "error": copy.error}


def _publication_text(pub: dict) -> str:
    rows = pub["rows"]
    what = (f"{rows} partners" if rows else
            "0 partners: the month's partners.csv lists no partner, so it has no score rows")
    if pub["status"] == "restated":
        what += f", {len(pub.get('changed_partners') or [])} changed"
    return f"{pub['score_month']}: {pub['status']} ({what})"


def _rerun_hint(months: list[str]) -> str:
    return f"python -m pci run --month {months[0]} --through {months[-1]} ..."


def report(warehouse: Path, month: date, landed: dict, built: dict, published: dict,
           run_id: str | None = None) -> dict:
    """The run's summary, logged and written to ``reports/run-YYYY-MM-<time>.json``
    (``run_id`` ties it to its DAG run: ``python -m pci run`` reads it from there).

    ``stale_months`` lists the published months that still read superseded data
    after this run: with ``restate`` (the default) only months after the score
    month can remain (their own runs restate them); with ``--no-restate`` the
    earlier ones too. They are flagged ``stale`` in ``pci_score_publications``."""
    lines = [_publication_text(p) for p in published.get("restated", [])]
    lines.append(_publication_text(published))
    text = "; ".join(lines)
    stale = published.get("stale_months", [])
    left = [m for m in stale if parse_month(m) <= month]
    later = [m for m in stale if parse_month(m) > month]
    if left:
        text += (f"; published months up to {format_month(month)} still read superseded data "
                 f"(left as they are: --no-restate; flagged stale in pci_score_publications): "
                 f"{', '.join(left)} - run them again ({_rerun_hint(left)})")
    if later:
        text += (f"; its inputs changed and later published months read them: {', '.join(later)} "
                 f"- run them again ({_rerun_hint(later)})")
    copy = published.get("analyst_copy") or {}
    if copy and not copy.get("ok"):
        text += f"; published, but the analysts' copy was not refreshed: {copy.get('error')}"
    summary = {"score_month": format_month(month), "run_id": run_id, "ok": True,
               "landed": landed.get("landed", []), "build": built, "publication": published,
               "restated_months": [p["score_month"] for p in published.get("restated", [])],
               "stale_months": stale, "stale_later_months": later, "text": text}
    path = write_report(Path(warehouse), f"run-{format_month(month)}", summary)
    log.info("%s (report: %s)", text, path)
    return summary
