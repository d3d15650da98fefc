"""What the chaos runs share: a PostgreSQL database of their own, gateway replicas restartable
on their ports, the gateway's environment pointed at emulators in their own processes, and a
client that submits to whichever replica takes the request."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.process_apis.emulator_processes import gateway_env
from tests.support.processes import GatewayProcess, start_gateway
from tests.support.servers import free_port

__all__ = ["Replicas", "Submitter", "admin", "chaos_env", "problem"]


async def admin(url: str, *statements: str) -> None:
    """Run `statements` on the server of `url` from its `postgres` database (CREATE, DROP)."""
    target = sa.make_url(url).set(database="postgres").render_as_string(hide_password=False)
    engine = create_async_engine(target, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


def chaos_env(
    database: str, tmp_path: Path, urls: Mapping[str, str], **extra: str
) -> dict[str, str]:
    """The environment of every replica (and of the CLI run beside them)."""
    return {
        "ERPGW_DATABASE_URL": database,
        "ERPGW_VAR_DIR": str(tmp_path),
        "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "ERPGW_ISSUER": "http://gateway.test",
        "ERPGW_ACCESS_LOG": "false",
        "ERPGW_LOG_FORMAT": "json",
        **gateway_env(urls),
        **extra,
    }


def problem(response: httpx.Response, status: int = 503) -> dict[str, Any]:
    """The problem+json body of `response`, which must be `status` with a Retry-After."""
    assert response.status_code == status, (response.request.url, response.text)
    assert response.headers["content-type"] == "application/problem+json", response.headers
    assert int(response.headers["retry-after"]) >= 1, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    return body


class Replicas:
    """Gateway replicas on one database, each restartable on its port."""

    def __init__(self, env: dict[str, str], logs: Path, count: int = 2) -> None:
        self.env = env
        self.logs = logs
        self.ports = [free_port() for _ in range(count)]
        self.processes: list[GatewayProcess | None] = [None] * count
        self.starts = [0] * count

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    @property
    def urls(self) -> list[str]:
        return [self.url(index) for index in range(len(self.ports))]

    def start(self, index: int) -> None:
        self.starts[index] += 1
        log = self.logs / f"replica-{index}-{self.starts[index]}.log"
        self.processes[index] = start_gateway(self.env, log, port=self.ports[index])

    def kill(self, index: int) -> None:
        process = self.processes[index]
        if process is not None:
            process.kill()

    def stop(self) -> None:
        for process in self.processes:
            if process is not None:
                process.stop()


class Submitter:
    """Submits a process request under one Idempotency-Key and retries on the other replica
    when one is down, busy with the key (409) or unavailable; it times each run of 409s."""

    def __init__(self, http: httpx.AsyncClient, replicas: Replicas, headers: dict[str, str]):
        self.http = http
        self.replicas = replicas
        self.headers = headers
        self.longest_409 = 0.0
        self.statuses: Counter[int] = Counter()

    async def book(self, opportunity: str, key: str, first: int) -> str:
        """Quote-to-cash of a won deal; the flow id."""
        accepted = await self.submit(
            "/process/v1/quote-to-cash", {"opportunity_id": opportunity}, key, first
        )
        return str(accepted["id"])

    async def submit(
        self, path: str, body: dict[str, Any] | None, key: str, first: int, *, ok: int = 202
    ) -> dict[str, Any]:
        """POST `body` to `path` until a replica answers `ok`; the answer's body."""
        target = first
        conflict_since: float | None = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            sent_at = time.monotonic()
            try:
                response = await self.http.post(
                    f"{self.replicas.url(target)}{path}",
                    json=body,
                    headers={**self.headers, "Idempotency-Key": key},
                )
            except httpx.HTTPError:
                target = 1 - target
                await asyncio.sleep(0.2)
                continue
            self.statuses[response.status_code] += 1
            assert response.status_code != 500, response.text
            if response.status_code == 409 and "retry-after" in response.headers:
                assert int(response.headers["retry-after"]) <= 2
                conflict_since = conflict_since or time.monotonic()
                self.longest_409 = max(self.longest_409, time.monotonic() - conflict_since)
                target = 1 - target
                await asyncio.sleep(float(response.headers["retry-after"]))
                continue
            if response.status_code in (429, 502, 503, 504):
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                continue
            if conflict_since is not None:
                # Until the request that got through was sent: its own work is not a wait.
                self.longest_409 = max(self.longest_409, sent_at - conflict_since)
            assert response.status_code == ok, response.text
            accepted: dict[str, Any] = response.json()
            return accepted
        raise AssertionError(f"{key} was never accepted")


@contextlib.asynccontextmanager
async def two_replicas(
    env: dict[str, str], tmp_path: Path, *, http_timeout: float = 30.0
) -> AsyncIterator[tuple[Replicas, httpx.AsyncClient]]:
    """Both replicas of `env` started at once and an HTTP client to drive them; the replicas
    stop as the block ends, whatever happened in it."""
    replicas = Replicas(env, tmp_path)
    try:
        await asyncio.gather(*(asyncio.to_thread(replicas.start, i) for i in (0, 1)))
        async with httpx.AsyncClient(timeout=http_timeout) as http:
            yield replicas, http
    finally:
        replicas.stop()


async def bearer_of(
    http: httpx.AsyncClient, base_url: str, client: Mapping[str, str]
) -> dict[str, str]:
    """The Authorization header of a client-credentials token for `client`."""
    token = await http.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}
