"""`GET /gateway/v1/audit` through the gateway against the emulators: each covered action of a
caller appears once with the right actor, legal entity, source and before/after; `target`
finds a record by its bare id in any system; pages use sealed cursors; a caller sees only its
legal entities' records; bad input is a problem+json 4xx."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contracts.audit import AuditEvent, gateway_target, system_actor
from process_apis.quote_to_cash.routes import DEMO_OPPORTUNITY_ID
from process_apis.webhooks.intake import WebhookEvent
from tests.process_apis.escalation.test_credit import callers, credit_in, decide, escalate
from tests.process_apis.linked_customer import seed_acme, vendor
from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AppClient]:
    settings = settings_for(tmp_path, emulated=True, ERPGW_EXECUTOR_ID="audit-api-test")
    async with app_client(gateway_app(settings)) as opened:
        yield opened


async def auditor(client: AppClient, entities: list[str] | None) -> tuple[str, dict[str, str]]:
    client_id, token = await new_client_token(client, ["audit:read"], entities=entities)
    return client_id, bearer(token)


async def every_record(
    client: AppClient, headers: dict[str, str], **filters: str
) -> list[dict[str, Any]]:
    """All pages of the trail, two records a page (so the cursors are used)."""
    records: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {**filters, "limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/gateway/v1/audit", params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        records.extend(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return records


async def test_each_covered_action_appears_once_with_its_actor(client: AppClient) -> None:
    acme, who = await seed_acme(client), await callers(client)
    writer_id = await client_id_of(client, who.writer)
    finance_id = await client_id_of(client, who.finance_us)
    crm_writer, crm_headers = await new_client_token(
        client, ["crm:write", "crm:read"], entities=["US01"]
    )
    gateway = client.app.state.gateway
    phone_before = (await vendor(client, "salesforce").get_account(acme.crm_account_id)).phone

    first = await escalate(client, acme, who, "audit-esc-1")
    again = await escalate(client, acme, who, "audit-esc-2")
    await gateway.webhooks.accept(
        WebhookEvent(
            source="zendesk",
            id="evt-audit-1",
            type="zen:event-type:ticket.priority_changed",
            subject=acme.ticket_id,
            object={
                "id": acme.ticket_id,
                "organization_id": acme.organization_id,
                "priority": "URGENT",
                "status": "OPEN",
                "subject": "API returning 503",
                "created_at": "2026-11-16T09:00:00Z",
            },
        ),
        gateway.process.engine,
    )
    await credit_in(client, acme, who, "pending_approval")
    approved = await decide(
        client, acme, who.finance_us, "approve", "audit-ap-1", reason="SLA missed on outage"
    )
    patched = await client.patch(
        f"/system/crm/v1/accounts/{acme.crm_account_id}",
        json={"phone": "+1 415 555 0199"},
        headers=bearer(crm_headers),
    )
    _, everyone = await auditor(client, None)
    credit_trail = await every_record(client, everyone, target=acme.credit_id)
    account_trail = await every_record(client, everyone, target=acme.crm_account_id)

    assert (first.status_code, again.status_code, approved.status_code) == (202, 202, 202)
    assert patched.status_code == 200, patched.text
    assert [
        (r["action"], r["actor"]["id"], r["detail"].get("source"), r["detail"].get("created"))
        for r in reversed(credit_trail)
    ] == [
        ("flow.start", writer_id, "api", True),
        ("flow.start", writer_id, "api", False),
        ("flow.start", "webhook:zendesk", "webhook", False),
        ("service_credit.approve", finance_id, None, None),
    ]
    assert {r["legal_entity"] for r in credit_trail} == {"US01"}
    assert all(r["target"] == {"system": "gateway", "id": acme.credit_id} for r in credit_trail)
    approval = credit_trail[0]
    assert approval["before"] == {"status": "pending_approval"}
    assert approval["after"] == {"status": "approved"}
    assert approval["detail"]["reason"] == "SLA missed on outage"
    assert approval["detail"]["amount"] > 0 and approval["detail"]["currency"] == "USD"
    [update] = account_trail
    assert update["action"] == "crm.account.update"
    assert update["actor"]["kind"] == "client" and update["actor"]["id"] == crm_writer
    assert update["target"] == {"system": "salesforce", "id": acme.crm_account_id}
    assert update["before"] == {"phone": phone_before}
    assert update["after"] == {"phone": "+1 415 555 0199"}
    assert update["legal_entity"] == "US01"
    seqs = [r["seq"] for r in credit_trail]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
    report = await gateway.audit.verify()
    assert report.intact, report.problem


async def test_target_finds_a_record_by_its_bare_id_in_any_system(client: AppClient) -> None:
    acme = await seed_acme(client)
    _, writer = await new_client_token(
        client, ["crm:write", "process:write", "process:read"], entities=["US01"]
    )
    synced = await client.post(
        f"/process/v1/customers/{acme.crm_account_id}/sync",
        headers={**bearer(writer), "Idempotency-Key": "audit-sync-1"},
    )
    patched = await client.patch(
        f"/system/crm/v1/accounts/{acme.crm_account_id}",
        json={"website": "https://acme.example"},
        headers=bearer(writer),
    )
    _, everyone = await auditor(client, None)

    found = await every_record(client, everyone, target=acme.crm_account_id)
    by_action = await every_record(
        client, everyone, target=acme.crm_account_id, action="crm.account.update"
    )

    assert synced.status_code == 202, synced.text
    assert patched.status_code == 200, patched.text
    assert sorted((r["target"]["system"], r["target"]["id"]) for r in found) == [
        ("gateway", f"customer:{acme.crm_account_id}"),
        ("salesforce", acme.crm_account_id),
    ]
    assert [r["action"] for r in by_action] == ["crm.account.update"]


async def test_a_caller_sees_only_its_legal_entities_records(client: AppClient) -> None:
    acme, who = await seed_acme(client), await callers(client)
    started = await escalate(client, acme, who, "audit-ent-1")
    gateway = client.app.state.gateway
    signed = await client.post(  # an entity-less record: a client signing in to the console
        "/ops/sign-in", data={"client_id": "nobody", "client_secret": "x", "csrf_token": "x"}
    )
    await gateway.audit.record(  # what the CLI records when it creates a client
        AuditEvent(action="client.create", actor=system_actor("cli:t"), target=gateway_target("c1"))
    )
    _, us = await auditor(client, ["US01"])
    _, de = await auditor(client, ["DE01"])
    _, everyone = await auditor(client, None)

    us_records = await every_record(client, us)
    de_records = await every_record(client, de)
    all_records = await every_record(client, everyone)

    assert started.status_code == 202
    assert signed.status_code in (401, 403)
    assert us_records and {r["legal_entity"] for r in us_records} == {"US01"}
    assert de_records == []
    assert {r["action"] for r in all_records} >= {"flow.start", "client.create"}
    assert "client.create" not in {r["action"] for r in us_records}


async def test_bad_requests_are_problems_and_cursors_belong_to_their_caller(
    client: AppClient,
) -> None:
    gateway = client.app.state.gateway
    for n in range(3):
        await gateway.audit.record(
            AuditEvent(
                action="keys.rotate", actor=system_actor("cli:t"), target=gateway_target(f"kid-{n}")
            )
        )
    _, reader = await auditor(client, None)
    _, other = await auditor(client, None)
    _, no_scope = await new_client_token(client, ["ops:read"])

    first = await client.get("/gateway/v1/audit", params={"limit": "2"}, headers=reader)
    cursor = first.json()["next_cursor"]
    stolen = await client.get(
        "/gateway/v1/audit", params={"limit": "2", "cursor": cursor}, headers=other
    )
    changed = await client.get(
        "/gateway/v1/audit",
        params={"limit": "2", "cursor": cursor, "action": "flow.start"},
        headers=reader,
    )
    bad_time = await client.get("/gateway/v1/audit", params={"since": "yesterday"}, headers=reader)
    forbidden = await client.get("/gateway/v1/audit", headers=bearer(no_scope))
    anonymous = await client.get("/gateway/v1/audit")

    assert first.status_code == 200 and len(first.json()["data"]) == 2
    for refused in (stolen, changed, bad_time):
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"].startswith("application/problem+json")
    assert anonymous.status_code == 401


async def client_id_of(_client: AppClient, headers: dict[str, str]) -> str:
    """The client id behind a bearer token (the token's `sub`)."""
    payload = headers["Authorization"].split()[1].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


async def test_flow_starts_name_their_source_poller_callout_and_schedule(
    client: AppClient,
) -> None:
    gateway = client.app.state.gateway
    crm = vendor(client, "salesforce")
    deal = await crm.get_deal(DEMO_OPPORTUNITY_ID)
    caller_id, caller = await new_client_token(
        client, ["process:write", "process:read"], entities=["US01"]
    )

    await gateway.quote_to_cash.book_won(deal)  # what the won-deal poller does
    callout = await client.post(
        "/webhooks/salesforce",
        json={"event": "opportunity.closed_won", "opportunity_id": deal.id, "event_id": "sf-1"},
        headers=bearer(caller),
    )
    scheduled = datetime(2026, 12, 7, 6, tzinfo=UTC)
    await gateway.reconciliation.service.start_scheduled(scheduled)
    await gateway.reconciliation.service.start_scheduled(scheduled)  # another replica's turn
    _, everyone = await auditor(client, None)
    deal_trail = await every_record(client, everyone, target=deal.id)
    run_trail = await every_record(client, everyone, target="reconcile:2026-12-07T06:00:00Z")

    assert callout.status_code == 200, callout.text
    assert [
        (r["actor"]["kind"], r["actor"]["id"], r["detail"]["source"], r["detail"]["created"])
        for r in reversed(deal_trail)
    ] == [
        ("system", "crm-poller", "poller", True),
        ("client", caller_id, "callout", False),
    ]
    assert {r["target"]["id"] for r in deal_trail} == {f"q2c:{deal.id}"}
    assert [
        (r["actor"]["id"], r["detail"]["source"], r["detail"]["created"])
        for r in reversed(run_trail)
    ] == [("schedule", "schedule", True), ("schedule", "schedule", False)]
