"""The views as the gateway serves them: bearer tokens and scopes, problem+json errors, the
OpenAPI document (views in it, the console not)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[AppClient]:
    app = gateway_app(settings_for(tmp_path, emulated=True))
    async with app_client(app) as client:
        yield client


async def acme_id(gateway: AppClient) -> str:
    crm = gateway.app.state.gateway.platforms.vendors["salesforce"].client
    return str((await crm.list_accounts(name="Acme")).data[0].id)


async def test_the_sales_overview_needs_its_scope(gateway: AppClient) -> None:
    account = await acme_id(gateway)
    _, sales = await new_client_token(gateway, ["experience:sales"])
    _, crm_only = await new_client_token(gateway, ["crm:read"])
    path = f"/experience/sales/v1/accounts/{account}/overview"

    allowed = await gateway.get(path, headers=bearer(sales))
    refused = await gateway.get(path, headers=bearer(crm_only))
    anonymous = await gateway.get(path)

    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["account"]["legal_name"] == "Acme Robotics Inc."
    assert allowed.headers["etag"]
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["required_scopes"] == ["experience:sales"]
    assert anonymous.status_code == 401


async def test_a_required_source_down_is_a_problem_naming_it(gateway: AppClient) -> None:
    account = await acme_id(gateway)
    _, token = await new_client_token(gateway, ["experience:sales"])
    await gateway.post("/_sandbox/salesforce/_emulator/faults", json={"outage": True})

    response = await gateway.get(
        f"/experience/sales/v1/accounts/{account}/overview", headers=bearer(token)
    )

    assert response.status_code == 502
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["vendor"] == "crm"
    assert response.json()["correlation_id"]


async def test_the_portal_serves_the_token_bound_customer(gateway: AppClient) -> None:
    account = await acme_id(gateway)
    _, token = await new_client_token(gateway, ["experience:portal"], customer=account)

    response = await gateway.get("/experience/portal/v1/invoices", headers=bearer(token))

    assert response.status_code == 200
    assert response.json()["data"] == []


async def test_openapi_documents_the_views_but_not_the_console(gateway: AppClient) -> None:
    document = (await gateway.get("/docs/openapi.json")).json()
    paths = document["paths"]

    overview = paths["/experience/sales/v1/accounts/{crm_account_id}/overview"]["get"]
    assert "304" in overview["responses"]
    assert "504" in overview["responses"]
    assert overview["security"][0]["oauth2"] == ["experience:sales"]
    assert "/experience/finance/v1/workspace" in paths
    assert "/experience/ops/v1/traces/{correlation_id}" in paths
    assert not [path for path in paths if path.startswith("/ops")]
