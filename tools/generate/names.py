"""Word pools the synthetic partner and tenant names and countries are drawn from."""
from __future__ import annotations

COUNTRIES = ("US", "GB", "DE", "FR", "SE", "NL", "DK", "NO", "FI", "ES", "IT", "CA",
             "AU", "JP", "IN", "BR", "PL", "IE", "CH", "AT", "NZ", "ZA", "MX", "SG")
NAME_A = ("Northwind", "Contoso", "Fabrikam", "Adatum", "Litware", "Proseware",
          "Tailspin", "Wingtip", "Woodgrove", "Alpine", "Blue Yonder", "Coho",
          "Humongous", "Lucerne", "Margie's", "Trey", "Wide World", "Fourth Coffee",
          "Relecloud", "VanArsdel", "Datum", "Graphic Design", "Southridge", "Lamna")
NAME_B = ("Consulting", "Solutions", "Digital", "Cloud", "Partners", "Systems",
          "Advisory", "Group", "Technologies", "Services")
NAME_C = ("Ltd", "Inc.", "AB", "GmbH", "BV", "Oy", "AS", "LLC", "S.A.", "Pty Ltd")
TENANT_WORDS = ("Bakery", "Logistics", "Clinic", "Foods", "Motors", "Retail",
                "Energy", "Textiles", "Studios", "Holdings", "Farms", "Labs",
                "Freight", "Hotels", "Pharma", "Builders", "Marine", "Media")
