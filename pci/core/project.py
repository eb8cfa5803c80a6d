"""Where the project's files are: the repository root is the dbt project.

Every module that reads a project file (the seeds, the GX suites, the dbt
project) takes its path from here, so a move of the package changes one line.
"""
from __future__ import annotations

from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]  # dbt_project.yml, models/, seeds/, dags/
SEEDS_DIR = PROJECT_DIR / "seeds"
EXPECTATIONS_DIR = PROJECT_DIR / "expectations"
DEFAULT_LANDING = PROJECT_DIR / "data" / "landing"
DEFAULT_WAREHOUSE = PROJECT_DIR / "data" / "warehouse" / "pci.duckdb"
