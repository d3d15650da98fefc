"""The customer master against the emulators through the gateway: one customer per CRM
account in billing, ERP and support, found before it is ever created (by the platforms' own
link to the account, then tax id, then name and country), and never created twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contracts.v1 import Customer, CustomerCreate
from process_apis.customer_master.flow import (
    canonical_customer_id,
    customer_flow_id,
    matches_name,
    matches_tax_id,
)
from tests.process_apis.q2c_harness import Harness, harness
from tests.process_apis.sandbox import STRIPE_KEY, seeded_id


@pytest.fixture
async def q2c(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(tmp_path) as opened:
        yield opened


def customer(**fields: object) -> Customer:
    values: dict[str, object] = {
        "id": "c1", "legal_name": "Acme Robotics Inc.", "legal_entity": "US01",
        "currency": "USD", "country": "US", "tax_id": "US-94-1234567",
    }
    values.update(fields)
    return Customer(**values)  # type: ignore[arg-type]


def test_canonical_id_is_derived_from_the_account() -> None:
    assert canonical_customer_id("001A") == "cus-001A" == canonical_customer_id("001A")
    assert customer_flow_id("001A") == "customer:001A"


def test_matching_rules() -> None:
    account = customer()
    assert matches_tax_id(customer(id="x", legal_name="Other"), account)
    assert not matches_tax_id(customer(tax_id=None), customer(tax_id=None))
    assert matches_name(customer(tax_id="other"), account)
    assert matches_name(customer(country=None), account)
    assert not matches_name(customer(country="DE"), account)
    assert not matches_name(customer(legal_name="Acme Robotics"), account)


async def test_sync_makes_the_account_a_customer_everywhere_once(q2c: Harness) -> None:
    account = seeded_id("Account", "acme")
    flow_id = customer_flow_id(account)

    first = await q2c.sync_customer(account)
    again = await q2c.sync_customer(account)

    assert first.status_code == 202, first.text
    assert first.headers["location"] == f"/process/v1/flows/{flow_id}"
    assert again.status_code == 202
    assert again.headers["location"] == first.headers["location"]
    flow = await q2c.wait(flow_id, "succeeded", "failed")
    assert flow["status"] == "succeeded", flow
    assert flow["type"] == "customer_master"
    assert [s["name"] for s in flow["steps"]] == [
        "find_billing_customer", "create_billing_customer", "find_erp_customer",
        "create_erp_customer", "find_support_organization", "link_support_organization",
    ]
    [stripe_customer] = await q2c.stripe.customers_of(account)
    assert stripe_customer["name"] == "Acme Robotics Inc."
    assert stripe_customer["metadata"]["legal_entity"] == "US01"
    assert stripe_customer["metadata"]["tax_id"] == "US-94-1234567"
    assert stripe_customer["metadata"]["crm_account_id"] == account
    assert stripe_customer["metadata"]["canonical_id"] == canonical_customer_id(account)
    # Read back through the client, the canonical id sits beside the other platforms' ids.
    read_back = await q2c.port("stripe").get_customer(stripe_customer["id"])
    assert read_back.id == stripe_customer["id"]
    assert read_back.refs["canonical"] == canonical_customer_id(account)
    assert read_back.refs["salesforce"] == account
    erp_customer = await q2c.port("netsuite").find_customer(
        external_id=canonical_customer_id(account)
    )
    assert erp_customer is not None and erp_customer.legal_entity == "US01"
    organization = await q2c.port("zendesk").find_organization(canonical_customer_id(account))
    assert organization is not None
    # The seeded organization was linked, not a second one created.
    named = [
        o async for o in q2c.port("zendesk").iter_organizations()
        if o.legal_name == "Acme Robotics Inc."
    ]
    assert [o.id for o in named] == [organization.id]


async def test_finds_existing_customers_by_tax_id_and_name_before_creating(
    q2c: Harness,
) -> None:
    account = seeded_id("Account", "globex")
    # Made by hand before the gateway: same tax id in Stripe, same tax id in NetSuite.
    made = await q2c.client.post(
        "/_sandbox/stripe/v1/customers",
        data={
            "name": "Globex Logistik (billing)",
            "metadata[tax_id]": "DE123456789",
            "metadata[legal_entity]": "DE01",
        },
        headers={"Authorization": f"Bearer {STRIPE_KEY}"},
    )
    assert made.status_code == 200, made.text
    legacy = await q2c.port("netsuite").upsert_customer(
        CustomerCreate(
            legal_name="Globex Logistik GmbH", legal_entity="DE01", currency="EUR",
            tax_id="DE123456789",
        ),
        external_id="legacy-7",
    )

    await q2c.sync_customer(account)

    flow = await q2c.wait(customer_flow_id(account), "succeeded", "failed")
    assert flow["status"] == "succeeded", flow
    names = [s["name"] for s in flow["steps"]]
    assert "create_billing_customer" not in names
    assert "create_erp_customer" not in names
    stripe_customers = await q2c.stripe.objects("/v1/customers")
    assert [c["id"] for c in stripe_customers] == [made.json()["id"]]
    erp_customers = (await q2c.port("netsuite").list_customers(legal_entity="DE01")).data
    assert [c.id for c in erp_customers] == [legacy.id]
    steps = {s["name"]: s for s in flow["steps"]}
    assert steps["find_billing_customer"]["external_ids"] == {
        "stripe_customer": made.json()["id"]
    }
    assert steps["find_erp_customer"]["external_ids"] == {"netsuite_customer": legacy.id}


async def test_refuses_to_sync_an_account_without_legal_entity(q2c: Harness) -> None:
    stateless = await q2c.sf.create("Account", {"Name": "Stateless Ltd", "BillingCountry": "US"})

    response = await q2c.sync_customer(stateless)

    assert response.status_code == 422, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == ["/legal_entity"]


async def test_concurrent_flows_of_one_account_create_one_customer(q2c: Harness) -> None:
    account = seeded_id("Account", "acme")
    second_deal = await q2c.sf.deal(account, [("SEAT", 4)], currency="USD", name="Acme - seats")
    seeded_deal = seeded_id("Opportunity", "acme-platform")

    responses = await asyncio.gather(
        q2c.sync_customer(account), q2c.book(seeded_deal), q2c.book(second_deal)
    )

    assert [r.status_code for r in responses] == [202, 202, 202]
    flows = await asyncio.gather(
        *(q2c.wait(r.json()["id"], "succeeded", "failed") for r in responses)
    )
    assert [f["status"] for f in flows] == ["succeeded"] * 3
    assert len(await q2c.stripe.customers_of(account)) == 1
    assert len((await q2c.port("netsuite").list_customers(legal_entity="US01")).data) == 1
    customer_ids = {
        step["external_ids"].get("stripe_customer")
        for flow in flows
        for step in flow["steps"]
        if step["name"] in ("find_billing_customer", "create_billing_customer")
    }
    assert len(customer_ids - {None}) == 1
