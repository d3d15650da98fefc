"""What the chaos runs share: a PostgreSQL database of their own, gateway replicas restartable
on their ports, and the gateway's environment pointed at emulators in their own processes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.process_apis.emulator_processes import gateway_env
from tests.support.processes import GatewayProcess, start_gateway
from tests.support.servers import free_port

__all__ = ["Replicas", "admin", "chaos_env", "problem"]


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
