"""Money chaos: two gateway replicas on one PostgreSQL database and one Redis, the emulators in
their own processes. 40 won deals of four customers in both legal entities (discounted,
multi-line, one-time only, annual; taxed at 7.25 % in California and 19 % in Germany, untaxed in
Oregon, reverse charge for a French business) and the demo company's Acme deal are booked, then
amended up and down, one invoice declined and later paid, and a service credit approved, while
every platform fails a fifth of its calls (5xx, 429, timeouts) and one replica is SIGKILLed and
restarted. Every flow ends done or waiting in the exception queue with an owner; a
reconciliation of every kind finds nothing unexplained and each system's totals agree.

Then drift made by hand through the vendors' own APIs: invoices issued while the Stripe webhook
endpoints were deleted, an ERP invoice deleted, a duplicate Stripe customer of an account and
a credit memo deleted. The next reconciliation finds each once, with one exception each; the
machine repairs what it can, a person resolves the duplicate, and the run after is clean.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.sandbox_wiring import netsuite_sandbox_credentials as netsuite_sandbox
from system_apis.tax import line_tax
from tests.chaos.cluster import Replicas, Submitter, bearer_of, chaos_env, two_replicas
from tests.process_apis.emulator_processes import emulator_processes
from tests.process_apis.sandbox import STRIPE_KEY, SalesforceOrg, StripeAccount, seeded_id
from tests.support.processes import create_client
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(600)]

SCOPES = "process:write process:read ops:read ops:replay finance:approve support:read erp:read"
LIST = {"PLAT-STD": 50_000, "PLAT-ENT": 1_200_000, "SEAT": 2_500, "ONBOARD": 250_000}
LIST_EUR = {"PLAT-STD": 46_000, "PLAT-ENT": 1_100_000, "SEAT": 2_300, "ONBOARD": 230_000}
DEALS = 40
HAND_INVOICE = 12_345
"""USD cents of the invoice issued by hand while the webhook endpoints were deleted."""
ENDED = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class Buyer:
    key: str
    name: str
    entity: str
    currency: str
    country: str
    tax_bps: int
    state: str | None = None
    tax_id: str | None = None


BUYERS = (
    Buyer("west", "West Coast Robotics Inc.", "US01", "USD", "US", 725, state="CA"),
    Buyer("oregon", "Cascade Timber LLC", "US01", "USD", "US", 0, state="OR"),
    Buyer("berlin", "Spree Logistik GmbH", "DE01", "EUR", "DE", 1900, tax_id="DE811907980"),
    Buyer("lyon", "Rhone Chimie SAS", "DE01", "EUR", "FR", 0, tax_id="FR40303265045"),
)


def _percent(amount: int, percent: int) -> int:
    return amount * percent // 100


def deal_lines(index: int, currency: str) -> list[tuple[str, int, int]]:
    """(product, quantity, sold unit price) of deal `index`: five shapes in turn."""
    prices = LIST if currency == "USD" else LIST_EUR
    seats = 3 + index % 7
    shapes = [
        [("PLAT-STD", 1, _percent(prices["PLAT-STD"], 80)), ("SEAT", seats, prices["SEAT"] - 500)],
        [("ONBOARD", 1, _percent(prices["ONBOARD"], 90))],
        [
            ("PLAT-STD", 1, prices["PLAT-STD"]),
            ("SEAT", seats, prices["SEAT"]),
            ("ONBOARD", 1, prices["ONBOARD"] - 10_000),
        ],
        [("PLAT-ENT", 1, _percent(prices["PLAT-ENT"], 85))],
        [("SEAT", seats, prices["SEAT"])],
    ]
    return shapes[index % len(shapes)]


@dataclass
class Deal:
    opportunity: str
    buyer: Buyer
    lines: list[tuple[str, int, int]]

    @property
    def sold(self) -> int:
        return sum(quantity * unit for _, quantity, unit in self.lines)


@dataclass
class Chaos:
    """The run's handles and the figures it reports."""

    http: httpx.AsyncClient
    urls: dict[str, str]
    replicas: Replicas
    headers: dict[str, str]
    submitter: Submitter
    sf: SalesforceOrg
    stripe: StripeAccount
    faults_served: Counter[str] = field(default_factory=Counter)
    retried: int = 0

    async def get(self, path: str, **params: str) -> dict[str, Any]:
        """A GET on whichever replica answers."""
        for index in (0, 1) * 5:
            try:
                response = await self.http.get(
                    f"{self.replicas.url(index)}{path}", params=params, headers=self.headers
                )
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
                continue
            if response.status_code < 500:
                assert response.status_code == 200, response.text
                body: dict[str, Any] = response.json()
                return body
            await asyncio.sleep(0.5)
        raise AssertionError(f"no replica answered GET {path}")

    async def every(self, path: str, **params: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        query = {"limit": "100", **params}
        while True:
            page = await self.get(path, **query)
            found += page["data"]
            if not page.get("next_cursor"):
                return found
            query["cursor"] = page["next_cursor"]

    async def post(
        self, path: str, body: dict[str, Any] | None = None, *, ok: int = 202
    ) -> dict[str, Any]:
        return await self.submitter.submit(path, body, uuid.uuid4().hex, 0, ok=ok)

    async def faults(self, by_vendor: dict[str, dict[str, Any]]) -> None:
        """Replace every emulator's faults, counting what the previous set served."""
        for vendor, url in self.urls.items():
            state = (await self.http.get(f"{url}/_emulator/faults")).json()
            counters = state["counters"]
            self.faults_served["5xx/429"] += int(counters["error"])
            self.faults_served["timeouts"] += int(counters["latency"])
            set_ = await self.http.post(f"{url}/_emulator/faults", json=by_vendor.get(vendor, {}))
            assert set_.status_code == 200, set_.text

    async def vendor(self, method: str, vendor: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to an emulated vendor's own API, as a person using it would make it."""
        headers = {"Authorization": f"Bearer {STRIPE_KEY}"} if vendor == "stripe" else {}
        auth = netsuite_sandbox(self.urls["netsuite"]).auth() if vendor == "netsuite" else None
        return await self.http.request(
            method, f"{self.urls[vendor]}{path}", headers=headers, auth=auth, **kwargs
        )

    async def flows_ended(self, within: float = 240.0) -> list[dict[str, Any]]:
        async def unfinished() -> list[tuple[str, str, str, list[str]]]:
            flows = await self.every("/process/v1/flows")
            return [
                (f["type"], f["id"], f["status"], [s["name"] for s in f.get("steps") or []][-2:])
                for f in flows
                if f["status"] not in ENDED
            ]

        await eventually(
            unfinished, lambda left: not left, timeout=within, interval=1.0, what="flows ended"
        )
        return await self.every("/process/v1/flows")

    async def flow_ended(self, flow_id: str) -> dict[str, Any]:
        async def ended() -> dict[str, Any] | None:
            flow = await self.get(f"/process/v1/flows/{flow_id}")
            return flow if flow["status"] in ENDED else None

        flow: dict[str, Any] = await eventually(ended, timeout=60, what=f"{flow_id} ended")
        return flow

    async def reconcile(self) -> dict[str, Any]:
        accepted = await self.post("/process/v1/reconciliations", {"settle_seconds": 0})

        async def ended() -> dict[str, Any] | None:
            run = await self.get(f"/process/v1/reconciliations/{accepted['id']}")
            return run if run["status"] in ("completed", "failed") else None

        run: dict[str, Any] = await eventually(ended, timeout=120, interval=0.5, what="the run")
        assert run["status"] == "completed", run
        return run


def faults_of(errors: dict[str, int]) -> dict[str, dict[str, Any]]:
    """A fifth of every platform's calls fail: 15 % with `errors[vendor]`'s status, 5 % are
    held past the gateway's 4 s read timeout (and served all the same)."""
    return {
        vendor: {
            "error_rate": 0.15,
            "error_status": status,
            "retry_after": 1,
            "latency_ms": 4_500,
            "latency_rate": 0.05,
        }
        for vendor, status in errors.items()
    }


BOOKING_FAULTS = faults_of({"salesforce": 503, "stripe": 429, "zendesk": 503, "netsuite": 504})
AMENDING_FAULTS = faults_of({"salesforce": 429, "stripe": 502, "zendesk": 429, "netsuite": 429})


async def test_money_agrees_in_every_system_through_chaos_and_drift(
    tmp_path: Path, database: str, redis_url: str
) -> None:
    with emulator_processes(tmp_path) as urls:
        env = chaos_env(
            database,
            tmp_path,
            urls,
            ERPGW_REDIS_URL=redis_url,
            ERPGW_RECONCILE_INTERVAL_SECONDS="0",
        )
        client = await asyncio.to_thread(create_client, env, scopes=SCOPES, tier="gold")
        async with two_replicas(env, tmp_path) as (replicas, http):
            headers = await bearer_of(http, replicas.url(0), client)
            chaos = Chaos(
                http=http,
                urls=urls,
                replicas=replicas,
                headers=headers,
                submitter=Submitter(http, replicas, headers),
                sf=SalesforceOrg(http, urls["salesforce"]),
                stripe=StripeAccount(http, urls["stripe"]),
            )
            await _run(chaos)


async def _run(chaos: Chaos) -> None:
    started = time.monotonic()
    deals = await _sell(chaos)
    acme, *demo = _demo_deals()
    await _point_webhooks_at(chaos)
    await chaos.faults(BOOKING_FAULTS)
    await _book(chaos, [*deals, acme, *demo])
    booked = time.monotonic()

    await chaos.faults(AMENDING_FAULTS)
    amended = await _amend(chaos, deals)
    declined = await _decline_then_pay(chaos, deals)
    credit = await _approve_service_credit(chaos)
    flows = await chaos.flows_ended()
    await chaos.faults({})
    chaotic = time.monotonic()

    # Every flow is done, or waits in the exception queue with an owner.
    queue = await chaos.every("/process/v1/exceptions", status="open")
    waiting = {e["flow_id"]: e for e in queue}
    unowned = [
        f for f in flows if f["status"] != "succeeded" and not waiting.get(f["id"], {}).get("owner")
    ]
    assert unowned == [], unowned
    exceptions = len(queue)
    await _retry_waiting(chaos, queue)

    clean = await chaos.reconcile()
    assert clean["summary"]["unexplained"] == 0, "\n".join(m["reason"] for m in clean["mismatches"])
    await _assert_amounts(chaos, clean, [*deals, acme, *demo], amended)
    reconciled = time.monotonic()

    drift = await _make_drift(chaos, deals, credit)
    found, repaired = await _find_and_repair(chaos, drift)
    after = await chaos.reconcile()
    assert after["summary"] == {"mismatches": 0, "unexplained": 0, "repaired": 0, "pending": 0}
    await _assert_repaired_amounts(chaos, drift)

    print(  # the figures the money chaos run reports (pytest -s)
        f"money chaos: {len(deals) + 1 + len(demo)} deals, {len(flows)} flows "
        f"{dict(Counter(f['type'] for f in flows))}, {len(amended)} amendments, "
        f"1 declined then paid ({declined}), 1 service credit, 1 kill, faults served "
        f"{dict(chaos.faults_served)}, {exceptions} exceptions ({chaos.retried} retried), "
        f"clean run checked {clean['checked']}, drift: {found} mismatches found, {repaired} "
        f"repaired, 1 explained; bookings accepted in {booked - started:.0f}s, chaos ended at "
        f"{chaotic - started:.0f}s, reconciled at {reconciled - started:.0f}s, "
        f"total {time.monotonic() - started:.0f}s"
    )


# -- selling and booking ---------------------------------------------------------------------


async def _point_webhooks_at(chaos: Chaos) -> None:
    """Stripe's webhooks to both replicas, as an operator sets them up for a gateway whose
    platforms are not emulated in its own process (each event reaches both; the gateway
    takes it once)."""
    for index in (0, 1):
        created = await chaos.vendor(
            "POST",
            "stripe",
            "/v1/webhook_endpoints",
            data={
                "url": f"{chaos.replicas.url(index)}/webhooks/stripe",
                "enabled_events[]": "*",
            },
        )
        assert created.status_code == 200, created.text


async def _account(chaos: Chaos, buyer: Buyer) -> str:
    fields: dict[str, Any] = {
        "Name": buyer.name,
        "BillingStreet": "1 Test Street",
        "BillingCity": "Testville",
        "BillingPostalCode": "12345",
        "BillingCountry": buyer.country,
        "CurrencyIsoCode": buyer.currency,
        "Legal_Entity__c": buyer.entity,
        "Payment_Terms_Days__c": 30,
    }
    if buyer.state:
        fields["BillingState"] = buyer.state
    if buyer.tax_id:
        fields["Tax_Id__c"] = buyer.tax_id
    return await chaos.sf.create("Account", fields)


async def _sell(chaos: Chaos) -> list[Deal]:
    """Four new accounts and DEALS won deals at their sold prices (before any fault)."""
    accounts = {b.key: await _account(chaos, b) for b in BUYERS}
    pricebook = await chaos.sf.standard_pricebook()
    deals = []
    for index in range(DEALS):
        buyer = BUYERS[index % len(BUYERS)]
        opportunity = await chaos.sf.create(
            "Opportunity",
            {
                "AccountId": accounts[buyer.key],
                "Name": f"Money chaos {index}",
                "StageName": "Prospecting",
                "CloseDate": date.today().isoformat(),
                "CurrencyIsoCode": buyer.currency,
                "Pricebook2Id": pricebook,
            },
        )
        lines = deal_lines(index, buyer.currency)
        for code, quantity, unit in lines:
            await chaos.sf.create(
                "OpportunityLineItem",
                {
                    "OpportunityId": opportunity,
                    "PricebookEntryId": await chaos.sf.price_entry(code, buyer.currency),
                    "Quantity": quantity,
                    "UnitPrice": Decimal(unit).scaleb(-2),
                },
            )
        await chaos.sf.update("Opportunity", opportunity, {"StageName": "Closed Won"})
        deals.append(Deal(opportunity, buyer, lines))
    return deals


def _demo_deals() -> list[Deal]:
    """The demo company's won deals at list price: Acme (US, no state: untaxed), Globex
    (Germany: 19 %) and Umbrella (a Dutch business: reverse charge)."""
    acme = Buyer("acme", "Acme Robotics Inc.", "US01", "USD", "US", 0)
    globex = Buyer("globex", "Globex Logistik GmbH", "DE01", "EUR", "DE", 1900)
    umbrella = Buyer("umbrella", "Umbrella Pharma B.V.", "DE01", "EUR", "NL", 0)
    return [
        Deal(
            seeded_id("Opportunity", "acme-platform"),
            acme,
            [("PLAT-STD", 1, 50_000), ("SEAT", 20, 2_500), ("ONBOARD", 1, 250_000)],
        ),
        Deal(
            seeded_id("Opportunity", "globex-enterprise"),
            globex,
            [("PLAT-ENT", 1, 1_100_000), ("ONBOARD", 1, 230_000)],
        ),
        Deal(
            seeded_id("Opportunity", "umbrella-platform"),
            umbrella,
            [("PLAT-STD", 1, 46_000), ("SEAT", 10, 2_300)],
        ),
    ]


async def _book(chaos: Chaos, deals: list[Deal]) -> None:
    """Every deal to quote-to-cash, alternating replicas; replica 0 SIGKILLed a third of the
    way through and restarted on its port."""
    submissions = []
    for index, deal in enumerate(deals):
        submissions.append(
            asyncio.create_task(chaos.submitter.book(deal.opportunity, f"q2c-{index}", index % 2))
        )
        if index == len(deals) // 3:
            await asyncio.sleep(0.5)  # let the replica take some requests in flight
            chaos.replicas.kill(0)
            await asyncio.to_thread(chaos.replicas.start, 0)
        await asyncio.sleep(0.05)
    assert len(set(await asyncio.gather(*submissions))) == len(deals)


def _subscription_of(subscriptions: list[dict[str, Any]], deal: Deal) -> dict[str, Any]:
    [found] = [s for s in subscriptions if s["metadata"].get("deal_id") == deal.opportunity]
    return found


async def _amend(chaos: Chaos, deals: list[Deal]) -> dict[str, int]:
    """Seats up on three discounted deals and down on three others, once their bookings
    ended; the new seat counts by opportunity."""
    await chaos.flows_ended()
    subscriptions = await chaos.stripe.objects("/v1/subscriptions")
    discounted = [d for i, d in enumerate(deals) if i % 5 == 0]
    changes = {}
    for index, deal in enumerate(discounted[:6]):
        seats = next(q for code, q, _ in deal.lines if code == "SEAT")
        changes[deal.opportunity] = seats + 4 if index % 2 == 0 else seats - 2
    amendments = [
        chaos.post(
            "/process/v1/subscription-amendments",
            {
                "subscription_id": _subscription_of(subscriptions, deal)["id"],
                "changes": [{"product_code": "SEAT", "quantity": changes[deal.opportunity]}],
                "effective_date": date.today().isoformat(),
            },
        )
        for deal in discounted[:6]
    ]
    await asyncio.gather(*amendments)
    return changes


async def _stripe_call(chaos: Chaos, path: str, data: dict[str, str]) -> httpx.Response:
    """A Stripe POST by hand, retried with its Idempotency-Key while Stripe is failing."""
    key = uuid.uuid4().hex
    for _ in range(30):
        response = await chaos.http.post(
            f"{chaos.urls['stripe']}{path}",
            data=data,
            headers={"Authorization": f"Bearer {STRIPE_KEY}", "Idempotency-Key": key},
        )
        if response.status_code not in (429, 500, 502, 503, 504):
            return response
        await asyncio.sleep(0.5)
    raise AssertionError(f"Stripe never took POST {path}")


async def _decline_then_pay(chaos: Chaos, deals: list[Deal]) -> str:
    """The first invoice of a one-time deal declined, then paid with another card."""
    deal = next(d for i, d in enumerate(deals) if i % 5 == 1 and d.buyer.key == "west")
    invoices = await chaos.stripe.objects("/v1/invoices")
    [invoice] = [i for i in invoices if i["metadata"].get("deal_id") == deal.opportunity]
    declined = await _stripe_call(
        chaos, f"/v1/invoices/{invoice['id']}/pay", {"payment_method": "pm_card_chargeDeclined"}
    )
    assert declined.status_code == 402, declined.text

    async def in_collections() -> bool:
        flows = await chaos.every("/process/v1/flows", type="payment_failure")
        return any(f["status"] in ENDED for f in flows)

    await eventually(in_collections, timeout=90, interval=1.0, what="the payment failure")
    paid = await _stripe_call(
        chaos, f"/v1/invoices/{invoice['id']}/pay", {"payment_method": "pm_card_visa"}
    )
    assert paid.status_code == 200, paid.text
    return str(invoice["id"])


async def _approve_service_credit(chaos: Chaos) -> str:
    """Acme pays its first invoice while its seeded sev-1 breach is escalated and the credit
    approved by finance on that invoice, in whichever order the payment and the credit memo
    reach the ERP; the credit note's id."""
    invoices = await chaos.stripe.objects("/v1/invoices")
    [first] = [i for i in invoices if i["customer_name"] == "Acme Robotics Inc."]
    paid = await _stripe_call(
        chaos, f"/v1/invoices/{first['id']}/pay", {"payment_method": "pm_card_visa"}
    )
    assert paid.status_code == 200, paid.text
    organizations = await chaos.every("/system/support/v1/organizations")
    [acme] = [o for o in organizations if o["legal_name"] == "Acme Robotics Inc."]
    cases = await chaos.every(
        "/system/support/v1/cases", organization=acme["id"], priority="urgent"
    )
    accepted = await chaos.post(
        "/process/v1/escalations", {"organization_id": acme["id"], "ticket_id": cases[0]["id"]}
    )
    credit_id = accepted["flow_id"]

    waiting = await eventually(
        lambda: chaos.get(f"/process/v1/flows/{credit_id}"),
        lambda flow: flow["status"] in ("waiting_approval", *ENDED),
        timeout=120,
        interval=1.0,
        what="the credit awaiting approval",
    )
    assert waiting["status"] == "waiting_approval", _why(waiting)
    await chaos.post(
        f"/process/v1/service-credits/{credit_id}/approve", {"reason": "Outage SLA missed"}
    )

    async def credited() -> dict[str, Any] | None:
        credit = await chaos.get(f"/process/v1/service-credits/{credit_id}")
        return credit if credit["status"] == "credited" else None

    done = await eventually(credited, timeout=120, interval=1.0, what="the credit issued")
    # Paid in full and credited: nothing stays open on the ERP invoice, whichever of the
    # payment and the credit memo was booked first (what the memo left open is applied, the
    # rest of the payment stays on the customer as unapplied credit).
    await eventually(
        lambda: chaos.every("/system/erp/v1/invoices", external_id=first["id"]),
        lambda posted: bool(posted) and posted[0]["amount_remaining"] == 0,
        timeout=120,
        interval=1.0,
        what="Acme's invoice settled in the ERP",
    )
    return str(done["credit_note_id"])


def _why(flow: dict[str, Any]) -> list[Any]:
    """A flow's reason and failed steps, for an assertion's message."""
    failed = [(s["name"], s["error"]) for s in flow["steps"] if s["status"] == "failed"]
    return [flow["id"], flow["status"], flow.get("reason"), failed]


async def _retry_waiting(chaos: Chaos, queue: list[dict[str, Any]]) -> None:
    """The platforms are healthy again: an operator retries what waits, and it completes."""
    for entry in queue:
        await chaos.post(f"/process/v1/exceptions/{entry['id']}/retry", {})
        chaos.retried += 1
    await chaos.flows_ended()
    still = await chaos.every("/process/v1/exceptions", status="open")
    first = {e["id"]: e["cause"][:300] for e in queue}
    flows = [_why(await chaos.get(f"/process/v1/flows/{e['flow_id']}")) for e in still]
    assert still == [], (first, flows)


# -- amounts -----------------------------------------------------------------------------------


def _expected_contract(deal: Deal, amended: dict[str, int]) -> int:
    """What the deal is booked at now: its sold lines, seats as amended."""
    seats = amended.get(deal.opportunity)
    return sum(
        unit * (seats if seats is not None and code == "SEAT" else quantity)
        for code, quantity, unit in deal.lines
    )


async def _assert_amounts(
    chaos: Chaos, run: dict[str, Any], deals: list[Deal], amended: dict[str, int]
) -> None:
    """The CRM's deal amounts, billing's invoices and the ERP's orders and invoices agree,
    per entity and currency and deal by deal, with what was sold."""
    for total in run["totals"]:
        present = [total[s] for s in ("crm", "billing", "erp") if total[s] is not None]
        assert len(set(present)) == 1, total
    contracts: Counter[tuple[str, str]] = Counter()
    for deal in deals:
        contracts[(deal.buyer.entity, deal.buyer.currency)] += _expected_contract(deal, amended)
    deal_totals = {
        (t["legal_entity"], t["currency"]): t["crm"] for t in run["totals"] if t["kind"] == "deals"
    }
    assert deal_totals == dict(contracts)

    invoices = await chaos.stripe.objects("/v1/invoices")
    erp = {i["external_id"]: i for i in await chaos.every("/system/erp/v1/invoices")}
    billed = [i for i in invoices if i["status"] in ("open", "paid") and i["total"] > 0]
    rates = {deal.buyer.name: deal.buyer.tax_bps for deal in deals}
    for invoice in billed:
        # Every line taxed at the customer's rate, rounded half up once per line.
        assert invoice["tax"] == sum(
            line_tax(line["amount"], rates[invoice["customer_name"]])
            for line in invoice["lines"]["data"]
        ), invoice["id"]
        posted = erp[invoice["id"]]
        assert (posted["total"], posted["tax"], posted["currency"]) == (
            invoice["total"],
            invoice["tax"],
            invoice["currency"].upper(),
        ), invoice["id"]


async def _assert_repaired_amounts(chaos: Chaos, drift: dict[str, Any]) -> None:
    erp = {i["external_id"]: i for i in await chaos.every("/system/erp/v1/invoices")}
    assert erp[drift["hand_invoice"]]["total"] == HAND_INVOICE
    deleted = drift["deleted"]
    assert (erp[deleted["id"]]["total"], erp[deleted["id"]]["tax"]) == (
        deleted["total"],
        deleted["tax"],
    )
    memos = await chaos.every("/system/erp/v1/credit-memos")
    assert [m["amount"] for m in memos if m["external_id"] == f"recon:{drift['credit_note']}"] == [
        drift["credit_amount"]
    ]
    lyon = await chaos.stripe.customers_of(drift["lyon"])
    assert len(lyon) == 1


# -- drift -----------------------------------------------------------------------------------


async def _make_drift(chaos: Chaos, deals: list[Deal], credit_note: str) -> dict[str, Any]:
    lyon = next(d for d in deals if d.buyer.key == "lyon")
    lyon_account = (await chaos.sf.get("Opportunity", lyon.opportunity))["AccountId"]
    oregon = next(d for d in deals if d.buyer.key == "oregon")
    [oregon_customer] = await chaos.stripe.customers_of(
        (await chaos.sf.get("Opportunity", oregon.opportunity))["AccountId"]
    )

    # (a) Invoices issued while the Stripe webhook endpoints were deleted.
    endpoints = (await chaos.vendor("GET", "stripe", "/v1/webhook_endpoints")).json()["data"]
    for endpoint in endpoints:
        deleted = await chaos.vendor("DELETE", "stripe", f"/v1/webhook_endpoints/{endpoint['id']}")
        assert deleted.status_code == 200, deleted.text
    item = await chaos.vendor(
        "POST",
        "stripe",
        "/v1/invoiceitems",
        data={
            "customer": oregon_customer["id"],
            "amount": str(HAND_INVOICE),
            "currency": "usd",
            "description": "Extra training day",
        },
    )
    assert item.status_code == 200, item.text
    draft = await chaos.vendor(
        "POST",
        "stripe",
        "/v1/invoices",
        data={
            "customer": oregon_customer["id"],
            "collection_method": "send_invoice",
            "days_until_due": "30",
            "pending_invoice_items_behavior": "include",
        },
    )
    assert draft.status_code == 200, draft.text
    hand = await chaos.vendor("POST", "stripe", f"/v1/invoices/{draft.json()['id']}/finalize")
    assert hand.status_code == 200, hand.text
    for endpoint in endpoints:  # a person puts the endpoints back
        restored = await chaos.vendor(
            "POST",
            "stripe",
            "/v1/webhook_endpoints",
            data={"url": endpoint["url"], "enabled_events[]": endpoint["enabled_events"]},
        )
        assert restored.status_code == 200, restored.text

    # (b) An open, taxed ERP invoice deleted in NetSuite.
    invoices = await chaos.stripe.objects("/v1/invoices")
    berlin = [
        i
        for i in invoices
        if i["customer_name"] == "Spree Logistik GmbH" and i["status"] == "open" and i["tax"]
    ]
    victim = berlin[0]
    [posted] = await chaos.every("/system/erp/v1/invoices", external_id=victim["id"])
    gone = await chaos.vendor(
        "DELETE", "netsuite", f"/services/rest/record/v1/invoice/{posted['id']}"
    )
    assert gone.status_code == 204, gone.text

    # (c) A second Stripe customer carrying the French account.
    duplicate = await chaos.vendor(
        "POST",
        "stripe",
        "/v1/customers",
        data={
            "name": "Rhone Chimie (copy)",
            "metadata[crm_account_id]": lyon_account,
            "metadata[legal_entity]": "DE01",
            "metadata[currency]": "EUR",
        },
    )
    assert duplicate.status_code == 200, duplicate.text

    # (d) The service credit's credit memo deleted in NetSuite.
    memos = await chaos.every("/system/erp/v1/credit-memos")
    [memo] = [m for m in memos if m["external_id"] == f"cn:{credit_note}"]
    dropped = await chaos.vendor(
        "DELETE", "netsuite", f"/services/rest/record/v1/creditMemo/{memo['id']}"
    )
    assert dropped.status_code == 204, dropped.text
    return {
        "hand_invoice": str(hand.json()["id"]),
        "deleted": {"id": victim["id"], "total": victim["total"], "tax": victim["tax"]},
        "lyon": lyon_account,
        "duplicate": str(duplicate.json()["id"]),
        "credit_note": credit_note,
        "credit_amount": memo["amount"],
    }


async def _find_and_repair(chaos: Chaos, drift: dict[str, Any]) -> tuple[int, int]:
    """The next run finds each drift once with its own exception; the machine repairs the
    invoices and the memo, a person removes the duplicate and resolves its exception."""
    run = await chaos.reconcile()
    found = {(m["kind"], m["key"]): m for m in run["mismatches"]}
    assert set(found) == {
        ("invoices", drift["hand_invoice"]),
        ("invoices", drift["deleted"]["id"]),
        ("customers", drift["lyon"]),
        ("credits", drift["credit_note"]),
    }, [m["reason"] for m in run["mismatches"]]
    assert (
        found[("invoices", drift["deleted"]["id"])]["values"]["billing"]
        == drift["deleted"]["total"]
    )
    assert found[("credits", drift["credit_note"])]["values"] == {
        "crm": None,
        "billing": drift["credit_amount"],
        "erp": None,
    }
    assert len({m["exception_id"] for m in run["mismatches"] if m["exception_id"]}) == 4
    repaired = 0
    for key, mismatch in found.items():
        if key[0] == "customers":
            continue
        accepted = await chaos.post(
            f"/process/v1/reconciliations/{run['id']}/mismatches/{mismatch['id']}/repair"
        )
        repaired += 1
        flow = await chaos.flow_ended(accepted["flow_id"])
        assert flow["status"] == "succeeded", _why(flow)
    removed = await chaos.vendor("DELETE", "stripe", f"/v1/customers/{drift['duplicate']}")
    assert removed.status_code == 200, removed.text
    duplicate = found[("customers", drift["lyon"])]
    await chaos.post(
        f"/process/v1/exceptions/{duplicate['exception_id']}/resolve",
        {"reason": "Duplicate Stripe customer created by hand; deleted"},
        ok=200,
    )
    settled = await eventually(
        lambda: chaos.get(f"/process/v1/reconciliations/{run['id']}"),
        lambda run: run["summary"]["unexplained"] == 0,
        timeout=60,
        what="every drift repaired or explained",
    )
    assert settled["summary"]["repaired"] == 3
    return len(found), repaired
