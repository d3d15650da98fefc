"""Closing a deal in the Salesforce sandbox books it: the emulator's Closed Won Flow calls out
to the gateway's `/webhooks/salesforce` as the sandbox's integration client, and quote-to-cash
runs without anyone calling the process API. Amounts are read back from Stripe and NetSuite."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from gateway.sandbox_wiring import CALLOUT_CLIENT_FILE
from sandbox.credentials import SALESFORCE
from sandbox.salesforce.ids import seeded_id
from tests.process_apis.served_gateway import served_gateway
from tests.support.waiting import eventually

SEATS = 30
SEAT_USD = 2_500
DATA = "/services/data/v62.0"


async def _salesforce_token(http: httpx.AsyncClient, sandbox: str) -> dict[str, str]:
    token = await http.post(
        f"{sandbox}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SALESFORCE.client_id,
            "client_secret": SALESFORCE.client_secret,
        },
    )
    token.raise_for_status()
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def test_closing_a_deal_in_the_emulator_books_it_end_to_end(tmp_path: Path) -> None:
    opportunity = seeded_id("Opportunity", "acme-expansion")
    flow_id = f"q2c:{opportunity}"
    async with served_gateway(tmp_path) as served:
        sandbox = f"{served.base_url}/_sandbox/salesforce"
        salesforce = await _salesforce_token(served.http, sandbox)

        closed = await served.http.patch(
            f"{sandbox}{DATA}/sobjects/Opportunity/{opportunity}",
            json={"StageName": "Closed Won"},
            headers=salesforce,
        )
        assert closed.status_code == 204, closed.text

        async def finished() -> dict[str, Any] | None:
            answer = await served.http.get(f"/process/v1/flows/{flow_id}", headers=served.reader)
            flow: dict[str, Any] = answer.json()
            return flow if flow.get("status") in ("succeeded", "failed") else None

        flow = await eventually(finished, timeout=90, what=f"flow {flow_id} finished")
        assert flow["status"] == "succeeded", flow
        steps = {step["name"]: step for step in flow["steps"]}

        # Stripe: the deal's 30 seats at their sold price of $25.00.
        [subscription] = (
            await served.stripe.list_subscriptions(
                customer_id=steps["create_billing_customer"]["external_ids"]["stripe_customer"]
            )
        ).data
        assert subscription.deal_id == opportunity
        assert subscription.currency == "USD"
        assert [(i.product_code, i.quantity, i.unit_amount) for i in subscription.items] == [
            ("SEAT", SEATS, SEAT_USD)
        ]
        # NetSuite: the sales order of the deal, same lines and total.
        number = steps["book_sales_order"]["external_ids"]["netsuite_tran_id"]
        [order] = (await served.netsuite.list_sales_orders(number=number)).data
        assert order.external_id == flow_id
        assert (order.currency, order.total) == ("USD", SEATS * SEAT_USD)
        assert Counter({line.product_code: line.quantity for line in order.lines}) == Counter(
            {"SEAT": SEATS}
        )
        # Salesforce: the write-back, read through the emulator's own API.
        deal = await served.http.get(
            f"{sandbox}{DATA}/sobjects/Opportunity/{opportunity}", headers=salesforce
        )
        assert deal.json()["StageName"] == "Closed Won"
        assert (await served.salesforce.get_deal(opportunity)).erp_order_number == number

    # The callout signed in as the sandbox's integration client, kept (0600) for the next start.
    stored = tmp_path / CALLOUT_CLIENT_FILE
    assert stored.stat().st_mode & 0o777 == 0o600


async def test_seeded_won_deals_and_other_edits_call_nothing_out(tmp_path: Path) -> None:
    open_deal = seeded_id("Opportunity", "initech-pilot")
    async with served_gateway(tmp_path) as served:
        sandbox = f"{served.base_url}/_sandbox/salesforce"
        reset = await served.http.post(f"{sandbox}/_emulator/reset", json={})
        salesforce = await _salesforce_token(served.http, sandbox)
        renamed = await served.http.patch(
            f"{sandbox}{DATA}/sobjects/Opportunity/{open_deal}",
            json={"Name": "Initech - Pilot (renamed)"},
            headers=salesforce,
        )
        assert (reset.status_code, renamed.status_code) == (200, 204), reset.text
        flows = await served.flows("quote_to_cash")
    assert flows == []
