"""pci_monthly: score one month of Partner Contribution Indicators.

Thin DAG: the work lives in ``pci.orchestrate.tasks`` (imported inside the tasks, so
parsing this file does no work and needs no project import besides Airflow).

Month semantics: the timetable is a data-interval cron on the first of each
month, so the run for the interval [2021-08-01, 2021-09-01) starts after
2021-09-01 00:00 UTC and scores 2021-08 (the month of ``data_interval_start``).
A manual run may name the month with the ``score_month`` param (YYYY-MM).

Tasks: wait_for_export >> land_and_validate >> build_month >> validate_mart
>> publish >> report. Each task's result is one XCom, the dict it returns
(``multiple_outputs=False``: a ``-> dict`` task would also push each key, 40 XComs
a month). Refusals (invalid export, month not scorable, failed dbt
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

import functools
import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, task

START_MONTH = os.environ.get("PCI_START_MONTH", "2021-08")
CATCHUP = os.environ.get("PCI_CATCHUP", "true").strip().lower() not in ("0", "false", "no", "off")
POKE_SECONDS = float(os.environ.get("PCI_EXPORT_POKE_SECONDS", "1800"))
TIMEOUT_SECONDS = float(os.environ.get("PCI_EXPORT_TIMEOUT_SECONDS", str(7 * 24 * 3600)))

#: what ``publish`` updates: downstream DAGs can be scheduled on it
PUBLISHED_SCORES = Asset("pci://warehouse/main/pci_monthly_scores", group="pci")

DEFAULT_ARGS = {
    "owner": "pci",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}


def _ctx(context) -> tuple:
    """(score month, paths, conf) of the running task."""
    from pci.orchestrate import tasks

    conf = dict(context["dag_run"].conf or {})
    params = dict(context.get("params") or {})
    if conf.get("score_month"):
        params["score_month"] = conf["score_month"]
    month = tasks.score_month_of(context.get("data_interval_start"), params)
    return month, tasks.resolve_paths(conf), conf


def _restate(context) -> bool:
    """Run conf ``restate`` wins over the param (default true)."""
    conf = dict(context["dag_run"].conf or {})
    if "restate" in conf:
        return bool(conf["restate"])
    return bool((context.get("params") or {}).get("restate", True))


def _full_refresh(context) -> bool:
    """Run conf ``full_refresh`` wins over the param (default false)."""
    conf = dict(context["dag_run"].conf or {})
    if "full_refresh" in conf:
        return bool(conf["full_refresh"])
    return bool((context.get("params") or {}).get("full_refresh", False))


def fails_cleanly(step: str):
    """Decorate a task function (below ``@task``): a failure is recorded in the
    warehouse's reports (``pci.orchestrate.outcomes.record_failure``, read by ``pci run``) and
    mapped, in this one place, to what Airflow should do with it. Refusals (bad
    export, not scorable, failed test or audit), a damaged warehouse and stale
    months fail the task without retries (``AirflowFailException``); environment
    faults (busy warehouse, full disk, I/O errors) are raised to be retried,
    except in a ``pci run`` (run conf ``fail_fast``), which reports them at once."""

    def decorate(fn):
        @functools.wraps(fn)
        def task_function(*args, **context):
            from airflow.sdk.exceptions import AirflowFailException

            from pci.orchestrate import outcomes

            try:
                return fn(*args, **context)
            except Exception as exc:  # noqa: BLE001
                month, paths, conf = _ctx(context)
                failure = outcomes.record_failure(paths.warehouse, month, step, exc,
                                                  context.get("run_id"))
                if conf.get("fail_fast") or not outcomes.is_retryable(exc):
                    raise AirflowFailException(failure["text"]) from exc
                raise

        return task_function

    return decorate


@dag(
    dag_id="pci_monthly",
    description="Monthly Partner Contribution Indicator scores: land, build, audit, publish",
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    start_date=pendulum.datetime(int(START_MONTH[:4]), int(START_MONTH[5:7]), 1, tz="UTC"),
    catchup=CATCHUP,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"score_month": Param(None, type=["null", "string"], pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                                 description="YYYY-MM to score instead of the run's data interval"),
            "restate": Param(True, type="boolean",
                             description="republish the earlier published months that read "
                                         "superseded data (a month landed again) with this month"),
            "full_refresh": Param(False, type="boolean",
                                  description="rebuild the month-partitioned models from the raw tables "
                                              "(dbt --full-refresh) instead of deriving only the months "
                                              "whose loads changed; the same rows, slower")},
    tags=["pci"],
    doc_md=__doc__,
)
def pci_monthly():
    @task.sensor(poke_interval=POKE_SECONDS, timeout=TIMEOUT_SECONDS, mode="reschedule", retries=2)
    def wait_for_export(**context) -> bool:
        """Wait for the month's ``_manifest.json`` (the exporter writes it last)."""
        from pci.core.contract import MANIFEST, format_month
        from pci.orchestrate import tasks

        month, paths, _ = _ctx(context)
        if tasks.export_ready(paths.landing, month):
            return True
        print(f"export {format_month(month)} not ready: {paths.landing / format_month(month) / MANIFEST} "
              f"does not exist yet; checking again in {POKE_SECONDS:g} s, giving up after "
              f"{TIMEOUT_SECONDS:g} s")
        return False

    @task(multiple_outputs=False)
    @fails_cleanly("land_and_validate")
    def land_and_validate(**context) -> dict:
        """Land every ready export up to the month; name the published months it made stale."""
        from pci.orchestrate import tasks

        month, paths, conf = _ctx(context)
        return tasks.land_through(paths.landing, paths.warehouse, month, _restate(context),
                                  engine=paths.engine)

    @task(multiple_outputs=False)
    @fails_cleanly("build_month")
    def build_month(landed: dict, **context) -> dict:
        """One dbt build of the month and of the earlier stale months it restates."""
        from pci.orchestrate import tasks

        month, paths, conf = _ctx(context)
        return tasks.build_month(paths.warehouse, month, conf.get("build_token"),
                                 landed.get("restate", []),
                                 full_refresh=_full_refresh(context), engine=paths.engine)

    @task(multiple_outputs=False)
    @fails_cleanly("validate_mart")
    def validate_mart(built: dict, **context) -> dict:
        """The audit of each month to publish."""
        from pci.orchestrate import tasks

        month, paths, _ = _ctx(context)
        return tasks.validate_mart(paths.warehouse, month, built.get("restate", []), engine=paths.engine)

    @task(outlets=[PUBLISHED_SCORES], multiple_outputs=False)
    @fails_cleanly("publish")
    def publish(audited: dict, **context) -> dict:
        """The audited months into the published mart, in one transaction; then the
        analysts' copy (run conf ``refresh_copy`` false: ``pci run`` refreshes it once
        for a range, after its last month)."""
        from pci.orchestrate import tasks

        month, paths, conf = _ctx(context)
        return tasks.publish(paths.warehouse, month, context["run_id"], audited, engine=paths.engine,
                             refresh_copy=conf.get("refresh_copy", True))

    @task(multiple_outputs=False)
    @fails_cleanly("report")
    def report(landed: dict, built: dict, published: dict, **context) -> dict:
        from pci.orchestrate import tasks

        month, paths, _ = _ctx(context)
        return tasks.report(paths.warehouse, month, landed, built, published, context.get("run_id"))

    ready = wait_for_export()
    landed = land_and_validate()
    built = build_month(landed)
    audited = validate_mart(built)
    published = publish(audited)
    ready >> landed
    report(landed, built, published)


pci_monthly()
