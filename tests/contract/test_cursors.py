"""Every list operation in the OpenAPI document refuses a cursor it did not hand out with a
400 problem naming `cursor`: a malformed one, base64 garbage, and a real cursor of another list."""

from __future__ import annotations

import base64
import random
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from contracts.scopes import SCOPES
from contracts.v1 import CustomerCreate
from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)

READ_SCOPES = sorted(s for s in SCOPES if s.endswith(":read") or s.startswith("experience:"))
PATH_PARAMETER = re.compile(r"{(\w+)}")


async def test_every_list_refuses_a_cursor_it_did_not_issue(tmp_path: Path) -> None:
    app = gateway_app(settings_for(tmp_path, emulated=True))
    async with app_client(app) as client:
        _, token = await new_client_token(client, READ_SCOPES)
        document = (await client.get("/docs/openapi.json")).json()
        paths = [path for path, item in document["paths"].items() if _pages(item.get("get"))]
        assert len(paths) >= 10, paths
        headers = {path: await _headers_for(client, path, token) for path in paths}
        urls = {path: await _url(client, path, bearer(token)) for path in paths}
        issued = {path: await _a_cursor(client, urls[path], headers[path]) for path in paths}
        assert sum(cursor is not None for cursor in issued.values()) >= 2, issued

        garbage = base64.urlsafe_b64encode(random.Random(8).randbytes(24)).decode().rstrip("=")
        refused: dict[str, list[str]] = {}
        for path in paths:
            foreign = next(
                cursor
                for other, cursor in issued.items()
                if cursor is not None and _list_of(other) != _list_of(path)
            )
            for cursor in ("%C2%A2", quote("ß"), garbage, quote(foreign)):
                answer = await client.get(f"{urls[path]}?cursor={cursor}", headers=headers[path])
                named = [e.get("pointer") for e in _json(answer).get("errors", [])]
                if (
                    answer.status_code != 400
                    or answer.headers.get("content-type") != "application/problem+json"
                    or "cursor" not in named
                ):
                    refused.setdefault(path, []).append(
                        f"{cursor}: {answer.status_code} {answer.text[:200]}"
                    )
        assert refused == {}


def _pages(operation: dict[str, Any] | None) -> bool:
    return operation is not None and any(
        p.get("in") == "query" and p.get("name") == "cursor"
        for p in operation.get("parameters", [])
    )


def _list_of(path: str) -> str:
    """What a path lists (its last segment): operations over one underlying list share cursors."""
    return path.rstrip("/").rsplit("/", 1)[-1]


async def _headers_for(client: AppClient, path: str, token: str) -> dict[str, str]:
    if not path.startswith("/experience/portal/"):
        return bearer(token)
    # The portal serves one customer's records: a client bound to a CRM account that has a
    # billing customer.
    account = (await client.get("/system/crm/v1/accounts", headers=bearer(token))).json()["data"][0]
    billing = client.app.state.gateway.platforms.vendors["stripe"].client
    await billing.create_customer(
        CustomerCreate(
            legal_name=account["legal_name"],
            legal_entity=account["legal_entity"],
            currency=account["currency"],
        ),
        crm_account_id=account["id"],
        idempotency_key="portal-customer",
    )
    _, portal = await new_client_token(client, ["experience:portal"], customer=account["id"])
    return bearer(portal)


async def _url(client: AppClient, path: str, headers: dict[str, str]) -> str:
    """`path` with each path parameter filled by a real id from the list beside it."""
    while match := PATH_PARAMETER.search(path):
        parent = path[: match.start()].rstrip("/")
        listed = await client.get(parent, headers=headers)
        assert listed.status_code == 200, (parent, listed.text)
        path = path.replace(match.group(0), str(listed.json()["data"][0]["id"]), 1)
    return path


async def _a_cursor(client: AppClient, url: str, headers: dict[str, str]) -> str | None:
    answer = await client.get(url, params={"limit": 1}, headers=headers)
    assert answer.status_code == 200, (url, answer.text)
    cursor: str | None = answer.json().get("next_cursor")
    return cursor


def _json(answer: Any) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
