"""The customer master's business rules on the fakes (no HTTP): a customer a platform already
holds (same tax id, or same name and country) is linked, not created again; what is missing is
created once under the canonical id; a refusal of the ERP waits for finance with what was
made elsewhere kept (no compensation)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from contracts.errors import FieldError, UpstreamInvalid
from contracts.v1 import Customer, CustomerCreate
from process_apis.cross_references import CrossReferences
from process_apis.customer_master.flow import (
    FLOW_TYPE,
    CustomerMaster,
    canonical_customer_id,
    customer_flow_id,
)
from tests.fakes import FakeBilling, FakeErp, FakeSupport
from tests.process_apis.fakes_engine import (  # noqa: F401 (fixtures)
    FlowBench,
    flow_bench,
    migrated_database,
)

pytestmark = pytest.mark.timeout(60)

ACCOUNT = Customer(id="001Ux00000AcmeRAAB", legal_name="Acme Robotics Inc.", legal_entity="US01",
                   currency="USD", country="US", tax_id="US-94-1234567", payment_terms_days=30)
CANONICAL = canonical_customer_id(ACCOUNT.id)
FLOW_ID = customer_flow_id(ACCOUNT.id)


@dataclass
class Platforms:
    billing: FakeBilling
    erp: FakeErp
    support: FakeSupport
    flows: CustomerMaster


async def launch(bench: FlowBench) -> Platforms:
    billing, erp, support = FakeBilling(), FakeErp(), FakeSupport()
    flows = bench.register(CustomerMaster, billing=billing, erp=erp, support=support,
                           references=CrossReferences(bench.database))
    await bench.launch()
    return Platforms(billing=billing, erp=erp, support=support, flows=flows)


async def test_customers_a_platform_holds_are_linked_and_the_missing_one_made_once(
    bench: FlowBench,
) -> None:
    platforms = await launch(bench)
    # Billing holds the company under another name but with its tax id (made by hand);
    # support holds an organization of the same name; the ERP has none.
    by_hand = await platforms.billing.create_customer(CustomerCreate(
        legal_name="ACME Robotics", legal_entity="US01", currency="USD",
        tax_id=ACCOUNT.tax_id))
    organization = platforms.support.seed_organization(
        ACCOUNT.legal_name, legal_entity="US01", currency="USD")

    links = await bench.run(FLOW_TYPE, FLOW_ID, platforms.flows.sync, ACCOUNT)
    again = await bench.start(FLOW_TYPE, FLOW_ID, platforms.flows.sync, ACCOUNT)

    assert links is not None and not again.created and await again.result() == links
    assert list(platforms.billing.customers) == [by_hand.id] == [links.billing_customer_id]
    (erp_customer,) = platforms.erp.customers.values()
    assert erp_customer.id == links.erp_customer_id
    assert (erp_customer.legal_name, erp_customer.legal_entity, erp_customer.currency,
            erp_customer.tax_id, erp_customer.payment_terms_days) == (
        "Acme Robotics Inc.", "US01", "USD", ACCOUNT.tax_id, 30)
    assert await platforms.erp.find_customer(external_id=CANONICAL) == erp_customer
    assert list(platforms.support.organizations) == [organization] == [
        links.support_organization_id]
    linked = await platforms.support.find_organization(CANONICAL)
    assert linked is not None and linked.refs["salesforce"] == ACCOUNT.id
    assert [m for m, _ in platforms.billing.writes] == ["create_customer"]  # the hand-made one
    assert [m for m, _ in platforms.erp.writes] == ["upsert_customer"]
    assert [m for m, _ in platforms.support.writes] == ["upsert_organization"]


async def test_an_erp_refusal_waits_for_finance_keeping_the_billing_customer(
    bench: FlowBench,
) -> None:
    platforms = await launch(bench)
    platforms.erp.fail_next("upsert_customer", UpstreamInvalid(
        "NetSuite refused the customer: the tax id is not valid for the subsidiary",
        vendor="netsuite", status=400, code="INVALID_FLD_VALUE",
        errors=[FieldError(pointer="vatregnumber", detail="invalid for US01")]))

    await bench.start(FLOW_TYPE, FLOW_ID, platforms.flows.sync, ACCOUNT)
    await bench.wait(FLOW_ID, "failed")

    (entry,) = await bench.exceptions()
    assert (entry.step, entry.system, entry.owner, entry.error_class) == (
        "create_erp_customer", "netsuite", "finance", "UpstreamInvalid")
    assert entry.cause == (
        "UpstreamInvalid: NetSuite refused the customer: the tax id is not valid for the "
        "subsidiary (vendor netsuite); vatregnumber: invalid for US01")
    assert entry.input is not None and entry.input["account"]["id"] == ACCOUNT.id
    # Kept, and found again when the step is retried: the billing customer, under the account.
    (customer,) = platforms.billing.customers.values()
    assert customer.refs["salesforce"] == ACCOUNT.id
    assert platforms.erp.customers == {}
    assert platforms.support.writes == []
