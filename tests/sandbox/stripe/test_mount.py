"""The emulator mounted under a prefix in a Litestar app: its links carry the prefix."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
from litestar import Litestar, asgi

from contracts.money import Money
from contracts.v1 import CustomerCreate
from gateway.sandbox_wiring import stripe_sandbox_credentials as sandbox_credentials
from sandbox.stripe import StripeEmulator
from system_apis.billing.stripe import StripeClient
from tests.support.servers import serve_asgi

PREFIX = "/_sandbox/stripe"
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def litestar_mount(emulator: StripeEmulator) -> Litestar:
    @asgi(PREFIX, is_mount=True, copy_scope=True)
    async def sandbox(scope: Scope, receive: Receive, send: Send) -> None:
        await emulator.vendor(scope, receive, send)

    return Litestar(route_handlers=[sandbox], openapi_config=None)


def root_path_mount(emulator: StripeEmulator) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A mount the way most ASGI routers do it: full path kept, `root_path` set."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            scope = {**scope, "root_path": PREFIX}
        await emulator.vendor(scope, receive, send)

    return app


async def invoice_links(base: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        stripe = StripeClient(http, credentials=sandbox_credentials(base))
        customer = await stripe.create_customer(
            CustomerCreate(legal_name="Acme", legal_entity="US01", currency="USD")
        )
        await stripe.create_invoice_item(
            customer_id=customer.id, amount=Money(amount=1_000, currency="USD")
        )
        invoice = await stripe.finalize_invoice(
            (await stripe.create_invoice(customer_id=customer.id)).id
        )
        raw = await http.get(f"{base}/v1/invoices/{invoice.id}", auth=("sk_test_erpgw_sandbox", ""))
        body: dict[str, Any] = raw.json()
        page = await http.get(body["hosted_invoice_url"])
        pdf = await http.get(body["invoice_pdf"])
        faults = await http.get(f"{base}/_emulator/faults")
    return {"invoice": body, "page": page, "pdf": pdf, "faults": faults}


async def test_links_carry_a_litestar_mount_prefix() -> None:
    emulator = StripeEmulator(rate_limit_per_second=None)
    with serve_asgi(litestar_mount(emulator), lifespan="off") as url:
        found = await invoice_links(f"{url}{PREFIX}")

    invoice = found["invoice"]
    assert invoice["hosted_invoice_url"] == f"{url}{PREFIX}/hosted/invoices/{invoice['id']}"
    assert invoice["invoice_pdf"].startswith(f"{url}{PREFIX}/hosted/invoices/")
    assert found["page"].status_code == 200 and invoice["number"] in found["page"].text
    assert found["pdf"].content.startswith(b"%PDF")
    # Stripe's list urls are relative to the API base, whatever the base is.
    assert invoice["lines"]["url"] == f"/v1/invoices/{invoice['id']}/lines"
    assert found["faults"].json()["counters"]["requests"] >= 5


async def test_links_carry_a_root_path_prefix() -> None:
    emulator = StripeEmulator(rate_limit_per_second=None)
    with serve_asgi(root_path_mount(emulator), lifespan="off") as url:
        found = await invoice_links(f"{url}{PREFIX}")
    assert found["invoice"]["hosted_invoice_url"].startswith(f"{url}{PREFIX}/hosted/invoices/in_")
    assert found["page"].status_code == 200


async def test_links_without_a_mount_have_no_prefix() -> None:
    emulator = StripeEmulator(rate_limit_per_second=None)
    with serve_asgi(emulator.vendor, lifespan="off") as url:
        found = await invoice_links(url)
    assert found["invoice"]["hosted_invoice_url"].startswith(f"{url}/hosted/invoices/in_")
