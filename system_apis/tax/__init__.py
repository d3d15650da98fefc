"""Tax: the port the layers above ask for a customer's tax treatment, and its rules table."""

from __future__ import annotations

from system_apis.tax.port import TaxPort, TaxTreatment, line_tax
from system_apis.tax.rules import DEFAULT_RULES, TaxRule, TaxRules

__all__ = ["DEFAULT_RULES", "TaxPort", "TaxRule", "TaxRules", "TaxTreatment", "line_tax"]
