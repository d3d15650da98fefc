"""Faults the emulator injects (and its own refusals), as the client classifies them."""

from __future__ import annotations

import httpx
import pytest

from contracts.errors import (
    UpstreamAuthFailed,
    UpstreamInvalid,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from contracts.v1 import CustomerCreate, SubscriptionCreate, SubscriptionItemInput
from gateway.sandbox_wiring import stripe_sandbox_credentials as sandbox_credentials
from sandbox.stripe import StripeEmulator
from sandbox.stripe.emulator import product_id_for
from system_apis.billing.stripe import StripeClient
from system_apis.billing.stripe.client import StripeCredentials
from tests.support.servers import serve_asgi
from tests.system_apis.billing.stripe.conftest import set_faults

CUSTOMER = CustomerCreate(legal_name="Initech LLC", legal_entity="US01", currency="USD")


async def test_outage_is_unavailable_and_counted(stripe: StripeClient, base_url: str) -> None:
    await set_faults(base_url, outage=True)
    with pytest.raises(UpstreamUnavailable) as caught:
        await stripe.list_products()
    state = await fault_state(base_url)

    assert caught.value.status == 503 and caught.value.request_id
    assert state["counters"]["outage"] == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_unavailable(
    stripe: StripeClient, base_url: str, status: int
) -> None:
    await set_faults(base_url, error_rate=1.0, error_status=status)
    with pytest.raises(UpstreamUnavailable) as caught:
        await stripe.get_customer("cus_any")
    assert caught.value.status == status
    assert (await fault_state(base_url))["counters"]["error"] == 1


async def test_rate_limit_carries_retry_after(stripe: StripeClient, base_url: str) -> None:
    await set_faults(base_url, rate_limit=True, retry_after=7)
    with pytest.raises(UpstreamUnavailable) as caught:
        await stripe.create_customer(CUSTOMER, idempotency_key="rl:1")
    assert (caught.value.status, caught.value.retry_after) == (429, 7.0)
    assert "rate_limit" in caught.value.message
    assert (await fault_state(base_url))["counters"]["rate_limit"] == 1


async def test_latency_past_the_timeout_is_a_timeout(base_url: str) -> None:
    await set_faults(base_url, latency_ms=3_000, path="/v1/customers*")
    async with httpx.AsyncClient(timeout=1.5) as http:
        stripe = StripeClient(http, credentials=sandbox_credentials(base_url))
        with pytest.raises(UpstreamUnavailable) as caught:
            await stripe.list_customers()
        products = await stripe.list_products()  # outside the fault's path glob
    assert caught.value.timeout is True
    assert len(products.data) == 5
    assert (await fault_state(base_url))["counters"]["latency"] == 1


async def test_injected_not_found(stripe: StripeClient, base_url: str) -> None:
    await set_faults(base_url, error_rate=1.0, error_status=404)
    with pytest.raises(UpstreamNotFound):
        await stripe.get_product(product_id_for("SEAT"))


async def test_unknown_record_is_not_found(stripe: StripeClient) -> None:
    with pytest.raises(UpstreamNotFound) as caught:
        await stripe.get_customer("cus_doesnotexist")
    assert "No such customer" in caught.value.message


async def test_invalid_input_names_the_field(stripe: StripeClient) -> None:
    customer = await stripe.create_customer(CUSTOMER)
    seat = await stripe.find_price(product_code="SEAT", currency="USD")
    assert seat is not None
    with pytest.raises(UpstreamInvalid) as caught:
        await stripe.create_subscription(
            SubscriptionCreate(
                customer_id=customer.id,
                currency="USD",
                days_until_due=10,
                items=[SubscriptionItemInput(price_id=seat.id)],
            )
        )
    assert [e.pointer for e in caught.value.errors] == ["days_until_due"]
    with pytest.raises(UpstreamInvalid) as missing:
        await stripe.create_invoice_item(customer_id=customer.id, price_id="price_nope")
    assert missing.value.errors[0].pointer == "price"


async def test_bad_key_is_auth_failure(http: httpx.AsyncClient, base_url: str) -> None:
    stripe = StripeClient(
        http, credentials=StripeCredentials(secret_key="sk_test_wrong_key_0000", base_url=base_url)
    )
    with pytest.raises(UpstreamAuthFailed) as caught:
        await stripe.list_customers()
    assert caught.value.status == 401


async def test_missing_key_and_unknown_route_answer_in_stripe_shape(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as raw:
        anonymous = await raw.get("/v1/customers")
        unknown = await raw.get(
            "/v1/nothing", headers={"Authorization": "Bearer sk_test_erpgw_sandbox"}
        )
        as_json = await raw.post(
            "/v1/customers", json={"name": "x"}, auth=("sk_test_erpgw_sandbox", "")
        )

    assert anonymous.status_code == 401 and "API key" in anonymous.json()["error"]["message"]
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "invalid_request_error"
    assert as_json.status_code == 400 and as_json.headers["request-id"].startswith("req_")


async def test_control_api_resets_to_the_seed(
    stripe: StripeClient, base_url: str, emulator: StripeEmulator
) -> None:
    first = await stripe.create_customer(CUSTOMER)
    products_before = [p.id for p in (await stripe.list_products()).data]
    await set_faults(base_url, outage=True)
    async with httpx.AsyncClient() as raw:
        reset = await raw.post(f"{base_url}/_emulator/reset", json={})
    state = await fault_state(base_url)

    assert reset.json() == {"reset": True}
    assert state["faults"]["outage"] is False
    assert (await stripe.list_customers()).data == []
    assert [p.id for p in (await stripe.list_products()).data] == products_before
    again = await stripe.create_customer(CUSTOMER)
    assert again.id == first.id  # ids are deterministic after a reset


async def test_builtin_rate_limit_answers_429() -> None:
    emulator = StripeEmulator(rate_limit_per_second=2)
    with serve_asgi(emulator.vendor, lifespan="off") as url:
        async with httpx.AsyncClient(timeout=5.0) as http:
            stripe = StripeClient(http, credentials=sandbox_credentials(url))
            with pytest.raises(UpstreamUnavailable) as caught:
                for _ in range(5):
                    await stripe.list_products()
    assert caught.value.status == 429 and caught.value.retry_after == 1.0
    assert caught.value.code == "rate_limit"


async def fault_state(base_url: str) -> dict[str, dict[str, object]]:
    async with httpx.AsyncClient() as raw:
        response = await raw.get(f"{base_url}/_emulator/faults")
    state: dict[str, dict[str, object]] = response.json()
    return state
