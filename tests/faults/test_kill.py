"""kill -9 at random points of a `pci run`: published months intact, a rerun completes.

The world is tiny (tests/support/exports.py, three partners a month): 2021-07 and
2021-08 are published from the exports 2021-06 … 2021-08; then a corrected export of
2021-07 (a new manifest) and the new month 2021-09 arrive, and the run under test is
``pci run --month 2021-08 --through 2021-09``. It does real work in every task: it
lands 2021-07 again and 2021-09, scores 2021-07 … 2021-09 in one dbt build, then the
DAG run of 2021-08 audits and republishes 2021-07 and 2021-08 in one transaction (the
analysts' copy waits for the range's last month), and the DAG run of 2021-09 audits
and publishes it and refreshes the copy, which gets the three months.

How the points are chosen. A subprocess (``KILLER``) wraps every module-level
function of the pipeline's modules (the wrapper replaces the function in every
``pci`` module that holds it, so calls through module globals and ``from … import``
names are caught) with a counter of call entries and exits, then runs
``pci.cli.main(["run", ...])``. A dry run (no kill) writes the sequence of events
to a file; it is also the clean run whose result every check compares with. Then
``POINTS`` event indexes are drawn at random, one in each slice of the sequence
(stratified; each kind of event weighs the same, see :func:`choose_points`), and
``TIMER_POINTS`` delays into the dbt build (a timer started when ``scoring.build``
is entered). The seed is printed (``-s``) and named in every failure; it is drawn
from ``random.SystemRandom`` unless ``PCI_KILL_SEED`` is set (replay). Each point
costs a killed run, and every third point (``RERUN_EVERY``) a full rerun.

For each point, a copy of the prepared folder is run with the killer set to send
SIGKILL to its own process at that event; then:

(a) the published tables, month by month, are exactly what they were before the run
    or what the clean run published (publication ids, times and run ids of the
    run's own publications aside), and each latest publication's ``stale`` flag
    says whether it reads superseded loads;
(b) the warehouse opens read-only, and the analysts' copy, when present, opens
    read-only and holds one consistent state (each month the rows of the
    publication its ``analyst_copy_months`` names, that publication its latest);
(c) a plain rerun of the same command exits 0 and publishes exactly the clean
    run's scores and contributions (every column of every row), the same
    publications, and an analysts' copy with the same rows and no leftovers.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.support.exports import minimal_valid_tables, write_export
from tests.support.published import fingerprint, published_rows, scores
from tests.test_pipeline import env, pci_run

pytestmark = [pytest.mark.faults, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
JUN, JUL, AUG, SEP = "2021-06", "2021-07", "2021-08", "2021-09"
RUN_ARGS = ("--month", AUG, "--through", SEP)

POINTS = 17        # event kills, one per slice of the dry run's sequence
TIMER_POINTS = 3   # kills after a random delay into the dbt build
#: the full rerun (c) follows every RERUN_EVERY-th kill and the last one (each costs a
#: whole run); PCI_KILL_RERUN_EVERY=1 reruns after every kill. (a) and (b) follow every kill.
RERUN_EVERY = int(os.environ.get("PCI_KILL_RERUN_EVERY", "3"))
MODULES = ("pci.orchestrate.runner", "pci.orchestrate.tasks", "pci.land.landing", "pci.land.files",
           "pci.land.parsing", "pci.land.expectations", "pci.score.scoring", "pci.publish.audit",
           "pci.publish.publication", "pci.publish.analyst_copy", "pci.core.catalog", "pci.core.warehouse",
           "pci.core.preflight", "pci.core.faults")

KILLER = textwrap.dedent("""
    import functools, importlib, inspect, json, os, signal, sys, threading, time
    plan = json.loads(sys.argv[1])
    args = sys.argv[2:]
    modules = [importlib.import_module(name) for name in {modules!r}]
    lock = threading.Lock()
    count = [0]
    inside_build = [0]
    started = time.monotonic()
    events = open(plan["events"], "w", buffering=1) if plan.get("events") else None

    def die(why):
        with open(plan["killed"], "w") as fh:
            fh.write(why)
            fh.flush()
            os.fsync(fh.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

    def event(kind, name):
        with lock:
            count[0] += 1
            n = count[0]
            label = kind + " " + name
            if events is not None:
                events.write(f"{{n}}\\t{{label}}\\t{{time.monotonic() - started:.3f}}\\t{{os.getpid()}}\\n")
            if n == plan.get("kill_at"):
                die(f"{{n}}\\t{{label}}")

    def on_timer():
        with lock:
            where = "inside scoring.build" if inside_build[0] else "after scoring.build"
            die(f"timer\\t{{plan['timer']:.2f}} s after entering scoring.build, {{where}}, "
                f"after event {{count[0]}}")

    def wrap(fn, name):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            event("enter", name)
            if name == "scoring.build":
                inside_build[0] += 1
                if plan.get("timer") is not None and inside_build[0] == 1:
                    timer = threading.Timer(plan["timer"], on_timer)
                    timer.daemon = True
                    timer.start()
            try:
                out = fn(*a, **k)
            except BaseException:
                if name == "scoring.build":
                    inside_build[0] -= 1
                event("raise", name)
                raise
            if name == "scoring.build":
                inside_build[0] -= 1
            event("exit", name)
            return out
        return wrapper

    wrapped = {{}}
    for mod in modules:
        for attr, obj in list(vars(mod).items()):
            if inspect.isfunction(obj) and obj.__module__ == mod.__name__:
                wrapped[id(obj)] = (obj, wrap(obj, mod.__name__.rsplit(".", 1)[1] + "." + attr))
    for name, mod in list(sys.modules.items()):
        if name == "pci" or name.startswith("pci."):
            for attr, obj in list(vars(mod).items()):
                hit = wrapped.get(id(obj))
                if hit is not None and hit[0] is obj:
                    setattr(mod, attr, hit[1])
    from pci.cli import main
    code = main(["run", *args])
    if events is not None:
        events.close()
    sys.exit(code)
""").format(modules=MODULES)


# --------------------------------------------------------------------------- the world

def _corrected_july() -> dict:
    tables = minimal_valid_tables(JUL)
    tables["billing_lines"][0]["amount_usd"] = "30000.00"  # P001's CSP charge of July, corrected
    return tables


def _paths(folder: Path) -> tuple[Path, Path]:
    return folder / "landing", folder / "wh" / "pci.duckdb"


def _run_args(folder: Path) -> list[str]:
    landing, wh = _paths(folder)
    return ["--landing", str(landing), "--warehouse", str(wh), *RUN_ARGS, "--quiet"]


def killer(folder: Path, plan: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``pci run`` on ``folder`` under the killer with ``plan`` (events file,
    kill_at / timer, killed file)."""
    return subprocess.run([sys.executable, "-c", KILLER, json.dumps(plan), *_run_args(folder)],
                          capture_output=True, text=True, timeout=timeout, env=env(), cwd=ROOT)


# --------------------------------------------------------------------------- what is published

PUBLICATIONS, PUBLICATION_ROWS = "pci_score_publications", "pci_score_publication_rows"
SCORES, CONTRIBUTIONS = "pci_monthly_scores", "pci_metric_contributions"
#: columns of a publication that only say which run made it (its id, time and DAG run)
RUN_OWN = ("publication_id", "published_at", "run_id")


def _columns(con, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()]


def _publication_columns(warehouse: Path) -> list[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return _columns(con, PUBLICATIONS)
    finally:
        con.close()


@dataclass
class Published:
    """What a warehouse publishes, read read-only (tests/support/published.py)."""
    rows: dict[str, list[tuple]]
    publication_columns: list[str]

    @classmethod
    def read(cls, warehouse: Path) -> "Published":
        return cls(published_rows(warehouse), _publication_columns(warehouse))

    def publications(self) -> list[dict]:
        return [dict(zip(self.publication_columns, r)) for r in self.rows.get(PUBLICATIONS, [])]

    def ids(self) -> set[str]:
        return {p["publication_id"] for p in self.publications()}

    def by_month(self, known: set[str], stale: bool = False) -> dict[str, dict]:
        """YYYY-MM -> the month's scores, contributions, publications and publication
        rows. A publication whose id is in ``known`` (those before the run) is kept
        whole; one made by the run is named ``new`` without its time and DAG run, so
        that the run under test and the clean run compare equal. The ``stale`` flag
        is left out unless asked for (landing sets it, outside the publication)."""
        def name(pid):
            return pid if pid is None or pid in known else "new"

        out: dict[str, dict] = {}

        def month(m) -> dict:
            return out.setdefault(f"{m:%Y-%m}", {SCORES: [], CONTRIBUTIONS: [], PUBLICATIONS: [],
                                                 PUBLICATION_ROWS: []})

        for table in (SCORES, CONTRIBUTIONS):
            for r in self.rows.get(table, []):
                month(r[0])[table].append(r)
        for p in self.publications():
            own = p["publication_id"] not in known
            month(p["score_month"])[PUBLICATIONS].append(tuple(
                (k, name(v) if k in ("publication_id", "supersedes") else v) for k, v in p.items()
                if (stale or k != "stale") and not (own and k in RUN_OWN[1:])))
        for r in self.rows.get(PUBLICATION_ROWS, []):
            month(r[1])[PUBLICATION_ROWS].append((name(r[0]), *r[1:]))
        for m in out.values():
            m[PUBLICATION_ROWS].sort(key=repr)
        return out


EMPTY_MONTH = {SCORES: [], CONTRIBUTIONS: [], PUBLICATIONS: [], PUBLICATION_ROWS: []}


def _stale_flags_wrong(warehouse: Path) -> list[str]:
    """Each month's latest publication is flagged ``stale`` exactly when the loads it
    read (``input_load_ids``) are no longer the current loads of its window."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        loads = con.execute("SELECT export_month, load_id FROM raw.loads WHERE is_current "
                            "ORDER BY export_month, load_id").fetchall()
        latest = con.execute(
            f"SELECT score_month, arg_max((input_load_ids, stale), (published_at, publication_id)) "
            f"FROM main.{PUBLICATIONS} GROUP BY score_month ORDER BY score_month").fetchall()
    finally:
        con.close()
    wrong = []
    for month, latest_pub in latest:
        read, flagged = tuple(latest_pub.values()) if isinstance(latest_pub, dict) else latest_pub
        first = month.replace(year=month.year - 1)
        current = [lid for m, lid in loads if first <= m <= month]
        if flagged != (json.loads(read) != current):
            wrong.append(f"{month:%Y-%m}: latest publication stale={flagged}, but it reads "
                         f"{json.loads(read)} and the current loads of its window are {current}")
    return wrong


def _copy_problems(warehouse: Path, published: Published, before: dict, clean: dict,
                   copy_expected: bool) -> list[str]:
    """(b) for the analysts' copy: present when it was before the run, opens read-only,
    and holds one consistent state: for each month the rows of the publication its
    ``analyst_copy_months`` names, which is the month's latest publication in the copy,
    which the warehouse records, and whose rows are the month's before or clean rows."""
    from pci.core.catalog import copy_path

    copy = copy_path(warehouse)
    if not copy.is_file():
        return [f"the analysts' copy {copy} is gone"] if copy_expected else []
    try:
        con = duckdb.connect(str(copy), read_only=True)
    except duckdb.Error as exc:
        return [f"the analysts' copy does not open read-only: {exc}"]
    try:
        rows = {t: con.execute(f"SELECT * FROM main.{t} ORDER BY ALL").fetchall()
                for t in (SCORES, CONTRIBUTIONS)}
        cols = _columns(con, PUBLICATIONS)
        pubs = [dict(zip(cols, r)) for r in con.execute(f"SELECT * FROM main.{PUBLICATIONS}").fetchall()]
        held = dict(con.execute("SELECT score_month, publication_id FROM main.analyst_copy_months").fetchall())
    except duckdb.Error as exc:
        return [f"the analysts' copy opens but cannot be read: {exc}"]
    finally:
        con.close()
    problems = []
    in_warehouse = {tuple((k, v) for k, v in p.items() if k != "stale") for p in published.publications()}
    for p in pubs:
        if tuple((k, v) for k, v in p.items() if k != "stale") not in in_warehouse:
            problems.append(f"the copy has a publication the warehouse does not: {p}")
    latest = {}
    for p in sorted(pubs, key=lambda p: (p["published_at"], p["publication_id"])):
        latest[p["score_month"]] = p["publication_id"]
    if held != latest:
        problems.append(f"the copy's analyst_copy_months {held} are not its latest publications {latest}")
    history = {}
    for r in published.rows.get(PUBLICATION_ROWS, []):
        history.setdefault(r[0], []).append(r[1:])
    months = sorted({r[0] for r in rows[SCORES]} | {r[0] for r in rows[CONTRIBUTIONS]} | set(held))
    for m in months:
        key = f"{m:%Y-%m}"
        mine = {t: [r for r in rows[t] if r[0] == m] for t in (SCORES, CONTRIBUTIONS)}
        versions = [{t: v.get(key, EMPTY_MONTH)[t] for t in (SCORES, CONTRIBUTIONS)}
                    for v in (before, clean)]
        if mine not in versions:
            problems.append(f"the copy's {key} is neither the month before the run nor the clean "
                            f"run's: {len(mine[SCORES])} score rows, {len(mine[CONTRIBUTIONS])} "
                            f"contribution rows")
        if sorted(mine[SCORES], key=repr) != sorted(history.get(held.get(m), []), key=repr):
            problems.append(f"the copy's {key} rows are not those of the publication it names "
                            f"({held.get(m)})")
    return problems


# --------------------------------------------------------------------------- the plan

@dataclass
class Point:
    kind: str              # "event" or "timer"
    at: int | float        # event index, or seconds after entering scoring.build
    label: str             # the dry run's event there, or what the timer aims at

    def __str__(self) -> str:
        return (f"event {self.at} ({self.label})" if self.kind == "event"
                else f"timer {self.at:.2f} s into the dbt build ({self.label})")


@dataclass
class Plan:
    seed: int
    root: Path
    prepared: Path
    events: list[tuple[int, str, float]]
    points: list[Point]
    before: Published
    clean: Published
    clean_copy: dict[str, list[tuple]]
    dry_seconds: float
    prepared_fingerprint: dict[str, str]


def _seed() -> int:
    wanted = os.environ.get("PCI_KILL_SEED")
    return int(wanted) if wanted else random.SystemRandom().randrange(2**32)


def choose_points(events: list[tuple[int, str, float]], seed: int) -> list[Point]:
    """``POINTS`` distinct event indexes, one in each slice of the sequence, and
    ``TIMER_POINTS`` delays into the dbt build, one in each slice of its duration.

    The slices hold equal shares of the kinds of event: an event weighs 1 / (how
    often its label occurs), so that a helper called hundreds of times (quoting
    an identifier during landing) does not draw most of the points while the
    publication, whose functions are called once or twice, draws a few."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    for _, label, _ in events:
        counts[label] = counts.get(label, 0) + 1
    total = len(counts)  # the weights sum to the number of distinct labels
    slices: list[list[tuple[int, str, float]]] = [[] for _ in range(POINTS)]
    acc = 0.0
    for ev in events:
        slices[min(int(acc / total * POINTS), POINTS - 1)].append(ev)
        acc += 1 / counts[ev[1]]
    points = [Point("event", n, label) for n, label, _ in (rng.choice(s) for s in slices if s)]
    enter = next(t for _, label, t in events if label == "enter scoring.build")
    leave = next(t for _, label, t in events if label in ("exit scoring.build", "raise scoring.build"))
    span = leave - enter
    for i in range(TIMER_POINTS):
        delay = span * (0.05 + 0.9 * (i + rng.random()) / TIMER_POINTS)
        points.append(Point("timer", round(delay, 2), f"the dry run's build took {span:.1f} s"))
    return points


def _read_events(path: Path) -> list[tuple[int, str, float]]:
    out = []
    for line in path.read_text().splitlines():
        n, label, t, _pid = line.split("\t")
        out.append((int(n), label, float(t)))
    return out


def _copy_rows(warehouse: Path) -> dict[str, list[tuple]]:
    from pci.core.catalog import copy_path

    con = duckdb.connect(str(copy_path(warehouse)), read_only=True)
    try:
        return {t: con.execute(f"SELECT * FROM main.{t} ORDER BY ALL").fetchall()
                for t in (SCORES, CONTRIBUTIONS)}
    finally:
        con.close()


def _reset(root: Path, prepared: Path) -> Path:
    """A fresh copy of the prepared folder at ``<root>/case``."""
    case = root / "case"
    if case.exists():
        shutil.rmtree(case)
    shutil.copytree(prepared, case)
    return case


def make_plan(root: Path, seed: int) -> Plan:
    """The prepared world, the dry run (the clean result, the sequence of events) and
    the points to kill at. Every run uses the same folder (``<root>/case``), a fresh
    copy of ``<root>/prepared`` each time."""
    case = root / "case"
    landing, wh = _paths(case)
    for m in (JUN, JUL, AUG):
        write_export(landing, m, minimal_valid_tables(m))
    res = pci_run(landing, wh, JUL, AUG)
    assert res.returncode == 0, res.stderr[-3000:]
    write_export(landing, JUL, _corrected_july())  # a corrected export: a new manifest
    write_export(landing, SEP, minimal_valid_tables(SEP))  # the new month
    prepared = root / "prepared"
    shutil.copytree(case, prepared)
    before = Published.read(wh)

    started = time.monotonic()
    res = killer(case, {"events": str(root / "events.tsv"), "killed": str(root / "killed")})
    dry_seconds = time.monotonic() - started
    assert res.returncode == 0, res.stderr[-3000:]
    events = _read_events(root / "events.tsv")
    clean = Published.read(wh)
    clean_copy = _copy_rows(wh)
    # dbt parses the project again when the profile (the warehouse's path) or the vars
    # changed since its last parse: every run uses the same path, and the prepared
    # folder gets the dry run's parse (vars 2021-07 … 2021-09), as a second run would
    target = "wh/pci.duckdb.dbt-target/partial_parse.msgpack"
    if (case / target).is_file():
        shutil.copyfile(case / target, prepared / target)

    points = choose_points(events, seed)
    assert len(points) == POINTS + TIMER_POINTS
    print(f"\nkill plan: seed {seed} (replay: PCI_KILL_SEED={seed}); the dry run took "
          f"{dry_seconds:.0f} s and made {len(events)} events; points: "
          + "; ".join(str(p) for p in points))
    return Plan(seed, root, prepared, events, points, before, clean, clean_copy, dry_seconds,
                fingerprint(_paths(prepared)[1]))


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> Plan:
    return make_plan(tmp_path_factory.mktemp("kill"), _seed())


# --------------------------------------------------------------------------- the tests

def _published_problems(wh: Path, plan: Plan, copy_expected: bool) -> tuple[str, list[str]]:
    """(a) and (b) on the warehouse a kill left; and what it left, month by month."""
    try:
        now = Published.read(wh)
    except duckdb.Error as exc:
        return "", [f"the warehouse does not open read-only: {exc}"]
    known = plan.before.ids()
    before, clean = plan.before.by_month(known), plan.clean.by_month(known)
    problems, left = [], []
    months = now.by_month(known)
    for month in sorted(set(months) | set(before) | set(clean)):
        state = months.get(month, EMPTY_MONTH)
        was, will = before.get(month, EMPTY_MONTH), clean.get(month, EMPTY_MONTH)
        left.append(f"{month} " + ("as before" if state == was else "as published by the run"
                                   if state == will else "MIXED"))
        if state not in (was, will):
            what = {t: len(rows) for t, rows in state.items()}
            problems.append(f"{month} is neither what it was before the run nor what the clean run "
                            f"published (rows: {what}; before: "
                            f"{ {t: len(r) for t, r in before.get(month, EMPTY_MONTH).items()} }; "
                            f"clean: { {t: len(r) for t, r in clean.get(month, EMPTY_MONTH).items()} })")
    problems += _stale_flags_wrong(wh)
    problems += _copy_problems(wh, now, before, clean, copy_expected)
    return ", ".join(left), problems


def _rerun_problems(landing: Path, wh: Path, plan: Plan) -> list[str]:
    """(c): a plain rerun completes and publishes exactly what the clean run did."""
    from pci.core.catalog import copy_path, marker_path
    from pci.publish.analyst_copy import copy_leftovers

    res = pci_run(landing, wh, *RUN_ARGS[1::2])
    if res.returncode != 0:
        return [f"the rerun exited {res.returncode}: {res.stderr[-3000:]}"]
    problems = []
    if scores(wh) != scores_of(plan.clean):
        problems.append("the rerun's scores or contributions differ from the clean run's")
    known = plan.before.ids()
    now = Published.read(wh).by_month(known, stale=True)
    clean = plan.clean.by_month(known, stale=True)
    for month in sorted(set(now) | set(clean)):
        if now.get(month) != clean.get(month):
            diff = [t for t in EMPTY_MONTH if now.get(month, EMPTY_MONTH)[t] != clean.get(month, EMPTY_MONTH)[t]]
            problems.append(f"after the rerun {month} differs from the clean run in {diff}")
    if _copy_rows(wh) != plan.clean_copy:
        problems.append("after the rerun the analysts' copy differs from the clean run's")
    copy = copy_path(wh)
    if copy_leftovers(copy) or marker_path(copy).exists():
        problems.append(f"after the rerun the copy's folder still has {copy_leftovers(copy)} "
                        f"(marker: {marker_path(copy).exists()})")
    return problems


def scores_of(published: Published) -> dict[str, list[tuple]]:
    """tests/support/published.py ``scores`` of an already read warehouse."""
    out: dict[str, list[tuple]] = {}
    for table in (SCORES, CONTRIBUTIONS):
        for r in published.rows.get(table, []):
            out.setdefault(f"{table} {r[0]:%Y-%m}", []).append(r)
    return out


def kill_and_check(plan: Plan, point: Point, rerun: bool = True) -> tuple[str, str, list[str]]:
    """Run the killer on a fresh copy of the prepared folder, killed at ``point``; then
    (a), (b), and with ``rerun`` the rerun and (c). Returns where the run was killed,
    what it left published, and the problems found (the first step that finds any
    stops there)."""
    case = _reset(plan.root, plan.prepared)
    landing, wh = _paths(case)
    killed = plan.root / "killed"
    killed.unlink(missing_ok=True)
    run_plan = {"killed": str(killed)}
    run_plan["kill_at" if point.kind == "event" else "timer"] = point.at
    res = killer(case, run_plan)
    if res.returncode != -signal.SIGKILL:
        return "", "", [f"the run was not killed (exit {res.returncode}): {res.stderr[-3000:]}"]
    at = killed.read_text().replace("\t", " ")
    if point.kind == "event" and at != f"{point.at} {point.label}":
        # a project edited since the dry run (the dbt unit tests run again) shifts the
        # sequence: the kill still is a kill, at the event it names
        print(f"note: the dry run's event {point.at} was {point.label!r}, this run's {at!r}")
    left, problems = _published_problems(wh, plan, copy_expected=True)
    if problems:
        return at, left, ["after the kill:", *problems]
    if not rerun:
        return at, left, []
    problems = _rerun_problems(landing, wh, plan)
    if fingerprint(_paths(plan.prepared)[1]) != plan.prepared_fingerprint:
        problems.append(f"the prepared folder {plan.prepared} changed")
    return at, left, (["after the rerun:", *problems] if problems else [])


SLOTS = [("event", i) for i in range(POINTS)] + [("timer", i) for i in range(TIMER_POINTS)]


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("slot", range(len(SLOTS)),
                         ids=[f"{kind}-{i:02d}" for kind, i in SLOTS])
def test_kill_leaves_published_months_whole_and_the_rerun_completes(plan, slot):
    point = plan.points[slot]
    started = time.monotonic()
    at, left, problems = kill_and_check(plan, point, rerun=slot % RERUN_EVERY == 0
                                        or slot == len(SLOTS) - 1)
    where = f"seed {plan.seed} (replay: PCI_KILL_SEED={plan.seed}), {point}, killed at {at!r}"
    print(f"\n{where}; left {left}: {'ok' if not problems else 'FAILED'} "
          f"({time.monotonic() - started:.0f} s)")
    assert not problems, f"{where}:\n" + "\n".join(problems)
