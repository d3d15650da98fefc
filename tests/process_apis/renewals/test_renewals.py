"""Renewals against the four emulators through the gateway's real app: a won deal signs its
contract, the scan opens exactly one renewal opportunity per contract however often and at
once it runs, a won renewal continues the subscription at the boundary (no proration) and books
its ERP order, a lost one cancels at the boundary and shows churn. Assertions read the vendors'
own state."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.v1 import CreditNoteCreate, SupportCaseCreate
from process_apis.customer_master.flow import canonical_customer_id
from tests.process_apis.q2c_harness import SANDBOX, Harness, harness
from tests.process_apis.sandbox import STRIPE_KEY, seeded_id
from tests.support.apps import bearer, new_client_token
from tests.support.waiting import eventually

SCOPES = ["process:write", "process:read", "crm:read", "erp:read", "experience:sales"]
DAY = 86_400


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(tmp_path) as opened:
        _, token = await new_client_token(opened.client, SCOPES)
        opened.headers = bearer(token)
        yield opened


@dataclass
class Booked:
    account: str
    opportunity: str
    customer: str
    clock: str
    contract: dict[str, Any]


async def _stripe(h: Harness, method: str, path: str, **data: str) -> dict[str, Any]:
    response = await h.client.request(
        method,
        f"{SANDBOX}/stripe{path}",
        data=data or None,
        headers={"Authorization": f"Bearer {STRIPE_KEY}"},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _won_deal(h: Harness, name: str, *, seats: int = 10) -> Booked:
    """A new US account whose Stripe customer runs on a test clock, and its won deal of a
    platform and seats (monthly), booked by quote-to-cash."""
    now = int(time.time())
    clock = await _stripe(h, "POST", "/v1/test_helpers/test_clocks", frozen_time=str(now))
    account = await h.sf.create(
        "Account",
        {
            "Name": name,
            "BillingStreet": "1 Main St",
            "BillingCity": "Austin",
            "BillingPostalCode": "78744",
            "BillingCountry": "US",
            "CurrencyIsoCode": "USD",
            "Legal_Entity__c": "US01",
            "Payment_Terms_Days__c": 30,
        },
    )
    customer = await _stripe(
        h,
        "POST",
        "/v1/customers",
        name=name,
        test_clock=clock["id"],
        **{"metadata[crm_account_id]": account, "metadata[legal_entity]": "US01"},
    )
    close = datetime.fromtimestamp(now, UTC).date()
    opportunity = await h.sf.deal(
        account,
        [("PLAT-STD", 1), ("SEAT", seats)],
        currency="USD",
        name=f"{name} - Platform",
        close_date=close.isoformat(),
    )
    await h.sf.update("Opportunity", opportunity, {"Contract_Term_Months__c": 12})
    flow = await h.wait((await h.book(opportunity)).json()["id"], "succeeded", "failed")
    assert flow["status"] == "succeeded", flow
    contracts = await h.client.get(
        "/system/crm/v1/contracts", params={"account_id": account}, headers=h.headers
    )
    assert contracts.status_code == 200, contracts.text
    [contract] = contracts.json()["data"]
    for invoice in await h.stripe.objects("/v1/invoices", customer=customer["id"]):
        # The customer pays its first invoice: nothing is overdue when its renewal comes.
        await _stripe(h, "POST", f"/v1/invoices/{invoice['id']}/pay", paid_out_of_band="true")
    return Booked(account, opportunity, customer["id"], clock["id"], contract)


async def _scan(h: Harness, as_of: date, key: str | None = None) -> Any:
    return await h.client.post(
        "/process/v1/renewals/scan",
        json={"as_of": as_of.isoformat(), "lead_days": 60},
        headers={**h.headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )


async def _renewal_of(h: Harness, booked: Booked) -> str:
    end = date.fromisoformat(booked.contract["end_date"])
    response = await _scan(h, end - timedelta(days=30))
    assert response.status_code == 202, response.text
    [opened] = [r for r in response.json()["renewals"] if r["contract_id"] == booked.contract["id"]]
    return str(opened["opportunity_id"])


async def _book(h: Harness, opportunity: str) -> dict[str, Any]:
    response = await h.client.post(
        f"/process/v1/renewals/{opportunity}/book",
        headers={**h.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 202, response.text
    flow = await h.wait(response.json()["id"], "succeeded", "failed")
    assert flow["status"] == "succeeded", flow
    return flow


async def _advance(h: Harness, clock: str, to: int) -> None:
    await _stripe(h, "POST", f"/v1/test_helpers/test_clocks/{clock}/advance", frozen_time=str(to))


async def test_won_deal_signs_its_contract_for_its_term(h: Harness) -> None:
    booked = await _won_deal(h, "Term Co")
    contract = booked.contract
    start = date.fromisoformat(contract["start_date"])
    assert contract["deal_id"] == booked.opportunity and contract["status"] == "activated"
    assert contract["term_months"] == 12 and contract["legal_entity"] == "US01"
    assert date.fromisoformat(contract["end_date"]) == start.replace(
        year=start.year + 1
    ) - timedelta(days=1)
    assert {
        (li["product_code"], li["quantity"], li["unit_amount"]) for li in contract["lines"]
    } == {("PLAT-STD", 1, 50_000), ("SEAT", 10, 2_500)}
    # Booking again (another key) signs nothing more.
    again = await h.book(booked.opportunity)
    assert again.status_code == 202
    rows = await h.sf.query(
        f"SELECT Id FROM Contract WHERE Opportunity__c = '{booked.opportunity}'"
    )
    assert len(rows) == 1
    one = await h.client.get(f"/system/crm/v1/contracts/{contract['id']}", headers=h.headers)
    assert one.status_code == 200 and one.json()["id"] == contract["id"]


async def test_one_renewal_per_contract_however_often_and_at_once(h: Harness) -> None:
    booked = await _won_deal(h, "Once Co")
    end = date.fromisoformat(booked.contract["end_date"])
    as_of = end - timedelta(days=30)
    first, second = await asyncio.gather(_scan(h, as_of), _scan(h, as_of))
    third = await _scan(h, as_of - timedelta(days=5))
    outside = await _scan(h, end + timedelta(days=1))
    for response in (first, second, third, outside):
        assert response.status_code == 202, response.text
    mine = [
        r
        for response in (first, second, third)
        for r in response.json()["renewals"]
        if r["contract_id"] == booked.contract["id"]
    ]
    assert len(mine) == 3 and len({r["opportunity_id"] for r in mine}) == 1
    assert sorted(r["created"] for r in mine) == [False, False, True]
    assert not [r for r in outside.json()["renewals"] if r["contract_id"] == booked.contract["id"]]
    rows = await h.sf.query(
        "SELECT Id, Type, StageName, CloseDate, Renewal_Risk__c, Renewal_Context__c "
        f"FROM Opportunity WHERE Renewal_Of__c = '{booked.opportunity}'"
    )
    assert len(rows) == 1
    [renewal] = rows
    assert (renewal["Type"], renewal["StageName"], renewal["CloseDate"]) == (
        "Renewal",
        "Prospecting",
        end.isoformat(),
    )
    assert renewal["Renewal_Risk__c"] == "Low"
    assert "usage unknown" in renewal["Renewal_Context__c"]
    lines = await h.sf.query(
        "SELECT ProductCode, Quantity, UnitPrice FROM OpportunityLineItem "
        f"WHERE OpportunityId = '{renewal['Id']}'"
    )
    assert sorted((li["ProductCode"], li["Quantity"], li["UnitPrice"]) for li in lines) == [
        ("PLAT-STD", 1, 500),
        ("SEAT", 10, 25),
    ]
    # Replaying the first request answers the same renewals.
    replay = await h.client.post(
        "/process/v1/renewals/scan",
        json={"as_of": as_of.isoformat(), "lead_days": 60},
        headers={**h.headers, "Idempotency-Key": "same"},
    )
    replayed = await h.client.post(
        "/process/v1/renewals/scan",
        json={"as_of": as_of.isoformat(), "lead_days": 60},
        headers={**h.headers, "Idempotency-Key": "same"},
    )
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.json() == replay.json()


async def test_renewal_won_continues_at_the_boundary_and_books_its_order(h: Harness) -> None:
    booked = await _won_deal(h, "Won Co")
    renewal = await _renewal_of(h, booked)
    # The customer renews with 15 seats at 20.00 instead of 10 at 25.00.
    [seat] = await h.sf.query(
        "SELECT Id FROM OpportunityLineItem "
        f"WHERE OpportunityId = '{renewal}' AND ProductCode = 'SEAT'"
    )
    await h.sf.update("OpportunityLineItem", seat["Id"], {"Quantity": 15, "UnitPrice": 20})
    await h.sf.update("Opportunity", renewal, {"StageName": "Closed Won"})

    # The next scan finds the renewal closed and books it.
    end = date.fromisoformat(booked.contract["end_date"])
    assert (await _scan(h, end - timedelta(days=29))).status_code == 202
    flow = await h.wait(f"renewal-won:{renewal}", "succeeded", "failed")
    assert flow["status"] == "succeeded", flow
    again = await h.client.post(
        f"/process/v1/renewals/{renewal}/book",
        headers={**h.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert again.status_code == 202 and again.json()["id"] == flow["id"]

    [subscription] = await h.stripe.objects("/v1/subscriptions", customer=booked.customer)
    before = await h.stripe.objects("/v1/invoices", customer=booked.customer)
    # Nothing is billed at booking time: no proration, no new invoice.
    assert len(before) == 1
    assert not [
        i
        for i in await h.stripe.objects("/v1/invoiceitems", customer=booked.customer)
        if i["proration"]
    ]
    boundary = int(datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC).timestamp())
    await _advance(h, booked.clock, subscription["current_period_end"] + 370 * DAY)

    invoices = await h.stripe.objects("/v1/invoices", customer=booked.customer)
    cycles = sorted(
        (i for i in invoices if i["billing_reason"] == "subscription_cycle"),
        key=lambda i: i["period_end"],
    )
    old = [i for i in cycles if i["period_end"] < boundary]
    new = [i for i in cycles if i["period_end"] >= boundary]
    assert old and new
    assert {i["subtotal"] for i in old} == {50_000 + 10 * 2_500}
    assert {i["subtotal"] for i in new} == {50_000 + 15 * 2_000}
    assert not [line for i in invoices for line in i["lines"]["data"] if line["proration"]]
    renewed = await _stripe(h, "GET", f"/v1/subscriptions/{subscription['id']}")
    assert renewed["status"] == "active" and renewed["metadata"]["deal_id"] == renewal

    opportunity = await h.sf.get("Opportunity", renewal)
    assert opportunity["Integration_Status__c"] == "synced"
    assert opportunity["Billing_Subscription_Id__c"] == subscription["id"]
    [order] = await h.sales_orders(opportunity["ERP_Order_Number__c"])
    assert order["total"] == 50_000 + 15 * 2_000 and order["currency"] == "USD"
    assert sorted((li["product_code"], li["quantity"], li["amount"]) for li in order["lines"]) == [
        ("PLAT-STD", 1, 50_000),
        ("SEAT", 15, 30_000),
    ]
    contracts = (
        await h.client.get(
            "/system/crm/v1/contracts", params={"account_id": booked.account}, headers=h.headers
        )
    ).json()["data"]
    [new_term] = [c for c in contracts if c["deal_id"] == renewal]
    assert new_term["start_date"] == (end + timedelta(days=1)).isoformat()
    assert new_term["term_months"] == 12


async def test_renewal_lost_cancels_at_the_boundary_and_shows_churn(h: Harness) -> None:
    booked = await _won_deal(h, "Lost Co")
    first_deal = await h.sf.get("Opportunity", booked.opportunity)
    [order_before] = await h.sales_orders(first_deal["ERP_Order_Number__c"])
    renewal = await _renewal_of(h, booked)
    await h.sf.update("Opportunity", renewal, {"StageName": "Closed Lost"})

    # Through the door new deals close by (the CRM's callout books through it too).
    response = await h.book(renewal)
    assert response.status_code == 202, response.text
    assert response.json()["id"] == f"renewal-lost:{renewal}"
    flow = await h.wait(response.json()["id"], "succeeded", "failed")
    assert flow["status"] == "succeeded", flow

    [subscription] = await h.stripe.objects("/v1/subscriptions", customer=booked.customer)
    assert subscription["cancel_at"] is not None and subscription["status"] == "active"
    end = date.fromisoformat(booked.contract["end_date"])
    boundary = int(datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC).timestamp())
    await _advance(h, booked.clock, subscription["current_period_end"] + 400 * DAY)
    ended = await _stripe(h, "GET", f"/v1/subscriptions/{subscription['id']}")
    assert ended["status"] == "canceled" and boundary <= ended["ended_at"] < boundary + DAY
    invoices = await h.stripe.objects("/v1/invoices", customer=booked.customer)
    assert all(i["period_start"] < boundary for i in invoices)
    assert not [line for i in invoices for line in i["lines"]["data"] if line["proration"]]
    account = await h.sf.get("Account", booked.account)
    assert account["Customer_Status__c"] == "Churned"
    [order_after] = await h.sales_orders(first_deal["ERP_Order_Number__c"])
    assert order_after == order_before
    assert not await h.sf.query(f"SELECT Id FROM Contract WHERE Opportunity__c = '{renewal}'")


async def test_renewal_routes_refuse_bad_input_as_problems(h: Harness) -> None:
    booked = await _won_deal(h, "Bad Co")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    cases = [
        ("/process/v1/renewals/scan", {"lead_days": 0}, 422),
        ("/process/v1/renewals/scan", {"lead_days": 731}, 422),
        ("/process/v1/renewals/scan", {"as_of": "tomorrow"}, 400),
        ("/process/v1/renewals/scan", {"lead_days": 90, "extra": 1}, 400),
        ("/process/v1/renewals/not-an-id/book", None, 404),
        ("/process/v1/renewals/001000000000000AAA/book", None, 404),
        (f"/process/v1/renewals/{booked.opportunity}/book", None, 422),
    ]
    for path, body, status in cases:
        response = await h.client.post(
            path, json=body, headers={**h.headers, "Idempotency-Key": uuid.uuid4().hex}
        )
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    missing = await h.client.post("/process/v1/renewals/scan", json={}, headers=h.headers)
    assert missing.status_code == 400
    open_renewal = await _renewal_of(h, booked)
    still_open = await h.client.post(
        f"/process/v1/renewals/{open_renewal}/book", headers={**h.headers, **key}
    )
    assert still_open.status_code == 422
    assert "still open" in still_open.text
    as_new_deal = await h.book(open_renewal)
    assert as_new_deal.status_code == 422 and "renewal" in as_new_deal.text
    unknown = await h.client.get("/system/crm/v1/contracts/800000000000000AAA", headers=h.headers)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")


async def test_another_entity_sees_no_contract_renewal_or_scan_result(h: Harness) -> None:
    booked = await _won_deal(h, "Private Co")
    renewal = await _renewal_of(h, booked)
    _, token = await new_client_token(h.client, SCOPES, entities=["DE01"])
    german = bearer(token)
    contract = await h.client.get(
        f"/system/crm/v1/contracts/{booked.contract['id']}", headers=german
    )
    assert contract.status_code == 404
    listed = await h.client.get(
        "/system/crm/v1/contracts", params={"legal_entity": "US01"}, headers=german
    )
    assert listed.status_code == 200 and listed.json()["data"] == []
    by_account = await h.client.get(
        "/system/crm/v1/contracts", params={"account_id": booked.account}, headers=german
    )
    assert by_account.status_code == 404
    view = await h.client.get(
        f"/experience/sales/v1/accounts/{booked.account}/renewals", headers=german
    )
    assert view.status_code == 404
    assert view.headers["content-type"].startswith("application/problem+json")
    book = await h.client.post(
        f"/process/v1/renewals/{renewal}/book",
        headers={**german, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert book.status_code == 404
    end = date.fromisoformat(booked.contract["end_date"])
    scan = await h.client.post(
        "/process/v1/renewals/scan",
        json={"as_of": (end - timedelta(days=30)).isoformat()},
        headers={**german, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert scan.status_code == 202
    assert not [r for r in scan.json()["renewals"] if r["contract_id"] == booked.contract["id"]]
    mine = await h.client.get(
        f"/experience/sales/v1/accounts/{booked.account}/renewals", headers=h.headers
    )
    assert mine.status_code == 200, mine.text
    [shown] = mine.json()["data"]
    assert shown["opportunity_id"] == renewal and shown["contract_id"] == booked.contract["id"]
    assert shown["risk"] == "low" and shown["crm_risk"] == "low"
    assert shown["signals"]["usage_trend"] == "unknown"


async def _scan_and_view(h: Harness, account: str) -> dict[str, Any]:
    response = await h.client.post(
        "/process/v1/renewals/scan",
        json={"as_of": (date.today() + timedelta(days=1)).isoformat(), "lead_days": 400},
        headers={**h.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 202, response.text
    view = await h.client.get(
        f"/experience/sales/v1/accounts/{account}/renewals", headers=h.headers
    )
    assert view.status_code == 200, view.text
    [shown] = view.json()["data"]
    return dict(shown)


async def test_context_and_risk_from_cases_credits_and_a_failed_payment(h: Harness) -> None:
    account = seeded_id("Account", "initech")
    opportunity = await h.sf.deal(
        account,
        [("PLAT-STD", 1), ("SEAT", 4)],
        currency="USD",
        name="Initech - Platform",
        close_date=date.today().isoformat(),
    )
    flow = await h.wait((await h.book(opportunity)).json()["id"], "succeeded", "failed")
    assert flow["status"] == "succeeded", flow
    deal = await h.sf.get("Opportunity", opportunity)
    [invoice] = await h.stripe.objects(
        "/v1/invoices", subscription=deal["Billing_Subscription_Id__c"]
    )
    before = await _scan_and_view(h, account)
    assert (before["signals"]["service_credits"], before["signals"]["failed_payments"]) == (0, 0)
    assert not {"failed_payments", "service_credits"} & {r["rule"] for r in before["rules"]}

    # A sev-1 case nobody answers, a service credit, and the invoice written off unpaid.
    case = await h.port("zendesk").create_case(
        SupportCaseCreate(
            customer_id=canonical_customer_id(account),
            subject="Outage",
            description="Nothing loads",
            priority="urgent",
        )
    )
    entitlement = await h.port("zendesk").get_entitlement(case.organization_id)
    assert entitlement is not None
    target = case.created_at + timedelta(minutes=entitlement.sla_first_response_minutes)
    await h.port("stripe").create_credit_note(
        CreditNoteCreate(
            invoice_id=invoice["id"], currency="USD", amount=5_000, reason="service_credit"
        )
    )
    await _stripe(h, "POST", f"/v1/invoices/{invoice['id']}/mark_uncollectible")

    after = await _scan_and_view(h, account)

    assert after["opportunity_id"] == before["opportunity_id"]
    was, now = before["signals"], after["signals"]
    assert now["urgent_cases"] == was["urgent_cases"] + 1
    # An unanswered case counts as breached on a day once its target passes before that day
    # ends: the view reads as of today, the scan (which writes the context) as of tomorrow.
    today_ends = datetime.combine(
        datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC
    )
    assert now["sla_breaches"] == was["sla_breaches"] + (target <= today_ends)
    assert (now["service_credits"], now["service_credit_amount"], now["failed_payments"]) == (
        1,
        5_000,
        1,
    )
    assert after["risk"] == "high" and after["crm_risk"] == "high"
    rules = {(r["rule"], r["level"]) for r in after["rules"]}
    assert {
        ("sla_breaches", "high"),
        ("failed_payments", "medium"),
        ("service_credits", "medium"),
    } <= rules
    renewal = await h.sf.get("Opportunity", after["opportunity_id"])
    assert renewal["Renewal_Risk__c"] == "High"
    context = renewal["Renewal_Context__c"]
    breaches_by_tomorrow = was["sla_breaches"] + 1
    assert f"{now['urgent_cases']} urgent cases, {breaches_by_tomorrow} SLA breaches" in context
    assert "1 service credits (50.00 USD)" in context and "1 failed payments" in context
    assert "usage unknown" in context


async def test_scheduled_scan_opens_the_renewal_and_the_poller_books_it_won(
    tmp_path: Path,
) -> None:
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    async with harness(
        tmp_path,
        ERPGW_RENEWAL_SCAN_INTERVAL_SECONDS="1",
        ERPGW_RENEWAL_LEAD_DAYS="400",
        ERPGW_CRM_POLL_SECONDS="0.3",
        ERPGW_CRM_POLL_SINCE=since,
        ERPGW_RENEWAL_RISK_RULES='{"urgent_cases_high": 5}',
    ) as h:
        assert h.gateway.renewals.service.desk.rules.urgent_cases_high == 5
        _, token = await new_client_token(h.client, SCOPES)
        h.headers = bearer(token)
        booked = await _won_deal(h, "Scheduled Co")

        async def renewals() -> list[dict[str, Any]] | None:
            rows = await h.sf.query(
                f"SELECT Id FROM Opportunity WHERE Renewal_Of__c = '{booked.opportunity}'"
            )
            return rows or None

        [renewal] = await eventually(renewals, timeout=30, what="the scheduled renewal")
        await h.sf.update("Opportunity", renewal["Id"], {"StageName": "Closed Won"})
        flow = await h.wait(f"renewal-won:{renewal['Id']}", "succeeded", "failed", within=60)
        assert flow["status"] == "succeeded", flow
        assert (await h.sf.get("Opportunity", renewal["Id"]))["Integration_Status__c"] == "synced"
        # However many scheduled scans ran meanwhile, the contract has one renewal.
        assert (
            len(
                await h.sf.query(
                    f"SELECT Id FROM Opportunity WHERE Renewal_Of__c = '{booked.opportunity}'"
                )
            )
            == 1
        )
