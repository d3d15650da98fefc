"""Rate limits at the edge as an attacker meets them: the console's refusal is a 429 with
`Retry-After`, not a 500; behind a trusted proxy each client has its own anonymous bucket and
cannot choose one by writing `X-Forwarded-For` itself; a missing or invalid token spends its
address's anonymous quota. Beside each attack, the caller it must not hurt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)

WEBHOOK = "/webhooks/stripe"
"""Anonymous (signed by the vendor), so counted by address, in the `webhooks` group; unsigned,
each request is a 401 that has spent its quota."""


@asynccontextmanager
async def gateway(tmp_path: Path, **env: str) -> AsyncIterator[AppClient]:
    settings = settings_for(tmp_path, None, emulated=False, **env)
    async with app_client(gateway_app(settings)) as client:
        yield client


async def statuses(client: AppClient, count: int, path: str, **headers: str) -> list[int]:
    return [
        (await client.post(path, content=b"{}", headers=headers)).status_code for _ in range(count)
    ]


async def test_the_console_answers_its_rate_limit_with_429_and_retry_after(tmp_path: Path) -> None:
    async with gateway(tmp_path, ERPGW_RATE_LIMIT_TIERS="anonymous.console=2/minute") as client:
        first = [(await client.get("/ops/sign-in")).status_code for _ in range(2)]
        assert first == [200, 200]
        refused = await client.get("/ops/sign-in")
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"].startswith("text/html")
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-policy"].startswith('"anonymous-console"')
        assert refused.headers["x-frame-options"] == "DENY"
        assert "Content-Security-Policy" in refused.headers

        # Another group's anonymous quota is untouched.
        assert (await client.get("/health/live")).status_code == 200


async def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(tmp_path: Path) -> None:
    env = {
        "ERPGW_TRUSTED_PROXIES": "127.0.0.0/8, 10.0.0.0/8",
        "ERPGW_RATE_LIMIT_TIERS": "anonymous.webhooks=2/minute",
    }
    async with gateway(tmp_path, **env) as client:
        assert await statuses(client, 3, WEBHOOK, **{"X-Forwarded-For": "203.0.113.7"}) == [
            401,
            401,
            429,
        ]
        # Another client behind the same proxy (the test client's peer is 127.0.0.1).
        assert await statuses(client, 1, WEBHOOK, **{"X-Forwarded-For": "198.51.100.9"}) == [401]
        # Through two trusted proxies: the right-most untrusted hop is the client.
        assert await statuses(
            client, 1, WEBHOOK, **{"X-Forwarded-For": "203.0.113.7, 10.1.2.3"}
        ) == [429]
        # What the client wrote itself (left of that hop) does not choose a bucket.
        assert await statuses(
            client, 1, WEBHOOK, **{"X-Forwarded-For": "192.0.2.55, 203.0.113.7"}
        ) == [429]
        assert await statuses(client, 1, WEBHOOK, Forwarded='for="[2001:db8::1]:4711"') == [401]


async def test_forwarding_headers_from_an_untrusted_peer_are_ignored(tmp_path: Path) -> None:
    async with gateway(tmp_path, ERPGW_RATE_LIMIT_TIERS="anonymous.webhooks=2/minute") as client:
        assert await statuses(client, 2, WEBHOOK, **{"X-Forwarded-For": "203.0.113.7"}) == [
            401,
            401,
        ]
        assert await statuses(client, 1, WEBHOOK, **{"X-Forwarded-For": "198.51.100.9"}) == [429]
        assert await statuses(client, 1, WEBHOOK, Forwarded="for=198.51.100.10") == [429]


async def test_invalid_tokens_spend_the_anonymous_quota_of_their_address(tmp_path: Path) -> None:
    async with gateway(tmp_path, ERPGW_RATE_LIMIT_TIERS="anonymous.webhooks=3/minute") as client:
        _, token = await new_client_token(client, ["process:write"])
        guesses = [
            (await client.post("/webhooks/salesforce", json={}, headers=headers)).status_code
            for headers in (bearer("not-a-jwt"), bearer("a.b.c"), {})
        ]
        assert guesses == [401, 401, 401]
        refused = await client.post("/webhooks/salesforce", json={}, headers=bearer("x.y.z"))
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) >= 1

        # The client holding a valid token is counted by its own id, not by the address.
        valid = await client.post("/webhooks/salesforce", json={}, headers=bearer(token))
        assert valid.status_code == 400, valid.text  # the body lacks `event`


async def test_ipv6_clients_are_counted_per_64_block(tmp_path: Path) -> None:
    env = {
        "ERPGW_TRUSTED_PROXIES": "127.0.0.1",
        "ERPGW_RATE_LIMIT_TIERS": "anonymous.webhooks=2/minute",
    }
    async with gateway(tmp_path, **env) as client:
        one_host = [f"2001:db8:0:1::{n}" for n in range(3)]
        refusals = [
            await statuses(client, 1, WEBHOOK, **{"X-Forwarded-For": address})
            for address in one_host
        ]
        assert refusals == [[401], [401], [429]]
        # The next /64 is another subscriber.
        assert await statuses(client, 1, WEBHOOK, **{"X-Forwarded-For": "2001:db8:0:2::1"}) == [401]
