"""System-of-record ownership: who may be written which field."""

from __future__ import annotations

import pytest

from contracts.errors import OwnershipViolation
from contracts.ownership import OWNERSHIP, check_write, mirrors_of, owner_of
from contracts.schema import entities


@pytest.mark.parametrize(
    ("entity", "field", "owner"),
    [
        ("Customer", "legal_name", "salesforce"),
        ("Customer", "billing_address", "salesforce"),
        ("Customer", "billing_address.city", "salesforce"),
        ("Customer", "phone", "salesforce"),
        ("Customer", "website", "salesforce"),
        ("Customer", "risk_level", "salesforce"),
        ("Customer", "legal_entity", "netsuite"),
        ("Customer", "tax_id", "netsuite"),
        ("Customer", "payment_terms_days", "netsuite"),
        ("Customer", "payment_status", "stripe"),
        ("Customer", "id", "gateway"),
        ("Deal", "stage", "salesforce"),
        ("Deal", "lines", "salesforce"),
        ("Deal", "erp_order_number", "netsuite"),
        ("Invoice", "total", "netsuite"),
        ("Invoice", "status", "stripe"),
        ("Payment", "amount", "netsuite"),
        ("CreditMemo", "amount", "netsuite"),
        ("SalesOrder", "lines", "netsuite"),
        ("Subscription", "items", "stripe"),
        ("SupportCase", "priority", "zendesk"),
        ("Entitlement", "sla_first_response_minutes", "zendesk"),
        ("sales_order", "total", "netsuite"),
        ("customer", "phone", "salesforce"),
    ],
)
def test_owner_of(entity, field, owner):
    assert owner_of(entity, field) == owner


def test_every_published_entity_has_ownership_rules():
    assert set(entities("v1")) <= set(OWNERSHIP)


def test_owner_may_write_its_fields():
    check_write("Customer", "salesforce", ["legal_name", "phone", "website", "risk_level"])
    check_write("Customer", "netsuite", ["tax_id", "payment_terms_days", "legal_entity"])
    check_write("SupportCase", "zendesk", ["priority", "status"])


def test_a_direct_write_of_a_billing_owned_field_to_crm_names_the_owner():
    with pytest.raises(OwnershipViolation) as caught:
        check_write("Customer", "salesforce", ["phone", "payment_status"])
    error = caught.value
    assert [e.pointer for e in error.errors] == ["/payment_status"]
    assert "owned by stripe" in error.errors[0].detail
    assert "owned by stripe" in error.message
    assert error.code == "ownership_violation"


def test_flows_may_write_back_mirrors_but_nothing_else():
    assert "salesforce" in mirrors_of("Customer", "payment_status")
    check_write("Customer", "salesforce", ["payment_status", "risk_level"], mirror=True)
    check_write("Deal", "salesforce", ["erp_order_number", "integration_status"], mirror=True)
    with pytest.raises(OwnershipViolation) as caught:
        check_write("Invoice", "zendesk", ["total"], mirror=True)
    assert "owned by netsuite" in caught.value.errors[0].detail


def test_every_refused_field_is_listed_with_its_own_owner():
    with pytest.raises(OwnershipViolation) as caught:
        check_write(
            "Customer", "stripe", ["tax_id", "payment_status", "risk_level", "billing_address.city"]
        )
    details = {e.pointer: e.detail for e in caught.value.errors}
    assert set(details) == {"/tax_id", "/risk_level", "/billing_address/city"}
    assert "owned by netsuite" in details["/tax_id"]
    assert "owned by salesforce" in details["/risk_level"]
    assert "owned by salesforce" in details["/billing_address/city"]


@pytest.mark.parametrize(
    ("entity", "system", "field", "owner"),
    [
        ("Invoice", "salesforce", "total", "netsuite"),
        ("SalesOrder", "stripe", "status", "netsuite"),
        ("Subscription", "netsuite", "items", "stripe"),
        ("SupportCase", "salesforce", "status", "zendesk"),
        ("Deal", "netsuite", "stage", "salesforce"),
        ("Customer", "netsuite", "id", "gateway"),
    ],
)
def test_writes_to_a_non_owner_are_refused(entity, system, field, owner):
    with pytest.raises(OwnershipViolation) as caught:
        check_write(entity, system, [field])
    assert f"owned by {owner}" in caught.value.errors[0].detail


def test_unknown_entities_and_systems_are_errors():
    with pytest.raises(KeyError):
        owner_of("Spaceship", "name")
    with pytest.raises(ValueError, match="unknown system"):
        check_write("Customer", "hubspot", ["phone"])
