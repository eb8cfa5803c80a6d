"""The dbt project's house rules: the rules' constants live in seeds, one YAML per
model beside it, enforced contracts on the marts, and the SQL style (sqlfluff)."""
from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from pci.core.contract import ensure_raw_schema

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
SEEDS = ROOT / "seeds"
#: the files a copy of the dbt project needs (as pci.score.scoring fingerprints them, plus the linter's)
PROJECT_PARTS = ("dbt_project.yml", "profiles.yml", ".sqlfluff", ".sqlfluffignore",
                 "models", "macros", "seeds", "tests/dbt")
#: YAML in models/ that is not one model's own file
SHARED_YAML = {"staging/_sources.yml", "marts/_exposures.yml"}

#: raw-exports.md, section 4: the published scores, column by column
SCORES_CONTRACT = [
    ("score_month", "date"), ("partner_id", "varchar"),
    ("net_new_revenue_usd", "decimal(18,2)"), ("net_customer_adds", "integer"),
    ("functional_consultants", "integer"), ("developers", "integer"),
    ("new_deployments", "integer"), ("mau_baseline", "bigint"), ("mau_current", "bigint"),
    ("mau_growth", "double"),
    ("points_net_new_revenue", "decimal(5,2)"), ("points_net_customer_adds", "decimal(5,2)"),
    ("points_functional_consultants", "decimal(5,2)"), ("points_developers", "decimal(5,2)"),
    ("points_new_deployments", "decimal(5,2)"), ("points_mau_growth", "decimal(5,2)"),
    ("pci_score", "decimal(5,2)"), ("competency_level", "varchar"), ("window_complete", "boolean"),
]
#: docs/architecture.md, "The marts"
CONTRIBUTIONS_CONTRACT = [
    ("score_month", "date"), ("partner_id", "varchar"), ("metric", "varchar"),
    ("contributor_kind", "varchar"), ("contributor_id", "varchar"), ("tenant_id", "varchar"),
    ("subscription_id", "varchar"), ("event_month", "date"), ("detail", "varchar"),
    ("amount", "decimal(38,6)"),
]


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def _model_yaml(name: str) -> dict:
    (path,) = MODELS.rglob(f"{name}.yml")
    (model,) = _yaml(path)["models"]
    return model


def _seed_rows(name: str) -> list[dict]:
    with open(SEEDS / f"{name}.csv", newline="") as f:
        return list(csv.DictReader(f))


def _sql_without_comments(path: Path) -> str:
    text = re.sub(r"\{#.*?#\}", " ", path.read_text(), flags=re.S)
    return re.sub(r"--[^\n]*", " ", text)


def _copy_project(dst: Path) -> Path:
    for part in PROJECT_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dst / part)
        else:
            (dst / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / part)
    return dst


# ------------------------------------------------------------ rule constants in seeds


def test_no_rule_constant_in_models():
    """`grep -rnE ">= ?(50|80|60)" models` finds nothing, and no model compares a value
    with a number of the rule seeds: thresholds, levels and constants are read from them."""
    pattern = re.compile(r">= ?(50|80|60)")
    hits = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
            for p in sorted(MODELS.rglob("*")) if p.is_file()
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, "rule constants written in models/:\n" + "\n".join(hits)

    numbers = {row[c] for row in _seed_rows("pci_rule_constants") for c in row}
    numbers |= {row["min_score"] for row in _seed_rows("pci_levels")}
    numbers |= {row[c] for row in _seed_rows("pci_metrics") for c in ("threshold", "max_points")}
    numbers = {n for n in numbers if float(n) != 0}
    assert {"5", "50", "80", "60"} <= numbers
    alternatives = "|".join(re.escape(n) for n in sorted(numbers, key=len, reverse=True))
    comparison = re.compile(rf"(?:[<>]=?|<>|!=|=)\s*(?:{alternatives})(?![\w.])"
                            rf"|(?<![\w.])(?:{alternatives})\s*(?:[<>]=?|<>|!=|=)")
    found = [f"{p.relative_to(ROOT)}: {m.group(0)!r}"
             for p in sorted(MODELS.rglob("*.sql")) + sorted((ROOT / "tests" / "dbt").glob("*.sql"))
             for m in comparison.finditer(_sql_without_comments(p))]
    assert not found, "a rule constant compared in SQL (read it from its seed):\n" + "\n".join(found)


def test_rule_constants_seed_is_one_documented_row():
    rows = _seed_rows("pci_rule_constants")
    assert len(rows) == 1
    assert set(rows[0]) == {"deployment_mau_threshold", "mau_growth_min_baseline"}
    seeds = {s["name"]: s for s in _yaml(SEEDS / "_seeds.yml")["seeds"]}
    documented = {c["name"]: c.get("description") for c in seeds["pci_rule_constants"]["columns"]}
    assert set(documented) == set(rows[0]) and all(documented.values())


def test_metric_list_macro_matches_the_metrics_seed():
    """The pivots and unpivots loop over macro pci_metric_names: the seed's keys in order."""
    macro = (ROOT / "macros" / "pci_rules.sql").read_text()
    body = re.search(r"macro pci_metric_names\(\).*?return\(\[(.*?)\]\)", macro, re.S).group(1)
    listed = re.findall(r"'(\w+)'", body)
    seeded = [r["metric"] for r in sorted(_seed_rows("pci_metrics"), key=lambda r: int(r["metric_number"]))]
    assert listed == seeded
    scores = (MODELS / "marts" / "pci_monthly_scores.sql").read_text()
    assert "case when metric =" not in scores, "pivot with macro pci_pivot over pci_metric_names()"


def test_in_effect_rule_is_one_macro():
    """D-1 is written once (macro pci_in_effect) and used for associations and affiliations."""
    users = {p.stem for p in MODELS.rglob("*.sql") if "pci_in_effect(" in p.read_text()}
    assert {"int_associations_in_effect", "int_certified_people"} <= users
    for p in MODELS.rglob("*.sql"):
        assert not re.search(r"valid_to\s+is\s+null\s+or\s+valid_to\s*>=", p.read_text()), p


# ------------------------------------------------------------ one YAML per model


def test_one_yaml_per_model_beside_it():
    sql = {p.stem: p for p in MODELS.rglob("*.sql")}
    problems = []
    for path in sorted(MODELS.rglob("*.yml")):
        rel = path.relative_to(MODELS).as_posix()
        if rel in SHARED_YAML:
            continue
        doc = _yaml(path)
        models = [m["name"] for m in doc.get("models", [])]
        if models != [path.stem] or path.stem not in sql or sql[path.stem].parent != path.parent:
            problems.append(f"{rel}: describes {models}, not just the model {path.stem}.sql beside it")
        for test in doc.get("unit_tests", []):
            if test["model"] != path.stem:
                problems.append(f"{rel}: unit test {test['name']} is of {test['model']}")
        if set(doc) - {"version", "models", "unit_tests"}:
            problems.append(f"{rel}: also holds {sorted(set(doc) - {'version', 'models', 'unit_tests'})}")
    for name, path in sql.items():
        if not path.with_suffix(".yml").exists():
            problems.append(f"{path.relative_to(MODELS)} has no {name}.yml beside it")
    assert not problems, "\n".join(problems)
    assert not list(MODELS.rglob("_*__*.yml")), "layer YAML files are gone"
    assert not list((MODELS / "intermediate").glob("*.sql")), "intermediate models are grouped by concern"


def test_every_model_and_column_is_described_and_rules_come_from_doc_blocks():
    docs = set(re.findall(r"\{%\s*docs\s+(\w+)\s*%\}", "".join(
        p.read_text() for p in MODELS.rglob("*.md"))))
    used = set()
    for path in MODELS.rglob("*.yml"):
        if path.relative_to(MODELS).as_posix() in SHARED_YAML:
            continue
        text = path.read_text()
        used |= set(re.findall(r"doc\('(\w+)'\)", text))
        for model in _yaml(path)["models"]:
            assert model.get("description"), model["name"]
            assert all(c.get("description") for c in model.get("columns", [])), model["name"]
    used |= set(re.findall(r"doc\('(\w+)'\)", (SEEDS / "_seeds.yml").read_text()))
    assert used <= docs, f"unknown doc blocks: {used - docs}"
    assert {"rule_in_effect", "rule_credit_families", "rule_levels", "rule_developers_threshold",
            "rule_revenue_billing_month", "rule_loss_debit", "rule_certification_active",
            "rule_deployments", "rule_mau_baseline"} <= used  # D-1 .. D-9


# ------------------------------------------------------------ contracts on the marts


@pytest.mark.parametrize("model, columns", [("pci_monthly_scores", SCORES_CONTRACT),
                                            ("pci_metric_contributions", CONTRIBUTIONS_CONTRACT)])
def test_marts_have_enforced_contracts(model, columns):
    spec = _model_yaml(model)
    assert spec["config"]["contract"]["enforced"] is True
    # the YAML spells text "string", the name both engines accept (DuckDB reads it as
    # VARCHAR, Spark as STRING; Spark refuses a VARCHAR without a length)
    assert all(c["data_type"].lower() != "varchar" for c in spec["columns"])
    declared = [(c["name"], c["data_type"].replace(" ", "").lower().replace("string", "varchar"))
                for c in spec["columns"]]
    assert declared == columns
    not_null = {c["name"] for c in spec["columns"]
                if {"type": "not_null"} in c.get("constraints", [])}
    tested = {c["name"] for c in spec["columns"]
              if any("not_null" in (t if isinstance(t, dict) else [t]) for t in c.get("data_tests", []))}
    assert tested <= not_null
    from pci.core import catalog

    # the published table is created with the same columns
    published = catalog.SCORE_COLUMNS if model == "pci_monthly_scores" else catalog.CONTRIBUTION_COLUMNS
    assert [(c, t.replace(" ", "").lower()) for c, t in published] == columns


def test_scores_primary_key_is_score_month_and_partner():
    spec = _model_yaml("pci_monthly_scores")
    assert {"type": "primary_key", "columns": ["score_month", "partner_id"]} in spec["constraints"]
    assert {c["name"] for c in spec["columns"] if c["name"] != "mau_growth"} == {
        c["name"] for c in spec["columns"] if {"type": "not_null"} in c.get("constraints", [])}


def _dbt(project: Path, warehouse: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PCI_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
    dbt = Path(sys.executable).with_name("dbt")
    command = [str(dbt)] if dbt.exists() else [sys.executable, "-m", "dbt.cli.main"]
    # a dbt command run by hand names the score range with --vars (pci score writes it
    # into the table pci_score_request instead: macros/pci_score_range.sql)
    score_range = ["--vars", '{"pci_first_score_month": "2021-08-01", "pci_last_score_month": "2021-08-01"}']
    return subprocess.run(
        [*command, "--no-use-colors", *args, *score_range, "--project-dir", str(project),
         "--profiles-dir", str(project), "--target-path", str(project / "target"),
         "--log-path", str(project / "logs")],
        cwd=project, env=env, capture_output=True, text=True, timeout=900)


def _project_with_empty_marts(tmp_path: Path, marts: list[str]) -> tuple[Path, Path]:
    """A copy of the project and a warehouse on which the marts (and what they read)
    were built empty under their contracts."""
    project = _copy_project(tmp_path / "project")
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    ensure_raw_schema(con)
    con.close()
    good = _dbt(project, warehouse, "build", "--empty", "--resource-type", "seed",
                "--resource-type", "model", "--select", *[f"+{m}" for m in marts])
    assert good.returncode == 0, good.stdout[-3000:]
    return project, warehouse


@pytest.mark.dbt
def test_a_wrong_type_in_a_mart_fails_the_build(tmp_path):
    """The marts build (empty) under their contracts; a column whose type is not the
    contract's makes the build fail, for each mart, before anything is written."""
    project, warehouse = _project_with_empty_marts(
        tmp_path, ["pci_monthly_scores", "pci_metric_contributions"])

    # the model's SQL now yields a type its contract does not allow
    for model, column, wrong, expected in [
            ("pci_monthly_scores", "mau_current", "integer", "BIGINT"),
            ("pci_metric_contributions", "amount", "decimal(18, 2)", "DECIMAL(38,6)")]:
        path = next(project.joinpath("models").rglob(f"{model}.sql"))
        sql = path.read_text()
        path.write_text(f"select * replace (cast({column} as {wrong}) as {column}) from (\n{sql}\n) as m\n")
        bad = _dbt(project, warehouse, "run", "--empty", "--select", model)
        path.write_text(sql)
        assert bad.returncode != 0
        out = bad.stdout
        assert f"model {model}" in out and "enforced contract that failed" in out, out[-3000:]
        assert re.search(rf"\|\s*{column}\s*\|\s*{re.escape(wrong.replace(' ', '').upper())}\s*\|"
                         rf"\s*{re.escape(expected)}\s*\|\s*data type mismatch", out), out[-3000:]


@pytest.mark.dbt
def test_a_null_in_a_mart_column_declared_not_null_fails_the_build_on_duckdb(tmp_path):
    """On DuckDB the marts' not_null columns are guarded by the enforced constraint, not
    by a data test (one dbt node each less in every build): a null fails the model
    itself. On Spark, which does not enforce it on Parquet, the data tests are there."""
    marts = ["pci_monthly_scores", "pci_metric_contributions", "pci_next_month_projection"]
    project, warehouse = _project_with_empty_marts(tmp_path, marts)

    def not_null_tests(target: str) -> set[str]:
        listed = _dbt(project, warehouse, "ls", "--target", target, "--resource-type", "test",
                      "--select", *marts, "--output", "name", "--quiet")
        assert listed.returncode == 0, listed.stdout[-3000:]
        return {n for n in listed.stdout.split() if n.startswith("not_null_")}

    constrained = {f"not_null_{m}_{c['name']}" for m in marts for c in _model_yaml(m)["columns"]
                   if {"type": "not_null"} in c.get("constraints", [])}
    assert not_null_tests("dev") == set()
    assert not_null_tests("spark") == constrained

    for model in marts:
        path = next(project.joinpath("models").rglob(f"{model}.sql"))
        sql = path.read_text()
        # one row, every column null (the left join of one row to the empty model)
        path.write_text(f"select m.* from (select 1 as one) as one_row left join (\n{sql}\n) as m on true\n")
        bad = _dbt(project, warehouse, "run", "--empty", "--select", model)
        path.write_text(sql)
        assert bad.returncode != 0, bad.stdout[-3000:]
        assert "NOT NULL constraint failed" in bad.stdout, bad.stdout[-3000:]


@pytest.mark.dbt
def test_unique_combination_of_columns_fails_on_duplicates_only(tmp_path):
    """The generic test groups only the rows whose hash repeats (macros/generic_tests.sql):
    it still reports every duplicated combination, with nulls equal to nulls as in a
    GROUP BY, and passes rows that differ in one column."""
    project = _copy_project(tmp_path / "project")
    warehouse = tmp_path / "w.duckdb"
    duckdb.connect(str(warehouse)).close()
    rows = {  # model -> rows of (a, b, c); the number of duplicated combinations
        "dupes_none": ([(1, "x", None), (1, "x", 2), (1, "y", None), (2, "x", None)], 0),
        "dupes_two": ([(1, "x", None), (1, "x", None), (1, "x", 2), (3, "z", 4), (3, "z", 4),
                       (3, "z", 4), (3, "z", 5)], 2),
    }
    yml = ["version: 2", "models:"]
    for name, (values, _) in rows.items():
        select = " union all ".join(
            f"select {a} as a, '{b}' as b, {'null' if c is None else c}::integer as c" for a, b, c in values)
        (project / "models" / f"{name}.sql").write_text(select + "\n")
        yml += [f"  - name: {name}", "    data_tests:", "      - unique_combination_of_columns:",
                "          arguments:", "            combination_of_columns: [a, b, c]"]
    (project / "models" / "_dupes.yml").write_text("\n".join(yml) + "\n")
    for name, (_, expected) in rows.items():
        res = _dbt(project, warehouse, "build", "--select", name)
        if expected:
            assert res.returncode != 0, res.stdout[-3000:]
            assert f"Got {expected} results, configured to fail if != 0" in res.stdout, res.stdout[-3000:]
        else:
            assert res.returncode == 0, res.stdout[-3000:]


# ------------------------------------------------------------ SQL style


@pytest.mark.dbt
def test_sql_lint_passes(tmp_path):
    """`make lint`: sqlfluff with the dbt templater over the models and data tests."""
    pytest.importorskip("sqlfluff_templater_dbt", reason="make setup installs the SQL linter")
    project = _copy_project(tmp_path / "project")
    proc = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "models", "tests/dbt", "--disable-progress-bar"],
        cwd=project, capture_output=True, text=True, timeout=900,
        env={**os.environ, "PCI_WAREHOUSE": ":memory:", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"})
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert "All Finished" in proc.stdout
