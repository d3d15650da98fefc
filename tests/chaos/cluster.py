"""What the chaos tests share: a PostgreSQL database of their own, two gateway replicas on it
(restartable on their ports), and a client that submits under one Idempotency-Key and moves to
the other replica when one is down, busy with the key (409) or unavailable."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.process_apis.emulator_processes import gateway_env
from tests.support.processes import GatewayProcess, start_gateway
from tests.support.servers import free_port

__all__ = ["Replicas", "Submitter", "chaos_database", "replica_env"]


async def _admin(url: str, *statements: str) -> None:
    admin = sa.make_url(url).set(database="postgres").render_as_string(hide_password=False)
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


@asynccontextmanager
async def chaos_database(postgres_url: str, suffix: str) -> AsyncIterator[str]:
    """A fresh database `<test database>_<suffix>` beside the test database, dropped after."""
    name = f"{sa.make_url(postgres_url).database}_{suffix}"
    url = sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    await _admin(
        postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )
    try:
        yield url
    finally:
        await _admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def replica_env(
    urls: Mapping[str, str], *, database: str, redis_url: str, var_dir: Path
) -> dict[str, str]:
    """The environment every replica shares: one database, one Redis, one signing key set."""
    return {
        "ERPGW_DATABASE_URL": database,
        "ERPGW_VAR_DIR": str(var_dir),
        "ERPGW_SIGNING_KEYS_DIR": str(var_dir / "keys"),
        "ERPGW_ISSUER": "http://gateway.test",
        "ERPGW_ACCESS_LOG": "false",
        "ERPGW_LOG_FORMAT": "json",
        "ERPGW_REDIS_URL": redis_url,
        **gateway_env(urls),
    }


class Replicas:
    """The two replicas, restartable on their ports."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.ports = [free_port(), free_port()]
        self.processes: list[GatewayProcess | None] = [None, None]
        self.starts = [0, 0]

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

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
                self.longest_409 = max(self.longest_409, time.monotonic() - conflict_since)
            assert response.status_code == ok, response.text
            accepted: dict[str, Any] = response.json()
            return accepted
        raise AssertionError(f"{key} was never accepted")
