"""Every process door holds a client limited to US01 to US01: the Salesforce callout, the
process routes and edit-and-retry. Another entity's record answers exactly as a missing one
does and books nothing; request bodies are bounded and refused (422) before any vendor call.
Each attack has its control beside it: the same request for the caller's own entity works."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from contracts.v1 import Customer, CustomerCreate, SubscriptionCreate, SubscriptionItemInput
from gateway.storage import vendor_calls
from process_apis.customer_master.flow import canonical_customer_id
from process_apis.engine.store import utcnow
from sandbox.stripe.seed import price_id_for
from tests.process_apis.linked_customer import Acme, seed_acme
from tests.process_apis.q2c_harness import Harness, harness
from tests.process_apis.sandbox import seeded_id
from tests.support.apps import bearer, new_client_token

pytestmark = pytest.mark.timeout(180)

PROBLEM = "application/problem+json"
GLOBEX_DEAL = seeded_id("Opportunity", "globex-enterprise")
GLOBEX_ACCOUNT = seeded_id("Account", "globex")
ACME_DEAL = seeded_id("Opportunity", "acme-platform")
ACME_ACCOUNT = seeded_id("Account", "acme")
MISSING_DEAL = seeded_id("Opportunity", "no-such-deal")
MISSING_ACCOUNT = seeded_id("Account", "no-such-account")


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(tmp_path) as opened:
        yield opened


async def us01(gw: Harness, *scopes: str) -> dict[str, str]:
    """A client limited to legal entity US01."""
    return bearer((await new_client_token(gw.client, list(scopes), entities=["US01"]))[1])


def keyed(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Idempotency-Key": uuid.uuid4().hex}


def assert_same_answer(
    hidden: httpx.Response, missing: httpx.Response, ids: dict[str, str]
) -> None:
    """`hidden` (about another entity's records) says what `missing` (about records that do
    not exist) says, once the ids asked for are swapped: `ids` maps missing -> hidden."""
    assert hidden.status_code == missing.status_code, (hidden.text, missing.text)
    assert hidden.headers["content-type"].startswith(PROBLEM)
    assert missing.headers["content-type"].startswith(PROBLEM)
    said = {k: v for k, v in missing.json().items() if k not in ("correlation_id", "instance")}
    text = json.dumps(said)
    for missing_id, hidden_id in ids.items():
        text = text.replace(missing_id, hidden_id)
    shown = {k: v for k, v in hidden.json().items() if k not in ("correlation_id", "instance")}
    assert shown == json.loads(text)
    assert "DE01" not in hidden.text and "legal entity" not in hidden.text.lower()


async def nothing_booked_for_globex(gw: Harness) -> None:
    flow = await gw.client.get(f"/process/v1/flows/q2c:{GLOBEX_DEAL}", headers=gw.headers)
    assert flow.status_code == 404
    assert await gw.stripe.customers_of(GLOBEX_ACCOUNT) == []
    erp = gw.port("netsuite")
    assert await erp.find_customer(external_id=canonical_customer_id(GLOBEX_ACCOUNT)) is None
    deal = await gw.port("salesforce").get_deal(GLOBEX_DEAL)
    assert deal.erp_order_number is None and deal.integration_status != "synced"


async def callout(gw: Harness, who: dict[str, str], opportunity_id: str) -> httpx.Response:
    return await gw.client.post(
        "/webhooks/salesforce",
        json={"event": "opportunity.closed_won", "opportunity_id": opportunity_id},
        headers=who,
    )


async def test_callout_books_only_deals_of_the_senders_entities(gw: Harness) -> None:
    sender = await us01(gw, "process:write", "process:read")

    hidden = await callout(gw, sender, GLOBEX_DEAL)
    missing = await callout(gw, sender, MISSING_DEAL)
    own = await callout(gw, sender, ACME_DEAL)

    assert missing.status_code == 404
    assert_same_answer(hidden, missing, {MISSING_DEAL: GLOBEX_DEAL})
    assert own.status_code == 200, own.text
    assert (own.json()["status"], own.json()["flow_ids"]) == ("enqueued", [f"q2c:{ACME_DEAL}"])
    assert (await gw.wait(f"q2c:{ACME_DEAL}", "succeeded", "failed"))["status"] == "succeeded"
    assert len(await gw.stripe.customers_of(ACME_ACCOUNT)) == 1
    await nothing_booked_for_globex(gw)


async def test_quote_to_cash_of_another_entitys_deal_answers_as_a_missing_deal(
    gw: Harness,
) -> None:
    writer = await us01(gw, "process:write")

    async def book(opportunity_id: str) -> httpx.Response:
        return await gw.client.post(
            "/process/v1/quote-to-cash",
            json={"opportunity_id": opportunity_id},
            headers=keyed(writer),
        )

    hidden, missing, own = await book(GLOBEX_DEAL), await book(MISSING_DEAL), await book(ACME_DEAL)

    assert missing.status_code == 404
    assert_same_answer(hidden, missing, {MISSING_DEAL: GLOBEX_DEAL})
    assert own.status_code == 202, own.text
    assert (await gw.wait(f"q2c:{ACME_DEAL}", "succeeded", "failed"))["status"] == "succeeded"
    await nothing_booked_for_globex(gw)


async def test_customer_sync_of_another_entitys_account_answers_as_a_missing_account(
    gw: Harness,
) -> None:
    writer = await us01(gw, "process:write")

    async def sync(account_id: str) -> httpx.Response:
        return await gw.client.post(
            f"/process/v1/customers/{account_id}/sync", headers=keyed(writer)
        )

    hidden = await sync(GLOBEX_ACCOUNT)
    missing = await sync(MISSING_ACCOUNT)
    own = await sync(ACME_ACCOUNT)

    assert missing.status_code == 404
    assert_same_answer(hidden, missing, {MISSING_ACCOUNT: GLOBEX_ACCOUNT})
    assert own.status_code == 202, own.text
    assert (await gw.wait(own.json()["id"], "succeeded", "failed"))["status"] == "succeeded"
    await nothing_booked_for_globex(gw)


async def de01_subscription(gw: Harness) -> str:
    """A DE01 subscription in billing (SEAT x 5, EUR)."""
    billing = gw.port("stripe")
    customer = await billing.create_customer(
        CustomerCreate(legal_name="Globex Logistik GmbH", legal_entity="DE01", currency="EUR"),
        crm_account_id=GLOBEX_ACCOUNT,
    )
    subscription = await billing.create_subscription(
        SubscriptionCreate(
            customer_id=customer.id,
            currency="EUR",
            legal_entity="DE01",
            items=[SubscriptionItemInput(price_id=price_id_for("SEAT", "EUR"), quantity=5)],
        )
    )
    return str(subscription.id)


def seats(subscription_id: str, quantity: int) -> dict[str, Any]:
    return {
        "subscription_id": subscription_id,
        "changes": [{"product_code": "SEAT", "quantity": quantity}],
        "effective_date": utcnow().date().isoformat(),
    }


async def test_amendment_of_another_entitys_subscription_answers_as_a_missing_one(
    gw: Harness,
) -> None:
    acme = await seed_acme(gw.client)
    globex = await de01_subscription(gw)
    writer = await us01(gw, "process:write")
    billing = gw.port("stripe")

    async def amend(body: dict[str, Any]) -> httpx.Response:
        return await gw.client.post(
            "/process/v1/subscription-amendments", json=body, headers=keyed(writer)
        )

    hidden = await amend(seats(globex, 50))
    missing = await amend(seats("sub_NoSuchSubscription", 50))
    own = await amend(seats(acme.subscription_id, 30))

    assert missing.status_code == 422
    assert_same_answer(hidden, missing, {"sub_NoSuchSubscription": globex})
    assert own.status_code == 202, own.text
    assert (await gw.wait(own.json()["flow_id"], "succeeded", "failed"))["status"] == "succeeded"
    subscription = await billing.get_subscription(globex)
    assert [i.quantity for i in subscription.items] == [5]
    assert len((await billing.list_invoices(subscription_id=globex)).data) == 1


async def globex_organization(gw: Harness) -> tuple[str, str]:
    """Globex's support organization (DE01) and its urgent ticket."""
    support = gw.port("zendesk")
    organization = next(
        org
        for org in (await support.list_organizations(limit=100)).data
        if org.legal_name == "Globex Logistik GmbH"
    )
    assert organization.legal_entity in ("DE01", None)
    cases = await support.list_cases(organization_id=organization.id, priority="urgent")
    return str(organization.id), str(cases.data[0].id)


async def test_escalation_of_another_entitys_organization_answers_as_a_missing_one(
    gw: Harness,
) -> None:
    acme = await seed_acme(gw.client)
    organization, ticket = await globex_organization(gw)
    await gw.port("zendesk").upsert_organization(
        Customer(
            id=organization,
            legal_name="Globex Logistik GmbH",
            legal_entity="DE01",
            currency="EUR",
            refs={"zendesk": organization, "salesforce": GLOBEX_ACCOUNT},
        ),
        external_id=canonical_customer_id(GLOBEX_ACCOUNT),
    )
    writer = await us01(gw, "process:write")

    async def escalate(organization_id: str, ticket_id: str) -> httpx.Response:
        return await gw.client.post(
            "/process/v1/escalations",
            json={"organization_id": organization_id, "ticket_id": ticket_id},
            headers=keyed(writer),
        )

    hidden = await escalate(organization, ticket)
    missing = await escalate("990000001", "990000002")
    # Another entity's ticket named with the caller's own organization is a missing ticket.
    mixed = await escalate(acme.organization_id, ticket)
    mixed_missing = await escalate(acme.organization_id, "990000002")
    own = await escalate(acme.organization_id, acme.ticket_id)

    assert missing.status_code == 422
    assert_same_answer(hidden, missing, {"990000001": organization, "990000002": ticket})
    assert_same_answer(mixed, mixed_missing, {"990000002": ticket})
    assert own.status_code == 202, own.text
    flows = await gw.client.get(
        "/process/v1/flows", params={"type": "escalation_credit"}, headers=gw.headers
    )
    assert [f["id"] for f in flows.json()["data"]] == [acme.credit_id]


async def test_deciding_another_entitys_service_credit_answers_as_a_missing_one(
    gw: Harness,
) -> None:
    acme: Acme = await seed_acme(gw.client)
    writer = await us01(gw, "process:write", "process:read")
    started = await gw.client.post(
        "/process/v1/escalations",
        json={"organization_id": acme.organization_id, "ticket_id": acme.ticket_id},
        headers=keyed(writer),
    )
    assert started.status_code == 202, started.text
    await gw.wait(acme.credit_id, "waiting_approval")
    finance_de = bearer(
        (await new_client_token(gw.client, ["finance:approve"], entities=["DE01"]))[1]
    )
    finance_us = await us01(gw, "finance:approve")
    missing_id = "escalation:990000001:2026-11"

    async def decide(who: dict[str, str], credit_id: str, action: str) -> httpx.Response:
        return await gw.client.post(
            f"/process/v1/service-credits/{credit_id}/{action}",
            json={"reason": "checked"},
            headers=keyed(who),
        )

    for action in ("approve", "reject"):
        hidden = await decide(finance_de, acme.credit_id, action)
        missing = await decide(finance_de, missing_id, action)
        assert missing.status_code == 404
        assert_same_answer(hidden, missing, {missing_id: acme.credit_id})
    flow = await gw.flow(acme.credit_id)
    assert flow["status"] == "waiting_approval"
    notes = await gw.port("stripe").list_credit_notes(invoice_id=acme.stripe_invoice_id)
    assert notes.data == []

    own = await decide(finance_us, acme.credit_id, "approve")
    assert own.status_code == 202, own.text


async def failed_sales_order(gw: Harness) -> dict[str, Any]:
    """Book Acme's deal while NetSuite refuses sales orders: the open exception of its
    `book_sales_order` step (the fault is lifted again, so a retry would book)."""
    await gw.set_faults(
        "netsuite", error_rate=1.0, error_status=400, path="/services/rest/record/v1/salesOrder*"
    )
    assert (await gw.book(ACME_DEAL)).status_code == 202
    await gw.wait(f"q2c:{ACME_DEAL}", "failed")
    await gw.set_faults("netsuite")
    page = await gw.client.get(
        "/process/v1/exceptions", params={"status": "open"}, headers=gw.headers
    )
    [exception] = [e for e in page.json()["data"] if e["flow_id"] == f"q2c:{ACME_DEAL}"]
    assert exception["step"] == "book_sales_order"
    return dict(exception)


async def test_edit_and_retry_cannot_leave_the_flows_entity_currency_or_records(
    gw: Harness,
) -> None:
    exception = await failed_sales_order(gw)
    erp = gw.port("netsuite")
    globex = await erp.upsert_customer(
        CustomerCreate(legal_name="Globex Logistik GmbH", legal_entity="DE01", currency="EUR"),
        external_id=canonical_customer_id(GLOBEX_ACCOUNT),
    )
    operator = await us01(gw, "ops:read", "ops:replay")
    url = f"/process/v1/exceptions/{exception['id']}/retry"
    original: dict[str, Any] = exception["input"]
    order = original["order"]

    def edited(**changes: Any) -> dict[str, Any]:
        return {"input": {**original, **changes}}

    attacks = {
        "/input/customer_id": edited(customer_id=globex.id),
        "/input/order/currency": edited(order={**order, "currency": "EUR"}),
        "/input/order/legal_entity": edited(
            order={**order, "legal_entity": "DE01"}, customer_id=globex.id
        ),
        "/input/order/account/id": edited(order={**order, "account": {
            **order["account"], "id": GLOBEX_ACCOUNT, "legal_entity": "US01"}}),
        "/input/order/lines/0/quantity": edited(order={**order, "lines": [
            {**order["lines"][0], "quantity": 10**30}, *order["lines"][1:]]}),
    }
    for pointer, body in attacks.items():
        refused = await gw.client.post(url, json=body, headers=operator)
        assert refused.status_code == 422, (pointer, refused.text)
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert pointer in {e["pointer"] for e in refused.json()["errors"]}, refused.text
        still = await gw.client.get(f"/process/v1/exceptions/{exception['id']}", headers=operator)
        assert still.json()["status"] == "open"
    assert (await erp.list_sales_orders(customer_id=globex.id)).data == []

    control = await gw.client.post(
        url, json=edited(order={**order, "name": "Acme - Platform rollout (fixed)"}),
        headers=operator,
    )

    assert control.status_code == 202, control.text
    assert (await gw.wait(f"q2c:{ACME_DEAL}", "succeeded"))["status"] == "succeeded"
    acme_erp = await erp.find_customer(external_id=canonical_customer_id(ACME_ACCOUNT))
    [booked] = (await erp.list_sales_orders(customer_id=acme_erp.id)).data
    assert (booked.legal_entity, booked.currency) == ("US01", "USD")
    assert (await erp.list_sales_orders(customer_id=globex.id)).data == []


async def vendor_call_count(gw: Harness) -> int:
    await gw.gateway.platforms.recorder.flush()
    async with gw.gateway.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(vendor_calls)))
                   .scalar_one())


@pytest.mark.parametrize("quantity", [2**63, 10**30, 1_000_001])
async def test_amendment_quantity_past_its_bound_is_refused_before_any_vendor_call(
    gw: Harness, quantity: int
) -> None:
    acme = await seed_acme(gw.client)
    writer = await us01(gw, "process:write")
    before = await vendor_call_count(gw)

    refused = await gw.client.post(
        "/process/v1/subscription-amendments",
        json=seats(acme.subscription_id, quantity),
        headers=keyed(writer),
    )

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/changes/0/quantity"]
    assert await vendor_call_count(gw) == before
    control = await gw.client.post(
        "/process/v1/subscription-amendments",
        json=seats(acme.subscription_id, 1_000),
        headers=keyed(writer),
    )
    assert control.status_code == 202, control.text


async def test_amendment_with_more_changes_than_a_subscription_holds_calls_no_vendor(
    gw: Harness,
) -> None:
    acme = await seed_acme(gw.client)
    writer = await us01(gw, "process:write")
    changes = [{"price_id": f"price_{n}", "quantity": 1} for n in range(60)]
    before = await vendor_call_count(gw)

    refused = await gw.client.post(
        "/process/v1/subscription-amendments",
        json={**seats(acme.subscription_id, 1), "changes": changes},
        headers=keyed(writer),
    )

    assert refused.status_code == 422, refused.text
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/changes"]
    assert await vendor_call_count(gw) == before
    subscription = await gw.port("stripe").get_subscription(acme.subscription_id)
    assert {i.product_code: i.quantity for i in subscription.items} == {"PLAT-STD": 1, "SEAT": 20}
