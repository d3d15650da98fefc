"""The operations console in the gateway: sign-in with a cookie, CSRF on every form, scopes
deciding who may act, and (in headless Chromium) an operator retrying a failed flow."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import storage
from gateway.clients import ClientRegistry
from tests.experience_apis import seed
from tests.experience_apis.console_flow import ConsoleDemoFlows, start_route
from tests.support.apps import AppClient, app_client, gateway_app, settings_for
from tests.support.browser import chromium_page
from tests.support.servers import serve_asgi
from tests.support.services import REPO_ROOT

ARTIFACTS = REPO_ROOT / "test-artifacts"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[AppClient]:
    app = gateway_app(settings_for(tmp_path))
    async with app_client(app) as client:
        yield client


async def new_client(client: AppClient, *scopes: str) -> tuple[str, str]:
    created = await client.app.state.gateway.clients.create(
        name=f"operator-{uuid.uuid4().hex[:4]}", scopes=scopes
    )
    return created.client.client_id, created.client_secret


async def sign_in(client: AppClient, client_id: str, secret: str) -> str:
    """Sign in through the form; returns the CSRF token of that sign-in."""
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
    return found.group(1)


async def failed_flow(client: AppClient) -> str:
    engine = client.app.state.gateway.engine
    await seed.flow(engine, "q2c:console-1", status="failed", crm_account="001console")
    return await seed.exception(engine, "q2c:console-1")


async def exception_status(client: AppClient, exception_id: str) -> str:
    queue = client.app.state.gateway.process.queue
    from contracts.principal import Principal

    everyone = Principal(client_id="t", name="t", scopes=frozenset({"ops:read"}))
    return str((await queue.get(exception_id, principal=everyone)).status)


async def test_a_browser_not_signed_in_is_sent_to_sign_in(gateway: AppClient) -> None:
    response = await gateway.get("/ops/flows?status=failed")

    assert response.status_code == 303
    assert response.headers["location"] == "/ops/sign-in?next=/ops/flows%3Fstatus%3Dfailed"
    page = await gateway.get(response.headers["location"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Sign in" in page.text


async def test_the_sign_in_cookie_is_httponly_and_strict(gateway: AppClient) -> None:
    client_id, secret = await new_client(gateway, "ops:read")
    page = await gateway.get("/ops/sign-in")
    token = CSRF.search(page.text)
    assert token is not None

    response = await gateway.post(
        "/ops/sign-in",
        data={"client_id": client_id, "client_secret": secret, "csrf_token": token.group(1)},
    )

    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/ops" in cookie


async def test_wrong_secret_or_missing_scope_cannot_sign_in(gateway: AppClient) -> None:
    client_id, _ = await new_client(gateway, "ops:read")
    other_id, other_secret = await new_client(gateway, "crm:read")
    page = await gateway.get("/ops/sign-in")
    token = CSRF.search(page.text)
    assert token is not None

    wrong = await gateway.post(
        "/ops/sign-in",
        data={"client_id": client_id, "client_secret": "nope", "csrf_token": token.group(1)},
    )
    unscoped = await gateway.post(
        "/ops/sign-in",
        data={"client_id": other_id, "client_secret": other_secret, "csrf_token": token.group(1)},
    )

    assert wrong.status_code == 401
    assert unscoped.status_code == 403
    assert (await gateway.get("/ops")).status_code == 303


async def test_a_post_without_the_csrf_token_is_refused(gateway: AppClient) -> None:
    exception_id = await failed_flow(gateway)
    client_id, secret = await new_client(gateway, "ops:read", "ops:replay")
    await sign_in(gateway, client_id, secret)

    response = await gateway.post(
        f"/ops/exceptions/{exception_id}/resolve", data={"reason": "not needed"}
    )
    forged = await gateway.post(
        f"/ops/exceptions/{exception_id}/resolve",
        data={"reason": "not needed", "csrf_token": "guessed"},
    )

    assert response.status_code == forged.status_code == 403
    assert "form has expired" in response.text
    assert await exception_status(gateway, exception_id) == "open"


async def test_a_read_only_client_sees_but_cannot_act(gateway: AppClient) -> None:
    exception_id = await failed_flow(gateway)
    client_id, secret = await new_client(gateway, "ops:read")
    token = await sign_in(gateway, client_id, secret)

    page = await gateway.get("/ops/flows/q2c:console-1")
    response = await gateway.post(
        f"/ops/exceptions/{exception_id}/assign",
        data={"assignee": "me", "csrf_token": token},
    )

    assert page.status_code == 200
    assert "read-only" in page.text
    assert f"/ops/exceptions/{exception_id}/retry" not in page.text
    assert response.status_code == 403
    assert "ops:replay" in response.text
    detail = await gateway.get(f"/ops/exceptions/{exception_id}")
    assert "assigned" not in detail.text


async def test_an_operator_assigns_and_resolves_with_a_reason(gateway: AppClient) -> None:
    exception_id = await failed_flow(gateway)
    client_id, secret = await new_client(gateway, "ops:read", "ops:replay")
    token = await sign_in(gateway, client_id, secret)

    assigned = await gateway.post(
        f"/ops/exceptions/{exception_id}/assign",
        data={"assignee": "dana", "csrf_token": token, "back": "exception"},
    )
    page = await gateway.get(f"/ops/exceptions/{exception_id}")

    assert assigned.status_code == 303
    assert assigned.headers["location"] == f"/ops/exceptions/{exception_id}"
    assert "Assigned to dana." in page.text
    assert re.search(rf"<strong>{client_id}</strong> assigned: <span[^>]*>dana</span>", page.text)


async def test_edited_input_that_breaks_the_step_contract_is_not_sent(
    gateway: AppClient,
) -> None:
    exception_id = await failed_flow(gateway)
    client_id, secret = await new_client(gateway, "ops:read", "ops:replay")
    token = await sign_in(gateway, client_id, secret)

    not_json = await gateway.post(
        f"/ops/exceptions/{exception_id}/retry", data={"input": "{oops", "csrf_token": token}
    )

    assert not_json.status_code == 422
    assert "The edited input was not sent" in not_json.text
    assert await exception_status(gateway, exception_id) == "open"


async def test_edited_input_is_checked_against_the_steps_input_contract(
    gateway: AppClient,
) -> None:
    engine = gateway.app.state.gateway.engine
    await seed.flow(engine, "onboard:contract", status="failed", flow_type="console_demo")
    exception_id = await seed.exception(
        engine,
        "onboard:contract",
        step="create_billing_customer",
        step_ref=f"{ConsoleDemoFlows.__module__}.ConsoleDemoFlows.create_billing_customer",
        system="stripe",
        owner="integration",
    )
    client_id, secret = await new_client(gateway, "ops:read", "ops:replay")
    token = await sign_in(gateway, client_id, secret)

    response = await gateway.post(
        f"/ops/exceptions/{exception_id}/retry",
        data={"input": '{"name": "Acme", "legal_entity": "US01"}', "csrf_token": token},
    )

    assert response.status_code == 422
    assert "currency" in response.text
    assert await exception_status(gateway, exception_id) == "open"


# -- in a browser ---------------------------------------------------------------------------


def eventually(check: Callable[[], bool], *, timeout: float = 20.0, every: float = 0.25) -> None:
    """`tests.support.waiting.eventually` for a synchronous check: Playwright's sync API
    refuses to run inside an asyncio loop, so the browser test cannot await the shared one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError("condition not met in time")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    settings = settings_for(tmp_path, emulated=True)
    app = gateway_app(settings)
    billing = app.state.gateway.platforms.vendors["stripe"].client
    flows = app.state.gateway.process.engine.register(ConsoleDemoFlows, billing=billing)
    app.register(start_route(flows))
    with serve_asgi(app, lifespan="on") as base_url:
        client_id, secret = asyncio.run(_operator(settings.database_url))
        yield {"base_url": base_url, "client_id": client_id, "secret": secret}


async def _operator(database_url: str) -> tuple[str, str]:
    engine = storage.create_engine(database_url)
    try:
        created = await ClientRegistry(engine).create(
            name="night operator", scopes=["ops:read", "ops:replay"]
        )
    finally:
        await engine.dispose()
    return created.client.client_id, created.client_secret


@pytest.mark.browser
def test_operator_retries_a_failed_flow_from_the_console(served: dict[str, Any]) -> None:
    base = served["base_url"]
    faults = f"{base}/_sandbox/stripe/_emulator/faults"
    httpx.post(faults, json={"outage": True}).raise_for_status()
    started = httpx.post(f"{base}/test/console-demo/e2e")
    assert started.status_code == 202, started.text
    flow_path = "/ops/flows/onboard:e2e"

    from playwright.sync_api import expect

    with chromium_page() as page:
        page.goto(f"{base}/ops")
        assert "/ops/sign-in" in page.url
        page.fill("input[name=client_id]", served["client_id"])
        page.fill("input[name=client_secret]", served["secret"])
        page.click("#sign-in")
        page.wait_for_url(f"{base}/ops")

        def failed_in_list() -> bool:
            page.goto(f"{base}/ops/flows?status=failed")
            return bool(page.locator(f"a[href='{flow_path}']").count() == 1)

        eventually(failed_in_list)
        page.click(f"a[href='{flow_path}']")
        assert page.locator("#flow-status").inner_text().strip() == "failed"
        assert "Stripe" in page.locator("svg.swimlane").inner_html()

        httpx.post(faults, json={}).raise_for_status()
        page.locator("button.primary", has_text="Retry").first.click()
        page.wait_for_url(f"{base}{flow_path}")
        assert "Retry sent" in page.locator(".flash").inner_text()
        # The page refreshes its live part by itself (no reload here).
        expect(page.locator("#flow-status")).to_have_text("succeeded", timeout=20_000)

        link = page.locator("a[href*='dashboard.stripe.com/test/customers/cus_']")
        assert link.count() >= 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "console-flow-detail.png"), full_page=True)


async def test_pages_show_live_counts_the_queue_by_owner_and_the_chart(
    gateway: AppClient,
) -> None:
    await failed_flow(gateway)
    engine = gateway.app.state.gateway.engine
    await seed.flow(engine, "q2c:console-2", status="succeeded", crm_account="001console")
    await seed.flow(engine, "customer:console-3", status="running", flow_type="customer_master")
    client_id, secret = await new_client(gateway, "ops:read")
    await sign_in(gateway, client_id, secret)

    overview = (await gateway.get("/ops")).text
    running = (await gateway.get("/ops/flows", params={"q": "customer:console-3"})).text
    owned = (await gateway.get("/ops/flows", params={"owner": "finance"})).text
    queue = (await gateway.get("/ops/exceptions")).text

    assert "50 %" in overview  # one failed of two finished in the last hour
    assert "waiting for finance" in overview
    assert '<svg class="chart"' in overview
    assert 'id="count-failed">1<' in running
    assert "customer:console-3" in running and "q2c:console-1" not in running
    assert "q2c:console-1" in owned and "q2c:console-2" not in owned
    assert "finance <small>1</small>" in queue
    assert "1-24h: 0" in queue and "&lt;1h: 1" in queue
