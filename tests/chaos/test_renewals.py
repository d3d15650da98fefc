"""Renewals on two gateway replicas sharing one PostgreSQL database and one Redis, the
emulators in their own processes. Six scans run at once (three on each replica, each under its
own Idempotency-Key, all for the same day): every contract ending in the window has exactly one
renewal opportunity, renewing its deal, closing on the contract's last day and selling the
subscription's current items at their current prices; a contract ending later has none. A
renewal won is then booked on one replica while the other replays the request, books it under
another key and scans again: one subscription schedule with one renewal phase, one new
contract, one ERP sales order at the renewal's prices and one write-back to the opportunity.
Another renewal, lost, is booked on both replicas at once: one flow ends the subscription at
the contract's end and shows churn.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chaos.cluster import Replicas, bearer_of, chaos_env, two_replicas
from tests.process_apis.emulator_processes import emulator_processes
from tests.process_apis.sandbox import STRIPE_KEY, SalesforceOrg, StripeAccount
from tests.support.processes import create_client
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]

SCOPES = "process:write process:read ops:read crm:read erp:read"
SCANS_PER_REPLICA = 3
LEAD_DAYS = 60
ENDED = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class Sold:
    """A won deal to book: its account's entity and currency, its term and its lines
    (product, quantity, sold unit price in minor units)."""

    name: str
    entity: str
    currency: str
    country: str
    term_months: int
    lines: tuple[tuple[str, int, int], ...]


DEALS = (
    Sold(
        "Harbor Freight Lines",
        "US01",
        "USD",
        "US",
        12,
        (("PLAT-STD", 1, 40_000), ("SEAT", 10, 2_200)),
    ),
    Sold("Blue Mesa Analytics", "US01", "USD", "US", 12, (("SEAT", 7, 2_500),)),
    Sold(
        "Isar Maschinenbau GmbH",
        "DE01",
        "EUR",
        "DE",
        12,
        (("PLAT-STD", 1, 46_000), ("SEAT", 5, 2_100)),
    ),
    Sold("Long Haul Storage", "US01", "USD", "US", 24, (("SEAT", 3, 2_500),)),
)
"""The first three end in the scan's window; the last (two years) does not."""


@dataclass
class Cluster:
    http: httpx.AsyncClient
    replicas: Replicas
    headers: dict[str, str]
    sf: SalesforceOrg
    stripe: StripeAccount
    stripe_url: str

    async def stripe_get(self, path: str) -> dict[str, Any]:
        """One object of Stripe's own API."""
        response = await self.http.get(
            f"{self.stripe_url}{path}", headers={"Authorization": f"Bearer {STRIPE_KEY}"}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def post(self, replica: int, path: str, body: Any, key: str) -> httpx.Response:
        """A POST that waits out a 409 (the same key in flight on either replica) and answers
        what the replica finally says."""
        for _ in range(120):
            response = await self.http.post(
                f"{self.replicas.url(replica)}{path}",
                json=body,
                headers={**self.headers, "Idempotency-Key": key},
            )
            assert response.status_code != 500, response.text
            if response.status_code != 409:
                return response
            assert response.headers["content-type"] == "application/problem+json"
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
        raise AssertionError(f"{path} under {key} stayed in flight")

    async def get(self, replica: int, path: str, **params: str) -> dict[str, Any]:
        response = await self.http.get(
            f"{self.replicas.url(replica)}{path}", params=params, headers=self.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def flow_ended(self, flow_id: str) -> dict[str, Any]:
        async def ended() -> dict[str, Any] | None:
            flow = await self.get(1, f"/process/v1/flows/{flow_id}")
            return flow if flow["status"] in ENDED else None

        flow: dict[str, Any] = await eventually(ended, timeout=120, what=f"{flow_id} ended")
        return flow


async def test_two_replicas_scanning_at_once_open_one_renewal_each_and_book_it_once(
    tmp_path: Path, database: str, redis_url: str
) -> None:
    with emulator_processes(tmp_path) as urls:
        env = chaos_env(
            database,
            tmp_path,
            urls,
            ERPGW_REDIS_URL=redis_url,
            ERPGW_RECONCILE_INTERVAL_SECONDS="0",
            ERPGW_RENEWAL_SCAN_INTERVAL_SECONDS="0",
            ERPGW_USAGE_FLUSH_SECONDS="0",
        )
        client = await asyncio.to_thread(create_client, env, scopes=SCOPES, tier="gold")
        async with two_replicas(env, tmp_path, http_timeout=60) as (replicas, http):
            cluster = Cluster(
                http=http,
                replicas=replicas,
                headers=await bearer_of(http, replicas.url(0), client),
                sf=SalesforceOrg(http, urls["salesforce"]),
                stripe=StripeAccount(http, urls["stripe"]),
                stripe_url=urls["stripe"],
            )
            await _scan_and_book(cluster)


async def _scan_and_book(cluster: Cluster) -> None:
    deals = [await _sell(cluster, sold) for sold in DEALS]
    booked = await asyncio.gather(
        *(
            cluster.post(
                i % 2, "/process/v1/quote-to-cash", {"opportunity_id": d}, uuid.uuid4().hex
            )
            for i, d in enumerate(deals)
        )
    )
    for response in booked:
        assert response.status_code == 202, response.text
        flow = await cluster.flow_ended(response.json()["id"])
        assert flow["status"] == "succeeded", flow
    contracts = {d: await _contract_of(cluster, d) for d in deals}
    ending = [d for d, sold in zip(deals, DEALS, strict=True) if sold.term_months == 12]
    [later] = [d for d in deals if d not in ending]
    ends = {date.fromisoformat(contracts[d]["end_date"]) for d in ending}
    assert len(ends) == 1, ends  # closed the same day, the same term
    [end] = ends
    as_of = end - timedelta(days=30)

    scans = await asyncio.gather(
        *(
            cluster.post(
                index % 2,
                "/process/v1/renewals/scan",
                {"as_of": as_of.isoformat(), "lead_days": LEAD_DAYS},
                uuid.uuid4().hex,
            )
            for index in range(2 * SCANS_PER_REPLICA)
        )
    )
    for scan in scans:
        assert scan.status_code == 202, scan.text
        flow = await cluster.flow_ended(scan.json()["scan_id"])
        assert flow["status"] == "succeeded", flow
    answered: dict[str, set[str]] = {}
    made: Counter[str] = Counter()
    for scan in scans:
        for opened in scan.json()["renewals"]:
            answered.setdefault(opened["contract_id"], set()).add(opened["opportunity_id"])
            made[opened["contract_id"]] += opened["created"]
    assert all(len(ids) == 1 for ids in answered.values()), answered
    # Every scan answers each contract's renewal; exactly one of them made it.
    for deal in ending:
        assert made[contracts[deal]["id"]] == 1, made
    assert contracts[later]["id"] not in answered
    assert not await cluster.sf.query(f"SELECT Id FROM Opportunity WHERE Renewal_Of__c = '{later}'")

    renewals = {}
    for deal in ending:
        renewals[deal] = await _assert_one_renewal(cluster, deal, contracts[deal], end)
        assert answered.get(contracts[deal]["id"], {renewals[deal]}) == {renewals[deal]}

    await _book_won_on_both_replicas(cluster, ending[0], renewals[ending[0]], end)
    await _book_lost_on_both_replicas(cluster, ending[1], renewals[ending[1]], end)


async def _sell(cluster: Cluster, sold: Sold) -> str:
    """A new account and its won deal at the sold prices, with its contract term."""
    account = await cluster.sf.create(
        "Account",
        {
            "Name": sold.name,
            "BillingStreet": "1 Test Street",
            "BillingCity": "Testville",
            "BillingPostalCode": "12345",
            "BillingCountry": sold.country,
            "CurrencyIsoCode": sold.currency,
            "Legal_Entity__c": sold.entity,
            "Payment_Terms_Days__c": 30,
        },
    )
    opportunity = await cluster.sf.create(
        "Opportunity",
        {
            "AccountId": account,
            "Name": f"{sold.name} - Platform",
            "StageName": "Prospecting",
            "CloseDate": date.today().isoformat(),
            "CurrencyIsoCode": sold.currency,
            "Pricebook2Id": await cluster.sf.standard_pricebook(),
            "Contract_Term_Months__c": sold.term_months,
        },
    )
    for code, quantity, unit in sold.lines:
        await cluster.sf.create(
            "OpportunityLineItem",
            {
                "OpportunityId": opportunity,
                "PricebookEntryId": await cluster.sf.price_entry(code, sold.currency),
                "Quantity": quantity,
                "UnitPrice": Decimal(unit).scaleb(-2),
            },
        )
    await cluster.sf.update("Opportunity", opportunity, {"StageName": "Closed Won"})
    return opportunity


async def _contract_of(cluster: Cluster, deal: str) -> dict[str, Any]:
    account = (await cluster.sf.get("Opportunity", deal))["AccountId"]
    listed = await cluster.get(0, "/system/crm/v1/contracts", account_id=account)
    contracts: list[dict[str, Any]] = [c for c in listed["data"] if c["deal_id"] == deal]
    [contract] = contracts
    assert contract["status"] == "activated", contract
    return contract


async def _subscription_of(cluster: Cluster, deal: str) -> dict[str, Any]:
    subscription_id = (await cluster.sf.get("Opportunity", deal))["Billing_Subscription_Id__c"]
    [subscription] = [
        s for s in await cluster.stripe.objects("/v1/subscriptions") if s["id"] == subscription_id
    ]
    return subscription


def _current_items(subscription: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(product, quantity, unit price) of each of the subscription's items as Stripe bills it."""
    return sorted(
        (
            item["price"]["metadata"].get("product_code") or item["metadata"]["product_code"],
            int(item["quantity"]),
            int(item["price"]["unit_amount"]),
        )
        for item in subscription["items"]["data"]
    )


async def _assert_one_renewal(
    cluster: Cluster, deal: str, contract: dict[str, Any], end: date
) -> str:
    """The contract's one renewal opportunity, checked against the subscription it renews."""
    rows = await cluster.sf.query(
        "SELECT Id, Type, StageName, CloseDate, CurrencyIsoCode, Renewal_Of__c "
        f"FROM Opportunity WHERE Renewal_Of__c = '{deal}'"
    )
    assert len(rows) == 1, rows
    [renewal] = rows
    assert (renewal["Type"], renewal["StageName"], renewal["CloseDate"]) == (
        "Renewal",
        "Prospecting",
        end.isoformat(),
    )
    assert renewal["CurrencyIsoCode"] == contract["currency"]
    lines = await cluster.sf.query(
        "SELECT ProductCode, Quantity, UnitPrice FROM OpportunityLineItem "
        f"WHERE OpportunityId = '{renewal['Id']}'"
    )
    sold = sorted(
        (li["ProductCode"], int(li["Quantity"]), int(Decimal(str(li["UnitPrice"])).scaleb(2)))
        for li in lines
    )
    assert sold == _current_items(await _subscription_of(cluster, deal))
    assert sold == sorted(
        (li["product_code"], li["quantity"], li["unit_amount"]) for li in contract["lines"]
    )
    return str(renewal["Id"])


async def _book_won_on_both_replicas(cluster: Cluster, deal: str, renewal: str, end: date) -> None:
    """The customer renews with more seats at a lower price; replica 0 books it while replica
    1 replays the same request, books it under its own key and scans again."""
    [seat] = await cluster.sf.query(
        "SELECT Id FROM OpportunityLineItem "
        f"WHERE OpportunityId = '{renewal}' AND ProductCode = 'SEAT'"
    )
    await cluster.sf.update("OpportunityLineItem", seat["Id"], {"Quantity": 14, "UnitPrice": 20})
    await cluster.sf.update("Opportunity", renewal, {"StageName": "Closed Won"})
    subscription_before = await _subscription_of(cluster, deal)
    path = f"/process/v1/renewals/{renewal}/book"
    key = uuid.uuid4().hex
    first, replayed, other_key, scan = await asyncio.gather(
        cluster.post(0, path, None, key),
        cluster.post(1, path, None, key),
        cluster.post(1, path, None, uuid.uuid4().hex),
        cluster.post(
            1,
            "/process/v1/renewals/scan",
            {"as_of": (end - timedelta(days=29)).isoformat(), "lead_days": LEAD_DAYS},
            uuid.uuid4().hex,
        ),
    )
    for response in (first, replayed, other_key, scan):
        assert response.status_code == 202, response.text
    flow_id = f"renewal-won:{renewal}"
    assert {first.json()["id"], replayed.json()["id"], other_key.json()["id"]} == {flow_id}
    # Sent at once, either may arrive first: one books, the other is its replay.
    assert sorted(r.headers.get("idempotent-replayed", "") for r in (first, replayed)) == [
        "",
        "true",
    ]
    flow = await cluster.flow_ended(flow_id)
    assert flow["status"] == "succeeded", flow
    assert [s["status"] for s in flow["steps"] if s["name"] == "write_back_opportunity"] == [
        "succeeded"
    ]
    assert (await cluster.flow_ended(scan.json()["scan_id"]))["status"] == "succeeded"

    sold = [("PLAT-STD", 1, 40_000), ("SEAT", 14, 2_000)]
    # Billing: the same subscription, one schedule, whose one renewal phase starts at the
    # boundary with the renewal's quantities and prices.
    customer = subscription_before["customer"]
    subscriptions = await cluster.stripe.objects("/v1/subscriptions", customer=customer)
    assert [s["id"] for s in subscriptions] == [subscription_before["id"]]
    [subscription] = subscriptions
    assert subscription["schedule"], subscription
    schedule = await cluster.stripe_get(f"/v1/subscription_schedules/{subscription['schedule']}")
    boundary = int(datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC).timestamp())
    assert len(schedule["phases"]) == 2, schedule
    ongoing, renewed = schedule["phases"]
    assert ongoing["end_date"] == renewed["start_date"] == boundary
    assert renewed["metadata"]["deal_id"] == renewal
    assert await _phase_items(cluster, renewed) == sold
    # Until the boundary the subscription bills what it billed.
    assert sorted((i["price"], i["quantity"]) for i in ongoing["items"]) == sorted(
        (i["price"]["id"], i["quantity"]) for i in subscription_before["items"]["data"]
    )
    # Restated with their metadata: the product code a discounted item is known by stays.
    assert sorted((i["price"], sorted(i["metadata"].items())) for i in ongoing["items"]) == sorted(
        (i["price"]["id"], sorted(i["metadata"].items()))
        for i in subscription_before["items"]["data"]
    )
    assert all(i["metadata"].get("product_code") for i in ongoing["items"]), ongoing
    assert not [
        i
        for i in await cluster.stripe.objects("/v1/invoiceitems", customer=customer)
        if i["proration"]
    ]

    # CRM: one new contract for the new term, and the write-back on the opportunity.
    new_terms = await cluster.sf.query(
        f"SELECT Id, StartDate, ContractTerm FROM Contract WHERE Opportunity__c = '{renewal}'"
    )
    assert len(new_terms) == 1, new_terms
    [new_term] = new_terms
    assert (new_term["StartDate"], int(new_term["ContractTerm"])) == (
        (end + timedelta(days=1)).isoformat(),
        12,
    )
    opportunity = await cluster.sf.get("Opportunity", renewal)
    assert opportunity["Integration_Status__c"] == "synced"
    assert opportunity["Billing_Subscription_Id__c"] == subscription["id"]

    # ERP: one sales order of the renewal, at its prices, per line and in total.
    [order] = (
        await cluster.get(
            0, "/system/erp/v1/sales-orders", number=opportunity["ERP_Order_Number__c"]
        )
    )["data"]
    listed = await cluster.get(0, "/system/erp/v1/sales-orders", customer=order["customer_id"])
    assert [o["id"] for o in listed["data"] if o["deal_id"] == renewal] == [order["id"]]
    assert (order["currency"], order["legal_entity"]) == ("USD", "US01")
    assert sorted(
        (li["product_code"], li["quantity"], li["unit_amount"], li["amount"])
        for li in order["lines"]
    ) == [(code, quantity, unit, quantity * unit) for code, quantity, unit in sold]
    assert order["total"] == sum(quantity * unit for _, quantity, unit in sold)


async def _phase_items(cluster: Cluster, phase: dict[str, Any]) -> list[tuple[str, int, int]]:
    found = []
    for item in phase["items"]:
        price_id = item["price"] if isinstance(item["price"], str) else item["price"]["id"]
        price = await cluster.stripe_get(f"/v1/prices/{price_id}")
        code = price["metadata"].get("product_code") or item["metadata"]["product_code"]
        found.append((code, int(item["quantity"]), int(price["unit_amount"])))
    return sorted(found)


async def _book_lost_on_both_replicas(cluster: Cluster, deal: str, renewal: str, end: date) -> None:
    """A renewal lost, booked on both replicas at once under their own keys: one flow ends
    the subscription at the contract's end and shows churn."""
    await cluster.sf.update("Opportunity", renewal, {"StageName": "Closed Lost"})
    path = f"/process/v1/renewals/{renewal}/book"
    answers = await asyncio.gather(
        *(cluster.post(replica, path, None, uuid.uuid4().hex) for replica in (0, 1, 0, 1))
    )
    flow_id = f"renewal-lost:{renewal}"
    for answer in answers:
        assert answer.status_code == 202, answer.text
        assert answer.json()["id"] == flow_id
    flow = await cluster.flow_ended(flow_id)
    assert flow["status"] == "succeeded", flow
    assert [s["name"] for s in flow["steps"]].count("cancel_subscription_at_boundary") == 1

    subscription = await _subscription_of(cluster, deal)
    boundary = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC)
    assert (subscription["status"], subscription["cancel_at"]) == (
        "active",
        int(boundary.timestamp()),
    )
    assert subscription["schedule"] is None
    opportunity = await cluster.sf.get("Opportunity", renewal)
    assert opportunity["Integration_Status__c"] == "synced"
    account = await cluster.sf.get("Account", opportunity["AccountId"])
    assert account["Customer_Status__c"] == "Churned"
    assert not await cluster.sf.query(f"SELECT Id FROM Contract WHERE Opportunity__c = '{renewal}'")
