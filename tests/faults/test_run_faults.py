"""Faults met by a whole run: `pci run` (and `pci score`, `pci land`) through the real commands.

Every case runs the command in a subprocess on a copy of one published world (a
generated landing 2021-07 … 2021-09, 8 partners; 2021-08 published by a `pci run`,
2021-09 not landed yet), and checks the exit status (pci.core.errors), what standard
error names, that the published tables are what they were before (row
fingerprints, tests/support/published.py) and, where it makes sense, that a rerun
after the fault is removed publishes exactly the scores of a clean run of 2021-09
(every column of every score and contribution row):

1. another process holds the warehouse with a read-only DuckDB connection (an
   analyst's session): `run`, `score` and `land` exit 4 with the same message,
   naming that process; nothing is written;
2. a full disk (the warehouse folder on a tmpfs filled up at the start of the
   step) at landing, at the dbt build and at the publication: exit 6 naming the
   path and the free space, no traceback on standard error, nothing published
   changed, and the rerun completes; at the analysts' copy (its folder on a small
   tmpfs): exit 0 (the publication committed) with a warning on standard error,
   no temporary file left, and `pci refresh-copy` completes it; and the
   free-space floor (PCI_MIN_FREE_MB) refusing a run before anything is written;
3. a read-only warehouse folder (the tmpfs remounted read-only): exit 6 naming
   the folder, nothing changed;
4. a damaged warehouse (cut to half, cut just below its blocks in use, 0 bytes,
   a data page of raw.billing_lines overwritten): exit 7 naming the file and how
   to restore it; its bytes are unchanged;
5. a 0-byte private Airflow database (`<warehouse>.airflow/airflow.db`): the run
   heals it and publishes the clean run's scores;
6. terminal escape sequences in partner names and in a refused value: nothing of
   them reaches the terminal, while the warehouse keeps the names as they are.

We run as root: the faults are real (tmpfs mounted, filled, remounted read-only).
Where mounting is not permitted, or ``PCI_FAULTS_NO_MOUNT`` is set, each case
injects the fault instead (the error DuckDB, dbt or the OS gives, raised at the
same step of the subprocess), so it always runs; it is never skipped.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from pci.core.errors import EXIT_BUSY, EXIT_DAMAGED, EXIT_ENVIRONMENT, EXIT_OK, EXIT_REFUSED
from tests.support import published
from tests.support.exports import write_csv, write_manifest

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
JUL, AUG, SEP = "2021-07", "2021-08", "2021-09"
BLOCK_START = 3 * 4096  # DuckDB's three 4 KiB headers
MiB = 2**20
ESCAPES = ("\x1b", "\x07")
TMP_NAME = re.compile(r"\.tmp(\.wal)?$")


# --------------------------------------------------------------------------- helpers

def env(**extra) -> dict:
    e = dict(os.environ)
    e.pop("AIRFLOW_HOME", None)  # `run` sets up its own Airflow home beside the warehouse
    e.pop("AIRFLOW__CORE__DAGS_FOLDER", None)
    e.pop("PCI_MIN_FREE_MB", None)
    e.update(GX_ANALYTICS_ENABLED="False", DBT_SEND_ANONYMOUS_USAGE_STATS="False",
             AIRFLOW__CORE__LOAD_EXAMPLES="False", PYTHONPATH=str(ROOT))
    e.update(extra)
    return e


def pci(*args, extra_env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pci", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env(**(extra_env or {})), cwd=ROOT)


def run_args(landing: Path, warehouse: Path, month: str = SEP, *extra) -> list[str]:
    return ["run", "--landing", str(landing), "--warehouse", str(warehouse), "--month", month,
            "--quiet", *map(str, extra)]


def pci_run(landing: Path, warehouse: Path, month: str = SEP, *extra, extra_env=None):
    return pci(*run_args(landing, warehouse, month, *extra), extra_env=extra_env)


#: `python -m pci ...` with a fault at one step: ``mode`` "fill" fills the filesystem of
#: ``folder`` when the step starts (the step then meets the real full disk), "inject"
#: raises at that step the error DuckDB, dbt or the OS gives (where nothing is mounted)
FAULTY = textwrap.dedent("""
    import errno, os, shutil, sys
    point, mode, folder, args = sys.argv[1], sys.argv[2], os.path.abspath(sys.argv[3]), sys.argv[4:]
    import duckdb
    from pci.publish import analyst_copy
    from pci.land import landing
    from pci.publish import publication as publish
    from pci.score import scoring

    warehouse = args[args.index("--warehouse") + 1]
    NO_SPACE = 'Could not write file "' + warehouse + '.wal": No space left on device'

    def under(p):
        p = os.path.abspath(os.fsdecode(p))
        return p == folder or p.startswith(folder + os.sep)

    def fill():
        fd = os.open(os.path.join(folder, "filler"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            while os.write(fd, b"\\1" * (1 << 20)) > 0:
                pass
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)

    class FullAtCommit:  # DuckDB's own failure: the commit cannot write the WAL
        def __init__(self, con):
            self.con = con
        def execute(self, sql, *a):
            if sql.strip().upper() == "COMMIT":
                raise duckdb.TransactionException("TransactionContext Error: Failed to commit: "
                                                  + NO_SPACE)
            return self.con.execute(sql, *a)
        def __getattr__(self, name):
            return getattr(self.con, name)

    def full_during(module, name):
        real = getattr(module, name)
        def step(con, *a, **k):
            if mode == "fill":
                fill()
                return real(con, *a, **k)
            return real(FullAtCommit(con), *a, **k)
        setattr(module, name, step)

    if point == "landing":
        full_during(landing, "_load")
    elif point == "publication":
        full_during(publish, "publish_months")
    elif point == "third-publication":  # a range's third month: its commit meets a full disk
        real_publish, calls = publish.publish_months, []
        def publish_months(con, *a, **k):
            calls.append(1)
            return real_publish(FullAtCommit(con) if len(calls) == 3 else con, *a, **k)
        publish.publish_months = publish_months
    elif point == "build":
        real_build = scoring.build
        def build(*a, **k):
            if mode == "fill":
                fill()
                return real_build(*a, **k)
            # what dbt reports when it cannot write its artifacts (seen on a full tmpfs)
            failure = "dbt: [Errno 28] No space left on device"
            raise scoring.BuildFailed("dbt build failed (1 node(s)):\\n  " + failure, [failure])
        scoring.build = build
    elif point == "copy":
        def write_copy(con, src, alias, *a):
            path = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = ?",
                               [alias]).fetchall()[0][0]
            with open(path, "ab") as fh:  # what was written before the device filled up
                fh.write(b"\\0" * 4096)
            raise duckdb.IOException('IO Error: Could not write file "' + path
                                     + '": No space left on device')
        analyst_copy._write_copy = write_copy
    elif point == "floor":
        real_usage = shutil.disk_usage
        def disk_usage(p):
            usage = real_usage(p)
            return usage._replace(free=2 * 2**20) if under(p) else usage
        shutil.disk_usage = disk_usage
    elif point == "read-only":
        real_open, real_mkdir = os.open, os.mkdir
        def fake_open(p, flags, *a, **k):
            if under(p) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(p))
            return real_open(p, flags, *a, **k)
        def fake_mkdir(p, *a, **k):
            if under(p):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(p))
            return real_mkdir(p, *a, **k)
        os.open, os.mkdir = fake_open, fake_mkdir
    elif point != "none":
        raise SystemExit("unknown point " + point)
    from pci.cli import main
    sys.exit(main(args))
""").format(root=str(ROOT))


def faulty(point: str, mode: str, folder: Path, *args, extra_env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", FAULTY, point, mode, str(folder), *map(str, args)],
                          capture_output=True, text=True, timeout=900, env=env(**(extra_env or {})),
                          cwd=ROOT)


def may_mount() -> bool:
    return not os.environ.get("PCI_FAULTS_NO_MOUNT")


@contextmanager
def tmpfs(folder: Path, size: int):
    """``folder`` on a tmpfs of ``size`` bytes; yields whether it is mounted (False where
    mounting is not permitted or PCI_FAULTS_NO_MOUNT is set: the test injects the fault)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = may_mount() and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted and subprocess.run(["umount", str(folder)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def current_loads(warehouse: Path) -> list[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return [r[0].strftime("%Y-%m") for r in con.execute(
            "SELECT DISTINCT export_month FROM raw.loads WHERE is_current ORDER BY 1").fetchall()]
    finally:
        con.close()


def copy_months(copy: Path) -> list[str]:
    con = duckdb.connect(str(copy), read_only=True)
    try:
        return [r[0].strftime("%Y-%m") for r in con.execute(
            "SELECT DISTINCT score_month FROM pci_monthly_scores ORDER BY 1").fetchall()]
    finally:
        con.close()


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TMP_NAME.search(p.name))


def assert_disk_full(res: subprocess.CompletedProcess, folder: Path) -> None:
    """Exit 6; standard error names the path (under ``folder``) and its free space, and
    shows no traceback."""
    err = res.stderr
    assert res.returncode == EXIT_ENVIRONMENT, (res.returncode, err[-3000:], res.stdout[-3000:])
    assert "no space left on the device holding" in err and str(folder) in err, err[-3000:]
    assert re.search(r"\(\d+\.\d MiB free\)", err), err[-3000:]
    assert "nothing published was changed" in err
    assert "Traceback" not in err, err[-5000:]


# --------------------------------------------------------------------------- the world

@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A generated landing 2021-07 … 2021-09; 2021-07 landed and 2021-08 published."""
    from tools.generate import generate

    base = tmp_path_factory.mktemp("run-faults-world")
    generate(base / "landing", JUL, 3, 8, 80, 3, progress=False)
    res = pci_run(base / "landing", base / "wh" / "pci.duckdb", AUG)
    assert res.returncode == EXIT_OK, res.stderr[-3000:]
    assert current_loads(base / "wh" / "pci.duckdb") == [JUL, AUG]
    return base


@pytest.fixture(scope="module")
def clean(world, tmp_path_factory) -> dict:
    """The published scores and contributions after a clean run of 2021-09."""
    landing, wh = copy_world(world, tmp_path_factory.mktemp("run-faults-clean"))
    res = pci_run(landing, wh, SEP)
    assert res.returncode == EXIT_OK, res.stderr[-3000:]
    scores = published.scores(wh)
    assert {k for k in scores if k.startswith("pci_monthly_scores")} == {
        f"pci_monthly_scores {AUG}", f"pci_monthly_scores {SEP}"}
    return scores


def copy_world(world: Path, dst: Path, wh_folder: Path | None = None) -> tuple[Path, Path]:
    """The world's landing and warehouse folder copied under ``dst`` (the warehouse
    folder into ``wh_folder`` when given: a mount point); returns (landing, warehouse)."""
    shutil.copytree(world / "landing", dst / "landing")
    folder = wh_folder or dst / "wh"
    shutil.copytree(world / "wh", folder, dirs_exist_ok=True)
    return dst / "landing", folder / "pci.duckdb"


# --------------------------------------------------------------------------- 1. busy


def holder_process(path: Path, script: Path) -> subprocess.Popen:
    """Another process with a read-only DuckDB connection to ``path`` (an analyst's
    session, ``python <script> <path>``); returns once it has it open."""
    script.write_text(textwrap.dedent("""
        import sys, duckdb
        con = duckdb.connect(sys.argv[1], read_only=True)
        con.execute("SELECT count(*) FROM main.pci_monthly_scores").fetchall()
        print("held", flush=True)
        sys.stdin.readline()
    """))
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_read_only_session_of_another_process_makes_run_score_and_land_busy(world, tmp_path):
    landing, wh = copy_world(world, tmp_path)
    before, file_before = published.fingerprint(wh), sha256(wh)
    holder = holder_process(wh, tmp_path / "analyst_session.py")
    try:
        results = {
            "run": pci_run(landing, wh, SEP),
            "score": pci("score", "--warehouse", wh, "--month", AUG),
            "land": pci("land", "--landing", landing, "--warehouse", wh, "--month", SEP),
        }
        for command, res in results.items():
            err = res.stderr
            assert res.returncode == EXIT_BUSY, (command, res.returncode, err[-3000:])
            # the same message from each command: the warehouse, the process, what it holds
            session = f"{sys.executable} {tmp_path / 'analyst_session.py'} {wh}"
            shape = re.search(rf"warehouse {re.escape(str(wh))} is in use by process {holder.pid} "
                              rf"\({re.escape(session)}, since \d{{4}}-[^)\n]+\), which has the "
                              rf"DuckDB file open read-only [^\n]*; wait for it to finish, or rerun "
                              rf"with --wait", err)
            assert shape, (command, err[-3000:])
            assert f"analyst/{wh.name}" in err  # where analysts should read instead
            assert "Traceback" not in err, (command, err[-3000:])
        assert published.fingerprint(wh) == before  # nothing written
        assert sha256(wh) == file_before and not Path(f"{wh}.wal").exists()
        assert current_loads(wh) == [JUL, AUG]
        assert not (wh.parent / "validation" / f"{SEP}.json").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


# --------------------------------------------------------------------------- 2. full disk

WH_TMPFS = 256 * MiB  # the warehouse folder's tmpfs: room for a run, until it is filled


@pytest.mark.parametrize("step", ["landing", "build", "publication"])
def test_a_full_disk_during_a_step_fails_cleanly_and_the_rerun_completes(world, clean, tmp_path, step):
    """The warehouse folder (with the private Airflow home beside the warehouse) on a
    tmpfs filled up when the step starts. The publication's run keeps its Airflow home
    on another disk (``--airflow-home``): the DAG run then completes as failed and the
    outcome must come from the run's own failure record, which the full disk does not
    let it write to ``reports/``."""
    folder = tmp_path / "w" / "wh"
    with tmpfs(folder, WH_TMPFS) as mounted:
        landing, wh = copy_world(world, tmp_path / "w", folder)
        extra = []
        if step == "publication":
            airflow_home = tmp_path / "airflow"
            shutil.move(f"{wh}.airflow", airflow_home)
            extra = ["--airflow-home", airflow_home]
        before = published.fingerprint(wh)
        res = faulty(step, "fill" if mounted else "inject", folder,
                     *run_args(landing, wh, SEP, *extra), extra_env={"PCI_MIN_FREE_MB": "0"})
        assert_disk_full(res, folder)
        assert f"{SEP} refused" not in res.stderr  # a fault of the machine, not of the data
        if mounted:
            if step != "build":  # dbt may free some space (an artifact it was rewriting)
                assert re.search(r"\(0\.\d MiB free\)", res.stderr), res.stderr[-3000:]
            (folder / "filler").unlink()
        assert published.fingerprint(wh) == before, "nothing published changed"
        if step == "landing":
            assert current_loads(wh) == [JUL, AUG], "the load was rolled back"
        assert not [p.name for p in (folder / "reports").iterdir() if p.stat().st_size == 0]

        rerun = pci_run(landing, wh, SEP, *extra)
        assert rerun.returncode == EXIT_OK, rerun.stderr[-3000:]
        assert f"{SEP}: published (8 partners)" in rerun.stdout
        assert published.scores(wh) == clean


def test_a_full_disk_at_the_analysts_copy_keeps_the_publication_and_refresh_copy_completes_it(
        world, clean, tmp_path):
    """The analysts' folder on a tmpfs with room for the copy there is, not for the new
    one the refresh writes beside it."""
    landing, wh = copy_world(world, tmp_path)
    analyst = wh.parent / "analyst"
    copy = analyst / wh.name
    aside = tmp_path / "copy-aside"
    shutil.move(analyst, aside)
    before = published.fingerprint(wh)
    with tmpfs(analyst, (aside / wh.name).stat().st_size + 300 * 1024) as mounted:
        shutil.copytree(aside, analyst, dirs_exist_ok=True)
        res = faulty("none" if mounted else "copy", "inject", analyst, *run_args(landing, wh, SEP))
        assert res.returncode == EXIT_OK, res.stderr[-3000:]  # the publication committed
        err = res.stderr
        assert re.search(rf"warning: {SEP} is published, but the analysts' copy "
                         rf"{re.escape(str(copy))} was not refreshed: no space left on the device "
                         rf"holding {re.escape(str(analyst))} \(\d+\.\d MiB free\)", err), err[-3000:]
        assert f"python -m pci refresh-copy --warehouse {wh}" in err
        assert "Traceback" not in err
        assert temp_files(analyst) == [], "no temporary file is left"
        assert (analyst / f".{wh.name}.refresh-failed.json").exists()
        assert copy_months(copy) == [AUG], "the copy still holds its last refresh"
        assert published.scores(wh) == clean and published.fingerprint(wh) != before
        after_run = published.fingerprint(wh)

        if mounted:  # room again
            subprocess.run(["mount", "-o", "remount,size=64m", str(analyst)], check=True)
        done = pci("refresh-copy", "--warehouse", wh)
        assert done.returncode == EXIT_OK, done.stderr[-3000:]
        assert f"rewrote {SEP}" in done.stdout
        assert copy_months(copy) == [AUG, SEP]
        assert temp_files(analyst) == [] and not (analyst / f".{wh.name}.refresh-failed.json").exists()
        assert published.fingerprint(wh) == after_run, "refresh-copy changed nothing published"


def test_a_range_that_stops_at_a_month_refreshes_the_analysts_copy_with_the_months_before_it(
        world, tmp_path):
    """A range's DAG runs leave the analysts' copy to its last month's run; when the
    range stops earlier (here 2021-09's publication meets a full disk), the run
    refreshes the copy with the months published before it."""
    landing, wh = copy_world(world, tmp_path)
    copy = wh.parent / "analyst" / wh.name
    assert copy_months(copy) == [AUG]
    res = faulty("third-publication", "inject", wh.parent, *run_args(landing, wh, JUL, "--through", SEP))
    assert res.returncode == EXIT_ENVIRONMENT, res.stderr[-3000:]
    assert f"{JUL}: published" in res.stdout and f"{AUG}: unchanged" in res.stdout, res.stdout[-3000:]
    assert "No space left on device" in res.stderr and "Traceback" not in res.stderr
    assert f"pci_monthly_scores {SEP}" not in published.scores(wh)
    assert copy_months(copy) == [JUL, AUG], "the copy holds the months published before the stop"
    assert temp_files(copy.parent) == []


def test_the_free_space_floor_refuses_a_run_before_anything_is_written(world, tmp_path):
    """PCI_MIN_FREE_MB unset: 64 MiB. The warehouse folder on a tmpfs with less free."""
    folder = tmp_path / "w" / "wh"
    with tmpfs(folder, (size_of(world / "wh") // MiB + 24) * MiB) as mounted:
        landing, wh = copy_world(world, tmp_path / "w", folder)
        if mounted:
            assert shutil.disk_usage(folder).free < 64 * MiB
        before, file_before = published.fingerprint(wh), sha256(wh)
        files_before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
        res = faulty("none" if mounted else "floor", "inject", folder, *run_args(landing, wh, SEP))
        err = res.stderr
        assert res.returncode == EXIT_ENVIRONMENT, err[-3000:]
        said = re.search(rf"no space left on the device holding {re.escape(str(wh))} "
                         rf"\((\d+\.\d) MiB free\): a writing step needs at least 64 MiB "
                         rf"\(PCI_MIN_FREE_MB; 0 disables this check\)", err)
        assert said, err[-3000:]
        free = shutil.disk_usage(folder).free if mounted else 2 * MiB
        assert abs(float(said.group(1)) - free / MiB) <= 0.1  # the run's lock file took a page
        assert "Traceback" not in err
        assert "landed" not in res.stdout
        assert sha256(wh) == file_before and published.fingerprint(wh) == before
        # nothing written: no file added (the lock file was there already)
        assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == files_before


# --------------------------------------------------------------------------- 3. read-only folder


def test_a_read_only_warehouse_folder_is_named_and_nothing_changes(world, tmp_path):
    folder = tmp_path / "w" / "wh"
    with tmpfs(folder, WH_TMPFS) as mounted:
        landing, wh = copy_world(world, tmp_path / "w", folder)
        before, file_before = published.fingerprint(wh), sha256(wh)
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)
        res = faulty("none" if mounted else "read-only", "inject", folder, *run_args(landing, wh, SEP))
        err = res.stderr
        assert res.returncode == EXIT_ENVIRONMENT, err[-3000:]
        assert f"cannot write in {folder}" in err and "Read-only file system" in err, err[-3000:]
        assert "make the folder writable" in err and "nothing published was changed" in err
        assert "Traceback" not in err
        assert sha256(wh) == file_before and published.fingerprint(wh) == before
        assert current_loads(wh) == [JUL, AUG]


# --------------------------------------------------------------------------- 4. damaged warehouse


def _storage(path: Path) -> tuple[int, int]:
    """(block size, blocks in use) of a DuckDB file."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        size, total, free = con.execute("SELECT block_size, total_blocks, free_blocks "
                                        "FROM pragma_database_size()").fetchone()
    finally:
        con.close()
    return int(size), int(total) - int(free)


def _half(path: Path) -> str:
    os.truncate(path, path.stat().st_size // 2)
    return "truncated"


def _below_blocks_in_use(path: Path) -> str:
    block_size, used = _storage(path)
    need = BLOCK_START + used * block_size
    assert path.stat().st_size >= need
    os.truncate(path, need - 1)
    return "truncated"


def _empty(path: Path) -> str:
    path.write_bytes(b"")
    return "the file is empty (0 bytes)"


def _data_page(path: Path) -> str:
    """Overwrite 4 KiB inside a data block of raw.billing_lines."""
    block_size, _ = _storage(path)
    con = duckdb.connect(str(path), read_only=True)
    try:
        blocks = [r[0] for r in con.execute(
            "SELECT DISTINCT block_id FROM pragma_storage_info('raw.billing_lines') "
            "WHERE block_id IS NOT NULL AND block_id >= 0 ORDER BY 1").fetchall()]
    finally:
        con.close()
    assert blocks, "raw.billing_lines has no data block"
    with open(path, "r+b") as f:
        f.seek(BLOCK_START + blocks[len(blocks) // 2] * block_size + 5000)
        f.write(os.urandom(4096))
    return "checksum"


@pytest.mark.parametrize("damage", [_half, _below_blocks_in_use, _empty, _data_page],
                         ids=["half", "below-blocks-in-use", "empty", "data-page"])
def test_a_damaged_warehouse_is_refused_and_left_as_it_is(world, tmp_path, damage):
    landing, wh = copy_world(world, tmp_path)
    what = damage(wh)
    before = sha256(wh)
    res = pci_run(landing, wh, SEP)
    err = res.stderr
    assert res.returncode == EXIT_DAMAGED, (res.returncode, err[-3000:])
    assert f"the warehouse {wh} is damaged" in err and what in err, err[-3000:]
    assert "nothing was written to it" in err
    # how to restore: a backup, or a rebuild from the landing; the copy has the scores
    assert "Restore it" in err and "python -m pci run --month FIRST --through LAST" in err
    assert str(wh.parent / "analyst" / wh.name) in err
    assert "Traceback" not in err
    assert sha256(wh) == before
    assert not Path(f"{wh}.wal").exists()
    assert "landed" not in res.stdout and not (wh.parent / "validation" / f"{SEP}.json").exists()


# --------------------------------------------------------------------------- 5. the private Airflow DB


def test_an_empty_private_airflow_database_is_healed_by_the_next_run(world, clean, tmp_path):
    landing, wh = copy_world(world, tmp_path)
    db = Path(f"{wh}.airflow") / "airflow.db"
    db.write_bytes(b"")
    res = pci_run(landing, wh, SEP)
    assert res.returncode == EXIT_OK, res.stderr[-3000:]
    assert f"{SEP}: published (8 partners)" in res.stdout
    assert published.scores(wh) == clean
    assert db.stat().st_size > 0
    assert (db.parent / "airflow.db.damaged").stat().st_size == 0  # set aside, not deleted


# --------------------------------------------------------------------------- 6. escape sequences


NASTY_NAME = "Evil\x1b[2J\x1b]0;title\x07 Co"
NASTY_VALUE = "CHARGE\x1b[2J\x1b]0;title\x07"


def _rewrite(path: Path, change) -> None:
    """Rewrite a CSV export file with ``change(header, row, index)`` applied to each record."""
    import csv

    with open(path, encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    for i, row in enumerate(rows):
        change(header, row, i)
    write_csv(path, header, rows)


def test_escape_sequences_in_names_and_refused_values_never_reach_the_terminal(world, tmp_path):
    landing, wh = copy_world(world, tmp_path)
    folder = landing / SEP
    named = []

    def name_partner(header, row, i):
        if i == 0:
            row[header.index("partner_name")] = NASTY_NAME
            named.append(row[header.index("partner_id")])
    _rewrite(folder / "partners.csv", name_partner)
    write_manifest(folder)
    res = pci_run(landing, wh, SEP)
    assert res.returncode == EXIT_OK, res.stderr[-3000:]
    for text in (res.stdout, res.stderr):
        for ch in ESCAPES:
            assert ch not in text, (ch, text[-2000:])
    con = duckdb.connect(str(wh), read_only=True)
    try:  # the warehouse keeps the name as it is
        assert con.execute("SELECT partner_name FROM raw.partners WHERE partner_id = ? AND "
                           "export_month = DATE '2021-09-01'", named).fetchall() == [(NASTY_NAME,)]
    finally:
        con.close()
    published_before = published.fingerprint(wh)

    # a corrected export of 2021-09 arrives with a value the contract refuses
    def bad_line_type(header, row, i):
        if i == 0:
            row[header.index("line_type")] = NASTY_VALUE
    _rewrite(folder / "billing_lines.csv", bad_line_type)
    write_manifest(folder)
    res = pci_run(landing, wh, SEP)
    assert res.returncode == EXIT_REFUSED, res.stderr[-3000:]
    assert f"{SEP} refused" in res.stderr and "billing_lines.csv" in res.stderr
    assert "line_type" in res.stderr
    for text in (res.stdout, res.stderr):
        for ch in ESCAPES:
            assert ch not in text, (ch, text[-2000:])
    assert published.fingerprint(wh) == published_before
