"""Every error is application/problem+json with `status` equal to the HTTP status, field errors
for validation failures, and nothing internal; trace headers on every answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import get, post

from contracts import errors as e
from gateway.errors import STATUS_BY_ERROR
from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)


class Widget(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    size: int


@post("/system/crm/v1/widgets", opt={"scopes": ["crm:write"]}, status_code=201)
async def create_widget(data: Widget) -> dict[str, Any]:
    return {"name": data.name}


@get("/system/crm/v1/explode", opt={"scopes": ["crm:read"]}, sync_to_thread=False)
def explode() -> dict[str, Any]:
    raise RuntimeError("database password is hunter2")


@get("/system/crm/v1/upstream", opt={"scopes": ["crm:read"]}, sync_to_thread=False)
def upstream() -> dict[str, Any]:
    raise e.UpstreamUnavailable("salesforce is down", vendor="salesforce", retry_after=7)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AppClient]:
    settings = settings_for(tmp_path, ERPGW_MAX_BODY_BYTES="2048")
    async with app_client(gateway_app(settings, create_widget, explode, upstream)) as test_client:
        yield test_client


async def _auth(client: AppClient) -> dict[str, str]:
    _, token = await new_client_token(client, ["crm:read", "crm:write"])
    return bearer(token)


def _assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    return body


def test_every_error_class_has_a_status() -> None:
    classes = [
        obj for obj in vars(e).values() if isinstance(obj, type) and issubclass(obj, e.GatewayError)
    ]
    assert set(classes) <= set(STATUS_BY_ERROR)


async def test_unknown_route_is_a_problem_with_trace_headers(client: AppClient) -> None:
    response = await client.get("/no/such/route", headers={"X-Correlation-ID": "abc-123"})

    body = _assert_problem(response, 404)
    assert response.headers["x-correlation-id"] == "abc-123"
    assert body["correlation_id"] == "abc-123"
    assert response.headers["traceparent"].startswith("00-")


async def test_wrong_method_is_405_problem(client: AppClient) -> None:
    response = await client.delete("/health/live")
    _assert_problem(response, 405)


async def test_validation_failure_lists_fields(client: AppClient) -> None:
    response = await client.post(
        "/system/crm/v1/widgets", json={"name": "w", "size": "big"}, headers=await _auth(client)
    )
    body = _assert_problem(response, 400)
    assert any("size" in item["pointer"] for item in body["errors"])


async def test_malformed_json_is_400_problem(client: AppClient) -> None:
    response = await client.post(
        "/system/crm/v1/widgets",
        content=b"{not json",
        headers={**await _auth(client), "content-type": "application/json"},
    )
    _assert_problem(response, 400)


async def test_unhandled_error_reveals_nothing(client: AppClient) -> None:
    response = await client.get("/system/crm/v1/explode", headers=await _auth(client))

    body = _assert_problem(response, 500)
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in body["detail"]


async def test_upstream_unavailable_is_503_with_retry_after(client: AppClient) -> None:
    response = await client.get("/system/crm/v1/upstream", headers=await _auth(client))

    body = _assert_problem(response, 503)
    assert response.headers["retry-after"] == "7"
    assert body["vendor"] == "salesforce"


async def test_declared_oversized_body_is_413_before_reading(client: AppClient) -> None:
    response = await client.post(
        "/system/crm/v1/widgets",
        content=b"x" * 4096,
        headers={**await _auth(client), "content-type": "application/json"},
    )
    _assert_problem(response, 413)


async def test_streamed_oversized_body_is_413(client: AppClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 1024

    response = await client.post(
        "/system/crm/v1/widgets",
        content=chunks(),
        headers={**await _auth(client), "content-type": "application/json"},
    )
    _assert_problem(response, 413)


async def test_traceparent_is_accepted_and_echoed(client: AppClient) -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = await client.get("/health/live", headers={"traceparent": parent})

    assert response.headers["traceparent"] == parent
    assert len(response.headers["x-correlation-id"]) == 32


async def test_malformed_trace_headers_are_replaced(client: AppClient) -> None:
    response = await client.get(
        "/health/live",
        headers={"traceparent": "00-zz-zz-01", "X-Correlation-ID": "bad id with spaces"},
    )

    assert response.headers["traceparent"] != "00-zz-zz-01"
    assert response.headers["traceparent"].startswith("00-")
    assert " " not in response.headers["x-correlation-id"]


async def test_health_and_metrics(client: AppClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    await client.get("/system/crm/v1/explode", headers=await _auth(client))
    await client.get("/gateway/v1/whoami", headers={"Authorization": "Bearer nope"})

    metrics = (await client.get("/metrics")).text

    explode = 'route="/system/crm/v1/explode",status="500",tier="gold"'
    assert f'erpgw_http_requests_total{{method="GET",{explode}}} 1.0' in metrics
    assert "erpgw_http_request_duration_seconds_bucket" in metrics
    assert 'erpgw_auth_failures_total{reason="invalid_token"} 1.0' in metrics


async def test_repeated_query_parameter_is_400(client: AppClient) -> None:
    response = await client.get(
        "/system/crm/v1/explode?limit=1&limit=2", headers=await _auth(client)
    )
    body = _assert_problem(response, 400)
    assert body["errors"] == [{"pointer": "query.limit", "detail": "given more than once"}]
