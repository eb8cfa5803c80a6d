"""Test-wide environment: no telemetry, no Airflow examples, a private AIRFLOW_HOME."""
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
# Airflow reads its config when first imported: give the test session its own home.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="pci-test-airflow-"))
