"""`erp-gateway serve` never leaves a worker behind: killed by any signal, SIGKILL included,
its workers exit too and the port is free within 3 seconds."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.support.processes import start_gateway

FREED_WITHIN_SECONDS = 3.0


def port_is_free(port: int) -> bool:
    """Nothing accepts connections on the port (and it can be bound again)."""
    with socket.socket() as probe:
        probe.settimeout(0.2)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as bind:
        bind.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            bind.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for(condition: object, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return bool(condition())  # type: ignore[operator]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_workers_exit_with_the_serve_process(tmp_path: Path, signum: signal.Signals) -> None:
    env = {
        "ERPGW_SANDBOX": "true",
        "ERPGW_SANDBOX_VENDORS": "none",
        "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        "ERPGW_VAR_DIR": str(tmp_path),
        "ERPGW_LOG_FORMAT": "json",
        "ERPGW_ACCESS_LOG": "false",
    }
    gateway = start_gateway(env, tmp_path / "serve.log")
    port = int(gateway.base_url.rsplit(":", 1)[1])
    try:
        assert not port_is_free(port)

        killed_at = time.monotonic()
        os.kill(gateway.process.pid, signum)  # the parent alone, not its process group
        gateway.process.wait(timeout=10)
        left = FREED_WITHIN_SECONDS - (time.monotonic() - killed_at)

        assert wait_for(lambda: port_is_free(port), timeout=left), (
            f"a worker still holds port {port}"
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(gateway.process.pid, signal.SIGKILL)
