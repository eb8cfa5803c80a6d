"""No published month left stale silently; a month with no partner published.

A corrected export of a month (a new manifest) makes every published month
whose window ``M-12 … M`` reads it stale. A run for a later month republishes
every stale month up to its own month in the same run (one build, one
transaction); ``--no-restate`` only names them, flags them ``stale`` in
``pci_score_publications`` and exits 5. Each restated state equals what a run
from scratch over the corrected landing publishes, every column of every row.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.support.exports import minimal_valid_tables, write_export
from tests.support.published import fingerprint, published_rows, scores
from tests.test_pipeline import pci_run

pytestmark = [pytest.mark.faults, pytest.mark.slow]

JUN, JUL, AUG, SEP = "2021-06", "2021-07", "2021-08", "2021-09"


def _landing(root: Path, corrected: bool = False) -> Path:
    landing = root / "landing"
    for m in (JUN, JUL, AUG, SEP):
        tables = minimal_valid_tables(m)
        if corrected and m == JUL:
            tables["billing_lines"][0]["amount_usd"] = "30000.00"  # P001's CSP charge, corrected
        write_export(landing, m, tables)
    return landing


def _latest_publications(warehouse: Path) -> dict[str, tuple]:
    """YYYY-MM -> (stale, row_count, input_load_ids) of the month's latest publication."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT strftime(score_month, '%Y-%m'), arg_max((stale, row_count, input_load_ids), "
            "(published_at, publication_id)) FROM main.pci_score_publications GROUP BY 1").fetchall()
    finally:
        con.close()
    return {m: tuple(v.values()) if isinstance(v, dict) else tuple(v) for m, v in rows}


def _run_report(warehouse: Path, month: str) -> dict:
    return json.loads(sorted((warehouse.parent / "reports").glob(f"run-{month}-*.json"))[-1].read_text())


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """JUL … SEP published from the original landing (JUN is the window's start)."""
    root = tmp_path_factory.mktemp("restate")
    landing = _landing(root)
    wh = root / "wh" / "pci.duckdb"
    res = pci_run(landing, wh, JUL, SEP)
    assert res.returncode == 0, res.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def from_scratch(tmp_path_factory):
    """The same months published by one run over the corrected landing, on a new warehouse."""
    root = tmp_path_factory.mktemp("scratch")
    landing = _landing(root, corrected=True)
    wh = root / "wh" / "pci.duckdb"
    res = pci_run(landing, wh, JUL, SEP)
    assert res.returncode == 0, res.stderr[-3000:]
    return scores(wh)


def _copy(published: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the published world, with July's corrected export landed in its folder
    (a new manifest): the next run that reaches July lands it again."""
    shutil.copytree(published, tmp_path / "w")
    landing = tmp_path / "w" / "landing"
    tables = minimal_valid_tables(JUL)
    tables["billing_lines"][0]["amount_usd"] = "30000.00"
    write_export(landing, JUL, tables)
    return landing, tmp_path / "w" / "wh" / "pci.duckdb"


def test_a_later_months_run_republishes_every_stale_month_up_to_it(published, from_scratch, tmp_path):
    landing, wh = _copy(published, tmp_path)
    before = published_rows(wh)
    res = pci_run(landing, wh, SEP)  # the month-end run only; July was corrected meanwhile
    assert res.returncode == 0, res.stderr[-3000:]
    # every published month reads the corrected July again, as a run from scratch does
    assert scores(wh) == from_scratch
    latest = _latest_publications(wh)
    assert {m: v[0] for m, v in latest.items()} == {JUL: False, AUG: False, SEP: False}
    report = _run_report(wh, SEP)
    assert report["restated_months"] == [JUL, AUG]
    assert report["stale_months"] == [] and report["stale_later_months"] == []
    assert "2021-07: restated" in report["text"] and "2021-08: restated" in report["text"]
    # one transaction and one build: the three publications share the run id
    con = duckdb.connect(str(wh), read_only=True)
    runs = con.execute("SELECT DISTINCT run_id FROM main.pci_score_publications "
                       "WHERE published_at > (SELECT max(published_at) FROM main.pci_score_publications "
                       "WHERE supersedes IS NULL)").fetchall()
    con.close()
    assert len(runs) == 1
    # history kept: the first publications and their rows are still there
    after = published_rows(wh)
    assert set(before["pci_score_publication_rows"]) <= set(after["pci_score_publication_rows"])
    assert len(after["pci_score_publications"]) == len(before["pci_score_publications"]) + 3


def test_no_restate_names_the_stale_months_flags_them_and_exits_5(published, tmp_path):
    landing, wh = _copy(published, tmp_path)
    before = scores(wh)
    res = pci_run(landing, wh, SEP, None, "--no-restate")
    assert res.returncode == 5, res.stderr[-3000:]
    assert "2021-07" in res.stderr and "2021-08" in res.stderr and "--no-restate" in res.stderr
    after = scores(wh)
    # July and August left as they were; September (the run's month) published anew
    for m in (JUL, AUG):
        assert after[f"pci_monthly_scores {m}"] == before[f"pci_monthly_scores {m}"]
    latest = _latest_publications(wh)
    assert {m: v[0] for m, v in latest.items()} == {JUL: True, AUG: True, SEP: False}
    report = _run_report(wh, SEP)
    assert report["stale_months"] == [JUL, AUG] and report["restated_months"] == []
    # the next run without the flag completes it
    res = pci_run(landing, wh, SEP)
    assert res.returncode == 0, res.stderr[-3000:]
    assert {m: v[0] for m, v in _latest_publications(wh).items()} == {JUL: False, AUG: False, SEP: False}


def test_an_earlier_months_run_leaves_later_months_named_and_flagged(published, tmp_path):
    landing, wh = _copy(published, tmp_path)
    res = pci_run(landing, wh, JUL)
    assert res.returncode == 0, res.stderr[-3000:]  # its own months are all current
    report = _run_report(wh, JUL)
    assert report["stale_later_months"] == [AUG, SEP]
    assert "later published months read them: 2021-08, 2021-09" in " ".join(res.stdout.split())
    assert {m: v[0] for m, v in _latest_publications(wh).items()} == {JUL: False, AUG: True, SEP: True}


def test_a_month_whose_partners_file_has_only_its_header_is_published_with_zero_rows(tmp_path):
    landing = tmp_path / "landing"
    for m in (JUN, JUL, AUG, SEP):
        tables = minimal_valid_tables(m)
        if m == AUG:  # no partner: so no association and no person either (they name partners)
            tables.update(partners=[], partner_associations=[], partner_people=[])
        write_export(landing, m, tables)
    wh = tmp_path / "wh" / "pci.duckdb"
    res = pci_run(landing, wh, JUL, SEP)
    assert res.returncode == 0, res.stderr[-3000:]
    published = scores(wh)
    assert f"pci_monthly_scores {AUG}" not in published  # no row for August ...
    assert len(published[f"pci_monthly_scores {SEP}"]) == 3  # ... and the range went on
    latest = _latest_publications(wh)
    assert latest[AUG][1] == 0 and latest[JUL][1] == 3 and latest[SEP][1] == 3  # a publication that says so
    assert "0 partners" in _run_report(wh, AUG)["text"]
    # rerunning it changes nothing and records nothing
    before = fingerprint(wh)
    res = pci_run(landing, wh, AUG)
    assert res.returncode == 0, res.stderr[-3000:]
    assert fingerprint(wh) == before
