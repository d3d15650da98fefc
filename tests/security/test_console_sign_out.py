"""Signing out of the console ends the sign-in on the server: a copy of the cookie taken before
sign-out is sent to sign in again, while another sign-in of the same client goes on."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.apps import AppClient, app_client, gateway_app, settings_for

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
COOKIE = "erpgw_console"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[AppClient]:
    app = gateway_app(settings_for(tmp_path))
    async with app_client(app) as client:
        yield client


async def _sign_in(client: AppClient, client_id: str, secret: str) -> tuple[str, str]:
    """Sign in through the form on a fresh cookie jar: (cookie value, CSRF token)."""
    client.cookies.clear()
    page = await client.get("/ops/sign-in")
    token = CSRF.search(page.text)
    assert token is not None
    response = await client.post(
        "/ops/sign-in",
        data={"client_id": client_id, "client_secret": secret, "csrf_token": token.group(1)},
    )
    assert response.status_code == 303, response.text
    home = await client.get("/ops")
    assert home.status_code == 200
    found = CSRF.search(home.text)
    assert found is not None
    cookie = client.cookies.get(COOKIE, path="/ops")
    assert cookie
    return cookie, found.group(1)


async def _home(client: AppClient, cookie: str) -> int:
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie, path="/ops")
    return (await client.get("/ops")).status_code


async def test_a_copied_cookie_is_refused_after_sign_out(gateway: AppClient) -> None:
    created = await gateway.app.state.gateway.clients.create(
        name=f"operator-{uuid.uuid4().hex[:4]}", scopes=["ops:read"]
    )
    client_id, secret = created.client.client_id, created.client_secret
    copied, csrf = await _sign_in(gateway, client_id, secret)
    other, _ = await _sign_in(gateway, client_id, secret)

    # Control: the copy works while its sign-in lasts.
    assert await _home(gateway, copied) == 200

    gateway.cookies.clear()
    gateway.cookies.set(COOKIE, copied, path="/ops")
    out = await gateway.post("/ops/sign-out", data={"csrf_token": csrf})
    assert out.status_code == 303
    assert out.headers["location"] == "/ops/sign-in"

    gateway.cookies.clear()
    gateway.cookies.set(COOKIE, copied, path="/ops")
    replay = await gateway.get("/ops/flows")
    assert replay.status_code == 303
    assert replay.headers["location"].startswith("/ops/sign-in")
    # Control: the same client's other sign-in is not ended by this one's sign-out.
    assert await _home(gateway, other) == 200
