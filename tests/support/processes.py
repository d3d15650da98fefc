"""Run `erp-gateway serve` as real OS processes for multi-process tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.servers import free_port

__all__ = ["GatewayProcess", "cli", "create_client", "gateway_processes", "start_gateway"]

SCRIPT = Path(sys.executable).with_name("erp-gateway")


def cli(*args: str, env: Mapping[str, str]) -> str:
    """Run an `erp-gateway` command; returns stdout, raises on failure."""
    result = subprocess.run(
        [str(SCRIPT), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise AssertionError(f"erp-gateway {' '.join(args)} failed: {result.stderr}")
    return result.stdout


class GatewayProcess:
    def __init__(self, process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown hooks run."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_gateway(
    env: Mapping[str, str], log: Path, *, port: int | None = None, workers: int = 1
) -> GatewayProcess:
    port = port or free_port()
    handle = log.open("ab")
    process = subprocess.Popen(
        [str(SCRIPT), "serve", "--port", str(port), "--workers", str(workers)],
        env={**os.environ, **env, "ERPGW_PORT": str(port)},
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    gateway = GatewayProcess(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"gateway exited with {process.returncode}: {log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{gateway.base_url}/health/live", timeout=1).status_code == 200:
                return gateway
        except httpx.HTTPError:
            time.sleep(0.2)
    gateway.kill()
    raise AssertionError(f"gateway did not start: {log.read_text()[-3000:]}")


@contextmanager
def gateway_processes(
    count: int, env: Mapping[str, str], tmp: Path
) -> Iterator[list[GatewayProcess]]:
    """`count` gateway processes sharing `env` (database, Redis, keys)."""
    started: list[GatewayProcess] = []
    try:
        for index in range(count):
            started.append(start_gateway(env, tmp / f"gateway-{index}.log"))
        yield started
    finally:
        for gateway in started:
            gateway.stop()


def create_client(env: Mapping[str, str], *, scopes: str, tier: str = "bronze") -> dict[str, str]:
    created: dict[str, str] = json.loads(
        cli(
            "clients",
            "create",
            "--name",
            "proc-test",
            "--scopes",
            scopes,
            "--tier",
            tier,
            "--json",
            env=env,
        )
    )
    return created
