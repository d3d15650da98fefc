"""Traces by business key, end to end against the emulators: a won deal's quote-to-cash, the
posting of the invoice its subscription issues (started by Stripe's webhook) and the failure
of that invoice's payment all carry the deal's correlation id, and the trace is found by the
deal, the invoice (billing's or the ERP's id), the subscription and the customer; a caller of
another legal entity is told what an unknown key tells. The same run's money series count
the deal booked, its invoice invoiced and its payment collected, once each."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts.errors import UpstreamInvalid
from process_apis.engine.store import utcnow
from tests.process_apis.q2c_harness import harness
from tests.process_apis.sandbox import seeded_id
from tests.process_apis.served_gateway import Served, create_client, served_gateway
from tests.support.waiting import eventually

SCOPES = ("process:write", "process:read", "ops:read")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TRACES = "/experience/ops/v1/traces"


async def _one_succeeded(world: Served, flow_type: str) -> dict[str, Any]:
    flows = await eventually(
        lambda: world.flows(flow_type),
        lambda found: [flow["status"] for flow in found] == ["succeeded"],
        timeout=90.0,
        what=f"one succeeded {flow_type} flow",
    )
    return flows[0]


async def _trace(world: Served, headers: dict[str, str] | None = None, **key: str) -> Any:
    return await world.http.get(TRACES, params=key, headers=headers or world.reader)


async def test_a_deal_its_invoice_posting_and_payment_failure_share_one_trace(
    tmp_path: Path,
) -> None:
    opportunity = seeded_id("Opportunity", "acme-platform")
    account = seeded_id("Account", "acme")
    async with served_gateway(tmp_path, scopes=SCOPES) as world:
        booked = await world.http.post(
            "/process/v1/quote-to-cash",
            json={"opportunity_id": opportunity},
            headers={
                **world.reader,
                "Idempotency-Key": uuid.uuid4().hex,
                "X-Correlation-ID": "deal-trace-1",
            },
        )
        assert booked.status_code == 202, booked.text
        q2c = await _one_succeeded(world, "quote_to_cash")
        posting = await _one_succeeded(world, "invoice_posting")
        deal = await world.salesforce.get_deal(opportunity)
        assert deal.billing_subscription_id is not None
        subscription = await world.stripe.get_subscription(deal.billing_subscription_id)
        [stripe_invoice] = (await world.stripe.list_invoices(subscription_id=subscription.id)).data
        erp_invoice = await world.netsuite.find_invoice(external_id=stripe_invoice.id)
        assert erp_invoice is not None
        sales_order = await world.netsuite.get_sales_order(
            q2c_step(q2c, "book_sales_order")["netsuite_sales_order"]
        )

        with pytest.raises(UpstreamInvalid):
            await world.stripe.pay_invoice(
                stripe_invoice.id, payment_method="pm_card_chargeDeclined"
            )
        failure = await _one_succeeded(world, "payment_failure")
        # Stripe marks the subscription past due: the account's status follows, same trace.
        status = await _one_succeeded(world, "payment_status")

        # Vendor calls are recorded in batches: wait until every flow's calls are written.
        by_deal = await eventually(
            lambda: _trace(world, deal=opportunity),
            lambda response: (
                _flows_with_calls(response.json()) >= {q2c["id"], posting["id"], failure["id"]}
            ),
            what="every flow's vendor calls in the trace",
        )
        by_invoice = await _trace(world, invoice=stripe_invoice.id)
        by_erp_invoice = await _trace(world, invoice=erp_invoice.id)
        by_customer = await _trace(world, customer=account)
        by_subscription = await _trace(world, subscription=subscription.id)
        other_entity = await world.headers_for(("ops:read",), entities=("DE01",))
        hidden = await _trace(world, other_entity, deal=opportunity)
        same_entity = await world.headers_for(("ops:read",), entities=("US01",))
        seen = await _trace(world, same_entity, deal=opportunity)
        empty = await _trace(world, deal="")
        hidden_invoice = await _trace(world, other_entity, invoice=stripe_invoice.id)
        posting_page = await _console_page(world, f"/ops/flows/{posting['id']}")
        unknown = await _trace(world, deal="006000000000000AAA")
        two_keys = await _trace(world, deal=opportunity, invoice=stripe_invoice.id)

        # The customer pays after all: the payment is posted and counted as collected.
        paid = await world.stripe.pay_invoice(stripe_invoice.id, payment_method="pm_card_visa")
        await _one_succeeded(world, "payment_posting")
        metrics = _samples((await world.http.get("/metrics")).text)

    # Every flow the deal caused joined its trace (through the keys the deal's flow reported).
    assert q2c["correlation_id"] == "deal-trace-1"
    assert posting["correlation_id"] == "deal-trace-1"
    assert failure["correlation_id"] == "deal-trace-1"
    assert posting["caused_by"] == q2c["id"]
    assert failure["caused_by"] == posting["id"]

    # Amounts: the deal, the order, the billing invoice and the ERP invoice agree.
    assert deal.amount == sales_order.total
    assert erp_invoice.total == stripe_invoice.total
    assert stripe_invoice.currency == sales_order.currency == "USD"

    for response in (by_deal, by_invoice, by_erp_invoice, by_customer, by_subscription):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["etag"]
    trace = by_deal.json()
    assert trace["correlation_id"] == "deal-trace-1"
    assert trace["found_by"] == {"kind": "deal", "value": opportunity}
    flows = {flow["id"]: flow for flow in trace["flows"]}
    # In the order they started: the deal, its invoice's posting, then what the failed
    # payment set off (the failure and the subscription going past due).
    assert list(flows)[:2] == [q2c["id"], posting["id"]]
    assert set(flows) == {q2c["id"], posting["id"], failure["id"], status["id"]}
    assert all(flow["status"] == "succeeded" for flow in trace["flows"])
    assert flows[q2c["id"]]["caused_by"] is None
    assert set(flows[q2c["id"]]["caused"]) == {posting["id"], status["id"]}
    assert flows[posting["id"]]["caused_by"] == q2c["id"]
    assert flows[posting["id"]]["caused"] == [failure["id"]]
    assert flows[failure["id"]]["caused_by"] == posting["id"]
    assert flows[status["id"]]["caused_by"] == q2c["id"]
    for response in (by_invoice, by_erp_invoice, by_customer, by_subscription):
        assert response.json()["correlation_id"] == "deal-trace-1"
        assert [flow["id"] for flow in response.json()["flows"]] == list(flows)

    # Every flow's steps, its vendor calls and the webhooks that started them, in time order.
    events = trace["events"]
    assert [event["at"] for event in events] == sorted(event["at"] for event in events)
    kinds = {(event["kind"], event.get("flow_id")) for event in events}
    for flow_id in flows:
        assert ("step", flow_id) in kinds
    for flow_id in (q2c["id"], posting["id"], failure["id"]):
        assert ("vendor_call", flow_id) in kinds
    webhooks = [event for event in events if event["kind"] == "webhook"]
    assert {(hook["name"], hook["flow_id"]) for hook in webhooks} >= {
        ("invoice.finalized", posting["id"]),
        ("invoice.payment_failed", failure["id"]),
    }
    posted = next(
        event
        for event in events
        if event["kind"] == "step"
        and event["flow_id"] == posting["id"]
        and event["name"] == "post_invoice"
    )
    assert posted["external_ids"]["netsuite_invoice"] == erp_invoice.id

    # Money as the platforms hold it, counted once each, in the deal's entity and currency.
    def money(kind: str) -> float:
        labels = frozenset({"kind": kind, "legal_entity": "US01", "currency": "USD"}.items())
        return metrics.get(("erpgw_money_minor_total", labels), 0.0)

    assert money("booked") == deal.amount == sales_order.total
    assert money("invoiced") == stripe_invoice.total == erp_invoice.total
    assert paid.amount_paid == stripe_invoice.total
    assert money("collected") == paid.amount_paid
    assert money("credited") == 0
    for flow_type in ("quote_to_cash", "invoice_posting", "payment_failure", "payment_posting"):
        for outcome in ("started", "succeeded"):
            labels = frozenset({"type": flow_type, "outcome": outcome}.items())
            assert metrics[("erpgw_flows_total", labels)] == 1, (flow_type, outcome)

    # The console's flow page links the flow that caused it and the flow it caused.
    assert posting_page.status_code == 200
    caused_by = _section(posting_page.text, "caused-by")
    caused = _section(posting_page.text, "caused")
    assert f'href="/ops/flows/{q2c["id"]}"' in caused_by
    assert f'href="/ops/flows/{failure["id"]}"' in caused
    assert 'href="/ops/flows?q=deal-trace-1"' in posting_page.text

    # Another legal entity's caller learns nothing: the same answer as an unknown key.
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    for response in (hidden, hidden_invoice):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == unknown.json()["title"]
        assert "deal-trace-1" not in response.text
    assert seen.status_code == 200
    assert seen.json()["correlation_id"] == "deal-trace-1"
    assert empty.status_code == 422
    assert empty.headers["content-type"] == "application/problem+json"
    assert two_keys.status_code == 422
    assert two_keys.headers["content-type"] == "application/problem+json"
    assert {error["pointer"] for error in two_keys.json()["errors"]} == {"deal", "invoice"}


def q2c_step(flow: dict[str, Any], name: str) -> dict[str, str]:
    """The external ids a step of a flow resource reported."""
    step = next(step for step in flow["steps"] if step["name"] == name)
    ids: dict[str, str] = step["external_ids"]
    return ids


def _flows_with_calls(trace: dict[str, Any]) -> set[str]:
    return {
        event["flow_id"]
        for event in trace.get("events", [])
        if event["kind"] == "vendor_call" and event.get("flow_id")
    }


async def _console_page(world: Served, path: str) -> Any:
    """`path` of the operations console, signed in as an operator (client credentials)."""
    client_id, secret = await create_client(world.database_url, scopes=("ops:read",))
    form = await world.http.get("/ops/sign-in")
    token = CSRF.search(form.text)
    assert token is not None
    signed_in = await world.http.post(
        "/ops/sign-in",
        data={"client_id": client_id, "client_secret": secret, "csrf_token": token.group(1)},
    )
    assert signed_in.status_code == 303, signed_in.text
    return await world.http.get(path)


def _section(page: str, element_id: str) -> str:
    """The inner HTML of the `<dd id=...>` of the flow page's facts."""
    match = re.search(rf'<dd id="{element_id}">(.*?)</dd>', page, re.S)
    assert match is not None, element_id
    return match.group(1)


async def test_an_amendment_of_the_deals_subscription_joins_the_deals_trace(
    tmp_path: Path,
) -> None:
    opportunity = seeded_id("Opportunity", "acme-platform")
    async with harness(tmp_path) as q2c:
        booked = await q2c.client.post(
            "/process/v1/quote-to-cash",
            json={"opportunity_id": opportunity},
            headers={
                **q2c.headers,
                "Idempotency-Key": uuid.uuid4().hex,
                "X-Correlation-ID": "deal-trace-2",
            },
        )
        assert booked.status_code == 202, booked.text
        deal_flow = await q2c.wait(f"q2c:{opportunity}", "succeeded", "failed")
        subscription_id = q2c_step(deal_flow, "subscribe_to_recurring_prices")[
            "stripe_subscription"
        ]
        amended = await q2c.client.post(
            "/process/v1/subscription-amendments",
            json={
                "subscription_id": subscription_id,
                "changes": [{"product_code": "SEAT", "quantity": 25}],
                "effective_date": utcnow().date().isoformat(),
            },
            # A request of its own, under another correlation id.
            headers={
                **q2c.headers,
                "Idempotency-Key": uuid.uuid4().hex,
                "X-Correlation-ID": "amendment-request",
            },
        )
        assert amended.status_code == 202, amended.text
        amendment = await q2c.wait(amended.json()["flow_id"], "succeeded", "failed")
        seats = await q2c.port("stripe").get_subscription(subscription_id)
        by_subscription = await q2c.client.get(
            TRACES, params={"subscription": subscription_id}, headers=q2c.headers
        )

    assert amendment["status"] == "succeeded", amendment
    assert {item.product_code: item.quantity for item in seats.items}["SEAT"] == 25
    assert amendment["correlation_id"] == deal_flow["correlation_id"] == "deal-trace-2"
    assert amendment["caused_by"] == deal_flow["id"]
    assert by_subscription.status_code == 200, by_subscription.text
    flows = {flow["id"]: flow for flow in by_subscription.json()["flows"]}
    assert list(flows) == [deal_flow["id"], amendment["id"]]
    assert flows[deal_flow["id"]]["caused"] == [amendment["id"]]


def _samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }
