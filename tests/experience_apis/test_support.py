"""The support desk's organization context: plan and SLA, payment status, renewal, credits
issued and pending, the account behind the organization."""

from __future__ import annotations

from contracts.v1 import CreditNoteCreate
from tests.experience_apis import seed
from tests.experience_apis.conftest import World


def context_path(customer: seed.Customer) -> str:
    return f"/experience/support/v1/organizations/{customer.zendesk_org}/context"


async def test_context_shows_plan_payment_renewal_and_credits(world: World) -> None:
    acme = await seed.onboard(
        world,
        await seed.demo_customer(world, "Acme"),
        plans=((("PLAT-STD", 1), ("SEAT", 20)), (("PLAT-ENT", 1),)),
    )
    invoices = (await world.billing.list_invoices(customer_id=acme.stripe)).data
    monthly = next(i for i in invoices if i.total == 100_000)
    note = await world.billing.create_credit_note(
        CreditNoteCreate(
            invoice_id=monthly.id, currency="USD", amount=5_000, reason="service_credit"
        )
    )
    escalation = f"escalation:{acme.zendesk_org}:2026-11"
    await seed.flow(
        world.engine, escalation, status="waiting_approval", flow_type="escalation_credit"
    )
    task = await seed.approval(
        world, key="acme-1", flow_id=escalation, legal_entity="US01", amount=10_000,
        currency="USD",
    )
    await seed.approval(
        world, key="other-1", flow_id="escalation:999:2026-11", legal_entity="US01",
        amount=1, currency="USD",
    )

    response = await world.http.get(context_path(acme))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sources"] == {
        "support": "ok", "billing": "ok", "crm": "ok", "erp": "ok", "process": "ok",
    }
    assert body["organization"]["id"] == acme.zendesk_org
    assert body["plan"] == "enterprise"
    assert body["entitlement"]["sla_first_response_minutes"] == 60
    assert body["entitlement"]["credit_percent_per_breach"] == 5
    billing = body["billing"]
    assert billing["customer_id"] == acme.stripe
    assert billing["payment_status"] == "current"
    subscriptions = await world.billing.list_subscriptions(customer_id=acme.stripe)
    monthly_end = min(s.current_period_end for s in subscriptions.data)
    assert billing["renewal_date"] == monthly_end.isoformat().replace("+00:00", "Z")
    assert [c["id"] for c in billing["credits_issued"]] == [note.id]
    assert billing["credits_issued"][0]["amount"] == {"amount": 5_000, "currency": "USD"}
    assert body["credits_pending"] == [
        {
            "flow_id": escalation,
            "flow_type": "escalation_credit",
            "requested_at": body["credits_pending"][0]["requested_at"],
            "approval_task_id": task.id,
            "subject": "Service credit acme-1",
            "amount": {"amount": 10_000, "currency": "USD"},
        }
    ]
    assert body["account"] == {"crm_account_id": acme.crm_account, "owner": None}


async def test_billing_down_leaves_billing_null_but_credits_pending_known(world: World) -> None:
    acme = await seed.onboard(world, await seed.demo_customer(world, "Acme"))
    await seed.flow(
        world.engine,
        f"escalation:{acme.zendesk_org}:2026-11",
        status="waiting_approval",
        flow_type="escalation_credit",
    )
    await world.faults("stripe", outage=True)

    body = (await world.http.get(context_path(acme))).json()

    assert body["billing"] is None
    assert body["sources"]["billing"] == "error"
    assert [c["flow_id"] for c in body["credits_pending"]] == [
        f"escalation:{acme.zendesk_org}:2026-11"
    ]
    assert body["credits_pending"][0]["amount"] is None


async def test_an_organization_nobody_linked_has_only_its_support_data(world: World) -> None:
    globex = await seed.demo_customer(world, "Globex")

    body = (await world.http.get(context_path(globex))).json()

    assert body["plan"] == "business"
    assert body["billing"] == {
        "customer_id": None, "payment_status": None, "renewal_date": None, "credits_issued": [],
    }
    assert body["account"] == {"crm_account_id": None, "owner": None}
    assert body["credits_pending"] == []


async def test_zendesk_down_answers_502_and_unknown_organization_404(world: World) -> None:
    acme = await seed.demo_customer(world, "Acme")

    missing = await world.http.get("/experience/support/v1/organizations/424242/context")
    await world.faults("zendesk", outage=True)
    down = await world.http.get(context_path(acme))

    assert missing.status_code == 404
    assert down.status_code == 502
    assert down.json()["vendor"] == "support"


async def test_an_organization_of_another_entity_is_not_found(world: World) -> None:
    acme = await seed.demo_customer(world, "Acme")
    world.caller.become(entities=frozenset({"DE01"}))

    response = await world.http.get(context_path(acme))

    assert response.status_code == 404
