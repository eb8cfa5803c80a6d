"""The product catalogue and list prices of the generated world.

``data/product_catalogue.csv`` is the catalogue the pipeline scores against
(``product_id, product_name, workload``; workload ``other`` does not qualify).
Every export's ``products.csv`` is the catalogue plus :data:`UNKNOWN_PRODUCT`,
a retired product that is listed but not in the catalogue.
"""
from __future__ import annotations

import csv
from pathlib import Path

CATALOGUE_PATH = Path(__file__).resolve().parent / "data" / "product_catalogue.csv"
#: a product id that is in every export's products.csv but not in the catalogue
UNKNOWN_PRODUCT = ("LEGACY_CRM_ONPREM", "Legacy CRM (on-premises, retired)")

#: list price per seat and month, USD cents
PRICES = {
    "D365_SALES": 9500, "D365_MARKETING": 7500, "D365_CUSTOMER_SERVICE": 9500,
    "D365_FIELD_SERVICE": 9500, "D365_PROJECT_SERVICE": 9500, "D365_PLAN1": 11500,
    "MS_RELATIONSHIP_SALES": 16200, "D365_BUSINESS_CENTRAL": 7000,
    "D365_CAPACITY_STORAGE": 4000, "D365_FINANCE": 18000, "D365_SUPPLY_CHAIN": 18000,
    "D365_COMMERCE": 18000, "D365_HUMAN_RESOURCES": 12000, "D365_FRAUD_PROTECTION": 5000,
    "D365_PLAN2": 21000, "D365_MIXED_REALITY": 6500, "D365_TEAM_MEMBERS": 800,
    "D365_CUSTOMER_INSIGHTS": 10000, "M365_E3": 3600, "M365_BUSINESS_PREMIUM": 2200,
    "POWER_BI_PRO": 1000, "POWER_APPS_PER_USER": 2000, "AZURE_PLAN": 15000,
    "DYNAMICS_GP_ONPREM": 3000, UNKNOWN_PRODUCT[0]: 4500,
}
DEFAULT_PRICE = 5000


def price(product: str) -> int:
    """List price of ``product`` per seat and month, USD cents."""
    return PRICES.get(product, DEFAULT_PRICE)


def workloads() -> list[tuple[str, str]]:
    """``(product_id, workload)`` of the catalogue, in file order."""
    with open(CATALOGUE_PATH, newline="", encoding="utf-8") as fh:
        return [(r["product_id"], r["workload"]) for r in csv.DictReader(fh)]


def product_rows() -> list[tuple[str, str]]:
    """The rows of an export's ``products.csv``: the catalogue, then the unknown product."""
    with open(CATALOGUE_PATH, newline="", encoding="utf-8") as fh:
        rows = [(r["product_id"], r["product_name"]) for r in csv.DictReader(fh)]
    return rows + [UNKNOWN_PRODUCT]
