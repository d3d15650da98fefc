"""A person in a real browser (headless Chromium): signs in to the console at the company's
OpenID Connect provider (one the test runs), retries a failed flow once the vendor is back,
approves a service credit, and finds both in the audit trail under their name; the audit API
shows each of their actions once. Leaves a screenshot of the audit page in docs/screenshots."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from litestar import Litestar, post

from gateway import storage
from gateway.clients import ClientRegistry
from tests.experience_apis.console_flow import ConsoleDemoFlows, start_route
from tests.experience_apis.test_console import eventually
from tests.process_apis.escalation.test_credit import ACME_CREDIT
from tests.process_apis.linked_customer import seed_acme
from tests.support.apps import gateway_app, settings_for
from tests.support.browser import chromium_page
from tests.support.oidc_provider import OidcProvider, Person
from tests.support.servers import free_port, serve_asgi
from tests.support.services import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SCREENSHOT = REPO_ROOT / "docs" / "screenshots" / "console-audit.png"
DANA = Person(subject="00u-dana-4410", name="Dana Whitfield", groups=("ops-us", "finance-us"))
ROLES = "ops-us=ops:read,ops:replay,audit:read@US01;finance-us=ops:read,finance:approve@US01"


def seed_route(app: Litestar) -> Any:
    """`POST /test/seed-acme`: the linked Acme account, made on the server's own loop."""

    @post("/test/seed-acme", opt={"public": True, "rate_limit": False}, status_code=200)
    async def seed() -> dict[str, str]:
        acme = await seed_acme(SimpleNamespace(app=app))  # type: ignore[arg-type]
        return {
            "organization_id": acme.organization_id,
            "ticket_id": acme.ticket_id,
            "credit_id": acme.credit_id,
        }

    return seed


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    provider = OidcProvider(
        client_id="erp-console", client_secret="console-secret-e2e", people={"dana": DANA}
    )
    with serve_asgi(provider.app()) as issuer:
        provider.issuer = issuer
        port = free_port()
        settings = settings_for(
            tmp_path,
            emulated=True,
            ERPGW_EXECUTOR_ID="people-browser",
            ERPGW_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            ERPGW_CONSOLE_OIDC_ISSUER=issuer,
            ERPGW_CONSOLE_OIDC_CLIENT_ID=provider.client_id,
            ERPGW_CONSOLE_OIDC_CLIENT_SECRET=provider.client_secret,
            ERPGW_CONSOLE_OIDC_ROLES=ROLES,
        )
        app = gateway_app(settings)
        billing = app.state.gateway.platforms.vendors["stripe"].client
        flows = app.state.gateway.process.engine.register(ConsoleDemoFlows, billing=billing)
        app.register(start_route(flows))
        app.register(seed_route(app))
        with serve_asgi(app, port=port, lifespan="on") as base_url:
            yield {
                "base_url": base_url,
                "issuer": issuer,
                "database_url": settings.database_url,
            }


def token_for(base: str, database_url: str, scopes: list[str]) -> dict[str, str]:
    async def create() -> tuple[str, str]:
        engine = storage.create_engine(database_url)
        try:
            made = await ClientRegistry(engine).create(name="e2e caller", scopes=scopes)
        finally:
            await engine.dispose()
        return made.client.client_id, made.client_secret

    client_id, secret = asyncio.run(create())
    response = httpx.post(
        f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_a_person_retries_and_approves_and_the_audit_trail_names_them(
    served: dict[str, Any],
) -> None:
    base = served["base_url"]
    writer = token_for(base, served["database_url"], ["process:write", "process:read"])
    faults = f"{base}/_sandbox/stripe/_emulator/faults"
    httpx.post(faults, json={"outage": True}).raise_for_status()
    assert httpx.post(f"{base}/test/console-demo/people").status_code == 202
    flow_path = "/ops/flows/onboard:people"

    from playwright.sync_api import expect

    with chromium_page() as page:
        page.set_viewport_size({"width": 1500, "height": 900})
        page.goto(f"{base}/ops")
        assert "/ops/sign-in" in page.url
        assert page.locator("input[name=client_secret]").count() == 1  # sandbox mode
        page.click("#sign-in-oidc")
        page.wait_for_url(f"{served['issuer']}/authorize**")
        page.fill("#username", "dana")
        page.click("#idp-sign-in")
        page.wait_for_url(f"{base}/ops")
        assert "Dana Whitfield" in page.locator("#who").inner_text()

        # The failed flow, retried once Stripe is back.
        def failed_in_list() -> bool:
            page.goto(f"{base}/ops/flows?status=failed")
            return bool(page.locator(f"a[href='{flow_path}']").count() == 1)

        eventually(failed_in_list, timeout=30.0)
        page.goto(f"{base}{flow_path}")
        httpx.post(faults, json={}).raise_for_status()
        page.reload()
        page.locator("button.primary", has_text="Retry").first.click()
        page.wait_for_url(f"{base}{flow_path}")
        expect(page.locator("#flow-status")).to_have_text("succeeded", timeout=30_000)

        # The service credit, approved by finance in the console. (Seeded after the outage:
        # the seed's billing webhooks start flows that would wait out the outage too.)
        acme = httpx.post(f"{base}/test/seed-acme", timeout=60).json()
        escalated = httpx.post(
            f"{base}/process/v1/escalations",
            json={"organization_id": acme["organization_id"], "ticket_id": acme["ticket_id"]},
            headers={**writer, "Idempotency-Key": "e2e-esc-1"},
            timeout=30,
        )
        assert escalated.status_code == 202, escalated.text
        credit = acme["credit_id"]
        card = page.locator(f"section[data-credit='{credit}']")

        def credit_waiting() -> bool:
            page.goto(f"{base}/ops/credits")
            return bool(card.count() == 1)

        eventually(credit_waiting, timeout=30.0)
        assert f"Credit: {ACME_CREDIT // 100}.{ACME_CREDIT % 100:02d} USD" in card.inner_text()
        card.locator("input[name=reason]").fill("SLA missed during the outage")
        card.locator("button", has_text="Approve").click()
        page.wait_for_url(f"{base}/ops/flows/{credit}")
        assert "approved" in page.locator(".flash").inner_text()

        page.goto(f"{base}/ops/audit?actor={DANA.subject}")
        rows = page.locator("#audit-records tbody tr")
        actions = [rows.nth(i).locator(".action").inner_text() for i in range(rows.count())]
        assert actions == ["service_credit.approve", "exception.retry"]
        for i in range(rows.count()):
            assert "Dana Whitfield" in rows.nth(i).locator(".actor").inner_text()
        page.goto(f"{base}/ops/audit")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    auditor = token_for(base, served["database_url"], ["audit:read"])
    records = httpx.get(
        f"{base}/gateway/v1/audit",
        params={"actor": DANA.subject, "limit": "100"},
        headers=auditor,
    ).json()["data"]
    assert sorted(r["action"] for r in records) == [
        "console.sign_in",
        "exception.retry",
        "service_credit.approve",
    ]
    assert all(
        r["actor"] == {"kind": "person", "id": DANA.subject, "name": "Dana Whitfield"}
        for r in records
    )
    approval = next(r for r in records if r["action"] == "service_credit.approve")
    assert approval["target"]["id"] == credit
    assert approval["detail"]["amount"] == ACME_CREDIT
    assert approval["detail"]["currency"] == "USD"
    assert approval["legal_entity"] == "US01"

    def credit_flow() -> dict[str, Any]:
        response = httpx.get(f"{base}/process/v1/flows/{credit}", headers=writer)
        assert response.status_code == 200, response.text
        return dict(response.json())

    eventually(lambda: credit_flow()["status"] == "succeeded", timeout=30.0)
