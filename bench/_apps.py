"""ASGI app factories the benchmarks serve: one trivial route, bare and behind the gateway."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, get

__all__ = ["bare_app", "gateway_app"]


@get("/system/crm/v1/bench-ping", opt={"scopes": ["crm:read"]}, sync_to_thread=False)
def ping() -> dict[str, Any]:
    return {"ok": True}


def bare_app() -> Litestar:
    return Litestar(route_handlers=[ping], openapi_config=None)


def gateway_app() -> Litestar:
    from gateway.app import create_app

    app = create_app()
    app.register(ping)
    return app
