"""pci.core.rules: the rule tables come from the dbt seeds, and nowhere else in Python."""
from __future__ import annotations

import csv
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from pci.core import rules

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def seeds(tmp_path):
    """A copy of the project's seeds/ to change."""
    return Path(shutil.copytree(ROOT / "seeds", tmp_path / "seeds"))


def rewrite(path: Path, change) -> None:
    """Apply ``change`` to every row (a dict) of the CSV file ``path``."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        names, rows = reader.fieldnames, list(reader)
    for r in rows:
        change(r)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, names, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def seed_rows(name: str) -> list[dict]:
    with (ROOT / "seeds" / name).open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_tables_are_the_seeds():
    assert [(m.key, m.number, m.threshold, m.max_points) for m in rules.metrics()] == [
        (r["metric"], int(r["metric_number"]), Decimal(r["threshold"]), Decimal(r["max_points"]))
        for r in sorted(seed_rows(rules.METRICS_SEED), key=lambda r: int(r["metric_number"]))]
    assert {(lv.name, lv.min_score) for lv in rules.levels()} == {
        (r["level"], Decimal(r["min_score"])) for r in seed_rows(rules.LEVELS_SEED)}
    [constants] = seed_rows(rules.CONSTANTS_SEED)
    assert rules.constants() == {k: Decimal(v) for k, v in constants.items()}
    assert rules.MAU_GROWTH_MIN_BASELINE == int(constants["mau_growth_min_baseline"])
    assert rules.DEPLOYMENT_MAU_THRESHOLD == int(constants["deployment_mau_threshold"])


def test_a_changed_seed_is_followed(seeds):
    def metric(r):
        if r["metric"] == "developers":
            r["threshold"], r["max_points"] = "3", "7"

    def level(r):
        r["min_score"] = {"gold": "85", "silver": "65"}.get(r["level"], r["min_score"])

    rewrite(seeds / rules.METRICS_SEED, metric)
    rewrite(seeds / rules.LEVELS_SEED, level)
    rewrite(seeds / rules.CONSTANTS_SEED, lambda r: r.update(mau_growth_min_baseline="75",
                                                            deployment_mau_threshold="8"))
    dev = {m.key: m for m in rules.metrics(seeds)}["developers"]
    assert (dev.threshold, dev.max_points) == (3, 7)
    assert rules.points_for(dev, 3) == Decimal("7.00")
    table = rules.levels(seeds)
    assert [(lv.name, lv.min_score) for lv in table] == [("gold", 85), ("silver", 65), ("none", 0)]
    assert rules.level_of(Decimal("84.99"), table).name == "silver"
    assert rules.level_of(80, table).name == "silver" and rules.level_of(85, table).name == "gold"
    assert rules.constants(seeds) == {"mau_growth_min_baseline": 75, "deployment_mau_threshold": 8}
    assert rules.constant("mau_growth_min_baseline", seeds) == 75
    # the project's own tables are untouched
    assert rules.level_of(80).name == "gold"


@pytest.mark.parametrize("score,level", [
    ("0", "none"), ("59.99", "none"), ("60", "silver"), ("60.00", "silver"), ("79.99", "silver"),
    ("80", "gold"), ("80.00", "gold"), ("100", "gold")])
def test_level_of_at_the_band_edges(score, level):
    """[D-3]: gold if pci_score >= 80, silver if >= 60, else none (inclusive lower bounds)."""
    assert rules.level_of(Decimal(score)).name == level
    assert rules.level_of(float(score)).name == level


def test_levels_are_ordered_highest_first_with_a_floor_at_zero():
    table = rules.levels()
    assert [lv.min_score for lv in table] == sorted((lv.min_score for lv in table), reverse=True)
    assert table[-1].min_score == 0


@pytest.mark.parametrize("name,change,words", [
    (rules.METRICS_SEED, lambda r: r.update(threshold="0"), "threshold must be above 0"),
    (rules.METRICS_SEED, lambda r: r.update(threshold="ten"), "is not a number"),
    (rules.METRICS_SEED, lambda r: r.update(metric_number="1"), "must be unique"),
    (rules.LEVELS_SEED, lambda r: r.update(min_score=str(Decimal(r["min_score"]) + 1)),
     "the lowest 0"),
])
def test_a_broken_rule_table_is_refused(seeds, name, change, words):
    rewrite(seeds / name, change)
    with pytest.raises(rules.RuleTableError, match=words):
        rules.metrics(seeds) if name == rules.METRICS_SEED else rules.levels(seeds)


def test_a_missing_seed_or_constant_is_named(seeds):
    (seeds / rules.LEVELS_SEED).unlink()
    with pytest.raises(rules.RuleTableError, match="pci_levels.csv"):
        rules.levels(seeds)
    with pytest.raises(rules.RuleTableError, match="no column 'no_such_rule'"):
        rules.constant("no_such_rule", seeds)
    with pytest.raises(AttributeError):
        rules.NO_SUCH_RULE  # noqa: B018


def test_no_rule_constant_is_written_in_python():
    """The level bands and the MAU baseline are read from the seeds, not written in pci/."""
    found = subprocess.run(["grep", "-rnE", ">= ?(50|80|60)", str(ROOT / "pci"), str(ROOT / "models"),
                            "--include=*.py", "--include=*.sql"],
                           capture_output=True, text=True).stdout.splitlines()
    assert found == []
