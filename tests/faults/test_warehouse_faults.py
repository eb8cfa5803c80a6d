"""Faults of the warehouse file and of its folder (`pci.core.warehouse`, `pci.core.locking`).

* another process holding the DuckDB file, even read-only (an analyst's
  session): ``connect`` raises ``WarehouseBusy`` naming that process, like the
  lock file does; ``wait=True`` waits for it;
* an empty, truncated or corrupted warehouse file: ``check_before_writing``
  raises ``WarehouseDamaged`` (which file, what is wrong, how to restore) and
  the file's bytes are unchanged afterwards;
* a read-only folder (a small tmpfs remounted read-only; where mounting is not
  permitted, or ``PCI_FAULTS_NO_MOUNT`` is set, EROFS is injected instead):
  ``FolderNotWritable`` from the lock and from the preflight;
* a (nearly) full filesystem (a small tmpfs, or ENOSPC / a small free space
  injected): ``DiskFull`` naming the path and the free MiB, from the preflight,
  the lock and DuckDB's own write;
* ``classify`` on each message shape (DuckDB, a failed dbt node, SQLite's
  "database or disk is full", OSError by errno), and None for what is not a
  fault of the machine;
* a healthy warehouse passes both check levels in well under a second;
* the shared SQL helpers.
"""
from __future__ import annotations

import errno
import gc
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pci.core.errors import (EXIT_BUSY, EXIT_DAMAGED, EXIT_ENVIRONMENT, DiskFull, EnvironmentFault,
                             FolderNotWritable, WarehouseBusy, WarehouseDamaged)
from pci.core.faults import classify
from pci.core.locking import WarehouseLock, is_held_here, lock_path
from pci.core.preflight import Preflight, check_before_writing, min_free_bytes, scrub_rows
from pci.core.warehouse import connect, landed_months, quote_identifier, quote_literal, table_exists

pytestmark = pytest.mark.faults

BLOCK_START = 3 * 4096  # DuckDB's three 4 KiB headers


# --------------------------------------------------------------------------- helpers

def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def make_warehouse(path: Path, rows: int = 300_000) -> Path:
    """A small warehouse (about 9 MiB for 300,000 rows): raw.loads, a wide-ish raw
    table spread over many blocks, a published table with a primary key."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.loads (load_id VARCHAR PRIMARY KEY, export_month DATE, "
                    "is_current BOOLEAN)")
        con.execute("INSERT INTO raw.loads VALUES ('a', DATE '2021-08-01', true), "
                    "('b', DATE '2021-07-01', false), ('c', DATE '2021-07-01', true), "
                    "('d', DATE '2021-06-01', false)")
        con.execute(f"CREATE TABLE raw.billing_lines AS SELECT range AS line_id, "
                    f"md5(range::VARCHAR) AS tenant_id, random() AS amount, "
                    f"'P' || (range % 997) AS partner_id FROM range({rows})")
        con.execute("CREATE TABLE main.pci_monthly_scores (score_month DATE, partner_id VARCHAR, "
                    "score INTEGER, PRIMARY KEY (score_month, partner_id))")
        con.execute("INSERT INTO main.pci_monthly_scores SELECT DATE '2021-08-01', 'P' || range, "
                    "range % 100 FROM range(5000)")
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return make_warehouse(tmp_path_factory.mktemp("template") / "pci.duckdb")


@pytest.fixture
def warehouse(template, tmp_path) -> Path:
    path = tmp_path / "wh" / "pci.duckdb"
    path.parent.mkdir()
    shutil.copy(template, path)
    return path


def data_block_of(path: Path, schema: str, table: str) -> int:
    """A block id holding data of ``schema.table`` (from DuckDB's storage info)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        ids = [r[0] for r in con.execute(
            f"SELECT DISTINCT block_id FROM pragma_storage_info('{schema}.{table}') "
            "WHERE block_id IS NOT NULL AND block_id >= 0 ORDER BY 1").fetchall()]
    finally:
        con.close()
    assert ids, "the table has no data blocks"
    return ids[len(ids) // 2]


def holder_process(path: Path, read_only: bool) -> subprocess.Popen:
    """Another process with a DuckDB connection to ``path``; returns once it holds it."""
    code = textwrap.dedent(f"""
        import time, duckdb
        con = duckdb.connect({str(path)!r}, read_only={read_only!r})
        print("held", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


@contextmanager
def tmpfs(folder: Path, size: str = "8m"):
    """``folder`` on a tmpfs of ``size`` (we run as root); yields False, with nothing
    mounted, where mounting is not permitted or ``PCI_FAULTS_NO_MOUNT`` is set (the
    test then injects the fault)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = False
    if not os.environ.get("PCI_FAULTS_NO_MOUNT"):
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                 capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            gc.collect()  # connections not closed by a failing test
            if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(folder)], check=True)


def remount_read_only(folder: Path) -> None:
    gc.collect()
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)


def fill(folder: Path, leave: int) -> None:
    """Fill the filesystem of ``folder`` until ``leave`` bytes or fewer are free."""
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "ab") as f:
        try:
            f.write(b"\1" * max(0, free - leave))
            f.flush()
            os.fsync(f.fileno())
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def inject_errno(monkeypatch, folder: Path, code: int) -> None:
    """``os.open`` (and ``os.mkdir``) of a path under ``folder`` fails with ``code``."""
    real_open, real_mkdir = os.open, os.mkdir

    def under(p) -> bool:
        return str(Path(os.fsdecode(p)).absolute()).startswith(str(folder.absolute()))

    def fake_open(p, flags, *a, **kw):
        if under(p) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(code, os.strerror(code), os.fsdecode(p))
        return real_open(p, flags, *a, **kw)

    def fake_mkdir(p, *a, **kw):
        if under(p):
            raise OSError(code, os.strerror(code), os.fsdecode(p))
        return real_mkdir(p, *a, **kw)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)


# --------------------------------------------------------------------------- busy


def test_read_only_connection_of_another_process_makes_connect_busy(warehouse):
    holder = holder_process(warehouse, read_only=True)
    try:
        with pytest.raises(WarehouseBusy) as err:
            connect(warehouse)
        text = str(err.value)
        assert f"process {holder.pid}" in text and "--wait" in text
        assert "read-only" in text and "analyst" in text
        assert str(warehouse) in text
        assert err.value.holder["pid"] == holder.pid
        assert err.value.exit_status == EXIT_BUSY
        # a reader does not keep another reader out, nor the preflight (it only reads)
        connect(warehouse, read_only=True).close()
        assert check_before_writing(warehouse).level == "cheap"
    finally:
        stop(holder)
    connect(warehouse).close()  # free again once the holder ended


def test_writer_of_another_process_makes_the_preflight_busy(warehouse):
    holder = holder_process(warehouse, read_only=False)
    try:
        for call in (lambda: check_before_writing(warehouse), lambda: connect(warehouse, read_only=True)):
            with pytest.raises(WarehouseBusy) as err:
                call()
            assert f"process {holder.pid}" in str(err.value) and "--wait" in str(err.value)
            assert "for writing" in str(err.value)
    finally:
        stop(holder)


def test_connect_with_wait_waits_for_the_holder_and_gives_up_after_timeout(warehouse):
    holder = holder_process(warehouse, read_only=True)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseBusy):
            connect(warehouse, wait=True, timeout=1.0, poll=0.2)
        assert time.monotonic() - started >= 1.0
        ender = subprocess.Popen(["sh", "-c", f"sleep 1; kill {holder.pid}"])
        con = connect(warehouse, wait=True, timeout=60, poll=0.2)
        con.execute("CREATE TABLE waited AS SELECT 1 AS x")
        con.close()
        ender.wait()
    finally:
        stop(holder)


# --------------------------------------------------------------------------- damaged files


def _empty(path: Path) -> str:
    path.write_bytes(b"")
    return "empty (0 bytes)"


def _half(path: Path) -> str:  # the cut takes the metadata: DuckDB fails at open
    os.truncate(path, path.stat().st_size // 2)
    return "truncated: IO Error: Could not read enough bytes"


def _tail(path: Path) -> str:  # the cut spares the metadata: DuckDB opens it, the size check does not
    os.truncate(path, int(path.stat().st_size * 0.9))
    return "blocks in use of 262,144 bytes"


def _page(path: Path) -> str:  # a data block overwritten: only reading it finds it
    block = data_block_of(path, "raw", "billing_lines")
    with open(path, "r+b") as f:
        f.seek(BLOCK_START + block * 262144 + 5000)
        f.write(os.urandom(4096))
    return "corrupt"


def _header(path: Path) -> str:
    with open(path, "r+b") as f:
        f.write(os.urandom(4096))
    return "not a DuckDB database"


@pytest.mark.parametrize("damage", [_empty, _half, _tail, _page, _header],
                         ids=["empty", "half", "tail", "page", "header"])
def test_damaged_warehouse_is_refused_before_anything_is_written(warehouse, damage):
    what = damage(warehouse)
    before = sha256(warehouse)
    thorough = damage is _page
    with pytest.raises(WarehouseDamaged) as err:
        check_before_writing(warehouse, thorough=thorough)
    text = str(err.value)
    assert str(warehouse) in text and what in text
    assert "Restore it" in text and "analyst" in text  # how to restore
    assert err.value.exit_status == EXIT_DAMAGED and not err.value.retryable
    assert sha256(warehouse) == before
    assert not Path(f"{warehouse}.wal").exists()
    assert [p.name for p in warehouse.parent.iterdir()] == [warehouse.name]  # no probe left


def test_a_corrupt_data_block_needs_the_thorough_level(warehouse):
    _page(warehouse)
    before = sha256(warehouse)
    assert check_before_writing(warehouse).level == "cheap"  # opens, catalog and metadata fine
    with pytest.raises(WarehouseDamaged, match="checksum"):
        check_before_writing(warehouse, thorough=True)
    assert sha256(warehouse) == before


def _slices_until_a_pass_completes(warehouse, budget: int, limit: int = 50) -> list[list]:
    """The slices each rolling call read, call after call, up to the one completing a pass."""
    calls = []
    for _ in range(limit):
        result = check_before_writing(warehouse, rolling=budget)
        assert result.level == "rolling"
        calls.append(result.scrubbed)
        if result.cycle_completed:
            return calls
    raise AssertionError(f"no pass completed in {limit} calls of {budget} rows")


def _max_rowids(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"SELECT max(rowid) FROM {t}").fetchone()[0]
                for t in ("main.pci_monthly_scores", "raw.billing_lines", "raw.loads")}
    finally:
        con.close()


def test_the_rolling_scrub_reads_every_row_once_a_pass_at_a_bounded_cost(warehouse):
    """Each call reads at most its budget of rows, going on where the last call
    stopped; the calls of a pass read every row of every table exactly once."""
    budget = 70_000
    before = sha256(warehouse)
    ends = _max_rowids(warehouse)
    total = sum(ends.values()) + len(ends)
    calls = _slices_until_a_pass_completes(warehouse, budget)
    assert len(calls) == -(-total // budget)  # 305,004 rows: 5 calls
    for slices in calls:
        assert 0 < sum(b - a + 1 for _, a, b in slices) <= budget
    read: dict[str, list] = {}
    for table, a, b in (s for slices in calls for s in slices):
        read.setdefault(table, []).append((a, b))
    for table, end in ends.items():  # contiguous from 0 to the last row, no row twice
        spans = sorted(read[table])
        assert spans[0][0] == 0 and spans[-1][1] == end, (table, spans)
        assert all(later[0] == earlier[1] + 1 for earlier, later in zip(spans, spans[1:])), spans
    assert sha256(warehouse) == before, "the scrub writes nothing to the file"
    assert sorted(p.name for p in warehouse.parent.iterdir()) == sorted(
        [warehouse.name, f"{warehouse.name}.scrub.json"]), "only its place is kept, beside the file"
    nxt = check_before_writing(warehouse, rolling=budget)  # the next pass starts over
    assert nxt.scrubbed[0][:2] == ("main.pci_monthly_scores", 0)


def test_a_corrupt_data_block_is_found_by_the_rolling_scrub_within_one_pass(warehouse):
    """The cheap level does not read data blocks; the rolling scrub reads them all
    within a pass, and does not move past the slice that failed."""
    _page(warehouse)
    before = sha256(warehouse)
    assert check_before_writing(warehouse).level == "cheap"
    budget, found = 70_000, None
    for call in range(1, 6):
        try:
            check_before_writing(warehouse, rolling=budget)
        except WarehouseDamaged as exc:
            found = (call, str(exc))
            break
    assert found is not None, "5 calls of 70,000 rows read every row of the 305,004"
    assert "checksum" in found[1] and str(warehouse) in found[1]
    with pytest.raises(WarehouseDamaged, match="checksum"):  # the next run is refused too
        check_before_writing(warehouse, rolling=budget)
    assert sha256(warehouse) == before


def test_pci_check_reads_every_block(warehouse, capsys):
    from pci.cli import main

    assert main(["check", "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out
    assert "intact" in out and "3 tables" in out
    _page(warehouse)
    assert main(["check", "--warehouse", str(warehouse)]) == EXIT_DAMAGED
    err = capsys.readouterr().err
    assert "checksum" in err and "Restore it" in err
    assert main(["check", "--warehouse", str(warehouse.with_name("none.duckdb"))]) == 2


def test_the_scrub_budget_is_a_positive_whole_number(monkeypatch):
    monkeypatch.delenv("PCI_SCRUB_ROWS", raising=False)
    assert scrub_rows() == 20_000_000
    monkeypatch.setenv("PCI_SCRUB_ROWS", "1000")
    assert scrub_rows() == 1000
    for bad in ("0", "-5", "lots"):
        monkeypatch.setenv("PCI_SCRUB_ROWS", bad)
        with pytest.raises(ValueError, match="PCI_SCRUB_ROWS"):
            scrub_rows()


def test_a_corrupt_primary_key_index_block_is_found_by_the_thorough_level(template, tmp_path):
    """The blocks no table's storage info lists are metadata, free or index blocks.
    Those a key lookup reads (the oracle: DuckDB itself) are index blocks: the cheap
    level opens fine, the thorough one finds them (a scan never reads an index)."""
    con = duckdb.connect(str(template), read_only=True)
    try:
        data = {r[0] for t in ("raw.loads", "raw.billing_lines", "main.pci_monthly_scores")
                for r in con.execute(f"SELECT DISTINCT block_id FROM pragma_storage_info('{t}') "
                                     "WHERE block_id >= 0").fetchall()}
        total = con.execute("SELECT total_blocks FROM pragma_database_size()").fetchone()[0]
    finally:
        con.close()
    index_blocks = 0
    for block in sorted(set(range(total)) - data):
        path = tmp_path / f"b{block}.duckdb"
        shutil.copy(template, path)
        with open(path, "r+b") as f:
            f.seek(BLOCK_START + block * 262144 + 100_000)
            f.write(os.urandom(4096))
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error:
            continue  # a metadata block: fails at open, the cheap level's business
        try:
            con.execute("SELECT * FROM raw.loads WHERE load_id = 'a'").fetchall()
            con.execute("SELECT * FROM main.pci_monthly_scores WHERE score_month = DATE '2021-08-01' "
                        "AND partner_id = 'P0'").fetchall()
            continue  # not read by these lookups (free, or off their paths)
        except duckdb.Error:
            pass
        finally:
            con.close()
        index_blocks += 1
        before = sha256(path)
        assert check_before_writing(path).level == "cheap"
        with pytest.raises(WarehouseDamaged, match="checksum"):
            check_before_writing(path, thorough=True)
        assert sha256(path) == before
    assert index_blocks >= 1


def test_connect_refuses_an_empty_file_instead_of_creating_a_database(warehouse):
    warehouse.write_bytes(b"")
    for read_only in (False, True):
        with pytest.raises(WarehouseDamaged, match=r"empty \(0 bytes\)"):
            connect(warehouse, read_only=read_only)
    assert warehouse.stat().st_size == 0


def test_connect_refuses_a_half_truncated_file(warehouse):
    _half(warehouse)
    before = sha256(warehouse)
    with pytest.raises(WarehouseDamaged, match="truncated"):
        connect(warehouse)
    assert sha256(warehouse) == before


def test_a_missing_warehouse_is_new(tmp_path):
    path = tmp_path / "new" / "pci.duckdb"
    with pytest.raises(FileNotFoundError):
        connect(path, read_only=True)
    assert not path.exists()
    result = check_before_writing(path)
    assert result.level == "new" and result.file_bytes is None and not path.exists()
    con = connect(path)
    con.close()
    assert path.stat().st_size > 0


# --------------------------------------------------------------------------- read-only folder


def test_read_only_folder(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    with tmpfs(folder) as mounted:
        path = make_warehouse(folder / "pci.duckdb", rows=20_000)
        before = sha256(path)
        if mounted:
            remount_read_only(folder)
        else:
            inject_errno(monkeypatch, folder, errno.EROFS)
        with pytest.raises(FolderNotWritable) as err:
            WarehouseLock(path).acquire()
        assert str(folder) in str(err.value) and "Read-only file system" in str(err.value)
        assert err.value.exit_status == EXIT_ENVIRONMENT and err.value.retryable
        assert not is_held_here(path)
        with pytest.raises(FolderNotWritable) as err:
            check_before_writing(path)
        assert str(folder) in str(err.value) and "Read-only file system" in str(err.value)
        with pytest.raises(FolderNotWritable):
            check_before_writing(folder / "sub" / "pci.duckdb")  # its folder cannot be created
        if mounted:  # DuckDB itself: writing refused, reading fine
            with pytest.raises(FolderNotWritable, match="Read-only file system"):
                connect(path)
            con = connect(path, read_only=True)
            assert con.execute("SELECT count(*) FROM raw.billing_lines").fetchone()[0] == 20_000
            con.close()
        assert sha256(path) == before
        assert not lock_path(path).exists()


# --------------------------------------------------------------------------- full disk


def test_nearly_full_disk_is_refused_by_the_preflight(tmp_path, monkeypatch):
    folder = tmp_path / "full"
    with tmpfs(folder, "8m") as mounted:
        path = make_warehouse(folder / "pci.duckdb", rows=20_000)
        if mounted:
            fill(folder, leave=2 * 2**20)
        else:
            real = shutil.disk_usage
            monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=2 * 2**20))
        free = shutil.disk_usage(folder).free
        with pytest.raises(DiskFull) as err:
            check_before_writing(path)
        text = str(err.value)
        assert str(path) in text and f"{free / 2**20:.1f} MiB free" in text and "64 MiB" in text
        assert err.value.free_bytes == free and err.value.exit_status == EXIT_ENVIRONMENT
        monkeypatch.setenv("PCI_MIN_FREE_MB", "1")
        assert check_before_writing(path).free_bytes == free  # above the floor now
        monkeypatch.setenv("PCI_MIN_FREE_MB", "0")
        if mounted:
            fill(folder, leave=0)
        else:
            real_write = os.write

            def no_space(fd, data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            monkeypatch.setattr(os, "write", no_space)
        with pytest.raises(DiskFull, match="test file could not be written"):
            check_before_writing(path)  # the floor is off: the probe finds it
        if not mounted:
            monkeypatch.setattr(os, "write", real_write)
        assert not [p for p in folder.iterdir() if ".probe-" in p.name]


def test_lock_on_a_full_disk(tmp_path, monkeypatch):
    folder = tmp_path / "full"
    with tmpfs(folder, "1m") as mounted:
        path = folder / "pci.duckdb"
        if mounted:
            fill(folder, leave=0)
        else:
            def no_space(fd, data, offset):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            monkeypatch.setattr(os, "pwrite", no_space)
        with pytest.raises(DiskFull) as err:
            WarehouseLock(path).acquire()
        assert str(folder) in str(err.value) and "MiB free" in str(err.value)
        assert not is_held_here(path)
        if mounted:
            (folder / "filler").unlink()
        else:
            monkeypatch.undo()
        with WarehouseLock(path):  # taken once there is room again
            assert is_held_here(path)


def test_duckdb_write_on_a_full_disk_is_disk_full(tmp_path):
    folder = tmp_path / "full"
    with tmpfs(folder, "8m") as mounted:
        path = folder / "pci.duckdb"
        if mounted:
            con = duckdb.connect(str(path))
            with pytest.raises(duckdb.Error) as raised:
                for i in range(50):
                    con.execute(f"CREATE TABLE t{i} AS SELECT md5(range::VARCHAR) || random() AS s "
                                f"FROM range(200000)")
                    con.execute("CHECKPOINT")
            con.close()
            exc = raised.value
        else:  # the text DuckDB 2.0.1 gives
            exc = duckdb.TransactionException(
                f'TransactionContext Error: Failed to commit: Could not write file "{path}": '
                "No space left on device")
        fault = classify(exc, path)
        assert isinstance(fault, DiskFull)
        assert str(folder) in str(fault) and "MiB free" in str(fault)
        assert fault.free_bytes == shutil.disk_usage(folder).free


def test_a_new_warehouse_that_cannot_be_created_leaves_no_file(tmp_path, monkeypatch):
    """DuckDB 2.0.1 leaves a 0-byte file when it cannot create a database on a full
    disk: the next run must find no warehouse (new), not an empty one (damaged)."""
    folder = tmp_path / "full"
    with tmpfs(folder, "1m") as mounted:
        path = folder / "pci.duckdb"
        if mounted:
            fill(folder, leave=0)
        else:
            real_connect = duckdb.connect

            def no_space(database, *a, **kw):
                if str(database) == str(path):
                    Path(database).write_bytes(b"")
                    raise duckdb.IOException(f'IO Error: Could not write file "{database}": '
                                             "No space left on device")
                return real_connect(database, *a, **kw)
            monkeypatch.setattr(duckdb, "connect", no_space)
        with pytest.raises(DiskFull) as err:
            connect(path)
        assert str(path) in str(err.value)
        assert not path.exists()
        if mounted:
            (folder / "filler").unlink()
        else:
            monkeypatch.undo()
        connect(path).close()  # a new warehouse once there is room
        assert check_before_writing(path, min_free=0).level == "cheap"


# --------------------------------------------------------------------------- classify


class BuildFailed(Exception):
    """The shape of pci.score.scoring.BuildFailed: the node messages in ``failures``."""

    def __init__(self, message, failures):
        super().__init__(message)
        self.failures = failures


def dbt_failure(node_message: str) -> BuildFailed:
    """A failed node as pci.score.scoring reports it: ``<uid>: <status>: <message on one line>``."""
    dbt_message = ("Runtime Error in model int_subscription_months "
                   f"(models/intermediate/int_subscription_months.sql)\n  {node_message}")
    failure = ("model.pci.int_subscription_months: error: "
               + dbt_message.strip().replace("\n", " ")[:400])
    msg = (f"dbt build for 2021-07..2021-08 failed (1 node(s)):\n  {failure}\n"
           "dbt log: /w/pci.duckdb.dbt-target/logs/dbt.log")
    return BuildFailed(msg, [failure])


LOCK_TEXT = ('IO Error: Could not set lock on file "/w/pci.duckdb": Conflicting lock is held in '
             '/usr/bin/python3.11 (PID 999999). However, you would be able to open this database in '
             'read-only mode, e.g. by using the -readonly parameter in the CLI. See also '
             'https://duckdb.org/docs/current/connect/concurrency')


def test_classify_the_lock_error_also_from_a_dbt_node():
    for exc in (duckdb.IOException(LOCK_TEXT), dbt_failure(LOCK_TEXT)):
        fault = classify(exc, Path("/elsewhere/x.duckdb"))
        assert isinstance(fault, WarehouseBusy)
        text = str(fault)
        assert "warehouse /w/pci.duckdb is in use by process 999999" in text
        assert "/usr/bin/python3.11" in text  # not visible here: DuckDB's program name
        assert "read-only" in text and "--wait" in text


@pytest.mark.parametrize("exc, kind, words", [
    (dbt_failure('IO Error: Could not write file "/w/pci.duckdb.wal": No space left on device'),
     DiskFull, ["/w/pci.duckdb.wal", "No space left on device"]),
    (sqlite3.OperationalError("database or disk is full"), DiskFull, ["/w/pci.duckdb"]),
    (Exception("(sqlite3.OperationalError) database or disk is full\n[SQL: INSERT INTO log ...]"),
     DiskFull, ["database or disk is full"]),
    (OSError(errno.ENOSPC, "No space left on device", "/w/reports/run.json"), DiskFull,
     ["/w/reports/run.json", "ENOSPC"]),
    (OSError(errno.EROFS, "Read-only file system", "/w/validation/2021-08.json"), FolderNotWritable,
     ["cannot write in /w/validation", "Read-only file system"]),
    (PermissionError(errno.EACCES, "Permission denied", "/w/x"), FolderNotWritable, ["/w", "EACCES"]),
    (OSError(errno.EPERM, "Operation not permitted", "/w/pci.duckdb"), FolderNotWritable, ["EPERM"]),
    (duckdb.IOException('IO Error: Cannot open file "/ro/pci.duckdb": Read-only file system'),
     FolderNotWritable, ["cannot write in /ro", "Read-only file system"]),
    (sqlite3.OperationalError("attempt to write a readonly database"), FolderNotWritable, ["/w"]),
    (duckdb.Error("Corrupt database file: computed checksum 1 does not match stored checksum 2 in "
                  "block at location 96219136"), WarehouseDamaged,
     ["/w/pci.duckdb is damaged", "block of the file is corrupt", "96219136"]),
    (dbt_failure("IO Error: Corrupt database file: computed checksum 15396 does not match stored "
                 "checksum 9163 in block at location 96219136"), WarehouseDamaged, ["checksum"]),
    (duckdb.IOException('IO Error: Could not read enough bytes from file "/v/pci.duckdb": attempted '
                        'to read 262144 bytes from location 124792832'), WarehouseDamaged,
     ["/v/pci.duckdb is damaged", "truncated"]),
    (duckdb.IOException('IO Error: The file "/v/pci.duckdb" exists, but it is not a valid DuckDB '
                        'database file!'), WarehouseDamaged, ["/v/pci.duckdb", "not a DuckDB database"]),
    (duckdb.Error('Failure while replaying WAL file "/v/pci.duckdb.wal": Corrupt WAL file: entry at '
                  'byte position 89 computed checksum 1 does not match stored checksum 2'),
     WarehouseDamaged, ["the warehouse /v/pci.duckdb is damaged", "write-ahead log /v/pci.duckdb.wal"]),
    (OSError(errno.EIO, "Input/output error", "/w/pci.duckdb"), EnvironmentFault, ["I/O error on /w"]),
    (sqlite3.OperationalError("disk I/O error"), EnvironmentFault, ["disk I/O error"]),
], ids=["dbt-enospc", "sqlite-full", "sqlalchemy-full", "oserror-enospc", "erofs", "eacces", "eperm",
        "duckdb-rofs", "sqlite-readonly", "checksum", "dbt-checksum", "short-read", "not-duckdb",
        "wal", "eio", "sqlite-io"])
def test_classify_message_shapes(exc, kind, words):
    fault = classify(exc, Path("/w/pci.duckdb"))
    assert type(fault) is kind, fault
    for w in words:
        assert w in str(fault), (w, str(fault))


def test_classify_names_the_free_space_of_a_full_disk(tmp_path):
    fault = classify(sqlite3.OperationalError("database or disk is full"), tmp_path / "pci.duckdb")
    free = shutil.disk_usage(tmp_path).free
    assert isinstance(fault, DiskFull) and fault.free_bytes is not None
    assert abs(fault.free_bytes - free) < 64 * 2**20  # others write to this disk meanwhile
    assert "MiB free" in str(fault) and str(tmp_path / "pci.duckdb") in str(fault)


def test_classify_finds_the_cause_behind_a_failed_rollback():
    try:
        try:
            raise duckdb.IOException('IO Error: Could not write file "/w/pci.duckdb": '
                                     'No space left on device')
        except duckdb.Error:
            raise duckdb.TransactionException("TransactionContext Error: cannot rollback - "
                                              "no transaction is active")
    except duckdb.Error as exc:
        rollback = exc
    fault = classify(rollback, "/w/pci.duckdb")
    assert isinstance(fault, DiskFull) and "/w/pci.duckdb" in str(fault)


def test_classify_returns_none_for_what_is_not_a_fault_of_the_machine():
    for exc in (ValueError("month 2021-13 is not a month"),
                duckdb.CatalogException("Catalog Error: Table with name nope does not exist!"),
                dbt_failure("Got 3 results, configured to fail if != 0"),
                FileNotFoundError(errno.ENOENT, "No such file or directory", "/w/landing/2021-08"),
                KeyError("partner_id")):
        assert classify(exc, "/w/pci.duckdb") is None, exc
    busy = WarehouseBusy(Path("/w/pci.duckdb"), {"pid": 1, "command": "x", "since": "y"})
    damaged = WarehouseDamaged("/w/pci.duckdb", "x")
    assert classify(busy) is busy and classify(RuntimeError("wrapped")) is None
    try:
        raise RuntimeError("step failed") from damaged
    except RuntimeError as exc:
        assert classify(exc) is damaged


def test_min_free_setting(monkeypatch):
    monkeypatch.delenv("PCI_MIN_FREE_MB", raising=False)
    assert min_free_bytes() == 64 * 2**20
    monkeypatch.setenv("PCI_MIN_FREE_MB", "0")
    assert min_free_bytes() == 0
    monkeypatch.setenv("PCI_MIN_FREE_MB", "lots")
    with pytest.raises(ValueError, match="PCI_MIN_FREE_MB"):
        min_free_bytes()


# --------------------------------------------------------------------------- healthy


def test_healthy_warehouse_passes_both_levels_quickly_and_untouched(warehouse):
    before = sha256(warehouse)
    for thorough in (False, True):
        started = time.perf_counter()
        result = check_before_writing(warehouse, thorough=thorough)
        elapsed = time.perf_counter() - started
        assert isinstance(result, Preflight)
        assert result.level == ("thorough" if thorough else "cheap")
        assert result.tables == 3 and result.blocks > 10
        assert result.file_bytes == warehouse.stat().st_size
        assert elapsed < 1.0, f"{result.level}: {elapsed:.2f} s"
    assert sha256(warehouse) == before
    assert sorted(p.name for p in warehouse.parent.iterdir()) == [warehouse.name]


def test_preflight_inside_a_process_that_has_the_file_open(warehouse):
    con = duckdb.connect(str(warehouse))  # e.g. a step's own connection
    try:
        assert check_before_writing(warehouse, thorough=True).level == "thorough"
        con.execute("SELECT count(*) FROM raw.loads").fetchall()  # still usable
    finally:
        con.close()
    con = duckdb.connect(str(warehouse), config={"threads": 1})  # another configuration (dbt's)
    try:
        assert check_before_writing(warehouse).level == "open here"
    finally:
        con.close()


# --------------------------------------------------------------------------- SQL helpers


def test_sql_helpers(warehouse, tmp_path):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert table_exists(con, "raw", "loads") and not table_exists(con, "raw", "nope")
        assert table_exists(con, "raw", "loads", catalog="pci")
        assert not table_exists(con, "raw", "loads", catalog="other")
        assert landed_months(con) == [date(2021, 7, 1), date(2021, 8, 1)]
        text, name = "it's \"x\"", 'odd "name"'
        cur = con.execute(f"SELECT {quote_literal(text)} AS {quote_identifier(name)}")
        assert cur.description[0][0] == name and cur.fetchall() == [(text,)]
    finally:
        con.close()
    empty = duckdb.connect(str(tmp_path / "empty.duckdb"))
    try:
        assert landed_months(empty) == []
    finally:
        empty.close()


def test_free_blocks_cut_off_the_end_of_the_file_are_not_truncation(tmp_path):
    """DuckDB may cut free blocks off the end of the file while its header still
    counts them (seen on a warehouse after a run: 46 blocks, 6 of them free, a file
    of 40): only the blocks in use must be in the file."""
    from pci.core.preflight import _size_problem

    class Header:  # what pragma_database_size() says of such a file
        def __init__(self, total, free):
            self.row = (262144, total, free)

        def execute(self, *args):
            return self

        def fetchone(self):
            return self.row

    path = tmp_path / "w.duckdb"
    path.write_bytes(b"\0" * (3 * 4096 + 40 * 262144))
    assert _size_problem(Header(46, 6), path) is None
    assert "truncated" in _size_problem(Header(46, 5), path)  # a block in use is missing
