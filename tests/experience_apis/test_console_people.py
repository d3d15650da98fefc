"""People in the console: sign-in at the company's OpenID Connect provider (authorization code
with PKCE), the ID token checked (signature, issuer, audience, expiry, nonce) and the browser's
state, scopes and legal entities from the groups claim, actions credited to the person in the
exception history and the audit trail, and client sign-in kept to sandbox mode."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.experience_apis import seed
from tests.experience_apis.test_console import CSRF, exception_status, new_client
from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)
from tests.support.oidc_provider import OidcProvider, Person
from tests.support.servers import serve_asgi

ROLES = (
    "ops-us=ops:read,ops:replay@US01;finance-us=ops:read,finance:approve@US01;"
    "auditors=ops:read,audit:read@*;sales=ops:replay@US01"
)
ANA = Person(subject="00u-ana-7731", name="Ana Ortega", groups=("ops-us", "auditors"))
BEN = Person(subject="00u-ben-1204", name="Ben Fischer", groups=("sales",))
CARA = Person(subject="00u-cara-5590", name="Cara Jensen", groups=("finance-us",))


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    idp = OidcProvider(
        client_id="erp-console",
        client_secret="console-secret-3b9f",
        people={"ana": ANA, "ben": BEN, "cara": CARA},
    )
    with serve_asgi(idp.app()) as base_url:
        idp.issuer = base_url
        yield idp


@pytest.fixture
async def gateway(tmp_path: Path, provider: OidcProvider) -> AsyncIterator[AppClient]:
    settings = settings_for(
        tmp_path,
        ERPGW_PUBLIC_BASE_URL="http://testserver",
        ERPGW_CONSOLE_OIDC_ISSUER=provider.issuer,
        ERPGW_CONSOLE_OIDC_CLIENT_ID=provider.client_id,
        ERPGW_CONSOLE_OIDC_CLIENT_SECRET=provider.client_secret,
        ERPGW_CONSOLE_OIDC_ROLES=ROLES,
    )
    async with app_client(gateway_app(settings)) as client:
        yield client


async def to_provider(client: AppClient, next_path: str = "/ops") -> str:
    """Start a sign-in; the provider's authorization URL the browser is sent to."""
    start = await client.get("/ops/sign-in/oidc", params={"next": next_path})
    assert start.status_code == 303, start.text
    return str(start.headers["location"])


async def at_provider(authorize_url: str, username: str) -> str:
    """The person signs in at the provider; the callback URL it sends the browser back to."""
    query = dict(parse_qsl(urlsplit(authorize_url).query))
    base = authorize_url.split("/authorize", 1)[0]
    async with httpx.AsyncClient() as browser:
        form = await browser.get(authorize_url)
        assert form.status_code == 200, form.text
        back = await browser.post(f"{base}/authorize", data={**query, "username": username})
    assert back.status_code == 303, back.text
    return str(back.headers["location"])


async def sign_in_as(client: AppClient, username: str, next_path: str = "/ops") -> str:
    """A full sign-in; returns the CSRF token of the person's sign-in."""
    callback = await at_provider(await to_provider(client, next_path), username)
    landed = await client.get(callback)
    assert landed.status_code == 200, landed.text
    home = await client.get("/ops")
    assert home.status_code == 200, home.text
    token = CSRF.search(home.text)
    assert token is not None
    return token.group(1)


async def test_the_authorization_request_uses_pkce_state_and_nonce(
    gateway: AppClient, provider: OidcProvider
) -> None:
    url = await to_provider(gateway, "/ops/exceptions")
    query = dict(parse_qsl(urlsplit(url).query))

    assert url.startswith(f"{provider.issuer}/authorize?")
    assert query["client_id"] == "erp-console"
    assert query["redirect_uri"] == "http://testserver/ops/oidc/callback"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
    assert "client_secret" not in url and provider.client_secret not in url


async def test_a_person_signs_in_and_the_console_names_them(
    gateway: AppClient, provider: OidcProvider
) -> None:
    callback = await at_provider(await to_provider(gateway, "/ops/exceptions"), "ana")
    landed = await gateway.get(callback)

    assert landed.status_code == 200
    assert 'http-equiv="refresh" content="0;url=/ops/exceptions"' in landed.text
    assert provider.token_requests == 1
    page = await gateway.get("/ops/exceptions")
    assert page.status_code == 200
    assert "Ana Ortega" in page.text and ANA.subject in page.text
    assert 'href="/ops/audit"' in page.text  # auditors may read the trail
    assert 'href="/ops/credits"' not in page.text  # but Ana approves no credits
    # The code is spent: the same callback again signs nobody in.
    again = await gateway.get(callback)
    assert again.status_code == 401


async def test_a_callback_with_another_browsers_state_is_refused(
    gateway: AppClient, provider: OidcProvider
) -> None:
    callback = await at_provider(await to_provider(gateway), "ana")
    forged = re.sub(r"state=[^&]+", "state=forged-by-another-site", callback)

    refused = await gateway.get(forged)

    assert refused.status_code == 401
    assert "did not start in this browser" in refused.text
    assert provider.token_requests == 0  # the code is never exchanged
    assert (await gateway.get("/ops")).status_code == 303


async def test_a_callback_without_a_pending_sign_in_is_refused(
    gateway: AppClient, provider: OidcProvider
) -> None:
    callback = await at_provider(await to_provider(gateway), "ana")
    gateway.cookies.clear()

    refused = await gateway.get(callback)

    assert refused.status_code == 401
    assert provider.token_requests == 0


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("wrong_nonce", "nonce"),
        ("wrong_audience", "aud"),
        ("wrong_issuer", "iss"),
        ("expired", "exp"),
        ("foreign_key", "does not check"),
    ],
)
async def test_an_id_token_that_does_not_check_signs_nobody_in(
    gateway: AppClient, provider: OidcProvider, fault: str, reason: str
) -> None:
    provider.faults.add(fault)
    callback = await at_provider(await to_provider(gateway), "ana")

    refused = await gateway.get(callback)

    assert refused.status_code == 401
    assert "The ID token does not check" in refused.text
    assert reason in refused.text
    assert (await gateway.get("/ops")).status_code == 303


async def test_a_person_whose_groups_grant_no_ops_read_is_refused(
    gateway: AppClient, provider: OidcProvider
) -> None:
    callback = await at_provider(await to_provider(gateway), "ben")

    refused = await gateway.get(callback)

    assert refused.status_code == 401
    assert "no access to the console" in refused.text
    assert (await gateway.get("/ops")).status_code == 303


async def test_a_persons_actions_are_credited_to_them(gateway: AppClient) -> None:
    engine = gateway.app.state.gateway.engine
    await seed.flow(engine, "q2c:people-1", status="failed", crm_account="001people")
    exception_id = await seed.exception(engine, "q2c:people-1")
    token = await sign_in_as(gateway, "ana")

    assigned = await gateway.post(
        f"/ops/exceptions/{exception_id}/assign", data={"csrf_token": token}
    )
    detail = await gateway.get(f"/ops/exceptions/{exception_id}")
    trail = await gateway.get("/ops/audit", params={"action": "exception.assign"})

    assert assigned.status_code == 303
    assert await exception_status(gateway, exception_id) == "open"
    assert f"<strong>Ana Ortega ({ANA.subject})</strong> assigned" in detail.text
    assert trail.status_code == 200
    rows = re.findall(r'<tr data-seq="\d+">(.*?)</tr>', trail.text, re.S)
    assert len(rows) == 1
    assert "Ana Ortega" in rows[0] and ANA.subject in rows[0] and exception_id in rows[0]


async def test_sign_in_and_sign_out_are_audited_and_sign_out_ends_the_sign_in(
    gateway: AppClient,
) -> None:
    token = await sign_in_as(gateway, "ana")
    cookies = dict(gateway.cookies)

    out = await gateway.post("/ops/sign-out", data={"csrf_token": token})
    _, reader = await new_client_token(gateway, ["audit:read"])
    records = (
        await gateway.get(
            "/gateway/v1/audit", params={"actor": ANA.subject}, headers=bearer(reader)
        )
    ).json()["data"]

    assert out.status_code == 303
    gateway.cookies.clear()
    gateway.cookies.update(cookies)  # a copy of the cookie kept from before
    assert (await gateway.get("/ops")).status_code == 303
    assert [r["action"] for r in records] == ["console.sign_out", "console.sign_in"]
    assert all(
        r["actor"] == {"kind": "person", "id": ANA.subject, "name": "Ana Ortega"} for r in records
    )
    assert records[1]["detail"]["method"] == "oidc"
    assert records[1]["detail"]["entities"] is None  # auditors see every entity


async def test_a_persons_legal_entities_limit_what_they_see(gateway: AppClient) -> None:
    engine = gateway.app.state.gateway.engine
    await seed.flow(engine, "q2c:people-de", status="failed", legal_entity="DE01")
    hidden = await seed.exception(engine, "q2c:people-de", legal_entity="DE01")
    await seed.flow(engine, "q2c:people-us", status="failed", legal_entity="US01")
    own = await seed.exception(engine, "q2c:people-us", legal_entity="US01")
    await sign_in_as(gateway, "cara")

    other = await gateway.get(f"/ops/exceptions/{hidden}")
    mine = await gateway.get(f"/ops/exceptions/{own}")
    queue = await gateway.get("/ops/exceptions")
    trail = await gateway.get("/ops/audit")

    assert other.status_code == 404
    assert mine.status_code == 200
    assert own[:8] in queue.text and hidden[:8] not in queue.text
    assert trail.status_code == 403  # finance-us grants no audit:read
    assert 'href="/ops/credits"' in mine.text


async def test_clients_sign_in_only_in_sandbox_mode(gateway: AppClient) -> None:
    client_id, secret = await new_client(gateway, "ops:read")
    console = gateway.app.state.gateway.experience.console
    console.clients_allowed = False  # what a live gateway is built with

    page = await gateway.get("/ops/sign-in")
    refused = await gateway.post(
        "/ops/sign-in",
        data={"client_id": client_id, "client_secret": secret, "csrf_token": "x"},
    )

    assert "client_secret" not in page.text
    assert "Sign in with your company account" in page.text
    assert refused.status_code == 404
    assert (await gateway.get("/ops")).status_code == 303
