"""Idempotency-Key on unsafe routes: replay, in-flight conflict, mismatch, missing key, and
exactly-once under 100 concurrent requests, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import post

from contracts.errors import InvalidRequest
from gateway.idempotency import parse_idempotency_key
from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)


class Order(msgspec.Struct):
    sku: str
    quantity: int


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.delay = 0.0
        self.fail_next = False


def order_route(calls: Calls) -> Any:
    @post(
        "/process/v1/test-orders",
        opt={"scopes": ["process:write"], "idempotency": "required"},
        status_code=201,
    )
    async def create_order(data: Order) -> dict[str, Any]:
        calls.count += 1
        if calls.delay:
            await asyncio.sleep(calls.delay)
        if calls.fail_next:
            calls.fail_next = False
            raise RuntimeError("transient failure")
        return {"order": calls.count, "sku": data.sku, "quantity": data.quantity}

    return create_order


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite+aiosqlite:///{tmp_path}/gateway.db"


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
async def client(tmp_path: Path, database_url: str, calls: Calls) -> AsyncIterator[AppClient]:
    app = gateway_app(settings_for(tmp_path, database_url), order_route(calls))
    async with app_client(app) as test_client:
        yield test_client


async def _token(client: AppClient) -> dict[str, str]:
    _, token = await new_client_token(client, ["process:write"])
    return bearer(token)


async def test_retry_replays_the_first_answer(client: AppClient, calls: Calls) -> None:
    auth = await _token(client)
    headers = {**auth, "Idempotency-Key": "order-1"}
    first = await client.post(
        "/process/v1/test-orders", json={"sku": "A", "quantity": 2}, headers=headers
    )
    again = await client.post(
        "/process/v1/test-orders", json={"sku": "A", "quantity": 2}, headers=headers
    )

    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["content-type"] == first.headers["content-type"]
    assert calls.count == 1


async def test_same_key_with_another_body_is_422(client: AppClient, calls: Calls) -> None:
    auth = await _token(client)
    headers = {**auth, "Idempotency-Key": "order-2"}
    await client.post("/process/v1/test-orders", json={"sku": "A", "quantity": 1}, headers=headers)
    other = await client.post(
        "/process/v1/test-orders", json={"sku": "A", "quantity": 9}, headers=headers
    )

    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "idempotency_key_reused"
    assert calls.count == 1


async def test_missing_key_is_400(client: AppClient, calls: Calls) -> None:
    auth = await _token(client)
    response = await client.post(
        "/process/v1/test-orders", json={"sku": "A", "quantity": 1}, headers=auth
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "idempotency_key_missing"
    assert calls.count == 0


async def test_keys_are_scoped_per_client(client: AppClient, calls: Calls) -> None:
    first_client = await _token(client)
    second_client = await _token(client)
    body = {"sku": "A", "quantity": 1}
    one = await client.post(
        "/process/v1/test-orders", json=body, headers={**first_client, "Idempotency-Key": "shared"}
    )
    two = await client.post(
        "/process/v1/test-orders", json=body, headers={**second_client, "Idempotency-Key": "shared"}
    )

    assert one.status_code == two.status_code == 201
    assert "idempotent-replayed" not in two.headers
    assert calls.count == 2


async def test_retry_while_in_flight_is_409_with_retry_after(
    client: AppClient, calls: Calls
) -> None:
    auth = await _token(client)
    calls.delay = 0.5
    headers = {**auth, "Idempotency-Key": "slow-order"}
    body = {"sku": "A", "quantity": 1}
    first = asyncio.create_task(client.post("/process/v1/test-orders", json=body, headers=headers))
    await asyncio.sleep(0.2)
    second = await client.post("/process/v1/test-orders", json=body, headers=headers)
    done = await first

    assert done.status_code == 201
    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert int(second.headers["retry-after"]) >= 1
    assert calls.count == 1


async def test_a_failed_attempt_releases_the_key(client: AppClient, calls: Calls) -> None:
    auth = await _token(client)
    headers = {**auth, "Idempotency-Key": "flaky"}
    body = {"sku": "A", "quantity": 1}
    calls.fail_next = True
    failed = await client.post("/process/v1/test-orders", json=body, headers=headers)
    retried = await client.post("/process/v1/test-orders", json=body, headers=headers)

    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert "transient" not in failed.text
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert calls.count == 2


async def test_invalid_keys_are_400(client: AppClient, calls: Calls) -> None:
    auth = await _token(client)
    for key in ("x" * 256, "has space", '"unterminated'):
        response = await client.post(
            "/process/v1/test-orders",
            json={"sku": "A", "quantity": 1},
            headers={**auth, "Idempotency-Key": key},
        )
        assert response.status_code == 400, key
        assert response.json()["code"] == "idempotency_key_invalid"
    assert calls.count == 0


async def test_refused_requests_claim_no_key(client: AppClient, calls: Calls) -> None:
    _, token = await new_client_token(client, ["process:read"])
    refused = await client.post(
        "/process/v1/test-orders",
        json={"sku": "A", "quantity": 1},
        headers={**bearer(token), "Idempotency-Key": "k"},
    )
    assert refused.status_code == 403
    assert calls.count == 0


async def test_hundred_concurrent_requests_run_the_handler_once(
    client: AppClient, calls: Calls
) -> None:
    auth = await _token(client)
    calls.delay = 0.3
    headers = {**auth, "Idempotency-Key": '"order 100"'}
    body = {"sku": "B", "quantity": 3}

    responses = await asyncio.gather(
        *(client.post("/process/v1/test-orders", json=body, headers=headers) for _ in range(100))
    )

    firsts = [
        r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    replays = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    in_flight = [r for r in responses if r.status_code == 409]
    assert calls.count == 1
    assert len(firsts) == 1
    assert len(firsts) + len(replays) + len(in_flight) == 100
    assert all(r.json() == firsts[0].json() for r in replays)
    assert all(r.headers["content-type"] == "application/problem+json" for r in in_flight)


def test_key_syntax() -> None:
    assert parse_idempotency_key("abc-123") == "abc-123"
    assert parse_idempotency_key('"with space"') == "with space"
    assert parse_idempotency_key('"a\\"b"') == 'a"b'
    with pytest.raises(InvalidRequest):
        parse_idempotency_key("")
