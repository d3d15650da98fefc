"""A bare one-hop proxy for `bench/system_read.py`: forwards one GET to the upstream on the
same transport the gateway uses (httpx on the aiohttp transport), nothing else."""

from __future__ import annotations

import os

import httpx
from httpx_aiohttp import AiohttpTransport
from litestar import Litestar, Response, get

__all__ = ["proxy_app"]


def proxy_app() -> Litestar:
    upstream = os.environ["ERPGW_BENCH_UPSTREAM"]
    path = os.environ["ERPGW_BENCH_UPSTREAM_PATH"]
    headers = {"Authorization": f"Bearer {os.environ['ERPGW_BENCH_UPSTREAM_KEY']}"}
    http = httpx.AsyncClient(base_url=upstream, transport=AiohttpTransport(), headers=headers)

    @get("/proxy", sync_to_thread=False)
    async def proxy() -> Response[bytes]:
        answer = await http.get(path)
        return Response(
            answer.content, status_code=answer.status_code, media_type="application/json"
        )

    @get("/health/live", sync_to_thread=False)
    def live() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(route_handlers=[proxy, live], openapi_config=None, on_shutdown=[http.aclose])
