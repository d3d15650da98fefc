"""Two gateway processes sharing Redis admit at most the limit for one client in one window,
and no fewer than the limit minus what the replicas may hold back in leased blocks."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.processes import create_client, gateway_processes

LIMIT = 48
REPLICAS = 2
REQUESTS = 160


@pytest.mark.slow
def test_two_processes_share_one_limit(tmp_path: Path, redis_url: str) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    env = {
        "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        "ERPGW_VAR_DIR": str(tmp_path),
        "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "ERPGW_REDIS_URL": redis_url,
        "ERPGW_SANDBOX": "true",
        "ERPGW_SANDBOX_VENDORS": "none",
        "ERPGW_ACCESS_LOG": "false",
        # Per hour, so that the window does not slide during the few seconds of the test.
        "ERPGW_RATE_LIMIT_TIERS": f"bronze={LIMIT}/hour;anonymous=1000/minute",
        "ERPGW_AUDIENCE": f"rate-test-{uuid.uuid4().hex[:6]}",
        # Replicas behind one address mint and accept tokens of one issuer.
        "ERPGW_ISSUER": "http://gateway.test",
    }
    client = create_client(env, scopes="crm:read")
    with gateway_processes(REPLICAS, env, tmp_path) as gateways:
        token = httpx.post(
            f"{gateways[0].base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
        ).json()["access_token"]
        statuses = asyncio.run(_hammer([g.base_url for g in gateways], token))

    admitted = statuses.count(200)
    refused = statuses.count(429)
    assert admitted + refused == REQUESTS, statuses
    assert admitted <= LIMIT
    # Each replica may end holding at most one block (clamp(remaining // 8, 1, 64)).
    assert admitted >= LIMIT - REPLICAS * (LIMIT // 8)


async def _hammer(base_urls: list[str], token: str) -> list[int]:
    urls = itertools.cycle(base_urls)
    targets = [next(urls) for _ in range(REQUESTS)]
    semaphore = asyncio.Semaphore(16)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:

        async def call(base: str) -> int:
            async with semaphore:
                response = await http.get(f"{base}/gateway/v1/whoami")
                if response.status_code == 429:
                    assert response.headers["content-type"] == "application/problem+json"
                    assert int(response.headers["retry-after"]) >= 1
                return response.status_code

        return await asyncio.gather(*(call(base) for base in targets))
