"""The rules-table tax adapter: the demo company's table and the one rounding rule."""

from __future__ import annotations

import pytest

from contracts.v1 import Address, Customer
from sandbox import demo_data
from system_apis.tax import DEFAULT_RULES, TaxPort, TaxRules, line_tax


def customer(country: str, *, region: str | None = None, tax_id: str | None = None) -> Customer:
    return Customer(
        id="001", legal_name="Buyer", legal_entity="DE01", currency="EUR", country=country,
        billing_address=Address(country=country, region=region), tax_id=tax_id,
    )


@pytest.mark.parametrize(
    ("entity", "buyer", "code", "rate", "reasoned"),
    [
        ("DE01", customer("DE", tax_id="DE123456789"), "DE-VAT-19", 1900, False),
        ("DE01", customer("NL", tax_id="NL001234567B01"), "EU-RC", 0, True),
        ("DE01", customer("NL"), "DE-VAT-19", 1900, False),
        ("DE01", customer("CH", tax_id="CHE-123.456.789"), "DE-EXPORT", 0, True),
        ("US01", customer("US", region="CA"), "US-CA", 725, False),
        ("US01", customer("US", region="tx"), "US-TX", 625, False),
        ("US01", customer("US", region="OR"), "US-OR-EXEMPT", 0, True),
        ("US01", customer("US"), "US-NT", 0, True),
        ("US01", customer("CA"), "US-EXPORT", 0, True),
    ],
)
def test_the_demo_table_gives_each_customer_its_treatment(
    entity: str, buyer: Customer, code: str, rate: int, reasoned: bool
) -> None:
    treatment = TaxRules(DEFAULT_RULES).treatment(legal_entity=entity, customer=buyer)

    assert (treatment.code, treatment.rate_bps) == (code, rate)
    assert bool(treatment.reason) is reasoned


def test_reverse_charge_names_its_legal_basis() -> None:
    treatment = TaxRules(DEFAULT_RULES).treatment(
        legal_entity="DE01", customer=customer("FR", tax_id="FR40303265045")
    )
    assert treatment.reason is not None and "Reverse charge" in treatment.reason


def test_an_entity_without_rules_is_refused() -> None:
    with pytest.raises(ValueError, match="no tax rule of GB01"):
        TaxRules(DEFAULT_RULES).treatment(legal_entity="GB01", customer=customer("GB"))


def test_the_rules_table_is_a_tax_port() -> None:
    assert isinstance(TaxRules(DEFAULT_RULES), TaxPort)


@pytest.mark.parametrize(
    ("amount", "rate", "tax"),
    [
        (5_523, 1900, 1_049),  # 1049.37
        (100_050, 1900, 19_010),  # 19009.5: half up
        (-100_050, 1900, -19_010),  # a credit mirrors its charge
        (2_000, 725, 145),
        (1, 4_999, 0),
        (1, 5_000, 1),
        (123_457, 0, 0),
    ],
)
def test_line_tax_rounds_half_up_once_in_integers(amount: int, rate: int, tax: int) -> None:
    assert line_tax(amount, rate) == tax


def test_every_code_of_the_demo_table_is_a_tax_code_of_the_demo_erp() -> None:
    seeded = {code.code: code.rate_bps for code in demo_data.TAX_CODES}
    used = {rule.treatment.code: rule.treatment.rate_bps for rule in DEFAULT_RULES}
    assert used.items() <= seeded.items()
