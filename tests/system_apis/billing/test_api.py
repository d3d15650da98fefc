"""The canonical billing routes over the Stripe client and emulator: paging, filters, entities."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Response
from litestar.di import Provide
from litestar.middleware import ASGIMiddleware
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from contracts.errors import GatewayError, InvalidRequest, NotFound
from contracts.money import Money
from contracts.principal import Principal
from contracts.v1 import CreditNoteCreate, CustomerCreate, SubscriptionCreate, SubscriptionItemInput
from gateway.sandbox_wiring import stripe_sandbox_credentials as sandbox_credentials
from sandbox.stripe import StripeEmulator
from sandbox.stripe.emulator import price_id_for, product_id_for
from system_apis.billing import create_router
from system_apis.billing.stripe import StripeClient
from system_apis.outbound import CursorSeal

SEAL = CursorSeal(bytes(32))

API = "/system/billing/v1"


class CallerFromHeader(ASGIMiddleware):
    """Plays the gateway's auth: `X-Entities: US01,DE01` (absent means every entity)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = dict(scope["headers"])
        raw = headers.get(b"x-entities")
        entities = frozenset(raw.decode().split(",")) if raw is not None else None
        scope["user"] = Principal(
            client_id="test", name="test", scopes=frozenset({"billing:read"}), entities=entities
        )
        await next_app(scope, receive, send)


def _error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    status = {NotFound: 404, InvalidRequest: 400}.get(type(exc), 502)
    return Response({"title": type(exc).__name__, "detail": str(exc)}, status_code=status)


@pytest.fixture
async def world() -> AsyncIterator[dict[str, Any]]:
    emulator = StripeEmulator(rate_limit_per_second=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.vendor)) as http:
        stripe = StripeClient(http, credentials=sandbox_credentials("http://stripe.test"))
        made: dict[str, Any] = {"stripe": stripe}
        for key, entity, currency in (("us", "US01", "USD"), ("de", "DE01", "EUR")):
            customer = await stripe.create_customer(
                CustomerCreate(legal_name=f"{key} customer", legal_entity=entity, currency=currency)
            )
            subscription = await stripe.create_subscription(
                SubscriptionCreate(
                    customer_id=customer.id,
                    currency=currency,
                    items=[SubscriptionItemInput(price_id=price_id_for("SEAT", currency))],
                )
            )
            (invoice,) = (await stripe.list_invoices(customer_id=customer.id)).data
            note = await stripe.create_credit_note(
                CreditNoteCreate(invoice_id=invoice.id, currency=currency, amount=100)
            )
            made[key] = {
                "customer": customer,
                "subscription": subscription,
                "invoice": invoice,
                "note": note,
            }
        await stripe.create_invoice_item(
            customer_id=made["us"]["customer"].id, amount=Money(amount=700, currency="USD")
        )
        made["us"]["draft"] = await stripe.create_invoice(customer_id=made["us"]["customer"].id)
        app = Litestar(
            route_handlers=[create_router()],
            dependencies={"billing": Provide(lambda: stripe, sync_to_thread=False),
                                  "cursor_seal": Provide(lambda: SEAL, sync_to_thread=False)},
            middleware=[CallerFromHeader()],
            exception_handlers={GatewayError: _error},
            openapi_config=None,
        )
        async with AsyncTestClient(app) as client:
            made["client"] = client
            yield made


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


async def test_routes_declare_scope_and_rate_limit_group() -> None:
    handlers = [
        handler
        for route in create_router().routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if "GET" in handler.http_methods
    ]
    assert len(handlers) == 10  # v1: 8, v2: 2 (invoices)
    for handler in handlers:
        assert handler.opt["scopes"] == ["billing:read"]
        assert handler.opt["rate_limit_group"] == "system"


async def test_pages_products_with_opaque_cursors(world: dict[str, Any]) -> None:
    client = world["client"]
    first = await client.get(f"{API}/products", params={"limit": 3})
    cursor = first.json()["next_cursor"]
    second = await client.get(f"{API}/products", params={"limit": 3, "cursor": cursor})

    assert len(ids(first)) == 3 and cursor
    assert len(ids(second)) == 2 and second.json()["next_cursor"] is None
    assert set(ids(first)) | set(ids(second)) == {
        product_id_for(code) for code in ("PLAT-STD", "PLAT-ENT", "SEAT", "ONBOARD", "API-CALLS")
    }


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"cursor": "bogus"}])
async def test_refuses_bad_paging(world: dict[str, Any], params: dict[str, Any]) -> None:
    response = await world["client"].get(f"{API}/products", params=params)
    assert response.status_code == 400


async def test_filters_prices_by_product(world: dict[str, Any]) -> None:
    response = await world["client"].get(
        f"{API}/prices", params={"product": product_id_for("SEAT")}
    )
    assert sorted(ids(response)) == sorted(
        [price_id_for("SEAT", "USD"), price_id_for("SEAT", "EUR")]
    )
    assert {p["product_code"] for p in response.json()["data"]} == {"SEAT"}


async def test_customers_of_other_entities_are_hidden(world: dict[str, Any]) -> None:
    client = world["client"]
    everyone = await client.get(f"{API}/customers")
    us_only = await client.get(f"{API}/customers", headers={"X-Entities": "US01"})

    assert sorted(ids(everyone)) == sorted([world["us"]["customer"].id, world["de"]["customer"].id])
    assert ids(us_only) == [world["us"]["customer"].id]
    assert us_only.json()["data"][0]["legal_entity"] == "US01"


async def test_filters_subscriptions(world: dict[str, Any]) -> None:
    client = world["client"]
    de = world["de"]
    by_customer = await client.get(f"{API}/subscriptions", params={"customer": de["customer"].id})
    active = await client.get(
        f"{API}/subscriptions", params={"status": "active"}, headers={"X-Entities": "DE01"}
    )
    canceled = await client.get(f"{API}/subscriptions", params={"status": "canceled"})
    bad = await client.get(f"{API}/subscriptions", params={"status": "sleeping"})

    assert ids(by_customer) == [de["subscription"].id]
    assert ids(active) == [de["subscription"].id]
    assert ids(canceled) == []
    assert bad.status_code == 400


async def test_reads_one_subscription_within_the_callers_entities(world: dict[str, Any]) -> None:
    client = world["client"]
    subscription = world["us"]["subscription"]
    seen = await client.get(f"{API}/subscriptions/{subscription.id}")
    hidden = await client.get(
        f"{API}/subscriptions/{subscription.id}", headers={"X-Entities": "DE01"}
    )
    missing = await client.get(f"{API}/subscriptions/sub_nope")

    assert seen.status_code == 200 and seen.json()["items"][0]["product_code"] == "SEAT"
    assert (hidden.status_code, missing.status_code) == (404, 404)


async def test_filters_invoices_and_hides_other_entities(world: dict[str, Any]) -> None:
    client = world["client"]
    us = world["us"]
    drafts = await client.get(f"{API}/invoices", params={"status": "draft"})
    mine = await client.get(f"{API}/invoices", params={"customer": us["customer"].id})
    de_view = await client.get(f"{API}/invoices", headers={"X-Entities": "DE01"})
    bad = await client.get(f"{API}/invoices", params={"status": "lost"})

    assert ids(drafts) == [us["draft"].id]
    assert ids(mine) == [us["draft"].id, us["invoice"].id]
    assert ids(de_view) == [world["de"]["invoice"].id]
    assert de_view.json()["data"][0]["legal_entity"] == "DE01"
    assert bad.status_code == 400


async def test_reads_one_invoice(world: dict[str, Any]) -> None:
    client = world["client"]
    invoice = world["de"]["invoice"]
    seen = await client.get(f"{API}/invoices/{invoice.id}")
    hidden = await client.get(f"{API}/invoices/{invoice.id}", headers={"X-Entities": "US01"})
    missing = await client.get(f"{API}/invoices/in_nope")

    assert seen.status_code == 200
    assert (seen.json()["total"], seen.json()["currency"]) == (2_300, "EUR")
    assert (hidden.status_code, missing.status_code) == (404, 404)


async def test_filters_credit_notes(world: dict[str, Any]) -> None:
    client = world["client"]
    us, de = world["us"], world["de"]
    by_invoice = await client.get(f"{API}/credit-notes", params={"invoice": us["invoice"].id})
    by_customer = await client.get(f"{API}/credit-notes", params={"customer": de["customer"].id})
    us_view = await client.get(f"{API}/credit-notes", headers={"X-Entities": "US01"})

    assert ids(by_invoice) == [us["note"].id]
    assert ids(by_customer) == [de["note"].id]
    assert ids(us_view) == [us["note"].id]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("subscriptions", {"status": ""}),
        ("subscriptions", {"customer": "not-a-customer"}),
        ("invoices", {"status": ""}),
        ("invoices", {"customer": "sub_x"}),
        ("prices", {"product": "price_x"}),
        ("credit-notes", {"invoice": "in_"}),
        ("customers", {"email": ""}),
        ("customers", {"limit": -1}),
    ],
)
async def test_refuses_malformed_filters(
    world: dict[str, Any], path: str, params: dict[str, Any] | list[tuple[str, str]]
) -> None:
    response = await world["client"].get(f"{API}/{path}", params=params)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("kind", ["subscriptions", "invoices"])
async def test_ids_must_look_like_stripe_ids(world: dict[str, Any], kind: str) -> None:
    client = world["client"]
    prefix = {"subscriptions": "sub", "invoices": "in"}[kind]
    assert (await client.get(f"{API}/{kind}/{prefix}_nope")).status_code == 404
    # Python's `$` also matches before a final newline: the client sends it escaped.
    assert (await client.get(f"{API}/{kind}/{prefix}_nope%0A")).status_code == 404
    for malformed in ("nope", "cus_nope", f"{prefix}_%C3%A9", f"{prefix}_a%04b"):
        assert (await client.get(f"{API}/{kind}/{malformed}")).status_code == 404
