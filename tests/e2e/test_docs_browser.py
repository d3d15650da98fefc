"""The docs page renders in a real browser with no internet: every operation of the OpenAPI
shows up, and no asset is fetched from anywhere but the gateway."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.apps import gateway_app, settings_for
from tests.support.browser import chromium_page
from tests.support.servers import serve_asgi

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def test_docs_page_renders_every_operation(tmp_path: Path) -> None:
    app = gateway_app(settings_for(tmp_path))
    with serve_asgi(app) as base_url, chromium_page() as page:
        document = httpx.get(f"{base_url}/docs/openapi.json").json()
        expected = sum(
            1 for item in document["paths"].values() for method in item if method in HTTP_METHODS
        )
        foreign: list[str] = []
        page.on(
            "request",
            lambda request: (
                None if request.url.startswith(base_url) else foreign.append(request.url)
            ),
        )

        page.goto(f"{base_url}/docs")
        page.wait_for_selector(".opblock", timeout=20_000)
        rendered = page.locator(".opblock").count()

        assert expected > 0
        assert rendered == expected
        assert foreign == []
        page.screenshot(path=str(tmp_path / "docs.png"))
