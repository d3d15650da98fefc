"""Escalation to service credit through the gateway against the emulators: the credit computed
for the seeded sev-1 breach, finance approving (credit note, credit memo, one case comment) or
rejecting it, another legal entity answered as if the credit did not exist, and an approval
nobody gives in time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from process_apis.webhooks.intake import WebhookEvent
from tests.process_apis.linked_customer import MRR, Acme, seed_acme, vendor
from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(120)

ACME_CREDIT = MRR * 5 // 100
"""One breach at the enterprise plan's 5 % per breach."""


@dataclass
class Callers:
    writer: dict[str, str]
    reader: dict[str, str]
    finance_us: dict[str, str]
    finance_de: dict[str, str]
    ops: dict[str, str]


async def open_gateway(tmp_path: Path, **env: str) -> AsyncIterator[AppClient]:
    settings = settings_for(
        tmp_path, emulated=True, ERPGW_EXECUTOR_ID="escalation-test", **env
    )
    async with app_client(gateway_app(settings)) as client:
        yield client


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AppClient]:
    async for opened in open_gateway(tmp_path):
        yield opened


async def callers(client: AppClient) -> Callers:
    async def token(scopes: list[str], entities: list[str] | None) -> dict[str, str]:
        return bearer((await new_client_token(client, scopes, entities=entities))[1])

    return Callers(
        writer=await token(["process:write", "process:read"], ["US01"]),
        reader=await token(["process:read"], ["US01"]),
        finance_us=await token(["finance:approve"], ["US01"]),
        finance_de=await token(["finance:approve"], ["DE01"]),
        ops=await token(["ops:read", "ops:replay", "process:read"], None),
    )


async def escalate(client: AppClient, acme: Acme, who: Callers, key: str) -> Any:
    return await client.post(
        "/process/v1/escalations",
        json={"organization_id": acme.organization_id, "ticket_id": acme.ticket_id},
        headers={**who.writer, "Idempotency-Key": key},
    )


async def credit_in(
    client: AppClient, acme: Acme, who: Callers, *statuses: str
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        response = await client.get(
            f"/process/v1/service-credits/{acme.credit_id}", headers=who.reader
        )
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and body["status"] in statuses else None

    return await eventually(reached, timeout=30.0, what=f"service credit in {statuses}")


async def flow_of(client: AppClient, acme: Acme, who: Callers) -> dict[str, Any]:
    response = await client.get(f"/process/v1/flows/{acme.credit_id}", headers=who.reader)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def flow_in(client: AppClient, acme: Acme, who: Callers, status: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        flow = await flow_of(client, acme, who)
        return flow if flow["status"] == status else None

    return await eventually(reached, timeout=30.0, what=f"flow {status}")


async def decide(
    client: AppClient, acme: Acme, headers: dict[str, str], action: str, key: str, **body: Any
) -> Any:
    return await client.post(
        f"/process/v1/service-credits/{acme.credit_id}/{action}",
        json=body,
        headers={**headers, "Idempotency-Key": key},
    )


async def test_escalation_approved_issues_the_credit_everywhere(client: AppClient) -> None:
    acme, who = await seed_acme(client), await callers(client)
    billing, erp, support = (vendor(client, n) for n in ("stripe", "netsuite", "zendesk"))

    started = await escalate(client, acme, who, "esc-approve-1")
    assert started.status_code == 202, started.text
    assert started.headers["location"] == f"/process/v1/flows/{acme.credit_id}"
    pending = await credit_in(client, acme, who, "pending_approval")
    waiting = await flow_in(client, acme, who, "waiting_approval")

    assert pending["amount"] == ACME_CREDIT
    assert pending["currency"] == "USD"
    assert pending["monthly_recurring_amount"] == MRR
    assert [b["case_id"] for b in pending["breaches"]] == [acme.ticket_id]
    assert pending["breaches"][0]["late_by_minutes"] == 75
    assert (pending["percent_applied"], pending["cap_applied"]) == (5, False)
    assert pending["invoice_id"] == acme.stripe_invoice_id
    assert pending["legal_entity"] == "US01"
    task = await erp.get_approval_task(pending["approval_task_id"])
    assert (task.status, task.legal_entity, task.amount) == ("pending", "US01", ACME_CREDIT)
    account = await vendor(client, "salesforce").get_account(acme.crm_account_id)
    assert account.risk_level == "high"
    assert [step["name"] for step in waiting["steps"]][:2] == [
        "read_credit_terms",
        "raise_account_risk",
    ]

    no_reason = await decide(client, acme, who.finance_us, "approve", "approve-0")
    assert no_reason.status_code == 422
    assert no_reason.headers["content-type"].startswith("application/problem+json")
    approved = await decide(
        client, acme, who.finance_us, "approve", "approve-1", reason="SLA missed on outage"
    )
    assert approved.status_code == 202, approved.text
    assert approved.headers["location"] == f"/process/v1/flows/{acme.credit_id}"

    credited = await credit_in(client, acme, who, "credited")
    flow = await flow_in(client, acme, who, "succeeded")
    notes = (await billing.list_credit_notes(invoice_id=acme.stripe_invoice_id)).data
    memos = (await erp.list_credit_memos(customer_id=acme.erp_customer_id)).data
    comments = await support.list_comments(acme.ticket_id)
    marker = f"[{acme.credit_id}]"
    assert [(n.amount, n.currency, n.reason) for n in notes] == [
        (ACME_CREDIT, "USD", "service_credit")
    ]
    assert "SLA missed on outage" in (notes[0].memo or "")
    assert [(m.amount, m.invoice_id, m.legal_entity) for m in memos] == [
        (ACME_CREDIT, acme.erp_invoice_id, "US01")
    ]
    # The invoice posting's one path: the memo is keyed by the credit note it books.
    assert memos[0].external_id == f"cn:{notes[0].id}"
    assert [c.public for c in comments if marker in c.body] == [False]
    assert (await erp.get_approval_task(pending["approval_task_id"])).status == "approved"
    assert credited["credit_note_id"] == notes[0].id
    assert credited["decision_reason"] == "SLA missed on outage"
    assert all(step["status"] == "succeeded" for step in flow["steps"])

    # The comment step run again (a retry whose first answer was lost) writes nothing new.
    flows = client.app.state.gateway.escalation.service.flows
    await flows.comment_on_case(acme.ticket_id, "repeated body " + marker, marker)
    comments = await support.list_comments(acme.ticket_id)
    assert len([c for c in comments if marker in c.body]) == 1


async def test_another_legal_entity_cannot_decide(client: AppClient) -> None:
    acme, who = await seed_acme(client), await callers(client)
    assert (await escalate(client, acme, who, "esc-entity-1")).status_code == 202
    await credit_in(client, acme, who, "pending_approval")

    refused = await decide(client, acme, who.finance_de, "approve", "de-1", reason="looks fine")

    # Another entity's credit answers as a missing one: the caller learns nothing of it.
    assert refused.status_code == 404
    assert refused.headers["content-type"].startswith("application/problem+json")
    await asyncio.sleep(0.5)
    assert (await credit_in(client, acme, who, "pending_approval"))["decided_by"] is None
    assert (await flow_of(client, acme, who))["status"] == "waiting_approval"
    notes = await vendor(client, "stripe").list_credit_notes(invoice_id=acme.stripe_invoice_id)
    assert notes.data == []


async def test_escalation_rejected_records_the_refusal(client: AppClient) -> None:
    acme, who = await seed_acme(client), await callers(client)
    erp = vendor(client, "netsuite")
    assert (await escalate(client, acme, who, "esc-reject-1")).status_code == 202
    pending = await credit_in(client, acme, who, "pending_approval")

    rejected = await decide(
        client, acme, who.finance_us, "reject", "reject-1", reason="Outage was customer-side"
    )
    again = await decide(
        client, acme, who.finance_us, "reject", "reject-1", reason="Outage was customer-side"
    )

    assert rejected.status_code == 202
    assert again.headers.get("idempotent-replayed") == "true"
    credit = await credit_in(client, acme, who, "rejected")
    flow = await flow_in(client, acme, who, "succeeded")
    task = await erp.get_approval_task(pending["approval_task_id"])
    assert (task.status, task.reason) == ("rejected", "Outage was customer-side")
    assert credit["decision_reason"] == "Outage was customer-side"
    assert "note_rejection_on_account" in [step["name"] for step in flow["steps"]]
    notes = await vendor(client, "stripe").list_credit_notes(invoice_id=acme.stripe_invoice_id)
    assert notes.data == []
    memos = await erp.list_credit_memos(customer_id=acme.erp_customer_id)
    assert memos.data == []
    crm = vendor(client, "salesforce")
    account_notes = await crm.list_account_notes(acme.crm_account_id)
    assert [note.title for note in account_notes] == [
        f"Service credit rejected ({acme.credit_id})"
    ]
    assert "Outage was customer-side" in account_notes[0].body
    assert f"{ACME_CREDIT // 100}.{ACME_CREDIT % 100:02d} USD" in account_notes[0].body
    assert f"rejected by {credit['decided_by']}" in account_notes[0].body

    # The note written again under the flow's title (a retry whose first answer was lost)
    # is the same note.
    repeated = await crm.add_account_note(
        acme.crm_account_id, title=account_notes[0].title, body="repeated body"
    )
    assert repeated == account_notes[0].id
    assert await crm.list_account_notes(acme.crm_account_id) == account_notes


async def test_validation_lists_every_problem(client: AppClient) -> None:
    acme, who = await seed_acme(client), await callers(client)
    support = vendor(client, "zendesk")
    not_urgent = next(
        case
        for case in (await support.list_cases(organization_id=acme.organization_id)).data
        if case.priority != "urgent"
    )

    unknown = await client.post(
        "/process/v1/escalations",
        json={"organization_id": "999", "ticket_id": not_urgent.id},
        headers={**who.writer, "Idempotency-Key": "bad-1"},
    )
    no_key = await client.post(
        "/process/v1/escalations",
        json={"organization_id": acme.organization_id, "ticket_id": acme.ticket_id},
        headers=who.writer,
    )
    missing = await client.get(
        "/process/v1/service-credits/escalation:1:2026-11", headers=who.reader
    )

    assert unknown.status_code == 422
    problems = {(e["pointer"], e["detail"]) for e in unknown.json()["errors"]}
    assert ("/organization_id", "no Zendesk organization 999") in problems
    assert ("/ticket_id", "belongs to another organization") in problems
    assert any(p == "/ticket_id" and "not urgent" in d for p, d in problems)
    assert no_key.status_code == 400
    assert missing.status_code == 404


async def test_ticket_events_start_the_month_escalation_once(client: AppClient) -> None:
    acme, who = await seed_acme(client), await callers(client)
    service = client.app.state.gateway.escalation.service
    detail = {
        "id": acme.ticket_id,
        "organization_id": acme.organization_id,
        "priority": "URGENT",
        "status": "OPEN",
        "subject": "API returning 503",
        "created_at": "2026-11-16T09:00:00Z",
    }

    def event(**changes: Any) -> WebhookEvent:
        return WebhookEvent(
            source="zendesk",
            id="evt-1",
            type="zen:event-type:ticket.priority_changed",
            subject=acme.ticket_id,
            object={**detail, **changes},
        )

    start = await service.on_ticket_event(event())
    low = await service.on_ticket_event(event(priority="LOW"))
    flow_id = await service.handle_zendesk_ticket_event(
        {"id": "evt-2", "type": "zen:event-type:ticket.created", "detail": detail}
    )
    duplicate = await escalate(client, acme, who, "esc-dup-1")

    assert start is not None and start.business_key == acme.credit_id
    assert start.legal_entity == "US01"
    assert low is None
    assert flow_id == acme.credit_id
    assert duplicate.status_code == 202
    assert duplicate.json()["created"] is False
    await credit_in(client, acme, who, "pending_approval")


async def test_undecided_credit_goes_to_finance_exception_queue(tmp_path: Path) -> None:
    async for client in open_gateway(tmp_path, ERPGW_APPROVAL_TIMEOUT_SECONDS="1"):
        acme, who = await seed_acme(client), await callers(client)
        assert (await escalate(client, acme, who, "esc-timeout-1")).status_code == 202

        expired = await credit_in(client, acme, who, "expired")
        flow = await flow_in(client, acme, who, "failed")
        queue = (
            await client.get(
                "/process/v1/exceptions", params={"owner": "finance"}, headers=who.ops
            )
        ).json()["data"]
        entry = next(item for item in queue if item["flow_id"] == acme.credit_id)
        task = await vendor(client, "netsuite").get_approval_task(expired["approval_task_id"])

        assert entry["step"] == "escalate_overdue_approval"
        assert entry["error_class"] == "ApprovalOverdue"
        assert entry["legal_entity"] == "US01"
        assert entry["input"]["reopen"] is False
        assert flow["steps"][-1]["status"] == "failed"
        assert task.status == "expired"

        # Finance decides late; reopening the wait hands the decision to the flow.
        late = await decide(client, acme, who.finance_us, "approve", "late-1", reason="late")
        retried = await client.post(
            f"/process/v1/exceptions/{entry['id']}/retry",
            json={"input": {**entry["input"], "reopen": True}},
            headers={**who.ops, "Idempotency-Key": "reopen-1"},
        )

        assert late.status_code == 202, late.text
        assert retried.status_code == 202, retried.text
        credited = await credit_in(client, acme, who, "credited")
        assert credited["decided_by"] is not None
        notes = await vendor(client, "stripe").list_credit_notes(
            invoice_id=acme.stripe_invoice_id
        )
        assert [n.amount for n in notes.data] == [ACME_CREDIT]


async def test_unlinked_organization_waits_for_support_ops(client: AppClient) -> None:
    who = await callers(client)
    support = vendor(client, "zendesk")
    initech = next(
        org
        for org in (await support.list_organizations(limit=100)).data
        if org.legal_name == "Initech LLC"
    )
    ticket = (await support.list_cases(organization_id=initech.id, priority="urgent")).data[0]

    started = await client.post(
        "/process/v1/escalations",
        json={"organization_id": initech.id, "ticket_id": ticket.id},
        headers={**who.writer, "Idempotency-Key": "esc-unlinked-1"},
    )
    location = started.headers["location"]
    async def failed() -> dict[str, Any] | None:
        flow: dict[str, Any] = (await client.get(location, headers=who.reader)).json()
        return flow if flow["status"] == "failed" else None

    flow = await eventually(failed, timeout=30.0, what="the flow failed")
    queue = (await client.get("/process/v1/exceptions", headers=who.ops)).json()["data"]

    assert started.status_code == 202
    assert flow["status"] == "failed"
    entry = next(item for item in queue if item["flow_id"] == started.json()["flow_id"])
    assert (entry["step"], entry["owner"]) == ("read_credit_terms", "support_ops")
    assert "not linked to a CRM account" in entry["cause"]
