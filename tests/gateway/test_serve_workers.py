"""`erp-gateway serve` never leaves a worker behind: killed by any signal, SIGKILL included,
its workers exit too and the port is free within 3 seconds."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

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


def test_every_worker_answers_the_requests_all_workers_served(tmp_path: Path) -> None:
    """Two workers share their series (prometheus-client's multiprocess files): however the
    kernel spreads the requests and the scrapes, each scrape counts all of them."""
    env = {
        "ERPGW_SANDBOX": "true",
        "ERPGW_SANDBOX_VENDORS": "none",
        "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        "ERPGW_VAR_DIR": str(tmp_path),
        "ERPGW_LOG_FORMAT": "json",
        "ERPGW_ACCESS_LOG": "false",
    }
    gateway = start_gateway(env, tmp_path / "serve.log", workers=2)
    try:
        # The start-up probe's requests are counted too.
        before = _live_requests(httpx.get(f"{gateway.base_url}/metrics").text)
        for _ in range(40):
            # A new connection each time, so both workers get some.
            assert httpx.get(f"{gateway.base_url}/health/live").status_code == 200
        counted = [_live_requests(httpx.get(f"{gateway.base_url}/metrics").text) for _ in range(8)]
    finally:
        gateway.stop()

    assert counted == [before + 40] * 8
    assert list((tmp_path / "metrics").glob("*.db"))


def _live_requests(exposition: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "erpgw_http_requests_total" and sample.labels["route"] == "/health/live"
    )


def test_a_settled_worker_keeps_its_startup_objects_out_of_collections() -> None:
    # In a process of its own, as a served worker: freezing this test process's objects
    # (and the full collection before it) would reach into every other test's leftovers.
    script = (
        "import gc, gateway.app\n"
        "from gateway.workers import settle_runtime\n"
        "settle_runtime()\n"
        "print(gc.get_freeze_count())\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )

    assert ran.returncode == 0, ran.stderr
    assert int(ran.stdout.split()[-1]) > 10_000
