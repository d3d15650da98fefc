"""Version lifecycle: a deprecated major answers with Deprecation, Sunset and Link; after its
sunset it answers 410; the OpenAPI marks its operations deprecated."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from litestar import get

from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)


@get("/system/crm/v1/ping", opt={"scopes": ["crm:read"]}, sync_to_thread=False)
def ping_v1() -> dict[str, str]:
    return {"version": "v1"}


@get("/system/crm/v2/ping", opt={"scopes": ["crm:read"]}, sync_to_thread=False)
def ping_v2() -> dict[str, str]:
    return {"version": "v2"}


@get("/system/billing/v1/ping", opt={"scopes": ["billing:read"]}, sync_to_thread=False)
def ping_retired() -> dict[str, str]:
    return {"version": "v1"}


DEPRECATED_AT = datetime(2026, 10, 1, tzinfo=UTC)
SUNSET_AT = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)


def _registry() -> str:
    return json.dumps(
        [
            {
                "api": "system/crm",
                "major": "v1",
                "status": "deprecated",
                "deprecated_at": DEPRECATED_AT.isoformat(),
                "sunset_at": SUNSET_AT.isoformat(),
                "successor": "/system/crm/v2",
            },
            {
                "api": "system/billing",
                "major": "v1",
                "status": "deprecated",
                "deprecated_at": "2025-01-01T00:00:00+00:00",
                "sunset_at": "2025-06-30T00:00:00+00:00",
                "successor": "/system/billing/v2",
            },
        ]
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AppClient]:
    settings = settings_for(tmp_path, ERPGW_API_VERSIONS=_registry())
    app = gateway_app(settings, ping_v1, ping_v2, ping_retired)
    async with app_client(app) as test_client:
        yield test_client


async def _auth(client: AppClient) -> dict[str, str]:
    _, token = await new_client_token(client, ["crm:read", "billing:read"])
    return bearer(token)


async def test_deprecated_version_carries_lifecycle_headers(client: AppClient) -> None:
    response = await client.get("/system/crm/v1/ping", headers=await _auth(client))

    assert response.status_code == 200
    assert response.headers["deprecation"] == f"@{int(DEPRECATED_AT.timestamp())}"
    assert parsedate_to_datetime(response.headers["sunset"]) == SUNSET_AT
    link = response.headers["link"]
    assert '</system/crm/v2>; rel="successor-version"' in link
    assert 'rel="deprecation"' in link


async def test_current_version_has_no_lifecycle_headers(client: AppClient) -> None:
    response = await client.get("/system/crm/v2/ping", headers=await _auth(client))

    assert response.status_code == 200
    assert "deprecation" not in response.headers
    assert "sunset" not in response.headers


async def test_version_past_its_sunset_is_gone(client: AppClient) -> None:
    response = await client.get("/system/billing/v1/ping", headers=await _auth(client))

    assert response.status_code == 410
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == 410
    assert "/system/billing/v2" in body["detail"]
    assert "sunset" in response.headers
    assert 'rel="successor-version"' in response.headers["link"]


async def test_openapi_marks_deprecated_operations(client: AppClient) -> None:
    document = (await client.get("/docs/openapi.json")).json()

    assert document["paths"]["/system/crm/v1/ping"]["get"]["deprecated"] is True
    assert not document["paths"]["/system/crm/v2/ping"]["get"].get("deprecated", False)
