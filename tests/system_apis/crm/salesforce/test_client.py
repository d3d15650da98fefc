"""SalesforceClient against the emulator over real HTTP: operations, paging, faults, auth."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from contracts.errors import (
    InvalidRequest,
    UpstreamAuthFailed,
    UpstreamConflict,
    UpstreamInvalid,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from contracts.v1 import Address, ContactCreate, CustomerCreate, CustomerPatch, DealPatch
from gateway.sandbox_wiring import salesforce_sandbox_credentials as sandbox_credentials
from sandbox.salesforce import SalesforceEmulator
from sandbox.salesforce.ids import seeded_id
from system_apis.crm import CrmPort
from system_apis.crm.salesforce import SalesforceClient, SalesforceCredentials
from tests.system_apis.crm.salesforce.conftest import Served

ACME = seeded_id("Account", "acme")
GLOBEX = seeded_id("Account", "globex")
ACME_PLATFORM = seeded_id("Opportunity", "acme-platform")


def test_client_implements_the_crm_port(client: SalesforceClient) -> None:
    port: CrmPort = client
    assert port is client


# -- accounts --------------------------------------------------------------------------------


async def test_get_account_maps_to_customer(client: SalesforceClient) -> None:
    customer = await client.get_account(ACME)
    assert customer.id == ACME
    assert customer.legal_name == "Acme Robotics Inc."
    assert customer.legal_entity == "US01"
    assert customer.currency == "USD"
    assert customer.payment_terms_days == 30
    assert customer.billing_address == Address(
        line1="100 Market St", city="San Francisco", postal_code="94105", country="US"
    )
    assert customer.refs == {"salesforce": ACME}
    assert customer.updated_at is not None and customer.updated_at.tzinfo is not None


async def test_get_account_by_15_char_id_and_unknown_ids(client: SalesforceClient) -> None:
    assert (await client.get_account(ACME[:15])).id == ACME
    with pytest.raises(UpstreamNotFound) as caught:
        await client.get_account("001ak0000000000AAA")
    assert caught.value.status == 404
    assert caught.value.request_id
    with pytest.raises(UpstreamNotFound):
        await client.get_account("../../etc")


async def test_list_accounts_pages_with_cursor_and_filters(client: SalesforceClient) -> None:
    first = await client.list_accounts(limit=3)
    assert len(first.data) == 3 and first.next_cursor
    second = await client.list_accounts(limit=3, cursor=first.next_cursor)
    assert len(second.data) == 1 and second.next_cursor is None
    ids = [c.id for c in first.data + second.data]
    assert ids == sorted(ids) and len(set(ids)) == 4
    german = await client.list_accounts(legal_entities={"DE01"})
    assert {c.legal_name for c in german.data} == {"Globex Logistik GmbH", "Umbrella Pharma B.V."}
    none = await client.list_accounts(legal_entities=set())
    assert none.data == []
    named = await client.list_accounts(name="pharma")
    assert [c.legal_name for c in named.data] == ["Umbrella Pharma B.V."]
    quoted = await client.list_accounts(name="O'Neil 100%_")
    assert quoted.data == []
    with pytest.raises(InvalidRequest):
        await client.list_accounts(cursor="bogus")


async def test_iter_accounts_follows_next_records_url(served: Served,
                                                      client: SalesforceClient) -> None:
    before = served.emulator.api_usage[0]
    names = [c.legal_name async for c in client.iter_accounts()]
    assert len(names) == 4
    # Four accounts in batches of two: the query and one nextRecordsUrl page.
    assert served.emulator.api_usage[0] - before == 2


async def test_update_account_writes_fields_and_reads_back(client: SalesforceClient) -> None:
    updated = await client.update_account(
        ACME, CustomerPatch(phone="+1 415 555 0100", risk_level="medium",
                            website=None, email="ap@acme.test"),
    )
    assert updated.phone == "+1 415 555 0100"
    assert updated.risk_level == "medium"
    assert updated.website is None
    assert updated.email == "ap@acme.test"
    again = await client.get_account(ACME)
    assert again.phone == "+1 415 555 0100"


async def test_invalid_update_is_upstream_invalid_with_fields(client: SalesforceClient) -> None:
    with pytest.raises(UpstreamInvalid) as caught:
        await client.update_account(ACME, CustomerPatch(legal_name=""))
    assert caught.value.code == "REQUIRED_FIELD_MISSING"
    assert [e.pointer for e in caught.value.errors] == ["/legal_name"]


async def test_upsert_account_is_replay_safe(served: Served, client: SalesforceClient) -> None:
    customer = CustomerCreate(legal_name="Hooli Inc.", legal_entity="US01", currency="USD",
                              country="US", payment_terms_days=30)
    first_id, created = await client.upsert_account(customer, external_id="q2c:hooli:customer")
    replay_id, created_again = await client.upsert_account(
        customer, external_id="q2c:hooli:customer"
    )
    assert (created, created_again) == (True, False)
    assert replay_id == first_id
    hooli = [c async for c in client.iter_accounts(name="Hooli")]
    assert [c.id for c in hooli] == [first_id]
    assert hooli[0].payment_terms_days == 30


async def test_upsert_matching_several_records_is_a_conflict(served: Served,
                                                             client: SalesforceClient) -> None:
    for name in ("Twin A", "Twin B"):
        served.emulator.org.insert("Account", {"Name": name, "Canonical_Id__c": "dup-1"})
    with pytest.raises(UpstreamConflict) as caught:
        await client.upsert_account(
            CustomerCreate(legal_name="Twin", legal_entity="US01", currency="USD"),
            external_id="dup-1",
        )
    assert caught.value.status == 300


# -- contacts --------------------------------------------------------------------------------


async def test_contacts_list_and_create_all_or_none(client: SalesforceClient) -> None:
    contacts = await client.list_contacts(ACME)
    assert [(c.first_name, c.last_name) for c in contacts] == [("Ben", "Ito"), ("Ada", "Reyes")]
    assert all(c.customer_id == ACME for c in contacts)
    ids = await client.create_contacts([
        ContactCreate(customer_id=ACME, first_name="Cy", last_name="Adams", email="cy@acme.test"),
    ])
    assert len(ids) == 1 and ids[0].startswith("003")
    assert "Adams" in [c.last_name for c in await client.list_contacts(ACME)]
    with pytest.raises(UpstreamInvalid) as caught:
        await client.create_contacts([
            ContactCreate(customer_id=ACME, last_name="Kept?"),
            ContactCreate(customer_id="001ak0000000000AAA", last_name="Orphan"),
        ])
    assert caught.value.errors[0].pointer == "/customer_id"
    assert "Kept?" not in [c.last_name for c in await client.list_contacts(ACME)]


# -- deals -----------------------------------------------------------------------------------


async def test_get_deal_with_lines_and_exact_money(client: SalesforceClient) -> None:
    deal = await client.get_deal(ACME_PLATFORM)
    assert deal.customer_id == ACME
    assert deal.won and deal.closed
    assert deal.currency == "USD"
    assert deal.legal_entity == "US01"
    assert deal.amount == 50_000 + 20 * 2_500 + 250_000
    lines = {line.product_code: line for line in deal.lines}
    assert lines["SEAT"].quantity == 20
    assert lines["SEAT"].unit_amount == 2_500
    assert lines["SEAT"].total_amount == 50_000
    assert sum(line.total_amount for line in deal.lines) == deal.amount
    with pytest.raises(UpstreamNotFound):
        await client.get_deal(seeded_id("Opportunity", "missing"))


async def test_won_deals_since_watermark_and_write_back(client: SalesforceClient) -> None:
    won = await client.list_won_deals(since=datetime(2026, 10, 21, tzinfo=UTC))
    assert [d.name for d in won] == ["Acme - Platform rollout", "Umbrella - Platform"]
    assert all(d.won for d in won)
    all_won = await client.list_won_deals(since=datetime(2026, 1, 1, tzinfo=UTC), limit=2)
    assert [d.name for d in all_won] == ["Globex - Enterprise annual", "Acme - Platform rollout"]
    await client.update_deal(
        ACME_PLATFORM,
        DealPatch(erp_order_number="SO-1001", billing_subscription_id="sub_123",
                  integration_status="synced"),
    )
    deal = await client.get_deal(ACME_PLATFORM)
    assert (deal.erp_order_number, deal.billing_subscription_id, deal.integration_status) == (
        "SO-1001", "sub_123", "synced",
    )
    assert deal.updated_at is not None
    later = await client.list_won_deals(since=datetime(2026, 11, 20, tzinfo=UTC))
    assert [d.id for d in later] == [ACME_PLATFORM]


# -- catalog ---------------------------------------------------------------------------------


async def test_products_and_prices(client: SalesforceClient) -> None:
    products = await client.list_products()
    assert [p.code for p in products] == ["API-CALLS", "ONBOARD", "PLAT-ENT", "PLAT-STD", "SEAT"]
    assert {p.code: p.billing_interval for p in products}["PLAT-ENT"] == "year"
    assert {p.code: p.usage_metric for p in products} == {
        "API-CALLS": "api_calls", "ONBOARD": None, "PLAT-ENT": None, "PLAT-STD": None,
        "SEAT": None,
    }
    prices = await client.list_prices(currency="EUR")
    assert {p.product_code: p.unit_amount for p in prices} == {
        "API-CALLS": 2, "ONBOARD": 230_000, "PLAT-ENT": 1_100_000, "PLAT-STD": 46_000,
        "SEAT": 2_300,
    }
    assert {p.product_code: p.recurring_interval for p in prices}["ONBOARD"] is None
    assert {p.product_code for p in prices if p.usage_type == "metered"} == {"API-CALLS"}
    assert len(await client.list_prices()) == 10


# -- quota, auth and faults ------------------------------------------------------------------


async def test_api_usage_follows_every_answer(served: Served, client: SalesforceClient) -> None:
    seen: list[tuple[int, int]] = []
    watching = SalesforceClient(client._http, sandbox_credentials(served.url),
                                on_usage=lambda used, limit: seen.append((used, limit)))
    assert watching.api_usage is None
    await watching.get_account(ACME)
    assert watching.api_usage == served.emulator.api_usage
    assert seen[-1] == (served.emulator.api_usage[0], 15000)


async def test_quota_exhaustion_is_unavailable_until_tomorrow(
    served: Served, client: SalesforceClient
) -> None:
    served.emulator.state.quota.limit = 1
    try:
        await client.get_account(ACME)
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get_account(ACME)
    finally:
        served.emulator.state.quota.limit = 15000
    assert caught.value.status == 403
    assert caught.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 86400


async def test_expired_token_is_refreshed_once(served: Served,
                                                 client: SalesforceClient) -> None:
    await client.get_account(ACME)
    served.emulator.revoke_tokens()
    assert (await client.get_account(ACME)).id == ACME


async def test_bad_credentials_are_auth_failed(served: Served, http: httpx.AsyncClient) -> None:
    bad = SalesforceCredentials(login_url=served.url, client_id="erpgw-sandbox",
                                client_secret="wrong")
    with pytest.raises(UpstreamAuthFailed) as caught:
        await SalesforceClient(http, bad).get_account(ACME)
    assert caught.value.code == "invalid_client"


async def test_jwt_bearer_credentials_work_and_a_wrong_key_fails(
    served: Served, http: httpx.AsyncClient
) -> None:
    good = SalesforceCredentials(
        login_url=served.url, client_id="erpgw-sandbox", username="integration@example.com",
        private_key_pem=served.emulator.sandbox_jwt_private_key_pem,
    )
    assert (await SalesforceClient(http, good).get_account(ACME)).id == ACME
    other = SalesforceEmulator(seed=False).sandbox_jwt_private_key_pem
    wrong = SalesforceCredentials(
        login_url=served.url, client_id="erpgw-sandbox", username="integration@example.com",
        private_key_pem=other,
    )
    with pytest.raises(UpstreamAuthFailed):
        await SalesforceClient(http, wrong).get_account(ACME)


async def test_outage_is_unavailable(served: Served, http: httpx.AsyncClient,
                                     client: SalesforceClient) -> None:
    await http.post("/_emulator/faults", json={"outage": True})
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.get_account(ACME)
    assert caught.value.status == 503
    assert (await http.get("/_emulator/faults")).json()["counters"]["outage"] >= 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_unavailable(served: Served, http: httpx.AsyncClient,
                                             client: SalesforceClient, status: int) -> None:
    await client.get_account(ACME)  # token first, so the fault hits a data call
    await http.post("/_emulator/faults", json={"error_rate": 1.0, "error_status": status})
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.get_account(ACME)
    assert caught.value.status == status
    assert (await http.get("/_emulator/faults")).json()["counters"]["error"] == 1


async def test_rate_limit_carries_retry_after(served: Served, http: httpx.AsyncClient,
                                              client: SalesforceClient) -> None:
    await http.post("/_emulator/faults", json={"rate_limit": True, "retry_after": 17})
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.list_products()
    assert caught.value.status == 429
    assert caught.value.retry_after == 17
    assert (await http.get("/_emulator/faults")).json()["counters"]["rate_limit"] == 1


async def test_latency_beyond_timeout_is_unavailable_timeout(served: Served,
                                                             http: httpx.AsyncClient) -> None:
    # The token request is not delayed, but it shares the client's timeout: wide enough for a
    # loaded machine (0.2 s timed the token out once, before the delayed request was sent).
    await http.post("/_emulator/faults",
                    json={"latency_ms": 3_000, "path": "/services/data/*"})
    async with httpx.AsyncClient(base_url=served.url, timeout=1.5) as impatient:
        client = SalesforceClient(impatient, sandbox_credentials(served.url))
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get_account(ACME)
    assert caught.value.timeout is True
    assert (await http.get("/_emulator/faults")).json()["counters"]["latency"] == 1


async def test_not_found_fault_is_upstream_not_found(served: Served, http: httpx.AsyncClient,
                                                     client: SalesforceClient) -> None:
    await client.get_account(ACME)
    await http.post("/_emulator/faults",
                    json={"error_rate": 1.0, "error_status": 404, "path": "/services/data/*"})
    with pytest.raises(UpstreamNotFound):
        await client.get_deal(ACME_PLATFORM)


async def test_reset_restores_the_seed(served: Served, http: httpx.AsyncClient,
                                       client: SalesforceClient) -> None:
    await client.update_account(ACME, CustomerPatch(legal_name="Renamed"))
    await http.post("/_emulator/reset", json={})
    assert (await client.get_account(ACME)).legal_name == "Acme Robotics Inc."
