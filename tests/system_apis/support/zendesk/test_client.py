"""The Zendesk client driven against the emulator over real HTTP: every operation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contracts.errors import UpstreamConflict, UpstreamInvalid, UpstreamNotFound
from contracts.v1 import ContactCreate, Customer, Entitlement, SupportCaseCreate, SupportCasePatch
from sandbox.zendesk import ZendeskEmulator
from system_apis.support.port import SupportPort
from system_apis.support.zendesk import ZendeskClient
from tests.support.vendor_specs import vendor_specs_dir
from tests.system_apis.support.zendesk.seed import ACME, GLOBEX, org_id, user_id
from tests.system_apis.support.zendesk.spec import ResponseValidator


def _customer(name: str, *, entity: str = "US01", currency: str = "USD") -> Customer:
    return Customer(id="cus_ignored", legal_name=name, legal_entity=entity, currency=currency,
                    refs={"salesforce": "001000000000777AAA"})


async def test_client_satisfies_the_support_port(client: ZendeskClient) -> None:
    port: SupportPort = client
    assert await port.get_organization(org_id(ACME))


async def test_lists_every_seeded_organization_page_by_page(client: ZendeskClient) -> None:
    names: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await client.list_organizations(cursor=cursor, limit=1)
        names += [customer.legal_name for customer in page.data]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 4
    assert sorted(names) == ["Acme Robotics Inc.", "Globex Logistik GmbH", "Initech LLC",
                             "Umbrella Pharma B.V."]
    assert [c.legal_name async for c in client.iter_organizations()] == [
        c.legal_name for c in (await client.list_organizations(limit=100)).data
    ]


async def test_reads_an_organization_as_a_customer(client: ZendeskClient) -> None:
    customer = await client.get_organization(org_id(GLOBEX))
    assert customer.id == org_id(GLOBEX)
    assert (customer.legal_name, customer.legal_entity, customer.currency) == (
        "Globex Logistik GmbH", "DE01", "EUR")
    # The demo marker is not a CRM id, so it is not offered as a Salesforce ref.
    assert customer.refs == {"zendesk": org_id(GLOBEX)}


async def test_upsert_creates_then_updates_by_external_id(client: ZendeskClient) -> None:
    created = await client.upsert_organization(_customer("Hooli Inc."), external_id="cus_hooli")
    again = await client.upsert_organization(_customer("Hooli Incorporated"),
                                             external_id="cus_hooli")
    assert again.id == created.id
    found = await client.find_organization("cus_hooli")
    assert found is not None
    assert (found.id, found.legal_name) == (created.id, "Hooli Incorporated")
    assert found.refs["salesforce"] == "001000000000777AAA"
    assert await client.find_organization("cus_nobody") is None


async def test_creates_and_updates_an_organization(client: ZendeskClient) -> None:
    created = await client.create_organization(_customer("Pied Piper", entity="DE01",
                                                         currency="EUR"), external_id="cus_pp")
    updated = await client.update_organization(created.id, _customer("Pied Piper GmbH",
                                                                     entity="DE01",
                                                                     currency="EUR"))
    assert (updated.id, updated.legal_name, updated.currency) == (created.id, "Pied Piper GmbH",
                                                                  "EUR")
    assert (await client.find_organization("cus_pp")) == updated


async def test_entitlement_comes_from_the_organization_fields(client: ZendeskClient) -> None:
    entitlement = await client.get_entitlement(org_id(ACME))
    assert entitlement is not None
    assert (entitlement.plan, entitlement.sla_first_response_minutes,
            entitlement.credit_percent_per_breach, entitlement.credit_cap_percent) == (
        "enterprise", 60, 5, 20)
    raised = Entitlement(id=entitlement.id, plan="premier", sla_first_response_minutes=30,
                         credit_percent_per_breach=10, credit_cap_percent=30)
    written = await client.set_entitlement(org_id(ACME), raised)
    assert written.sla_first_response_minutes == 30
    assert await client.get_entitlement(org_id(ACME)) == written


async def test_an_organization_without_a_plan_has_no_entitlement(client: ZendeskClient) -> None:
    created = await client.create_organization(_customer("No Plan Ltd"), external_id="cus_np")
    assert await client.get_entitlement(created.id) is None


async def test_reads_finds_and_creates_users(client: ZendeskClient) -> None:
    ada = await client.get_user(user_id("ada@acme.test"))
    assert (ada.first_name, ada.last_name, ada.email) == ("Ada", "Reyes", "ada@acme.test")
    found = await client.find_user_by_email("GRETA@globex.test")
    assert found is not None and found.id == user_id("greta@globex.test")
    assert await client.find_user_by_email("nobody@nowhere.test") is None
    linked = await client.upsert_organization(_customer("Hooli Inc."), external_id="cus_hooli")
    contact = await client.create_user(ContactCreate(
        customer_id="cus_hooli", first_name="Gavin", last_name="Belson",
        email="gavin@hooli.test"))
    assert contact.customer_id == "cus_hooli"
    assert (await client.find_user_by_email("gavin@hooli.test")) is not None
    created = await client.get_user(contact.id)
    assert (created.first_name, created.last_name) == ("Gavin", "Belson")
    assert linked.id  # the user was placed in this organization (checked through the API)


async def test_lists_cases_of_an_organization_with_filters(client: ZendeskClient) -> None:
    all_cases = await client.list_cases(organization_id=org_id(ACME))
    assert sorted(c.priority for c in all_cases.data) == ["high", "normal", "urgent"]
    urgent = (await client.list_cases(organization_id=org_id(ACME), priority="urgent")).data
    assert len(urgent) == 1
    case = urgent[0]
    assert case.severity == "sev1"
    assert case.requester_email == "ada@acme.test"
    # Acme's SLA is 60 minutes; the seeded outage was first answered after 135.
    assert case.first_response_at == case.created_at + timedelta(minutes=135)
    solved = (await client.list_cases(organization_id=org_id(ACME), status="solved")).data
    assert [c.subject for c in solved] == ["Question about our latest invoice"]
    assert [c.id async for c in client.iter_cases(organization_id=org_id(ACME),
                                                  priority="high")] == [
        c.id for c in all_cases.data if c.priority == "high"]


async def test_pages_through_every_case(client: ZendeskClient) -> None:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await client.list_cases(cursor=cursor, limit=5)
        seen += [case.id for case in page.data]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [str(n) for n in range(1, 13)]
    only_de = await client.list_cases(entities={"DE01"}, limit=100)
    assert {c.organization_id for c in only_de.data} == {org_id(GLOBEX), org_id("umbrella")}


async def test_case_carries_the_canonical_customer_once_linked(client: ZendeskClient) -> None:
    await client.upsert_organization(
        Customer(id="x", legal_name="Acme Robotics Inc.", legal_entity="US01", currency="USD",
                 refs={"zendesk": org_id(ACME)}),
        external_id="cus_acme",
    )
    case = await client.get_case("2")
    assert (case.customer_id, case.organization_id) == ("cus_acme", org_id(ACME))


async def test_creates_a_case_once_per_idempotency_key(
    client: ZendeskClient, emulator: ZendeskEmulator
) -> None:
    await client.upsert_organization(_customer("Hooli Inc."), external_id="cus_hooli")
    request = SupportCaseCreate(customer_id="cus_hooli", subject="Invoice missing",
                                description="We did not get the October invoice.",
                                priority="high", requester_email="ops@hooli.test",
                                tags=["billing"])
    first = await client.create_case(request, idempotency_key="flow-1:open_case")
    replay = await client.create_case(request, idempotency_key="flow-1:open_case")
    assert replay.id == first.id
    assert len(emulator.desk.tickets) == 13
    assert (first.status, first.priority, first.customer_id, first.tags) == (
        "new", "high", "cus_hooli", ["billing"])
    changed = SupportCaseCreate(customer_id="cus_hooli", subject="Another", description="x")
    with pytest.raises(UpstreamConflict) as refused:
        await client.create_case(changed, idempotency_key="flow-1:open_case")
    assert refused.value.code == "IdempotentRequestError"


async def test_a_case_for_an_unlinked_customer_is_refused(client: ZendeskClient) -> None:
    request = SupportCaseCreate(customer_id="cus_unknown", subject="s", description="d")
    with pytest.raises(UpstreamNotFound):
        await client.create_case(request)


async def test_updates_a_case_and_adds_internal_comments(client: ZendeskClient) -> None:
    updated = await client.update_case("3", SupportCasePatch(priority="urgent", status="open",
                                                            tags=["sso", "escalated"]))
    assert (updated.priority, updated.status, updated.tags) == ("urgent", "open",
                                                               ["sso", "escalated"])
    await client.add_internal_comment("3", "Credit approved: 5%")
    comments = await client.list_comments("3")
    assert [(c.body, c.public) for c in comments][-1] == ("Credit approved: 5%", False)
    # A private note is not a reply to the customer: no first response yet.
    assert await client.get_first_response_at("3") is None


async def test_first_response_is_the_first_public_staff_reply(
    client: ZendeskClient, http: httpx.AsyncClient
) -> None:
    urgent = await client.get_case("2")
    assert await client.get_first_response_at("2") == urgent.created_at + timedelta(minutes=135)
    response = await http.put(
        "/api/v2/tickets/3.json",
        json={"ticket": {"comment": {"body": "Looking into it", "public": True}}},
        auth=httpx.BasicAuth("sandbox@erpgw.test/token", "erpgw-sandbox-token"),
    )
    assert response.status_code == 200
    answered = await client.get_first_response_at("3")
    assert answered is not None and answered >= (await client.get_case("3")).created_at


async def test_invalid_fields_are_reported_per_field(client: ZendeskClient) -> None:
    with pytest.raises(UpstreamInvalid) as refused:
        await client.create_organization(_customer("Acme Robotics Inc."), external_id="cus_dup")
    assert [e.pointer for e in refused.value.errors] == ["name"]
    assert "already been taken" in refused.value.errors[0].detail


async def test_exports_records_changed_since_a_time(client: ZendeskClient) -> None:
    since = datetime(2020, 1, 1, tzinfo=UTC)
    cases = [case async for case in client.iter_cases_changed_since(since)]
    contacts = [contact async for contact in client.iter_contacts_changed_since(since)]
    customers = [c async for c in client.iter_organizations_changed_since(since)]
    assert sorted(int(c.id) for c in cases) == list(range(1, 13))
    assert len(contacts) == 7  # five contacts, the support agent and the API user
    assert len(customers) == 4
    later = datetime(2030, 1, 1, tzinfo=UTC)
    assert [c async for c in client.iter_cases_changed_since(later)] == []


async def test_manages_webhooks(client: ZendeskClient) -> None:
    hook = await client.create_webhook(name="gateway", endpoint="http://localhost:8000/webhooks/zendesk")
    assert hook.status == "active"
    assert hook.subscriptions == ("conditional_ticket_events",)
    assert [h.id for h in await client.list_webhooks()] == [hook.id]
    assert await client.get_signing_secret(hook.id) == "erpgw-sandbox-webhook-secret"
    await client.delete_webhook(hook.id)
    assert await client.list_webhooks() == []
    with pytest.raises(UpstreamNotFound):
        await client.get_signing_secret(hook.id)


async def test_every_exercised_operation_matches_the_published_spec(
    client: ZendeskClient, spec_validator: ResponseValidator | None
) -> None:
    vendor_specs_dir()  # skips, or fails under ERPGW_REQUIRE_SERVICES=1, without the specs
    assert spec_validator is not None
    since = datetime(2020, 1, 1, tzinfo=UTC)
    await client.list_organizations(limit=2)
    await client.get_organization(org_id(ACME))
    await client.upsert_organization(_customer("Spec Co"), external_id="cus_spec")
    await client.find_organization("cus_spec")
    await client.find_user_by_email("ada@acme.test")
    await client.get_user(user_id("ada@acme.test"))
    await client.list_cases(organization_id=org_id(ACME))
    await client.get_case("1")
    await client.create_case(SupportCaseCreate(customer_id="cus_spec", subject="s",
                                               description="d"))
    await client.update_case("1", SupportCasePatch(tags=["x"]))
    await client.list_comments("1")
    _ = [c async for c in client.iter_cases_changed_since(since)]
    _ = [c async for c in client.iter_contacts_changed_since(since)]
    _ = [c async for c in client.iter_organizations_changed_since(since)]
    operations = set(spec_validator.validated)
    assert len(spec_validator.validated) >= 14, operations
    assert {"GET /api/v2/organizations 200", "POST /api/v2/organizations/create_or_update 201",
            "POST /api/v2/tickets 201", "PUT /api/v2/tickets/{ticket_id} 200",
            "GET /api/v2/search 200", "GET /api/v2/incremental/tickets/cursor 200"} <= operations
