"""Faults on the read side: the analysts' copy, `explain`, `report` and `demo`.

* a copy refresh on a full filesystem (a small tmpfs mounted on the analyst
  folder; where mounting is not permitted, ENOSPC is injected into the copy's
  write instead) fails without raising and without leaving temporary files,
  leaves the published tables alone, marks the copy out of date, and
  `refresh-copy` completes it;
* temporary files of a killed refresh are removed by the next one;
* escape sequences and rich markup in the data are not acted on by the
  terminal output, and are escaped in the HTML report, while the data keeps them;
* a month published with no partners is said to be so.

The published warehouse is the hand-made mart of ``tests/support/mart_fixture.py``
(no dbt), with a publication record per month, as ``pci.publish.publication`` writes it.
"""
from __future__ import annotations

import datetime as dt
import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import pytest

from pci.cli import main
from pci.core.catalog import copy_path, ensure_publish_schema, marker_path
from pci.core.errors import EXIT_BUSY, EXIT_ENVIRONMENT, EXIT_USAGE
from pci.core.terminal import for_terminal
from pci.publish import analyst_copy
from pci.publish.copy_refresh import refresh_copy
from pci.read import mart as mart_reader
from tests.support import mart_fixture as fx
from tests.support import published

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
OCT = dt.date(2021, 10, 1)
TMP_NAME = re.compile(r"\.tmp(\.wal)?$")


# --------------------------------------------------------------------------- helpers

def record_publication(con, month: dt.date, rows: int | None = None) -> str:
    """A publication row for ``month`` as pci.publish.publication records it (``rows``: the month's
    row count in main.pci_monthly_scores unless given)."""
    ensure_publish_schema(con)
    if rows is None:
        rows = con.execute("SELECT count(*) FROM main.pci_monthly_scores WHERE score_month = ?",
                           [month]).fetchall()[0][0]
    pid = uuid.uuid4().hex
    con.execute(
        "INSERT INTO main.pci_score_publications (publication_id, score_month, published_at, run_id, "
        "input_load_ids, row_count, scores_sha256, contributions_sha256, supersedes, changed_partners) "
        "VALUES (?, ?, now()::TIMESTAMP, 'test', '[]', ?, 'sha', 'sha', NULL, 0)", [pid, month, rows])
    return pid


def published_warehouse(folder: Path) -> Path:
    """The fixture mart with a publication record for each of its months."""
    warehouse = fx.build_mart(folder / "pci.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        for month in fx.MONTHS:
            record_publication(con, month)
    return warehouse


def publish_october(con) -> None:
    """Publish 2021-10 (2021-09's rows again) in one committed transaction."""
    con.execute("BEGIN TRANSACTION")
    for table in ("pci_monthly_scores", "pci_metric_contributions"):
        con.execute(f"INSERT INTO main.{table} SELECT * REPLACE (DATE '2021-10-01' AS score_month) "
                    f"FROM main.{table} WHERE score_month = DATE '2021-09-01'")
    record_publication(con, OCT)
    con.execute("COMMIT")


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TMP_NAME.search(p.name)) if folder.is_dir() else []


def copy_months(copy: Path) -> list[dt.date]:
    with duckdb.connect(str(copy), read_only=True) as c:
        return [r[0] for r in c.execute(
            "SELECT DISTINCT score_month FROM pci_monthly_scores ORDER BY 1").fetchall()]


def cli(capsys, *args) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


class FullFolder:
    """``folder`` on a filesystem of ``size`` bytes: a tmpfs mounted there (we run as
    root). Where mounting is not permitted (or ``PCI_FAULTS_NO_MOUNT`` is set), the
    copy's write fails with ENOSPC instead (injected), so the test still runs.
    :meth:`make_room` gives it space."""

    def __init__(self, folder: Path, size: int):
        self.folder, self.size = folder, size
        self.mounted = False
        self.patch = pytest.MonkeyPatch()

    def __enter__(self) -> "FullFolder":
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.environ.get("PCI_FAULTS_NO_MOUNT"):  # to run the injected variant where mounting works
            self.mounted = False
        else:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs",
                                   str(self.folder)], capture_output=True, text=True)
            self.mounted = done.returncode == 0
        if not self.mounted:
            def no_space(con, src, alias, *args):
                path = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = ?",
                                   [alias]).fetchall()[0][0]
                with open(path, "ab") as fh:  # what was written before the device filled up
                    fh.write(b"\0" * 4096)
                raise duckdb.IOException(
                    f'IO Error: Could not write file "{path}": No space left on device')

            self.patch.setattr(analyst_copy, "_write_copy", no_space)
        return self

    def make_room(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(self.folder)], check=True)
        else:
            self.patch.undo()

    def __exit__(self, *exc) -> None:
        self.patch.undo()
        if self.mounted:
            if subprocess.run(["umount", str(self.folder)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(self.folder)], check=True)


# --------------------------------------------------------------------------- a full filesystem

def test_refresh_on_a_full_filesystem_fails_cleanly_and_refresh_copy_completes_it(tmp_path, capsys):
    warehouse = published_warehouse(tmp_path)
    copy = copy_path(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        assert refresh_copy(con, warehouse).ok
    size = copy.stat().st_size
    aside = tmp_path / "copy-aside.duckdb"
    os.replace(copy, aside)
    # room for the copy there is, not for the new one the refresh writes beside it
    with FullFolder(copy.parent, size + size // 2) as full:
        with open(aside, "rb") as src, open(copy, "wb") as dst:
            dst.write(src.read())
        con = duckdb.connect(str(warehouse))
        try:
            publish_october(con)  # the publication committed; now its copy refresh fails
            result = refresh_copy(con, warehouse)
            assert not result.ok and result.cause == "disk-full"
            assert result.exit_status == EXIT_ENVIRONMENT
            assert str(copy) in result.error and "no space left on the device holding" in result.error
            assert re.search(r"\d+\.\d MiB free", result.error)
            assert f"python -m pci refresh-copy --warehouse {warehouse}" in result.error
            # the writer's connection still works, and nothing published changed
            assert con.execute("SELECT count(*) FROM main.pci_monthly_scores "
                               "WHERE score_month = DATE '2021-10-01'").fetchall()[0][0] == 9
        finally:
            con.close()
        assert temp_files(copy.parent) == [], "no temporary file is left"
        marker = json.loads(marker_path(copy).read_text(encoding="utf-8"))
        assert marker["cause"] == "disk-full" and marker["months_missing"] == ["2021-10"]
        assert marker["failed_at"] and "refresh-copy --warehouse" in marker["complete_with"]
        assert copy_months(copy) == list(fx.MONTHS), "the copy still holds the previous state"
        fingerprint = published.fingerprint(warehouse)

        # explain and report read the copy and say it is out of date
        status, out, err = cli(capsys, "explain", "--warehouse", str(warehouse), "--partner",
                               "P1002", "--month", "2021-09")
        assert status == 0 and "71.93 / 100" in out
        assert "out of date" in err and "refresh failed" in err and "2021-10" in err
        assert "python -m pci refresh-copy --warehouse" in err
        status, _, err = cli(capsys, "report", "--warehouse", str(warehouse), "--month", "2021-09",
                             "--out", str(tmp_path / "out"))
        assert status == 0 and "warning:" in err and "out of date" in err
        html = (tmp_path / "out" / "pci-report-2021-09.html").read_text(encoding="utf-8")
        assert 'id="stale-copy"' in html and "refresh-copy --warehouse" in html

        # with space again, refresh-copy completes it
        full.make_room()
        status, out, err = cli(capsys, "refresh-copy", "--warehouse", str(warehouse))
        assert status == 0, err
        assert "rewrote 2021-10" in out
        assert not marker_path(copy).exists() and temp_files(copy.parent) == []
        assert copy_months(copy) == [*fx.MONTHS, OCT]
        status, out, err = cli(capsys, "explain", "--warehouse", str(warehouse), "--partner",
                               "P1002", "--month", "2021-10")
        assert status == 0 and "read from the copy" in out and "out of date" not in err
        assert published.fingerprint(warehouse) == fingerprint, "refresh-copy changed nothing published"


def test_first_copy_on_a_full_filesystem(tmp_path, capsys):
    # no copy yet: DuckDB itself fails to write the new file
    warehouse = published_warehouse(tmp_path)
    copy = copy_path(warehouse)
    fingerprint = published.fingerprint(warehouse)
    with FullFolder(copy.parent, 256 * 1024):
        with duckdb.connect(str(warehouse)) as con:
            result = refresh_copy(con, warehouse)
            assert not result.ok and result.cause == "disk-full" and str(copy) in result.error
            assert con.execute("SELECT count(*) FROM main.pci_monthly_scores").fetchall()[0][0] == 24
        assert temp_files(copy.parent) == [] and not copy.exists()
        assert marker_path(copy).exists()
        assert published.fingerprint(warehouse) == fingerprint
        status, out, err = cli(capsys, "refresh-copy", "--warehouse", str(warehouse))
        assert status == EXIT_ENVIRONMENT and "no space left" in err and str(copy) in err
        assert temp_files(copy.parent) == []
        # no copy: explain reads the warehouse itself, which is current
        status, out, err = cli(capsys, "explain", "--warehouse", str(warehouse), "--partner",
                               "P1001", "--month", "2021-09")
        assert status == 0 and "read from the warehouse" in out and "out of date" not in err
    assert published.fingerprint(warehouse) == fingerprint


def test_marker_is_written_even_when_the_disk_stays_full(tmp_path):
    # the marker's JSON cannot be written: an empty marker still says the copy is out of date
    warehouse = published_warehouse(tmp_path)
    copy = copy_path(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        assert refresh_copy(con, warehouse).ok
        publish_october(con)
    real_write = Path.write_text

    def full(self, *a, **kw):
        if self.name.endswith(".refresh-failed.json.tmp"):
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, *a, **kw)

    def no_space(src, dst, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "write_text", full)
        mp.setattr(shutil, "copyfile", no_space)
        with duckdb.connect(str(warehouse)) as con:
            result = refresh_copy(con, warehouse)
    assert not result.ok and result.marker == marker_path(copy)
    assert marker_path(copy).read_text() == "" and temp_files(copy.parent) == []
    with mart_reader.open_mart(warehouse) as mart:
        warning = mart_reader.stale_warning(mart)
    assert warning and "out of date" in warning and "refresh-copy --warehouse" in warning


def test_leftovers_of_a_killed_refresh_are_removed_by_the_next(tmp_path):
    warehouse = published_warehouse(tmp_path)
    copy = copy_path(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        assert refresh_copy(con, warehouse).ok
        publish_october(con)
    # a refresh killed (SIGKILL) just before it swaps the new copy in
    code = (
        "import os, sys, time, duckdb\n"
        "from pci.publish import analyst_copy, copy_refresh\n"
        "def stop(src, dst):\n"
        "    print('written', flush=True); time.sleep(600)\n"
        "analyst_copy.os.replace = stop\n"
        f"con = duckdb.connect({str(warehouse)!r})\n"
        f"copy_refresh.refresh_copy(con, {str(warehouse)!r})\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written", proc.stderr.read()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    left = temp_files(copy.parent)
    assert left and all(n.startswith(".pci.duckdb.") for n in left)
    orphan = copy.parent / ".pci.duckdb.0123456789ab.tmp.wal"  # an older one, WAL only
    orphan.write_bytes(b"x")
    others = [copy.parent / "notes.txt", copy.parent / ".pci.duckdb.backup"]
    for p in others:
        p.write_text("not ours")
    with duckdb.connect(str(warehouse)) as con:
        result = refresh_copy(con, warehouse)
    assert result.ok and result.months == [OCT]
    assert sorted(p.name for p in result.removed) == sorted([*left, orphan.name])
    assert "temporary file" in result.summary()
    assert temp_files(copy.parent) == [] and all(p.exists() for p in others)
    assert copy_months(copy) == [*fx.MONTHS, OCT]


def test_refresh_copy_exit_statuses(tmp_path, capsys):
    status, _, err = cli(capsys, "refresh-copy", "--warehouse", str(tmp_path / "none.duckdb"))
    assert status == EXIT_USAGE and "no warehouse at" in err
    empty = tmp_path / "empty" / "pci.duckdb"
    empty.parent.mkdir()
    duckdb.connect(str(empty)).close()
    status, out, _ = cli(capsys, "refresh-copy", "--warehouse", str(empty))
    assert status == 0 and "nothing to copy" in out
    warehouse = published_warehouse(tmp_path)
    code = ("import sys\n"
            "from pci.core.locking import WarehouseLock\n"
            f"with WarehouseLock({str(warehouse)!r}):\n"
            "    print('held', flush=True); sys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        status, _, err = cli(capsys, "refresh-copy", "--warehouse", str(warehouse))
        assert status == EXIT_BUSY and "in use by" in err
    finally:
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(timeout=60)
    assert not copy_path(warehouse).exists()


# --------------------------------------------------------------------------- escape sequences

NASTY = "Evil\x1b[2J\x1b]0;title\x07 [red]x[/red] <b>Co</b> & \"Sons\"\x9b31m\x7f"
DETAIL = "CHARGE\x1b[31m[bold]"


def test_for_terminal_removes_sequences_and_control_characters():
    assert for_terminal(NASTY) == 'Evil [red]x[/red] <b>Co</b> & "Sons"'
    assert for_terminal("a\tb\nc\rd\x00e\x85f\x1bPdcs\x1b\\g") == "a\tb\ncdefg"
    assert for_terminal("plain – ünïcode") == "plain – ünïcode"
    assert for_terminal("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert for_terminal(None) == "" and for_terminal(12) == "12"


@pytest.fixture
def nasty_warehouse(tmp_path):
    warehouse = published_warehouse(tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE raw.partners SET partner_name = ? WHERE partner_id = 'P1002'", [NASTY])
        con.execute("UPDATE main.pci_metric_contributions SET detail = ? WHERE partner_id = 'P1002' "
                    "AND metric = 'net_new_revenue' AND detail = 'CHARGE'", [DETAIL])
        assert refresh_copy(con, warehouse).ok
    return warehouse


def test_explain_prints_names_stripped_and_markup_literally(nasty_warehouse, capsys):
    status, out, err = cli(capsys, "explain", "--warehouse", str(nasty_warehouse), "--partner",
                           "P1002", "--month", "2021-09")
    assert status == 0, err
    for text in (out, err):
        assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "0;title" not in out and "[2J" not in out
    assert "Evil [red]x[/red] <b>Co</b>" in out  # markup shown, not interpreted
    assert "CHARGE[bold]" in out
    # an id from the command line is not acted on either
    status, out, err = cli(capsys, "explain", "--warehouse", str(nasty_warehouse), "--partner",
                           "P\x1b[2J[red]9", "--month", "2021-09")
    assert status == 1 and "\x1b" not in err and "[red]9" in err
    # the data keeps them: in the warehouse and in the copy
    for path in (nasty_warehouse, copy_path(nasty_warehouse)):
        with duckdb.connect(str(path), read_only=True) as c:
            table = "raw.partners" if path == nasty_warehouse else "partners"
            assert c.execute(f"SELECT DISTINCT partner_name FROM {table} "
                             f"WHERE partner_id = 'P1002'").fetchall() == [(NASTY,)]


def test_report_escapes_names_in_the_page(nasty_warehouse, tmp_path, capsys):
    status, out, err = cli(capsys, "report", "--warehouse", str(nasty_warehouse), "--month",
                           "2021-09", "--out", str(tmp_path / "out"))
    assert status == 0, err
    assert "\x1b" not in out + err
    html = (tmp_path / "out" / "pci-report-2021-09.html").read_text(encoding="utf-8")
    assert "\x1b" not in html and "\x07" not in html and "\x9b" not in html
    assert "<b>Co</b>" not in html
    assert "Evil [red]x[/red] &lt;b&gt;Co&lt;/b&gt; &amp; &#34;Sons&#34;" in html  # Jinja2 autoescape


def test_demo_table_prints_names_stripped(nasty_warehouse):
    from rich.console import Console

    from tools.demo import scores_table

    buf = io.StringIO()
    Console(file=buf, width=250).print(scores_table(nasty_warehouse, fx.LATEST))
    text = buf.getvalue()
    assert "\x1b" not in text and "[red]x[/red]" in text


# --------------------------------------------------------------------------- a month with no partners

@pytest.fixture
def empty_month_warehouse(tmp_path):
    """2021-10 published with rows, then published again with none (its partners
    export held only its header)."""
    warehouse = published_warehouse(tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        publish_october(con)
        assert refresh_copy(con, warehouse).months is None  # the first copy: written whole
        con.execute("BEGIN TRANSACTION")
        for table in ("pci_monthly_scores", "pci_metric_contributions"):
            con.execute(f"DELETE FROM main.{table} WHERE score_month = ?", [OCT])
        record_publication(con, OCT, rows=0)
        con.execute("COMMIT")
        result = refresh_copy(con, warehouse)
    assert result.ok and result.months == [OCT]  # the incremental refresh carries it
    return warehouse


def test_copy_carries_a_month_published_with_no_partners(empty_month_warehouse):
    copy = copy_path(empty_month_warehouse)
    with duckdb.connect(str(copy), read_only=True) as c:
        assert c.execute("SELECT count(*) FROM pci_monthly_scores WHERE score_month = ?",
                         [OCT]).fetchall()[0][0] == 0
        assert c.execute("SELECT count(*) FROM pci_metric_contributions WHERE score_month = ?",
                         [OCT]).fetchall()[0][0] == 0
        assert OCT in [r[0] for r in c.execute("SELECT score_month FROM analyst_copy_months").fetchall()]
        assert c.execute("SELECT last_score_month, score_months FROM analyst_copy_info").fetchall() == [
            (OCT, 4)]
        incremental = {t: c.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                       for t in ("pci_monthly_scores", "pci_metric_contributions", "analyst_copy_months")}
    copy.unlink()
    with duckdb.connect(str(empty_month_warehouse)) as con:
        assert refresh_copy(con, empty_month_warehouse).months is None
    with duckdb.connect(str(copy), read_only=True) as c:
        assert {t: c.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                for t in incremental} == incremental, "the same as the copy written whole"


@pytest.mark.parametrize("source", ["auto", "warehouse"])
def test_explain_says_the_month_is_published_with_no_partners(empty_month_warehouse, source, capsys):
    status, out, err = cli(capsys, "explain", "--warehouse", str(empty_month_warehouse), "--partner",
                           "P1001", "--month", "2021-10", "--source", source)
    assert status == 1 and out == ""
    assert "2021-10 is published with no partners" in err and "was not scored" not in err
    status, _, err = cli(capsys, "explain", "--warehouse", str(empty_month_warehouse), "--partner",
                         "P1001", "--month", "2021-11", "--source", source)
    assert status == 1 and "2021-11 was not scored" in err and "2021-10 (no partners)" in err


def test_report_says_the_month_is_published_with_no_partners(empty_month_warehouse, tmp_path, capsys):
    status, out, err = cli(capsys, "report", "--warehouse", str(empty_month_warehouse), "--month",
                           "2021-10", "--out", str(tmp_path / "out"))
    assert status == 0, err
    assert "2021-10 is published with no partners" in err
    html = (tmp_path / "out" / "pci-report-2021-10.html").read_text(encoding="utf-8")
    assert 'id="no-partners"' in html and "published with no partners" in html
    assert "was not scored" not in html
    table = re.search(r'<table id="partners".*?</table>', html, re.S).group(0)
    assert "<tr data-partner=" not in table
    # the partners of 2021-09 are no longer scored
    assert "no longer scored (9)" in html
