"""The rules-table tax adapter: (legal entity, customer jurisdiction) -> rate or reason.

The most specific row wins: country and region, then country, then an EU business with a
VAT id, then an EU consumer, then the entity's catch-all row.

`DEFAULT_RULES` is the demo company's table, an example of how a company writes its own:

| entity | customer | treatment |
|---|---|---|
| DE01 | in Germany | VAT 19 % |
| DE01 | an EU business elsewhere with a VAT id | 0 %, reverse charge (reason on the invoice) |
| DE01 | elsewhere in the EU without a VAT id | German VAT 19 % |
| DE01 | outside the EU | 0 %, export of services outside the EU |
| US01 | in a taxable state (CA, NY, TX, WA) | that state's rate |
| US01 | in a state not taxing SaaS (DE, MT, NH, OR, AK) or unknown | 0 %, not taxable |
| US01 | outside the US | 0 %, export |

The rates are examples for the sandbox, not tax advice.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from contracts.v1 import Customer
from system_apis.tax.port import TaxTreatment

__all__ = ["DEFAULT_RULES", "EU_COUNTRIES", "TaxRule", "TaxRules"]

EU_COUNTRIES = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})
REVERSE_CHARGE_REASON = (
    "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)"
)


class TaxRule(msgspec.Struct, frozen=True, kw_only=True):
    """One row: the treatment of the customers of `legal_entity` that `applies` to."""

    legal_entity: str
    country: str | None = None
    """The customer's country (ISO 3166-1 alpha-2); None: any country not matched by a row
    with a country."""
    region: str | None = None
    """The customer's state or region; None: any region of the country."""
    eu_business: bool | None = None
    """With no `country`: True matches customers in the EU with a VAT id, False those in
    the EU without one (consumers); None: anyone."""
    treatment: TaxTreatment


class TaxRules:
    """A `TaxPort` reading a rules table; the most specific matching row wins."""

    def __init__(self, rules: tuple[TaxRule, ...] | list[TaxRule]) -> None:
        self._rules = tuple(rules)

    def treatment(self, *, legal_entity: str, customer: Customer) -> TaxTreatment:
        country = (customer.country or "").upper()
        address = customer.billing_address
        region = (address.region or "").upper() if address is not None else ""
        vat_id = bool(customer.tax_id and customer.tax_id.strip())
        candidates = [rule for rule in self._rules if rule.legal_entity == legal_entity]
        for level in range(5):
            found = next(
                (rule for rule in candidates if _matches(rule, level, country, region, vat_id)),
                None,
            )
            if found is not None:
                return found.treatment
        raise ValueError(
            f"no tax rule of {legal_entity} covers a customer in {country or 'no country'}"
        )


def _matches(rule: TaxRule, level: int, country: str, region: str, vat_id: bool) -> bool:
    """Whether `rule` matches at `level` of specificity (0: country and region, 1: country,
    2: an EU business with a VAT id, 3: an EU consumer, 4: the entity's catch-all)."""
    if level == 0:
        return rule.country == country and rule.region is not None and rule.region == region
    if level == 1:
        return rule.country == country and rule.region is None
    if level == 2:
        return rule.eu_business is True and vat_id and country in EU_COUNTRIES
    if level == 3:
        return rule.eu_business is False and not vat_id and country in EU_COUNTRIES
    return rule.country is None and rule.eu_business is None


def _vat(rate_bps: int, country: str) -> TaxTreatment:
    return TaxTreatment(
        code=f"{country}-VAT-{rate_bps // 100}", rate_bps=rate_bps,
        name=f"VAT {rate_bps // 100}%", jurisdiction=country,
    )


def _zero(code: str, name: str, reason: str, jurisdiction: str) -> TaxTreatment:
    return TaxTreatment(code=code, rate_bps=0, name=name, reason=reason, jurisdiction=jurisdiction)


_US_TAXABLE: Mapping[str, int] = {"CA": 725, "NY": 400, "TX": 625, "WA": 650}
"""State rates (basis points) of the demo table's taxable states."""
_US_NOT_TAXABLE = ("DE", "MT", "NH", "OR", "AK")

DEFAULT_RULES: tuple[TaxRule, ...] = (
    TaxRule(legal_entity="DE01", country="DE", treatment=_vat(1900, "DE")),
    TaxRule(
        legal_entity="DE01", eu_business=True,
        treatment=_zero("EU-RC", "Reverse charge", REVERSE_CHARGE_REASON, "EU"),
    ),
    TaxRule(legal_entity="DE01", eu_business=False, treatment=_vat(1900, "DE")),
    TaxRule(
        legal_entity="DE01",
        treatment=_zero("DE-EXPORT", "Not taxable", "Services supplied outside the EU: not "
                        "subject to German VAT (Sec. 3a UStG)", "DE"),
    ),
    *(
        TaxRule(
            legal_entity="US01", country="US", region=state,
            treatment=TaxTreatment(
                code=f"US-{state}", rate_bps=rate, name=f"Sales tax {state}",
                jurisdiction=f"US-{state}",
            ),
        )
        for state, rate in _US_TAXABLE.items()
    ),
    *(
        TaxRule(
            legal_entity="US01", country="US", region=state,
            treatment=_zero(f"US-{state}-EXEMPT", "No sales tax",
                            f"No sales tax on software services in {state}", f"US-{state}"),
        )
        for state in _US_NOT_TAXABLE
    ),
    TaxRule(
        legal_entity="US01", country="US",
        treatment=_zero("US-NT", "No sales tax",
                        "Not taxable in the customer's state", "US"),
    ),
    TaxRule(
        legal_entity="US01",
        treatment=_zero("US-EXPORT", "No sales tax", "Export of services outside the US", "US"),
    ),
)
