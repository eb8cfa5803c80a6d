"""The generated world of a scale and the warehouses prepared from it (both
cached under ``bench/cache``), and the fresh copies each measured run starts from."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from pci.core.contract import add_months, format_month, parse_month

from .measure import ROOT, pci_command, run_setup

BENCH_DIR = ROOT / "bench"
CACHE_DIR = BENCH_DIR / "cache"

FIRST = "2020-07"
MONTHS = 26
SEED = 20211

SCALES = {
    "small": (100, 5_000),
    "medium": (2_000, 100_000),
    "large": (20_000, 1_000_000),
}


def engine_args(engine: str) -> list[str]:
    """The ``pci run`` arguments choosing ``engine`` (none for the default, DuckDB)."""
    return [] if engine == "duckdb" else ["--engine", engine]


def nth_month(i: int) -> str:
    """The i-th month of the world, 1-based."""
    return format_month(add_months(parse_month(FIRST), i - 1))


class World:
    """The generated world of ``scale`` and the warehouses prepared from it for ``engine``
    (a Spark warehouse's prepared folders are kept under ``<scale>/spark/``)."""

    def __init__(self, scale: str, cache: Path = CACHE_DIR, engine: str = "duckdb"):
        self.scale = scale
        self.cache = cache
        self.engine = engine
        self.partners, self.tenants = SCALES[scale]
        self.dir = cache / scale
        self.landing = self.dir / "landing"
        #: where this engine's prepared warehouses are kept
        self.prepared = self.dir if engine == "duckdb" else self.dir / engine

    def generate(self, progress) -> None:
        done = self.dir / ".generated"
        if done.exists():
            return
        progress(f"generating the {self.scale} world ({self.partners} partners, {self.tenants} tenants, {MONTHS} months)")
        shutil.rmtree(self.landing, ignore_errors=True)
        run_setup(pci_command("generate", "--out", str(self.landing), "--first", FIRST, "--months", str(MONTHS),
                              "--partners", str(self.partners), "--tenants", str(self.tenants), "--seed", str(SEED)))
        done.write_text("ok\n")

    def landed_warehouse(self, through: int, progress) -> Path:
        """A warehouse with months 1..through landed (cached)."""
        wh = self.dir / f"landed_{through:02d}" / "pci.duckdb"
        if (wh.parent / ".ready").exists():
            return wh
        shutil.rmtree(wh.parent, ignore_errors=True)
        wh.parent.mkdir(parents=True)
        # continue from the largest prepared warehouse with fewer months, if any
        start = 1
        for k in range(through - 1, 0, -1):
            prev = self.dir / f"landed_{k:02d}"
            if (prev / ".ready").exists():
                shutil.copy2(prev / "pci.duckdb", wh)
                start = k + 1
                break
        for i in range(start, through + 1):
            progress(f"preparing: landing {nth_month(i)} into a {through}-month warehouse")
            run_setup(pci_command("land", "--landing", str(self.landing), "--warehouse", str(wh),
                                  "--month", nth_month(i)))
        (wh.parent / ".ready").write_text("ok\n")
        return wh

    def window_landing(self, first: int, through: int) -> Path:
        """A landing folder holding only months first..through of the world (hard links)."""
        folder = self.dir / f"landing_{first:02d}_{through:02d}"
        if not (folder / ".ready").exists():
            shutil.rmtree(folder, ignore_errors=True)
            link_months(self.landing, folder, range(first, through + 1))
            (folder / ".ready").write_text("ok\n")
        return folder

    def landed_window(self, first: int, through: int, progress) -> Path:
        """A warehouse with months first..through landed, none before (cached)."""
        wh = self.dir / f"landed_{first:02d}_{through:02d}" / "pci.duckdb"
        if (wh.parent / ".ready").exists():
            return wh
        shutil.rmtree(wh.parent, ignore_errors=True)
        wh.parent.mkdir(parents=True)
        landing = self.window_landing(first, through)
        for i in range(first, through + 1):
            progress(f"preparing: landing {nth_month(i)} into a warehouse of months {first}-{through}")
            run_setup(pci_command("land", "--landing", str(landing), "--warehouse", str(wh),
                                  "--month", nth_month(i)))
        (wh.parent / ".ready").write_text("ok\n")
        return wh

    def ran_window(self, first: int, through: int, progress) -> Path:
        """:meth:`ran_warehouse` of a warehouse holding months first..through only."""
        return prepare_ran(self.prepared / f"ran_{first:02d}_{through:02d}",
                           lambda: self.landed_window(first, through, progress),
                           self.window_landing(first, through), nth_month(through), progress,
                           at=self.dir / "work", engine=self.engine)

    def ran_warehouse(self, through: int, progress) -> Path:
        """The warehouse of months 1..through after a ``pci run`` of month ``through``
        (cached): the state a month-end run finds, sidecar folders included. On
        DuckDB the run starts from the landed warehouse; on Spark from an empty
        folder, the run landing the months itself."""
        landed = (lambda: self.landed_warehouse(through, progress)) if self.engine == "duckdb" else (lambda: None)
        return prepare_ran(self.prepared / f"ran_{through:02d}", landed, self.landing,
                           nth_month(through), progress, at=self.dir / "work", engine=self.engine)


#: the warehouse inside a prepared folder, per engine: a DuckDB file, a Spark warehouse folder
WAREHOUSE_NAME = {"duckdb": "pci.duckdb", "spark": "spark"}


def prepare_ran(folder: Path, landed, landing: Path, month: str, progress, at: Path | None = None,
                engine: str = "duckdb") -> Path:
    """Prepare (once per version of the dbt project) ``folder`` by a ``pci run`` of
    ``month`` on a copy of ``landed()`` (None: an empty warehouse, on which the run
    lands every month of ``landing`` up to ``month`` first).

    On Spark (``engine="spark"``) the warehouse is a folder ``spark`` whose catalog
    records its tables' absolute locations: like dbt's profile, it must be used where
    it was made, which the ``at`` below ensures.

    The run happens at ``at`` (default ``folder``), the path the measured runs will
    copy the folder back to, and is then kept in ``folder``: the warehouse's path is
    part of dbt's profile, and a month-end run finds its warehouse where the last
    one left it (a different path would make dbt parse the whole project again)."""
    from pci.score.scoring import project_fingerprint

    at = Path(at) if at else folder
    name = WAREHOUSE_NAME[engine]
    wh = folder / name
    stamp = f"project {project_fingerprint()}\nat {at.resolve()}\nengine {engine}\n"
    if (folder / ".ready").exists() and (folder / ".ready").read_text() == stamp:
        return wh
    src = landed()
    for d in {folder, at}:
        shutil.rmtree(d, ignore_errors=True)
    at.mkdir(parents=True)
    if src is not None:
        shutil.copy2(src, at / name)
    progress(f"preparing: pci run of {month} in {folder.name} ({engine})")
    run_setup(pci_command("run", *engine_args(engine), "--landing", str(landing), "--warehouse", str(at / name),
                          "--month", month, "--quiet"))
    if at != folder:
        shutil.copytree(at, folder, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
    # the unit tests ran and passed on this project: the measured runs skip them, as
    # a month-end run after the first one does; a changed project prepares anew
    (folder / ".ready").write_text(stamp)
    return wh


def link_months(landing: Path, folder: Path, months) -> None:
    """Months (1-based numbers) of ``landing`` into ``folder``, as hard links: the files
    are in that folder (a symbolic link out of it is refused, raw-exports.md) and
    nothing is copied."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in months:
        shutil.copytree(landing / nth_month(i), folder / nth_month(i), copy_function=_link_or_copy)


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)


def fresh_folder_copy(src_wh: Path, work: Path) -> Path:
    """A copy of the warehouse's whole folder (its sidecar folders included)."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src_wh.parent, work, symlinks=True,
                    ignore=shutil.ignore_patterns(".ready", "*.lock"))
    return work / src_wh.name


def fresh_copy(src: Path, work: Path) -> Path:
    """A copy of the warehouse file alone, in an emptied ``work`` folder."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    dst = work / src.name
    shutil.copy2(src, dst)
    return dst
