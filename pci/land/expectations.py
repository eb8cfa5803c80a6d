"""The rules of the input contract's section 3 that concern one file, as Great
Expectations suites kept in ``expectations/<file>.json`` (:func:`run_suites`).
Each file is first screened in DuckDB SQL translated from its suite
(:func:`pci.land.suite_sql.screen`); a file that may break a rule is validated by
its suite's Checkpoint on the pandas engine, over chunks of :data:`CHUNK_ROWS`
typed rows (only the columns the suite names), the chunks' results added up and
the expectations comparing rows with each other (uniqueness) decided over the
whole table in SQL (:mod:`pci.land.suite_sql`): a month's rows are never all
held in pandas. When a suite fails, its Data Docs are written to
``<warehouse dir>/data_docs/`` and the report links them (``data_docs`` in the
JSON, a ``data docs:`` line in the text). The mart's audit
(:mod:`pci.publish.audit`) runs its suite through the same context (:class:`_GX`).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from pci.core.contract import FILES, FILES_BY_NAME, ExportFile, end_of_month, format_month
from pci.core.project import EXPECTATIONS_DIR
from pci.core.warehouse import quote_identifier
from pci.land import suite_sql
from pci.land.parsing import fetch_dicts, line_first
from pci.land.violations import LINE_COLUMN, MAX_EXAMPLES, DataDocs, Violation, clean_row, jsonable

log = logging.getLogger(__name__)


#: where the Data Docs of failed GX validations are written, beside the warehouse
DATA_DOCS_DIR = "data_docs"
_DOCS_SITE = "pci"  # the GX name of that site
_DOCS_RESULTS = "pci_docs_results"  # the failed results it shows, kept in <site>/results/
_DOCS_SUITES = "pci_docs_suites"  # and their suites, in <site>/suites/
#: rows of a file given to its GX Checkpoint at a time (a file flagged by the SQL screen)
CHUNK_ROWS = 200_000


class SuiteError(RuntimeError):
    """An expectation suite file that GX does not load as written."""


def load_suite_json(name: str, directory: Path = EXPECTATIONS_DIR) -> dict:
    path = Path(directory) / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SuiteError(f"expectation suite {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise SuiteError(f"expectation suite {path}: no 'expectations' list")
    return data


def build_suite(data: dict, source: str = "<suite>"):
    """A GX ExpectationSuite from its JSON; every expectation must survive loading.

    GX drops an expectation whose type it does not know with only a log line;
    that would silently switch a rule off, so a count mismatch is an error.
    """
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=data.get("name") or Path(source).stem,
                                expectations=data["expectations"], meta=data.get("meta") or {})
    wanted, got = len(data["expectations"]), len(suite.expectations)
    if got != wanted:
        loaded = {e.expectation_type if hasattr(e, "expectation_type") else e.type
                  for e in suite.expectations}
        lost = [e.get("type") for e in data["expectations"] if e.get("type") not in loaded]
        raise SuiteError(f"expectation suite {source}: {wanted} expectations written, "
                         f"{got} loaded by Great Expectations; not loaded: {lost}")
    return suite


def data_docs_dir(con) -> Path | None:
    """``<warehouse dir>/data_docs``, beside the DuckDB file ``con`` is connected to
    (None for an in-memory database)."""
    path = con.execute("SELECT path FROM duckdb_databases() "
                       "WHERE database_name = current_database()").fetchall()
    return Path(path[0][0]).resolve().parent / DATA_DOCS_DIR if path and path[0][0] else None


class _GX:
    """The process's one GX context (ephemeral: nothing of GX is kept between runs
    but the Data Docs), created on first use and shared by landing and the mart
    audit (:mod:`pci.publish.audit`).

    Each suite is run by its own Checkpoint, over a pandas dataframe asset. The
    ten landing suites are loaded when the context is made; :meth:`checkpoint`
    adds further ones once. Data Docs are written by :meth:`write_docs`, once a
    run and for the failed results only (building the site costs a few tenths
    of a second: its static files, pages and index), so a landing or an audit
    that passes writes nothing.
    """

    _instance: "_GX | None" = None

    def __init__(self, directory: Path):
        import great_expectations as gx
        from great_expectations.data_context.types.base import (DataContextConfig,
                                                                InMemoryStoreBackendDefaults,
                                                                ProgressBarsConfig)

        # GX logs routine steps at INFO: they are not the pipeline's output
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        self.directory = directory
        # in-memory stores and no docs site yet: no temporary folder is made for one
        self.context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            progress_bars=ProgressBarsConfig(globally=False)))
        self.datasource = self.context.data_sources.add_pandas("pci")
        self.checkpoints: dict[str, Any] = {}
        self.columns: dict[str, list[str]] = {}
        self.definitions: dict[str, dict] = {}  # file name -> its suite's JSON
        #: (Spark application, suite name) -> the suite's Checkpoint on Spark
        self.spark_checkpoints: dict[tuple[str, str], Any] = {}
        self._docs_dir: Path | None = None
        for f in FILES:
            data = load_suite_json(f.name, directory)
            suite = build_suite(data, str(Path(directory) / f"{f.name}.json"))
            used = {c for e in data["expectations"] for c in _involved_columns(e["kwargs"])}
            unknown = sorted(used - set(f.column_names))
            if data.get("name") != f.name or unknown:
                raise SuiteError(f"expectation suite {directory}/{f.name}.json: name "
                                 f"{data.get('name')!r}, columns not in {f.filename}: {unknown}")
            self.columns[f.name] = [c for c in f.column_names if c in used]
            self.definitions[f.name] = data
            self.checkpoint(suite, {"result_format": "SUMMARY",
                                    "partial_unexpected_count": MAX_EXAMPLES})

    @classmethod
    def get(cls, directory: Path = EXPECTATIONS_DIR) -> "_GX":
        if cls._instance is None or cls._instance.directory != directory:
            cls._instance = _GX(directory)
        return cls._instance

    def checkpoint(self, suite, result_format: dict):
        """The Checkpoint running ``suite`` over a dataframe (made on first use)."""
        import great_expectations as gx

        name = suite.name
        if name not in self.checkpoints:
            suite = self.context.suites.add(suite)
            batch = self.datasource.add_dataframe_asset(name).add_batch_definition_whole_dataframe(
                "whole")
            validation = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch, suite=suite))
            self.checkpoints[name] = self.context.checkpoints.add(gx.Checkpoint(
                name=name, validation_definitions=[validation], result_format=result_format))
        return self.checkpoints[name]

    def run(self, name: str, df, params: dict, run_id):
        """Run the Checkpoint of suite ``name`` over ``df``: (result identifier, result)."""
        result = self.checkpoints[name].run(batch_parameters={"dataframe": df},
                                            expectation_parameters=params, run_id=run_id)
        return next(iter(result.run_results.items()))

    def run_spark(self, name: str, df, params: dict, run_id) -> bool:
        """Whether every expectation of suite ``name`` holds over the Spark DataFrame
        ``df``, run by the suite's Checkpoint over a dataframe asset of GX's Spark
        datasource (made on first use, in the session ``df`` belongs to; GX's
        ``BOOLEAN_ONLY`` results: the Spark landing's screen needs the verdict only,
        :mod:`pci.land.spark_validation`)."""
        import great_expectations as gx

        app = df.sparkSession.sparkContext.applicationId  # GX's Spark engine keeps its session
        if (app, name) not in self.spark_checkpoints:
            source = f"pci_spark_{app}"
            sources = {d.name for d in self.context.data_sources.all().values()}
            spark = self.context.data_sources.get(source) if source in sources \
                else self.context.data_sources.add_spark(source)
            batch = spark.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
            label = f"{name} on spark {app}"
            validation = self.context.validation_definitions.add(gx.ValidationDefinition(
                name=label, data=batch, suite=self.context.suites.get(name)))
            self.spark_checkpoints[app, name] = self.context.checkpoints.add(gx.Checkpoint(
                name=label, validation_definitions=[validation],
                result_format={"result_format": "BOOLEAN_ONLY"}))
        result = self.spark_checkpoints[app, name].run(batch_parameters={"dataframe": df},
                                                  expectation_parameters=params, run_id=run_id)
        return bool(result.success)

    def write_docs(self, docs_dir: Path | None, failed: list) -> DataDocs | None:
        """Render the failed results (``[(identifier, result)]``) and their suites into the
        Data Docs site in ``docs_dir``. A site that cannot be written is logged, never
        raised: the validation's outcome is reported either way."""
        from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

        if not failed or docs_dir is None:
            return None
        try:
            self._use_docs_dir(docs_dir)
            shown = []
            for key, result in failed:
                suite = ExpectationSuiteIdentifier(name=key.expectation_suite_identifier.name)
                self.context.stores[_DOCS_RESULTS].set(key, result)
                self.context.stores[_DOCS_SUITES].set(
                    suite, self.checkpoints[suite.name].validation_definitions[0].suite)
                shown += [key, suite]
            self.context.build_data_docs(site_names=[_DOCS_SITE], resource_identifiers=shown)

            def url(key=None) -> str:
                return self.context.get_docs_sites_urls(resource_identifier=key,
                                                        site_names=[_DOCS_SITE])[0]["site_url"]

            return DataDocs(url(), {key.expectation_suite_identifier.name: url(key)
                                    for key, _ in failed})
        except Exception as exc:  # noqa: BLE001 - GX's store and render errors have no common base
            log.warning("Data Docs not written to %s: %s", docs_dir, exc)
            return None

    def _use_docs_dir(self, docs_dir: Path) -> None:
        """Point the docs site and the stores it shows at ``docs_dir`` (once per folder):
        the failed results and their suites are kept there as JSON, so that the site
        keeps the pages of earlier runs (GX drops a page whose source is gone)."""
        if self._docs_dir == docs_dir:
            return
        for name, kind, folder in ((_DOCS_RESULTS, "ValidationResultsStore", "results"),
                                   (_DOCS_SUITES, "ExpectationsStore", "suites")):
            self.context.add_store(name, {
                "class_name": kind,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(docs_dir / folder)}})
        site = {"class_name": "SiteBuilder", "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(docs_dir)},
                "site_section_builders": {"expectations": {"source_store_name": _DOCS_SUITES},
                                          "validations": {"source_store_name": _DOCS_RESULTS},
                                          "profiling": "None"}}
        if _DOCS_SITE in self.context.list_data_docs_sites():
            self.context.update_data_docs_site(_DOCS_SITE, site)
        else:
            self.context.add_data_docs_site(_DOCS_SITE, site)
        self._docs_dir = docs_dir


def run_id(kind: str, month: dt.date):
    """The GX run of ``kind`` ("landing", "audit") for ``month``: its name in the Data Docs."""
    from great_expectations.core.run_identifier import RunIdentifier

    return RunIdentifier(run_name=f"{kind}-{format_month(month)}",
                         run_time=dt.datetime.now(dt.timezone.utc))


def _pandas_frame(con, f: ExportFile, table: str, columns: list[str], first: int = 0,
                  rows: int | None = None):
    """Rows ``first`` … ``first + rows - 1`` (0-based, in file order; all: ``rows`` None) of
    the typed table as a pandas DataFrame whose index i is the i-th row of the file.

    Only ``columns`` (those the suite looks at) are converted: free-text
    columns such as names are not checked and would only cost time.
    """
    import pandas as pd

    L = quote_identifier(LINE_COLUMN)
    cols = ", ".join([f"{L} - 2 AS {L}", *(quote_identifier(c) for c in columns)])
    where = "" if rows is None else f" WHERE {L} >= {first + 2} AND {L} < {first + rows + 2}"
    df = con.sql(f"SELECT {cols} FROM {table}{where} ORDER BY {L}").df().set_index(LINE_COLUMN)
    df.index.name = None
    for c in f.columns:
        if c.duckdb_type == "DATE" and c.name in columns:
            try:  # GX compares nanosecond datetimes vectorised, others row by row
                df[c.name] = df[c.name].astype("datetime64[ns]")
            except (pd.errors.OutOfBoundsDatetime, OverflowError, ValueError):
                pass
    return df


def _run_chunked(gxs: _GX, con, f: ExportFile, table: str, params: dict, run):
    """Run the suite of ``f`` over ``table`` in chunks of :data:`CHUNK_ROWS` rows, the
    set-wide expectations decided in SQL: (result identifier, result, rows)."""
    n = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    size = CHUNK_ROWS if suite_sql.chunkable(gxs.definitions[f.name]["expectations"]) else None
    chunks, key = [], None
    for first in range(0, max(n, 1), size or max(n, 1)):
        df = _pandas_frame(con, f, table, gxs.columns[f.name], first, size)
        key, res = gxs.run(f.name, df, params, run)
        chunks.append(res)
        del df
    if len(chunks) == 1:
        return key, chunks[0], n
    res = suite_sql.merge(chunks, MAX_EXAMPLES)
    suite_sql.apply_set_wide(con, table, LINE_COLUMN, res, MAX_EXAMPLES)
    return key, res, n


def _involved_columns(kwargs: dict) -> list[str]:
    cols = []
    for k in ("column", "column_A", "column_B"):
        if kwargs.get(k):
            cols.append(kwargs[k])
    cols += list(kwargs.get("column_list") or [])
    rc = kwargs.get("row_condition")
    if isinstance(rc, dict) and isinstance(rc.get("column"), dict):
        cols.append(rc["column"]["name"])
    elif rc is not None and hasattr(rc, "column"):
        cols.append(rc.column.name)
    return cols


def run_suites(con, tables: dict[str, str], month: dt.date,
               directory: Path = EXPECTATIONS_DIR) -> list[Violation]:
    """Run each file's GX suite, through its Checkpoint, over its staged typed table
    (``tables``: file name -> SQL table): the files the SQL screen flags, in chunks
    (see the module's docstring). When the screen flags no file, every suite passes
    and the GX context is not created: a valid month costs no GX start-up. A suite
    the screen cannot read (an unknown expectation, a column the file lacks) flags
    its file, so GX loads it and refuses it (:class:`SuiteError`).

    Suite parameters: ``month_start`` and ``month_end`` (first and last day
    of the export month). When a suite fails, the Data Docs of the failed
    results are written beside the warehouse (:func:`data_docs_dir`) and each
    of its violations carries them (``data_docs``; the report links them).
    """
    sql_params = {"month_start": month, "month_end": end_of_month(month)}
    flagged = [f for f in FILES  # a file not flagged has no row any expectation may refuse
               if suite_sql.screen(con, tables[f.name], load_suite_json(f.name, directory)["expectations"],
                                   sql_params)]
    if not flagged:
        return []  # every suite passes: GX (and pandas) are not even started
    import pandas as pd

    gxs = _GX.get(directory)  # loads every suite: a suite GX cannot load is an error here
    params = {"month_start": pd.Timestamp(month), "month_end": pd.Timestamp(end_of_month(month))}
    run = run_id("landing", month)
    viol: list[Violation] = []
    failed = []  # (identifier, result) of the suites that failed
    for f in flagged:
        table = tables[f.name]
        key, res, n = _run_chunked(gxs, con, f, table, params, run)
        if not res.success:
            failed.append((key, res))
        for r in res.results:
            if r.success:
                continue
            cfg = r.expectation_config
            kwargs = dict(cfg.kwargs)
            rule = (cfg.meta or {}).get("rule") or cfg.type
            cols = _involved_columns(kwargs)
            where = ", ".join(dict.fromkeys(c for c in (kwargs.get("column"), kwargs.get("column_A"),
                                                        kwargs.get("column_B")) if c)) \
                or ", ".join(kwargs.get("column_list") or []) or cfg.type
            info = r.exception_info or {}
            if info.get("raised_exception"):
                viol.append(Violation(f.filename, where, n,
                                      [{"error": info.get("exception_message")}],
                                      f"{rule} (the check could not be evaluated)", cfg.type))
                continue
            result = r.result or {}
            count = int(result.get("unexpected_count") or 0)
            idx = [i for i in (result.get("partial_unexpected_index_list") or [])
                   if isinstance(i, (int,)) or hasattr(i, "__index__")]
            show = list(dict.fromkeys([LINE_COLUMN, *f.key, *cols]))
            examples = []
            if idx:
                lines = sorted({int(i) + 2 for i in idx})[:MAX_EXAMPLES]
                rows = fetch_dicts(
                    con, f"SELECT {', '.join(quote_identifier(c) for c in show)} FROM {table} "
                         f"WHERE {quote_identifier(LINE_COLUMN)} IN ({', '.join(str(x) for x in lines)}) "
                         f"ORDER BY {quote_identifier(LINE_COLUMN)}")
                examples = [line_first(x) for x in rows]
            elif result.get("partial_unexpected_list"):
                examples = [clean_row(x) if isinstance(x, dict) else {"value": jsonable(x)}
                            for x in result["partial_unexpected_list"][:MAX_EXAMPLES]]
            viol.append(Violation(f.filename, where, count or len(examples), examples, rule,
                                  cfg.type))
    docs = gxs.write_docs(data_docs_dir(con), failed)
    if docs is not None:
        docs.pages = {FILES_BY_NAME[name].filename: url for name, url in docs.pages.items()}
        for v in viol:
            v.data_docs = docs
    return viol
