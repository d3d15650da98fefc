"""The four vendor emulators in their own OS processes (`erp-gateway emulator <vendor>`), and
the environment that points a gateway process at them with real credentials variables, so
the platforms' state outlives the gateway processes (kill tests, benchmarks)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.processes import SCRIPT
from tests.support.servers import free_port

__all__ = ["VENDORS", "emulator_processes", "gateway_env"]

VENDORS = ("salesforce", "stripe", "zendesk", "netsuite")


@contextmanager
def emulator_processes(log_dir: Path, *, limits: bool = True) -> Iterator[dict[str, str]]:
    """Start one process per emulator; yields each vendor's base URL. `limits=False` turns
    the vendors' own rate and concurrency limits off (benchmarks)."""
    started: list[subprocess.Popen[bytes]] = []
    urls: dict[str, str] = {}
    try:
        for vendor in VENDORS:
            port = free_port()
            command = [str(SCRIPT), "emulator", vendor, "--port", str(port)]
            if not limits:
                command.append("--no-limits")
            with (log_dir / f"emulator-{vendor}.log").open("ab") as log:
                started.append(
                    subprocess.Popen(
                        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
            urls[vendor] = f"http://127.0.0.1:{port}"
        for vendor, process in zip(VENDORS, started, strict=True):
            _wait_ready(urls[vendor], process, log_dir / f"emulator-{vendor}.log")
        yield urls
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def gateway_env(urls: Mapping[str, str]) -> dict[str, str]:
    """The `ERPGW_<VENDOR>_*` credentials of the emulators' sandbox accounts at `urls`, in
    sandbox mode, with the secrets the emulators sign their webhook deliveries with (they
    reach the gateway once a test points a webhook endpoint at it)."""
    from sandbox.credentials import NETSUITE, STRIPE, ZENDESK

    return {
        "ERPGW_SANDBOX": "true",
        "ERPGW_SALESFORCE_CLIENT_ID": "erpgw-sandbox",
        "ERPGW_SALESFORCE_CLIENT_SECRET": "erpgw-sandbox-secret",
        "ERPGW_SALESFORCE_LOGIN_URL": urls["salesforce"],
        "ERPGW_STRIPE_SECRET_KEY": "sk_test_erpgw_sandbox",
        "ERPGW_STRIPE_BASE_URL": urls["stripe"],
        "ERPGW_STRIPE_WEBHOOK_SECRETS": STRIPE.webhook_secret,
        "ERPGW_ZENDESK_BASE_URL": urls["zendesk"],
        "ERPGW_ZENDESK_EMAIL": "sandbox@erpgw.test",
        "ERPGW_ZENDESK_API_TOKEN": "erpgw-sandbox-token",
        "ERPGW_ZENDESK_WEBHOOK_SECRETS": ZENDESK.webhook_secret,
        "ERPGW_NETSUITE_ACCOUNT_ID": "ERPGW_SANDBOX",
        "ERPGW_NETSUITE_CLIENT_ID": "erpgw-sandbox",
        "ERPGW_NETSUITE_CERTIFICATE_ID": "erpgw-sandbox-cert",
        "ERPGW_NETSUITE_PRIVATE_KEY": NETSUITE.private_key_pem,
        "ERPGW_NETSUITE_BASE_URL": urls["netsuite"],
    }


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"emulator at {url} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/_emulator/faults", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"emulator at {url} did not start: {log.read_text()[-2000:]}")
