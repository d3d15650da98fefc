"""Quote-to-cash against the four emulators through the gateway's real app: a won deal becomes
one customer everywhere, one subscription, one sales order and a write-back, whatever the
duplicates, vendor faults and operator retries on the way. Assertions read the vendors' own
state (their APIs, or the vendor clients the gateway wired)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from process_apis.customer_master.flow import canonical_customer_id
from process_apis.customer_master.routes import DEMO_ACCOUNT_ID
from process_apis.quote_to_cash.routes import DEMO_OPPORTUNITY_ID
from tests.process_apis.emulator_processes import emulator_processes, gateway_env
from tests.process_apis.q2c_harness import Harness, harness
from tests.process_apis.sandbox import StripeAccount, seeded_id
from tests.support.processes import create_client, start_gateway
from tests.support.waiting import eventually


@pytest.fixture
async def q2c(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(tmp_path) as opened:
        yield opened


EXPECTED = {
    "acme-platform": {
        "account": "acme", "name": "Acme Robotics Inc.", "entity": "US01", "currency": "USD",
        "terms": 30, "recurring": {"PLAT-STD": 1, "SEAT": 20}, "one_time": {"ONBOARD": 1},
        "total": 50_000 + 20 * 2_500 + 250_000,
    },
    "globex-enterprise": {
        "account": "globex", "name": "Globex Logistik GmbH", "entity": "DE01",
        "currency": "EUR", "terms": 14, "recurring": {"PLAT-ENT": 1}, "one_time": {"ONBOARD": 1},
        "total": 1_100_000 + 230_000,
    },
}


@pytest.mark.parametrize("deal_key", ["acme-platform", "globex-enterprise"])
async def test_books_a_won_deal_in_every_platform(q2c: Harness, deal_key: str) -> None:
    expected: dict[str, Any] = EXPECTED[deal_key]
    opportunity = seeded_id("Opportunity", deal_key)
    account = seeded_id("Account", expected["account"])
    flow_id = f"q2c:{opportunity}"

    response = await q2c.book(opportunity)

    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/process/v1/flows/{flow_id}"
    flow = await q2c.wait(flow_id, "succeeded", "failed")
    assert flow["status"] == "succeeded", flow
    steps = {step["name"]: step for step in flow["steps"]}
    assert all(step["status"] == "succeeded" for step in flow["steps"])
    assert steps["create_billing_customer"]["system"] == "stripe"
    assert steps["create_erp_customer"]["system"] == "netsuite"
    assert steps["link_support_organization"]["system"] == "zendesk"
    assert steps["book_sales_order"]["system"] == "netsuite"
    assert steps["write_back_opportunity"]["system"] == "salesforce"

    # Stripe: one customer, named and tagged for the account; one subscription.
    customers = await q2c.stripe.customers_of(account)
    assert len(customers) == 1
    customer = customers[0]
    assert customer["name"] == expected["name"]
    assert customer["metadata"]["legal_entity"] == expected["entity"]
    assert customer["metadata"]["crm_account_id"] == account
    assert customer["metadata"]["canonical_id"] == canonical_customer_id(account)
    assert steps["create_billing_customer"]["external_ids"] == {"stripe_customer": customer["id"]}
    subscriptions = await q2c.stripe.objects("/v1/subscriptions", customer=customer["id"])
    assert len(subscriptions) == 1
    subscription = subscriptions[0]
    assert subscription["collection_method"] == "send_invoice"
    assert subscription["days_until_due"] == expected["terms"]
    assert subscription["metadata"]["deal_id"] == opportunity
    assert subscription["metadata"]["canonical_id"] == canonical_customer_id(account)
    assert subscription["currency"] == expected["currency"].lower()
    items = {
        item["price"]["metadata"]["product_code"]: item["quantity"]
        for item in subscription["items"]["data"]
    }
    assert items == expected["recurring"]
    charges = await q2c.stripe.objects("/v1/invoiceitems", customer=customer["id"])
    assert {c["price"]["metadata"]["product_code"]: c["quantity"] for c in charges} == (
        expected["one_time"]
    )
    # The one-time services went onto the subscription's first invoice.
    invoices = await q2c.stripe.objects("/v1/invoices", customer=customer["id"])
    assert len(invoices) == 1
    assert {c["invoice"] for c in charges} == {invoices[0]["id"]}

    # NetSuite: one customer (externalId = canonical id) and the sales order.
    erp = q2c.port("netsuite")
    erp_customer = await erp.find_customer(external_id=canonical_customer_id(account))
    assert erp_customer is not None
    assert erp_customer.legal_entity == expected["entity"]
    assert len((await erp.list_customers(legal_entity=expected["entity"])).data) == 1
    number = steps["book_sales_order"]["external_ids"]["netsuite_tran_id"]
    [order] = await q2c.sales_orders(number)
    assert order["legal_entity"] == expected["entity"]
    assert order["currency"] == expected["currency"]
    assert order["customer_id"] == erp_customer.id
    assert order["external_id"] == flow_id
    assert order["total"] == expected["total"]
    lines = Counter({line["product_code"]: line["quantity"] for line in order["lines"]})
    assert lines == Counter({**expected["recurring"], **expected["one_time"]})

    # Zendesk: the seeded organization now carries the canonical id.
    organization = await q2c.port("zendesk").find_organization(canonical_customer_id(account))
    assert organization is not None
    assert organization.legal_name == expected["name"]
    assert organization.refs["salesforce"] == account

    # Salesforce: the opportunity shows the order, the subscription and its status.
    deal = await q2c.port("salesforce").get_deal(opportunity)
    assert deal.erp_order_number == number
    assert deal.billing_subscription_id == subscription["id"]
    assert deal.integration_status == "synced"


async def test_books_a_deal_of_one_time_services_on_an_invoice(q2c: Harness) -> None:
    account = seeded_id("Account", "initech")
    opportunity = await q2c.sf.deal(
        account, [("ONBOARD", 2)], currency="USD", name="Initech - onboarding"
    )

    response = await q2c.book(opportunity)

    flow = await q2c.wait(response.json()["id"], "succeeded", "failed")
    assert flow["status"] == "succeeded", flow
    [customer] = await q2c.stripe.customers_of(account)
    assert await q2c.stripe.objects("/v1/subscriptions", customer=customer["id"]) == []
    [invoice] = await q2c.stripe.objects("/v1/invoices", customer=customer["id"])
    assert invoice["collection_method"] == "send_invoice"
    assert invoice["total"] == 2 * 250_000
    [charge] = await q2c.stripe.objects("/v1/invoiceitems", customer=customer["id"])
    assert charge["invoice"] == invoice["id"]
    deal = await q2c.port("salesforce").get_deal(opportunity)
    assert deal.billing_subscription_id is None
    assert deal.integration_status == "synced"


async def test_refuses_a_deal_listing_every_problem(q2c: Harness) -> None:
    # Open, without lines, and in a currency the US entity does not bill in.
    acme = seeded_id("Account", "acme")
    opportunity = await q2c.sf.deal(
        acme, [], currency="GBP", name="Acme - pounds", stage="Prospecting"
    )

    response = await q2c.book(opportunity)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problems = {error["pointer"]: error["detail"] for error in response.json()["errors"]}
    assert set(problems) == {"/stage", "/lines", "/currency"}
    assert "not won" in problems["/stage"]
    assert "US01" in problems["/currency"]
    listed = await q2c.client.get(
        "/process/v1/flows", params={"type": "quote_to_cash"}, headers=q2c.headers
    )
    assert listed.json()["data"] == []


async def test_refuses_an_open_deal(q2c: Harness) -> None:
    response = await q2c.book(seeded_id("Opportunity", "acme-expansion"))

    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/stage"]


async def test_refuses_a_won_deal_without_lines(q2c: Harness) -> None:
    opportunity = await q2c.sf.deal(
        seeded_id("Account", "acme"), [], currency="USD", name="Acme - empty"
    )

    response = await q2c.book(opportunity)

    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/lines"]


async def test_refuses_a_product_without_a_price_in_the_deal_currency(q2c: Harness) -> None:
    # A product priced in EUR when the deal was made, whose EUR price was retired since.
    await q2c.sf.product("LEGACY", "Legacy Add-on", "year", {"EUR": Decimal("90.00")})
    globex = seeded_id("Account", "globex")
    opportunity = await q2c.sf.deal(
        globex, [("PLAT-ENT", 1), ("LEGACY", 2)], currency="EUR", name="Globex - legacy"
    )
    await q2c.sf.update(
        "PricebookEntry", await q2c.sf.price_entry("LEGACY", "EUR"), {"IsActive": False}
    )

    response = await q2c.book(opportunity)

    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["pointer"] for e in errors] == ["/lines/1/product_code"]
    assert "LEGACY has no active price in EUR" in errors[0]["detail"]


async def test_refuses_an_account_without_billing_country_or_legal_entity(
    q2c: Harness,
) -> None:
    nowhere = await q2c.sf.create(
        "Account", {"Name": "Nowhere Ltd", "CurrencyIsoCode": "USD", "Legal_Entity__c": "US01"}
    )
    stateless = await q2c.sf.create(
        "Account", {"Name": "Stateless Ltd", "CurrencyIsoCode": "USD", "BillingCountry": "US"}
    )
    no_country = await q2c.sf.deal(nowhere, [("SEAT", 5)], currency="USD", name="Nowhere")
    no_entity = await q2c.sf.deal(stateless, [("SEAT", 5)], currency="USD", name="Stateless")

    first, second = await q2c.book(no_country), await q2c.book(no_entity)

    assert first.status_code == 422 and second.status_code == 422
    assert [e["pointer"] for e in first.json()["errors"]] == ["/account/billing_address/country"]
    assert {e["pointer"] for e in second.json()["errors"]} == {
        "/account/legal_entity", "/legal_entity"
    }


async def test_unknown_opportunity_is_not_found(q2c: Harness) -> None:
    response = await q2c.book("006000000000000AAA")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_trigger_needs_an_idempotency_key(q2c: Harness) -> None:
    response = await q2c.client.post(
        "/process/v1/quote-to-cash",
        json={"opportunity_id": seeded_id("Opportunity", "acme-platform")},
        headers=q2c.headers,
    )

    assert response.status_code == 400


async def test_hundred_deliveries_of_one_deal_book_it_once(tmp_path: Path) -> None:
    opportunity = seeded_id("Opportunity", "acme-platform")
    account = seeded_id("Account", "acme")
    flow_id = f"q2c:{opportunity}"
    # The poller delivers the same (seeded, won) deal a third way.
    async with harness(
        tmp_path, ERPGW_CRM_POLL_SECONDS="0.2", ERPGW_CRM_POLL_SINCE="2026-01-01T00:00:00Z"
    ) as q2c:
        distinct = [q2c.book(opportunity) for _ in range(50)]
        same_key = [q2c.book(opportunity, key="one-key-for-all") for _ in range(50)]

        responses = await asyncio.gather(*distinct, *same_key)

        statuses = Counter(r.status_code for r in responses)
        assert set(statuses) <= {202, 409}, statuses
        assert statuses[202] >= 51
        assert {r.headers["location"] for r in responses if r.status_code == 202} == {
            f"/process/v1/flows/{flow_id}"
        }
        await q2c.wait(flow_id, "succeeded")
        await _wait_until_polled(q2c)

        [customer] = await q2c.stripe.customers_of(account)
        assert len(await q2c.stripe.objects("/v1/subscriptions", customer=customer["id"])) == 1
        assert len(await q2c.stripe.objects("/v1/invoiceitems", customer=customer["id"])) == 1
        erp = q2c.port("netsuite")
        assert len((await erp.list_customers(legal_entity="US01")).data) == 1
        erp_customer = await erp.find_customer(external_id=canonical_customer_id(account))
        orders = await erp.list_sales_orders(customer_id=erp_customer.id)
        assert len(orders.data) == 1
        write_backs = await q2c.calls(flow_id, "write_back_opportunity")
        assert [(call.method, call.status) for call in write_backs] == [("PATCH", 204)]
        listed = await q2c.client.get(
            "/process/v1/flows", params={"business_key": flow_id}, headers=q2c.headers
        )
        assert len(listed.json()["data"]) == 1


async def test_poller_books_won_deals_and_skips_ones_it_cannot(tmp_path: Path) -> None:
    async with harness(
        tmp_path, ERPGW_CRM_POLL_SECONDS="0.2", ERPGW_CRM_POLL_SINCE="2026-01-01T00:00:00Z"
    ) as q2c:
        seeded = [
            f"q2c:{seeded_id('Opportunity', key)}"
            for key in ("acme-platform", "globex-enterprise", "umbrella-platform")
        ]
        # The seeded won deals are booked without anybody asking.
        for flow_id in seeded:
            await q2c.wait(flow_id, "succeeded", within=60)
        acme = seeded_id("Account", "acme")
        empty = await q2c.sf.deal(acme, [], currency="USD", name="Acme - nothing")
        later = await q2c.sf.deal(acme, [("SEAT", 7)], currency="USD", name="Acme - later")

        flow = await q2c.wait(f"q2c:{later}", "succeeded", within=60)

        assert flow["type"] == "quote_to_cash"
        missing = await q2c.client.get(f"/process/v1/flows/q2c:{empty}", headers=q2c.headers)
        assert missing.status_code == 404
        # The watermark (kept in the database) moves on to the written-back deal.
        deal = await q2c.port("salesforce").get_deal(later)
        poller = q2c.gateway.quote_to_cash.poller
        assert deal.updated_at is not None
        updated_at = deal.updated_at
        await eventually(
            poller.watermark, until=lambda mark: mark >= updated_at, timeout=5.0,
            what="the watermark past the written-back deal",
        )
        flows = await q2c.client.get(
            "/process/v1/flows", params={"type": "quote_to_cash"}, headers=q2c.headers
        )
        assert len(flows.json()["data"]) == 4


async def _wait_until_polled(q2c: Harness) -> None:
    """Until the poller has moved its watermark past the seeded won deals."""
    service = q2c.gateway.quote_to_cash
    assert service.poller is not None
    await eventually(
        service.poller.watermark, until=lambda mark: mark.month > 1, timeout=10.0,
        what="the poller's first poll",
    )


async def test_every_flow_finishes_while_each_platform_fails_thirty_percent(
    q2c: Harness,
) -> None:
    vendors = ("salesforce", "stripe", "zendesk", "netsuite")
    served: Counter[str] = Counter()

    async def round_of(faults: dict[str, Any], deals: list[str]) -> None:
        flows = []
        for deal in deals:
            response = await q2c.book(deal)
            assert response.status_code == 202, response.text
            flows.append(response.json()["id"])
        for vendor in vendors:
            await q2c.set_faults(vendor, **faults)
        finished = await asyncio.gather(*(q2c.wait(f, "succeeded", within=90) for f in flows))
        assert [flow["status"] for flow in finished] == ["succeeded"] * len(flows)
        for vendor in vendors:
            counters = await q2c.fault_counters(vendor)
            served[vendor] += counters["error"]
            await q2c.set_faults(vendor)

    acme, globex = seeded_id("Account", "acme"), seeded_id("Account", "globex")
    more = [
        await q2c.sf.deal(acme, [("SEAT", 2)], currency="USD", name="Acme - two seats"),
        await q2c.sf.deal(globex, [("PLAT-ENT", 1)], currency="EUR", name="Globex - renewal"),
        await q2c.sf.deal(acme, [("ONBOARD", 1)], currency="USD", name="Acme - onboarding"),
    ]
    # 5xx on every platform while customers are created and deals booked.
    await round_of(
        {"error_rate": 0.3, "error_status": 503},
        [seeded_id("Opportunity", "acme-platform"), seeded_id("Opportunity", "globex-enterprise"),
         *more[:2]],
    )
    # 429 with Retry-After on every platform.
    umbrella = seeded_id("Opportunity", "umbrella-platform")
    await round_of({"error_rate": 0.3, "error_status": 429, "retry_after": 1}, [umbrella, more[2]])
    # The emulators draw faults from a seeded generator: every platform served some.
    assert all(served[vendor] > 0 for vendor in vendors), served

    # A platform slower than the gateway's time limit: the subscription call times out
    # until the platform recovers.
    late = await q2c.sf.deal(
        seeded_id("Account", "acme"), [("SEAT", 3)], currency="USD", name="Acme - more seats"
    )
    response = await q2c.book(late)
    await q2c.set_faults("stripe", latency_ms=4_500, path="/v1/subscriptions*")
    await eventually(
        lambda: q2c.fault_counters("stripe"), until=lambda counters: counters["latency"] >= 1,
        timeout=20.0, what="a slow subscription call",
    )
    # The slow platform stays slow past one whole call (4.5 s), so the call times out.
    await asyncio.sleep(4.5)
    assert (await q2c.fault_counters("stripe"))["latency"] >= 1
    await q2c.set_faults("stripe")
    flow = await q2c.wait(response.json()["id"], "succeeded", "failed", within=90)
    assert flow["status"] == "succeeded", flow
    subscribe = next(s for s in flow["steps"] if s["name"] == "subscribe_to_recurring_prices")
    calls = await q2c.calls(flow["id"], "subscribe_to_recurring_prices")
    assert any(call.error and "timeout" in call.error for call in calls), calls
    assert subscribe["status"] == "succeeded"
    # Nothing was created twice on the way.
    for key, expected in (("acme", 3), ("globex", 2), ("umbrella", 1)):
        [customer] = await q2c.stripe.customers_of(seeded_id("Account", key))
        subscriptions = await q2c.stripe.objects("/v1/subscriptions", customer=customer["id"])
        assert len(subscriptions) == expected


async def test_failed_step_waits_for_finance_and_retry_resumes_from_it(q2c: Harness) -> None:
    opportunity = seeded_id("Opportunity", "acme-platform")
    account = seeded_id("Account", "acme")
    flow_id = f"q2c:{opportunity}"
    # NetSuite refuses the sales order (a 400 a retry cannot fix).
    await q2c.set_faults(
        "netsuite", error_rate=1.0, error_status=400, path="/services/rest/record/v1/salesOrder*"
    )

    await q2c.book(opportunity)

    failed = await q2c.wait(flow_id, "failed")
    assert failed["steps"][-1]["name"] == "book_sales_order"
    page = await q2c.client.get(
        "/process/v1/exceptions", params={"status": "open"}, headers=q2c.headers
    )
    [exception] = [e for e in page.json()["data"] if e["flow_id"] == flow_id]
    assert (exception["step"], exception["system"]) == ("book_sales_order", "netsuite")
    assert exception["owner"] == "finance"
    assert exception["error_class"] == "UpstreamInvalid"

    await q2c.set_faults("netsuite")
    retried = await q2c.client.post(
        f"/process/v1/exceptions/{exception['id']}/retry",
        headers={**q2c.headers, "Idempotency-Key": "retry-q2c-1"},
    )

    assert retried.status_code == 202, retried.text
    done = await q2c.wait(flow_id, "succeeded")
    attempts = {step["name"]: step["attempts"] for step in done["steps"]}
    assert attempts.pop("book_sales_order") == 2
    assert set(attempts.values()) == {1}
    [customer] = await q2c.stripe.customers_of(account)
    assert len(await q2c.stripe.objects("/v1/subscriptions", customer=customer["id"])) == 1
    assert len(await q2c.stripe.objects("/v1/invoiceitems", customer=customer["id"])) == 1
    erp = q2c.port("netsuite")
    erp_customer = await erp.find_customer(external_id=canonical_customer_id(account))
    assert len((await erp.list_sales_orders(customer_id=erp_customer.id)).data) == 1
    deal = await q2c.port("salesforce").get_deal(opportunity)
    assert deal.integration_status == "synced"


@pytest.mark.slow
async def test_flow_killed_mid_step_finishes_after_restart_creating_nothing_twice(
    tmp_path: Path,
) -> None:
    opportunity = seeded_id("Opportunity", "acme-platform")
    account = seeded_id("Account", "acme")
    flow_id = f"q2c:{opportunity}"
    with emulator_processes(tmp_path) as urls:
        env = {
            "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
            "ERPGW_VAR_DIR": str(tmp_path),
            "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
            "ERPGW_EXECUTOR_ID": "q2c-kill-test",
            "ERPGW_ISSUER": "http://gateway.test",
            "ERPGW_ACCESS_LOG": "false",
            **gateway_env(urls),
        }
        client = await asyncio.to_thread(
            create_client, env, scopes="process:write process:read erp:read", tier="gold"
        )
        async with httpx.AsyncClient(timeout=10) as http:
            netsuite = f"{urls['netsuite']}/_emulator/faults"
            # The sales order call hangs, so the flow sits in that step when it is killed.
            held = await http.post(
                netsuite, json={"latency_ms": 3_000, "path": "/services/rest/record/v1/salesOrder*"}
            )
            assert held.status_code == 200
            first = await asyncio.to_thread(start_gateway, env, tmp_path / "first.log")
            try:
                headers = await _token(http, first.base_url, client)
                response = await http.post(
                    f"{first.base_url}/process/v1/quote-to-cash",
                    json={"opportunity_id": opportunity},
                    headers={**headers, "Idempotency-Key": "kill-1"},
                )
                assert response.status_code == 202, response.text
                running = await _until_step_runs(http, first.base_url, headers, flow_id)
            finally:
                await asyncio.to_thread(first.kill)
            assert [s["name"] for s in running["steps"]][-1] == "book_sales_order"
            await http.post(netsuite, json={})

            second = await asyncio.to_thread(start_gateway, env, tmp_path / "second.log")
            try:
                headers = await _token(http, second.base_url, client)
                flow = await _until_finished(http, second.base_url, headers, flow_id)
                number = next(
                    s for s in flow["steps"] if s["name"] == "book_sales_order"
                )["external_ids"]["netsuite_tran_id"]
                orders = await http.get(
                    f"{second.base_url}/system/erp/v1/sales-orders",
                    params={"number": number}, headers=headers,
                )
                customers = await http.get(
                    f"{second.base_url}/system/erp/v1/customers",
                    params={"legal_entity": "US01"}, headers=headers,
                )
            finally:
                await asyncio.to_thread(second.stop)
            stripe = StripeAccount(http, urls["stripe"])
            [customer] = await stripe.customers_of(account)
            subscriptions = await stripe.objects("/v1/subscriptions", customer=customer["id"])
            charges = await stripe.objects("/v1/invoiceitems", customer=customer["id"])

    assert flow["status"] == "succeeded", flow
    attempts = {step["name"]: step["attempts"] for step in flow["steps"]}
    # The killed step ran again; every step before it ran once.
    assert attempts.pop("book_sales_order") == 2
    assert set(attempts.values()) == {1}
    assert len(subscriptions) == 1 and len(charges) == 1
    assert len(orders.json()["data"]) == 1
    assert len(customers.json()["data"]) == 1


async def _token(http: httpx.AsyncClient, base_url: str, client: dict[str, str]) -> dict[str, str]:
    response = await http.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _until_step_runs(
    http: httpx.AsyncClient, base_url: str, headers: dict[str, str], flow_id: str
) -> dict[str, Any]:
    async def at_sales_order() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await http.get(f"{base_url}/process/v1/flows/{flow_id}", headers=headers)
        ).json()
        steps = body.get("steps", [])
        last = steps[-1] if steps else {}
        running = last.get("name") == "book_sales_order" and last.get("status") == "running"
        return body if running else None

    return await eventually(at_sales_order, timeout=15.0, what="the flow at the sales order")


async def _until_finished(
    http: httpx.AsyncClient, base_url: str, headers: dict[str, str], flow_id: str
) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await http.get(f"{base_url}/process/v1/flows/{flow_id}", headers=headers)
        ).json()
        return body if body.get("status") in ("succeeded", "failed") else None

    return await eventually(
        ended, timeout=60.0, interval=0.1, what="the flow finished after the restart"
    )


def test_documented_examples_are_the_sandbox_demo_deal() -> None:
    assert seeded_id("Opportunity", "acme-platform") == DEMO_OPPORTUNITY_ID
    assert seeded_id("Account", "acme") == DEMO_ACCOUNT_ID
