"""Renewals of a subscription with a metered line, end to end through the served gateway
and its emulators: a three-month contract of the platform and metered API calls, its customer
on a Stripe test clock. Usage is reported through the gateway during the last period (before
and after the renewal is lost), the renewal is booked lost, and the clock passes the contract's
end: Stripe ends the subscription there and bills the last period's usage once, on a final
invoice that reaches the ERP through invoice posting at the same total, tax and currency; the
CRM account shows churn and the ERP order of the deal is untouched. Won instead, the renewal
sells the calls again at the contract's estimate and rate, and the subscription goes on
metering them in the new term."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from contracts.v1 import CustomerCreate
from gateway import storage
from gateway.clients import ClientRegistry
from system_apis.tax import line_tax
from tests.process_apis.money_world import Line, MoneyWorld, money_world
from tests.support.waiting import eventually

PLATFORM_USD = 50_000
CALL_USD = 2
CALLS_ESTIMATE = 5_000
"""The calls the deal sold: an estimate at the per-call rate, not a commitment."""
CA_TAX_BPS = 725
TERM_MONTHS = 3
ENDED = ("succeeded", "failed", "cancelled")


def _months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (days past the 28th are moved
    to the 28th, so every month has them)."""
    index = moment.year * 12 + moment.month - 1 - months
    return moment.replace(year=index // 12, month=index % 12 + 1, day=min(moment.day, 28))


async def _usage_headers(tmp_path: Path, world: MoneyWorld) -> dict[str, str]:
    """The metering service's client: it reports usage of every entity, pushes it and
    follows the push (a push spans entities, so an entity-limited client cannot read it)."""
    engine = storage.create_engine(f"sqlite+aiosqlite:///{tmp_path}/gateway.db")
    try:
        created = await ClientRegistry(engine).create(
            name="usage-meter",
            scopes=["usage:write", "process:read", "process:write"],
            tier="gold",
        )
    finally:
        await engine.dispose()
    token = await world.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(created.client.client_id, created.client_secret),
    )
    token.raise_for_status()
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def _report(
    world: MoneyWorld, headers: dict[str, str], subscription: str, quantities: dict[str, int]
) -> tuple[int, int]:
    """Report usage records (id -> quantity) from a minute ago and push them to billing;
    (records accepted, records already reported)."""
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    records = [
        {
            "id": record_id,
            "subscription_id": subscription,
            "metric": "api_calls",
            "quantity": quantity,
            "timestamp": at,
        }
        for record_id, quantity in quantities.items()
    ]
    accepted = await world.http.post(
        "/process/v1/usage-records", headers=headers, json={"records": records}
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["rejected"] == [], accepted.text
    flushed = await world.http.post("/process/v1/usage/flush", headers=headers)
    assert flushed.status_code == 202, flushed.text
    flow_id = flushed.json()["flow_id"]
    if flow_id is not None:
        pushed = await eventually(
            lambda: world.http.get(f"/process/v1/flows/{flow_id}", headers=headers),
            lambda r: r.json()["status"] in ENDED,
            what="the usage push",
        )
        assert pushed.json()["status"] == "succeeded", pushed.text
    return accepted.json()["accepted"], accepted.json()["duplicates"]


async def _invoices(world: MoneyWorld, customer: str) -> list[dict[str, Any]]:
    return await world.stripe_raw.objects("/v1/invoices", customer=customer)


def _calls(invoice: dict[str, Any]) -> list[dict[str, Any]]:
    """The invoice's lines billing API calls."""
    return [
        line
        for line in invoice["lines"]["data"]
        if (line.get("price") or {}).get("recurring", {}).get("usage_type") == "metered"
    ]


@dataclass
class MeteredContract:
    """A customer's contract of the platform and metered calls, in its last period today."""

    account: str
    customer: str
    clock: str
    deal: dict[str, Any]
    """The won deal's opportunity as the CRM holds it after booking."""
    subscription: str
    contract: dict[str, Any]
    end: date
    boundary: int
    """When the contract's last period ends (Unix time): the day after its last day."""


async def _metered_contract(world: MoneyWorld, name: str, now: datetime) -> MeteredContract:
    """A new CA account whose Stripe customer runs on a test clock, its won deal of the
    platform and an estimate of API calls for TERM_MONTHS, booked; the clock is then moved to
    `now`, inside the contract's last (monthly) period."""
    # The contract's last period holds today: its first began two months and a day ago.
    start = _months_before(now, TERM_MONTHS - 1) - timedelta(days=1)
    account = await world.account(
        name, legal_entity="US01", currency="USD", country="US", state="CA"
    )
    clock = await world.stripe.create_test_clock(start, name=name)
    customer = await world.stripe.create_customer(
        CustomerCreate(legal_name=name, legal_entity="US01", currency="USD"),
        crm_account_id=account,
        test_clock=clock.id,
    )
    deal = await world.deal(
        account,
        [Line("PLAT-STD", 1, PLATFORM_USD), Line("API-CALLS", CALLS_ESTIMATE, CALL_USD)],
        currency="USD",
        name=f"{name} - Platform and API",
    )
    await world.sf.update(
        "Opportunity",
        deal,
        {"CloseDate": start.date().isoformat(), "Contract_Term_Months__c": TERM_MONTHS},
    )
    await world.book(deal)
    booked = await world.sf.get("Opportunity", deal)
    contracts = await world.http.get(
        "/system/crm/v1/contracts", params={"account_id": account}, headers=world.headers
    )
    [contract] = contracts.json()["data"]
    end = date.fromisoformat(contract["end_date"])

    # Two periods pass; the third and last holds today.
    await world.stripe.advance_test_clock(clock.id, now)
    [running] = await world.stripe_raw.objects("/v1/subscriptions", customer=customer.id)
    assert running["current_period_start"] <= now.timestamp() < running["current_period_end"]
    boundary = int(running["current_period_end"])
    assert datetime.fromtimestamp(boundary, UTC).date() == end + timedelta(days=1)
    return MeteredContract(
        account=account,
        customer=customer.id,
        clock=clock.id,
        deal=booked,
        subscription=booked["Billing_Subscription_Id__c"],
        contract=contract,
        end=end,
        boundary=boundary,
    )


async def _renewal_of(world: MoneyWorld, metered: MeteredContract) -> str:
    """The contract's renewal opportunity, opened by a scan."""
    scan = await world.http.post(
        "/process/v1/renewals/scan",
        json={"as_of": (metered.end - timedelta(days=20)).isoformat(), "lead_days": 60},
        headers={**world.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert scan.status_code == 202, scan.text
    contract = metered.contract["id"]
    [opened] = [r for r in scan.json()["renewals"] if r["contract_id"] == contract]
    return str(opened["opportunity_id"])


async def test_lost_renewal_bills_the_last_periods_usage_once_and_ends_at_the_contract_end(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    async with money_world(tmp_path) as world:
        usage = await _usage_headers(tmp_path, world)
        metered = await _metered_contract(world, "Metered Exit Inc.", now)
        account, customer, subscription = metered.account, metered.customer, metered.subscription
        booked, boundary = metered.deal, metered.boundary

        first = await _report(world, usage, subscription, {"u1": 1_200, "u2": 34})
        renewal = await _renewal_of(world, metered)
        await world.postings_settled()
        [order_before] = await world.sales_orders_of(booked["ERP_Order_Number__c"])
        await world.sf.update("Opportunity", renewal, {"StageName": "Closed Lost"})
        lost = await world.http.post(
            f"/process/v1/renewals/{renewal}/book",
            headers={**world.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert lost.status_code == 202, lost.text
        assert lost.json()["id"] == f"renewal-lost:{renewal}"
        await world.finished(lost.headers["location"])
        # The customer keeps calling until the end; a record reported twice counts once.
        second = await _report(world, usage, subscription, {"u3": 766, "u1": 1_200})
        assert (first, second) == ((2, 0), (1, 1))
        used_total = 1_200 + 34 + 766
        before_end = await _invoices(world, customer)

        await world.stripe.advance_test_clock(metered.clock, now + timedelta(days=40))
        invoices = await _invoices(world, customer)
        [final] = [i for i in invoices if i["id"] not in {b["id"] for b in before_end}]
        posted = await world.erp_invoice_of(final["id"])
        await world.postings_settled()
        [ended] = await world.stripe_raw.objects(
            "/v1/subscriptions", customer=customer, status="all"
        )
        report = await world.http.get(f"/process/v1/usage/{subscription}", headers=usage)
        churned = await world.sf.get("Account", account)
        written_back = await world.sf.get("Opportunity", renewal)
        [order_after] = await world.sales_orders_of(booked["ERP_Order_Number__c"])
        erp_invoices = await world.http.get(
            "/system/erp/v1/invoices", params={"external_id": final["id"]}, headers=world.headers
        )

    # Stripe ends the subscription at the contract's end, billing nothing after it.
    assert ended["status"] == "canceled" and ended["ended_at"] == boundary
    assert all(i["period_start"] < boundary for i in invoices)
    assert not [line for i in invoices for line in i["lines"]["data"] if line["proration"]]
    # The last period's usage is billed once, on the final invoice, at the sold rate.
    assert (final["period_end"], final["status"]) == (boundary, "open")
    [calls] = _calls(final)
    assert (calls["quantity"], calls["amount"]) == (used_total, used_total * CALL_USD)
    assert sum(line["quantity"] for i in invoices for line in _calls(i)) == used_total
    assert final["subtotal"] == used_total * CALL_USD
    assert final["tax"] == line_tax(used_total * CALL_USD, CA_TAX_BPS)
    assert final["total"] == final["subtotal"] + final["tax"]
    # The ERP gets that invoice through invoice posting: once, at the same money.
    assert len(erp_invoices.json()["data"]) == 1
    assert (posted.total, posted.tax, posted.currency) == (
        final["total"],
        final["tax"],
        final["currency"].upper(),
    )
    [erp_calls] = [line for line in posted.lines if line.product_code == "API-CALLS"]
    assert (erp_calls.quantity, erp_calls.amount) == (used_total, used_total * CALL_USD)
    # The gateway's usage report: everything accepted was pushed and invoiced.
    assert report.status_code == 200, report.text
    last = max(report.json()["data"], key=lambda row: row["period_start"])
    assert (last["accepted"], last["pushed"], last["invoiced"]) == (
        used_total,
        used_total,
        used_total,
    )
    # The CRM shows churn; the ERP order of the deal is as it was.
    assert churned["Customer_Status__c"] == "Churned"
    assert written_back["Integration_Status__c"] == "synced"
    assert order_after == order_before


async def test_won_renewal_of_a_metered_subscription_keeps_metering_in_the_new_term(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    async with money_world(tmp_path) as world:
        metered = await _metered_contract(world, "Metered Stay Inc.", now)
        renewal = await _renewal_of(world, metered)
        lines = await world.sf.query(
            "SELECT ProductCode, Quantity, UnitPrice FROM OpportunityLineItem "
            f"WHERE OpportunityId = '{renewal}'"
        )
        await world.sf.update("Opportunity", renewal, {"StageName": "Closed Won"})
        won = await world.http.post(
            f"/process/v1/renewals/{renewal}/book",
            headers={**world.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert won.status_code == 202, won.text
        await world.finished(won.headers["location"])
        opportunity = await world.sf.get("Opportunity", renewal)
        [order] = await world.sales_orders_of(opportunity["ERP_Order_Number__c"])
        await world.stripe.advance_test_clock(metered.clock, now + timedelta(days=40))
        [renewed] = await world.stripe_raw.objects("/v1/subscriptions", customer=metered.customer)

    # The renewal sells the calls again at the current rate, for the estimate the contract
    # sold (a metered item has no quantity of its own).
    assert sorted((li["ProductCode"], li["Quantity"], li["UnitPrice"]) for li in lines) == [
        ("API-CALLS", CALLS_ESTIMATE, CALL_USD / 100),
        ("PLAT-STD", 1, PLATFORM_USD / 100),
    ]
    # The ERP books the committed platform; the calls keep their rate at no committed amount.
    assert sorted(
        (li.product_code, li.quantity, li.unit_amount, li.amount) for li in order.lines
    ) == [
        ("API-CALLS", 0, CALL_USD, 0),
        ("PLAT-STD", 1, PLATFORM_USD, PLATFORM_USD),
    ]
    assert (order.total, order.currency) == (PLATFORM_USD, "USD")
    # Past the boundary the same subscription goes on under the renewal, still metering calls.
    assert renewed["id"] == metered.subscription and renewed["status"] == "active"
    assert renewed["metadata"]["deal_id"] == renewal
    assert renewed["current_period_start"] >= metered.boundary
    items = {i["metadata"].get("product_code"): i for i in renewed["items"]["data"]}
    assert set(items) == {"PLAT-STD", "API-CALLS"}
    assert "quantity" not in items["API-CALLS"]
    assert items["API-CALLS"]["metadata"]["usage_metric"] == "api_calls"
    assert items["API-CALLS"]["price"]["unit_amount"] == CALL_USD
    assert items["PLAT-STD"]["quantity"] == 1
