"""pci_monthly: score one month of Partner Contribution Indicators.

Thin DAG: the work lives in ``pci.pipeline`` (imported inside the tasks, so
parsing this file does no work and needs no project import besides Airflow).

Month semantics: the timetable is a data-interval cron on the first of each
month, so the run for the interval [2021-08-01, 2021-09-01) starts after
2021-09-01 00:00 UTC and scores 2021-08 (the month of ``data_interval_start``).
A manual run may name the month with the ``score_month`` param (YYYY-MM).

Tasks: wait_for_export >> land_and_validate >> build_month >> validate_mart
>> publish >> report. Refusals (invalid export, month not scorable, failed dbt
test or mart audit) fail at once without retries; other errors are retried
with exponential backoff.

Paths: run conf ``landing`` / ``warehouse``, else the Airflow Variables
``pci_landing`` / ``pci_warehouse``, else env ``PCI_LANDING`` / ``PCI_WAREHOUSE``,
else ``data/landing`` and ``data/warehouse/pci.duckdb`` in the repository.
First month scored by the schedule (catchup starts there): env
``PCI_START_MONTH`` (YYYY-MM, default 2021-08); ``PCI_CATCHUP=false`` turns catchup
off (default on: missed months are run in order). Sensor timing: env ``PCI_EXPORT_POKE_SECONDS`` (default 1800) and
``PCI_EXPORT_TIMEOUT_SECONDS`` (default 7 days), read when the file is parsed.
"""
from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

# the repository root, so that the tasks can import the ``pci`` package
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

START_MONTH = os.environ.get("PCI_START_MONTH", "2021-08")
CATCHUP = os.environ.get("PCI_CATCHUP", "true").strip().lower() not in ("0", "false", "no", "off")
POKE_SECONDS = float(os.environ.get("PCI_EXPORT_POKE_SECONDS", "1800"))
TIMEOUT_SECONDS = float(os.environ.get("PCI_EXPORT_TIMEOUT_SECONDS", str(7 * 24 * 3600)))

DEFAULT_ARGS = {
    "owner": "pci",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}


def _ctx(context) -> tuple:
    """(score month, paths, conf) of the running task."""
    from pci import pipeline

    conf = dict(context["dag_run"].conf or {})
    params = dict(context.get("params") or {})
    if conf.get("score_month"):
        params["score_month"] = conf["score_month"]
    month = pipeline.score_month_of(context.get("data_interval_start"), params)
    return month, pipeline.resolve_paths(conf), conf


def _guarded(step: str, context, work):
    """Run ``work(pipeline, month, paths, conf)`` for the task's month; refusals
    fail the task without retries, anything else is raised to be retried."""
    from pci import pipeline

    month, paths, conf = _ctx(context)
    try:
        return work(pipeline, month, paths, conf)
    except Exception as exc:  # noqa: BLE001
        _refuse_or_raise(exc, month, step)


def _refuse_or_raise(exc: Exception, month, step: str):
    """Refusals fail the task without retries; anything else is retried."""
    from airflow.sdk.exceptions import AirflowFailException

    from pci import pipeline
    from pci.contract import format_month

    if pipeline.is_refusal(exc):
        text = pipeline.refusal_report(exc)
        pipeline.LAST_REFUSAL[format_month(month)] = f"{format_month(month)} refused at {step}:\n{text}"
        raise AirflowFailException(f"{format_month(month)} refused at {step}:\n{text}") from exc
    raise exc


@dag(
    dag_id="pci_monthly",
    description="Monthly Partner Contribution Indicator scores: land, build, audit, publish",
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    start_date=pendulum.datetime(int(START_MONTH[:4]), int(START_MONTH[5:7]), 1, tz="UTC"),
    catchup=CATCHUP,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"score_month": Param(None, type=["null", "string"], pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                                 description="YYYY-MM to score instead of the run's data interval")},
    tags=["pci"],
    doc_md=__doc__,
)
def pci_monthly():
    @task.sensor(poke_interval=POKE_SECONDS, timeout=TIMEOUT_SECONDS, mode="reschedule", retries=2)
    def wait_for_export(**context) -> bool:
        """Wait for the month's ``_manifest.json`` (the exporter writes it last)."""
        from pci import pipeline
        from pci.contract import MANIFEST, format_month

        month, paths, _ = _ctx(context)
        if pipeline.export_ready(paths.landing, month):
            return True
        print(f"export {format_month(month)} not ready: {paths.landing / format_month(month) / MANIFEST} "
              f"does not exist yet; checking again in {POKE_SECONDS:g} s, giving up after "
              f"{TIMEOUT_SECONDS:g} s")
        return False

    @task
    def land_and_validate(**context) -> dict:
        return _guarded("land_and_validate", context, lambda pipeline, month, paths, conf:
                        pipeline.land_through(paths.landing, paths.warehouse, month))

    @task
    def build_month(landed: dict, **context) -> dict:
        return _guarded("build_month", context, lambda pipeline, month, paths, conf:
                        pipeline.build_month(paths.warehouse, month, conf.get("build_token")))

    @task
    def validate_mart(built: dict, **context) -> dict:
        return _guarded("validate_mart", context, lambda pipeline, month, paths, conf:
                        pipeline.validate_mart(paths.warehouse, month))

    @task
    def publish(audited: dict, **context) -> dict:
        return _guarded("publish", context, lambda pipeline, month, paths, conf:
                        pipeline.publish(paths.warehouse, month, context["run_id"], audited))

    @task
    def report(landed: dict, built: dict, published: dict, **context) -> dict:
        from pci import pipeline

        month, paths, _ = _ctx(context)
        return pipeline.report(paths.warehouse, month, landed, built, published)

    ready = wait_for_export()
    landed = land_and_validate()
    built = build_month(landed)
    audited = validate_mart(built)
    published = publish(audited)
    ready >> landed
    report(landed, built, published)


pci_monthly()
