"""Chaos: the shared stores fail under two real gateway replicas serving won deals.

- Redis dies (a private redis-server, killed with SIGKILL). In allow mode the replicas stay
  ready, say `"redis": "degraded"` and keep serving; in deny mode they are unready and every
  route answers 503 problem+json with Retry-After. Both recover once Redis is back.
- The database is dropped with flows in flight and created again empty. Every database-backed
  route answers 503 problem+json with Retry-After (never 500) and readiness is unready until
  `erp-gateway db upgrade` recreates the schema; then the same running replicas serve again,
  the deals are booked once each with the deal's amounts, and no flow is left pending without
  a durable workflow behind it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.chaos.cluster import Replicas, admin, chaos_env, problem, two_replicas
from tests.process_apis.emulator_processes import emulator_processes
from tests.process_apis.sandbox import SalesforceOrg, StripeAccount, seeded_id
from tests.support.processes import cli, create_client
from tests.support.servers import free_port
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]

SCOPES = "process:write process:read ops:read"
DEALS = 6
LEASE_CEILING = 200
"""More calls than a replica can hold permits for (`RateLimitConfig.max_block`, 64)."""
# Slow vendors keep the flows in flight while the store goes away.
SLOW_VENDORS = {"latency_ms": 150}


class RedisServer:
    """A redis-server of the test's own on a free port: killing it leaves the shared one be."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            )
            if ping.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextmanager
def redis_server(log: Path) -> Iterator[RedisServer]:
    server = RedisServer(log)
    server.start()
    try:
        yield server
    finally:
        server.kill()


class Run:
    """One run against the replicas: its client, its deals and what every call answered."""

    def __init__(self, http: httpx.AsyncClient, urls: dict[str, str], replicas: Replicas):
        self.http = http
        self.urls = urls
        self.replicas = replicas
        self.headers: dict[str, str] = {}
        self.statuses: Counter[int] = Counter()

    async def sign_in(self, env: dict[str, str]) -> None:
        client = await asyncio.to_thread(create_client, env, scopes=SCOPES, tier="gold")
        token = await self.token(self.replicas.url(0), client)
        assert token.status_code == 200, token.text
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        self.client = client

    async def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, url, **kwargs)
        self.statuses[response.status_code] += 1
        assert response.status_code != 500, response.text
        return response

    async def token(self, base: str, client: dict[str, str]) -> httpx.Response:
        return await self.call(
            "POST",
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
        )

    async def book(self, base: str, opportunity: str, key: str) -> httpx.Response:
        return await self.call(
            "POST",
            f"{base}/process/v1/quote-to-cash",
            json={"opportunity_id": opportunity},
            headers={**self.headers, "Idempotency-Key": key},
        )

    async def ready(self, base: str) -> httpx.Response:
        return await self.call("GET", f"{base}/health/ready")

    async def all_ready(self, *, redis: str | None = None) -> bool:
        for base in self.replicas.urls:
            response = await self.ready(base)
            if response.status_code != 200:
                return False
            if redis is not None and response.json()["checks"].get("redis") != redis:
                return False
        return True

    async def deals(self, count: int) -> list[str]:
        salesforce = SalesforceOrg(self.http, self.urls["salesforce"])
        acme = seeded_id("Account", "acme")
        return [
            await salesforce.deal(
                acme, [("SEAT", 1 + index)], currency="USD", name=f"Outage {index}"
            )
            for index in range(count)
        ]

    async def finished(self, opportunities: list[str]) -> list[dict[str, Any]]:
        async def all_ended() -> list[dict[str, Any]] | None:
            flows = []
            for opportunity in opportunities:
                response = await self.http.get(
                    f"{self.replicas.url(0)}/process/v1/flows/q2c:{opportunity}",
                    headers=self.headers,
                )
                if response.status_code != 200:
                    return None
                flows.append(response.json())
            ended = [f for f in flows if f["status"] in ("succeeded", "failed")]
            return flows if len(ended) == len(opportunities) else None

        return await eventually(all_ended, timeout=120, interval=0.5, what="every flow ended")

    async def assert_booked_once_at_the_deal_amounts(self, opportunities: list[str]) -> None:
        """One Stripe subscription per deal, billing the deal's quantity at the list price
        Salesforce holds, read through both vendors' own APIs."""
        salesforce = SalesforceOrg(self.http, self.urls["salesforce"])
        stripe = StripeAccount(self.http, self.urls["stripe"])
        subscriptions = await stripe.objects("/v1/subscriptions")
        for opportunity in opportunities:
            lines = await salesforce.query(
                "SELECT Quantity, UnitPrice FROM OpportunityLineItem "
                f"WHERE OpportunityId = '{opportunity}'"
            )
            expected = sum(
                int(Decimal(str(line["UnitPrice"])) * 100) * int(line["Quantity"]) for line in lines
            )
            booked = [s for s in subscriptions if s["metadata"].get("deal_id") == opportunity]
            assert len(booked) == 1, (opportunity, booked)
            billed = sum(
                int(item["price"]["unit_amount"]) * int(item["quantity"])
                for item in booked[0]["items"]["data"]
            )
            assert (billed, booked[0]["currency"]) == (expected, "usd"), booked[0]


async def _refused_once_leases_run_out(
    *calls: Callable[[], Awaitable[httpx.Response]],
) -> int:
    """Deny mode still admits what a replica leased from Redis before it died (those permits
    were counted); once they are spent, each route answers 503 problem+json with Retry-After.
    Returns the 503s served."""
    served = 0
    for call in calls:
        for _ in range(LEASE_CEILING):
            response = await call()
            if response.status_code != 503:
                assert response.is_success, response.text
                continue
            problem(response)
            served += 1
            break
        else:
            raise AssertionError(f"still admitted after {LEASE_CEILING} calls without Redis")
    return served


async def _slow_vendors(
    http: httpx.AsyncClient, urls: dict[str, str], faults: dict[str, Any]
) -> None:
    for url in urls.values():
        assert (await http.post(f"{url}/_emulator/faults", json=faults)).is_success


@pytest.mark.parametrize("mode", ["allow", "deny"])
async def test_redis_killed_under_traffic(tmp_path: Path, database: str, mode: str) -> None:
    with emulator_processes(tmp_path) as urls, redis_server(tmp_path / "redis.log") as redis:
        env = chaos_env(
            database,
            tmp_path,
            urls,
            ERPGW_REDIS_URL=redis.url,
            ERPGW_RATE_LIMIT_ON_STORE_ERROR=mode,
        )
        async with two_replicas(env, tmp_path) as (replicas, http):
            run = Run(http, urls, replicas)
            await run.sign_in(env)
            await _redis_outage(run, redis, mode)


async def _redis_outage(run: Run, redis: RedisServer, mode: str) -> None:
    opportunities = await run.deals(DEALS)
    assert await run.all_ready(redis="ok")
    await _slow_vendors(run.http, run.urls, SLOW_VENDORS)
    half = DEALS // 2
    for index, opportunity in enumerate(opportunities[:half]):
        booked = await run.book(run.replicas.url(index % 2), opportunity, f"redis-{index}")
        assert booked.status_code == 202, booked.text

    redis.kill()
    killed = time.monotonic()
    served_503 = 0
    if mode == "allow":
        # Every route still works without Redis: the replicas must stay in rotation.
        await eventually(lambda: run.all_ready(redis="degraded"), timeout=15, what="degraded")
        unready = 0.0
        for base in run.replicas.urls:
            metrics = (await run.call("GET", f"{base}/metrics")).text
            assert 'erpgw_dependency_up{dependency="redis"} 0.0' in metrics
            assert (await run.token(base, run.client)).status_code == 200
            flows = await run.call("GET", f"{base}/process/v1/flows", headers=run.headers)
            assert flows.status_code == 200, flows.text
        for index, opportunity in enumerate(opportunities[half:], start=half):
            booked = await run.book(run.replicas.url(index % 2), opportunity, f"redis-{index}")
            assert booked.status_code == 202, booked.text
    else:
        # Deny mode refuses what it cannot count: unready, and a 503 a load balancer retries.
        for base in run.replicas.urls:
            ready = problem(await run.ready(base))
            assert "redis unreachable" in ready["detail"], ready
            served_503 += 1
            served_503 += await _refused_once_leases_run_out(
                functools.partial(run.token, base, run.client),
                functools.partial(run.call, "GET", f"{base}/process/v1/flows", headers=run.headers),
                functools.partial(run.book, base, opportunities[half], "redis-refused"),
            )

    redis.start()
    back = time.monotonic()
    await eventually(lambda: run.all_ready(redis="ok"), timeout=30, what="redis ok again")
    recovered = serving = time.monotonic() - back
    if mode == "deny":
        unready = time.monotonic() - killed
        # Ready means serving: the first booking after readiness is accepted.
        for index, opportunity in enumerate(opportunities[half:], start=half):
            booked = await run.book(run.replicas.url(index % 2), opportunity, f"redis-{index}")
            assert booked.status_code == 202, booked.text
        serving = time.monotonic() - back
    for base in run.replicas.urls:
        metrics = (await run.call("GET", f"{base}/metrics")).text
        assert 'erpgw_dependency_up{dependency="redis"} 1.0' in metrics

    await _slow_vendors(run.http, run.urls, {})
    ended = await run.finished(opportunities)
    assert Counter(flow["status"] for flow in ended) == {"succeeded": DEALS}, ended
    await run.assert_booked_once_at_the_deal_amounts(opportunities)
    assert run.statuses[500] == 0
    print(  # the figures of the run (pytest -s)
        f"redis outage ({mode}): {DEALS} deals, unready {unready:.1f}s, {served_503} 503s "
        f"served, ready {recovered:.1f}s and serving {serving:.1f}s after redis came back, "
        f"statuses "
        f"{dict(run.statuses)}"
    )


async def test_database_dropped_and_recreated_with_flows_in_flight(
    tmp_path: Path, database: str, postgres_url: str
) -> None:
    with emulator_processes(tmp_path) as urls:
        env = chaos_env(database, tmp_path, urls)
        async with two_replicas(env, tmp_path) as (replicas, http):
            run = Run(http, urls, replicas)
            await run.sign_in(env)
            await _database_loss(run, env, database, postgres_url)


async def _database_loss(run: Run, env: dict[str, str], database: str, server: str) -> None:
    name = sa.make_url(database).database
    opportunities = await run.deals(DEALS)
    assert await run.all_ready()
    await _slow_vendors(run.http, run.urls, SLOW_VENDORS)
    for index, opportunity in enumerate(opportunities):
        booked = await run.book(run.replicas.url(index % 2), opportunity, f"loss-{index}")
        assert booked.status_code == 202, booked.text

    await admin(server, f'DROP DATABASE "{name}" WITH (FORCE)')
    dropped = time.monotonic()
    served_503 = await _every_database_route_is_503(run, opportunities[0], "gone")
    await admin(server, f'CREATE DATABASE "{name}"')
    served_503 += await _every_database_route_is_503(run, opportunities[0], "empty")

    await asyncio.to_thread(cli, "db", "upgrade", env=env)
    upgraded = time.monotonic()
    await eventually(run.all_ready, timeout=30, what="ready after db upgrade")
    recovered = time.monotonic() - upgraded
    unready = time.monotonic() - dropped

    # The clients lived in the lost database: a new one is made the usual way.
    await run.sign_in(env)
    for index, opportunity in enumerate(opportunities):
        booked = await run.book(run.replicas.url(index % 2), opportunity, f"again-{index}")
        assert booked.status_code == 202, booked.text
    await _slow_vendors(run.http, run.urls, {})
    flows = await run.finished(opportunities)
    assert Counter(flow["status"] for flow in flows) == {"succeeded": DEALS}, flows
    await run.assert_booked_once_at_the_deal_amounts(opportunities)
    assert await _flows_without_workflow(database) == []
    assert run.statuses[500] == 0
    print(  # the figures of the run (pytest -s)
        f"database loss: {DEALS} deals in flight, unready {unready:.1f}s, {served_503} 503s "
        f"served, ready {recovered:.1f}s after db upgrade, statuses {dict(run.statuses)}"
    )


async def _every_database_route_is_503(run: Run, opportunity: str, state: str) -> int:
    """Each database-backed route on each replica: 503 problem+json with Retry-After."""
    served = 0
    for base in run.replicas.urls:
        ready = problem(await run.ready(base))
        assert "database" in ready["detail"], (state, ready)
        problem(await run.token(base, run.client))
        for path in (
            "/process/v1/flows",
            f"/process/v1/flows/q2c:{opportunity}",
            "/process/v1/exceptions",
        ):
            body = problem(await run.call("GET", f"{base}{path}", headers=run.headers))
            assert body["code"] == "database_unavailable", (state, path, body)
        problem(await run.book(base, opportunity, f"during-{state}"))
        served += 6
    return served


async def _flows_without_workflow(database: str) -> list[tuple[str, str]]:
    """Flow records still pending or running with no durable workflow to run them."""
    engine = create_async_engine(database)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT f.id, f.status FROM flows f LEFT JOIN dbos.workflow_status w "
                    "ON w.workflow_uuid = f.id WHERE f.status IN ('pending', 'running') "
                    "AND w.workflow_uuid IS NULL"
                )
            )
            return [(str(row[0]), str(row[1])) for row in rows]
    finally:
        await engine.dispose()
