"""The gateway's sandbox wiring: the emulators and the vendor credentials that reach them.

Only sandbox mode imports this module (lazily, from `gateway.platforms` and the CLI's
`emulator` command), so a live gateway never loads `sandbox` or any emulator.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.clients import ClientRegistry
from sandbox import credentials as sandbox_values
from sandbox.salesforce.callouts import NamedCredential
from system_apis.billing.stripe.client import StripeCredentials
from system_apis.crm.salesforce.client import SalesforceCredentials
from system_apis.erp.netsuite.client import NetSuiteCredentials
from system_apis.support.zendesk.client import ZendeskCredentials

__all__ = [
    "CALLOUT_CLIENT_FILE",
    "SANDBOX_NOTES",
    "connect_salesforce_callouts",
    "create_emulator",
    "emulator_app",
    "netsuite_sandbox_credentials",
    "salesforce_sandbox_credentials",
    "sandbox_credentials",
    "stripe_sandbox_credentials",
    "webhook_secrets",
    "zendesk_sandbox_credentials",
]

_log = structlog.get_logger(__name__)

CALLOUT_CLIENT_FILE = "sandbox-salesforce-callouts.json"
"""Under the var folder: the API client the Salesforce emulator's callouts sign in as."""
CALLOUT_CLIENT_NAME = "salesforce-sandbox-callouts"
CALLOUT_SCOPES = ("process:write",)

_EMULATOR_MODULES = {
    "salesforce": "sandbox.salesforce",
    "stripe": "sandbox.stripe",
    "zendesk": "sandbox.zendesk",
    "netsuite": "sandbox.netsuite",
}



def salesforce_sandbox_credentials(base_url: str) -> SalesforceCredentials:
    """The Salesforce emulator's sandbox app (client credentials), reached at `base_url`."""
    return SalesforceCredentials(
        login_url=base_url.rstrip("/"),
        client_id=sandbox_values.SALESFORCE.client_id,
        client_secret=sandbox_values.SALESFORCE.client_secret,
        audience=base_url.rstrip("/"),
    )


def stripe_sandbox_credentials(base_url: str) -> StripeCredentials:
    """The Stripe emulator's secret key and webhook secret, reached at `base_url`."""
    return StripeCredentials(
        secret_key=sandbox_values.STRIPE.secret_key,
        base_url=base_url,
        webhook_secrets=(sandbox_values.STRIPE.webhook_secret,),
    )


def zendesk_sandbox_credentials(base_url: str) -> ZendeskCredentials:
    """The Zendesk emulator's API user and webhook secret, reached at `base_url`."""
    return ZendeskCredentials(
        base_url=base_url.rstrip("/"),
        email=sandbox_values.ZENDESK.email,
        api_token=sandbox_values.ZENDESK.api_token,
        webhook_secrets=(sandbox_values.ZENDESK.webhook_secret,),
    )


def netsuite_sandbox_credentials(base_url: str) -> NetSuiteCredentials:
    """The NetSuite emulator's sandbox integration (certificate and key), reached at `base_url`."""
    return NetSuiteCredentials(
        account_id=sandbox_values.NETSUITE.account_id,
        client_id=sandbox_values.NETSUITE.client_id,
        certificate_id=sandbox_values.NETSUITE.certificate_id,
        private_key_pem=sandbox_values.NETSUITE.private_key_pem,
        base_url=base_url.rstrip("/"),
    )


_SANDBOX_CREDENTIALS: dict[str, Callable[[str], Any]] = {
    "salesforce": salesforce_sandbox_credentials,
    "stripe": stripe_sandbox_credentials,
    "zendesk": zendesk_sandbox_credentials,
    "netsuite": netsuite_sandbox_credentials,
}


def sandbox_credentials(vendor: str, base_url: str) -> Any:
    """The vendor client's credentials for its emulator at `base_url` (`sandbox.credentials`)."""
    return _SANDBOX_CREDENTIALS[vendor](base_url)


_UNLIMITED: dict[str, dict[str, Any]] = {
    # What turns each emulator's own rate or concurrency limit off (benchmarks, load tests).
    "salesforce": {"daily_api_limit": 1_000_000_000},
    "stripe": {"rate_limit_per_second": None},
    "zendesk": {"rate_limit_per_minute": None},
    "netsuite": {"concurrency_limit": None},
}


def emulator_app(vendor: str, *, limits: bool = True) -> Any:
    """One vendor's emulator as a standalone ASGI app (`erp-gateway emulator <vendor>`);
    `limits=False` turns off the vendor's own rate or concurrency limit."""
    return create_emulator(vendor, limits=limits).vendor




def create_emulator(vendor: str, *, limits: bool = True) -> Any:
    """A fresh in-process emulator of `vendor` (its `.vendor` is the ASGI app)."""
    module = importlib.import_module(_EMULATOR_MODULES[vendor])
    kwargs: dict[str, Any] = {} if limits else _UNLIMITED[vendor]
    return module.create_emulator(**kwargs)


SANDBOX_NOTES = {
    "salesforce": f"client {sandbox_values.SALESFORCE.client_id} / "
    f"{sandbox_values.SALESFORCE.client_secret}",
    "stripe": f"key {sandbox_values.STRIPE.secret_key}, "
    f"webhook secret {sandbox_values.STRIPE.webhook_secret}",
    "zendesk": f"{sandbox_values.ZENDESK.email} / token {sandbox_values.ZENDESK.api_token}",
    "netsuite": f"client {sandbox_values.NETSUITE.client_id} "
    "(certificate key in sandbox.credentials)",
}
"""What the start-up banner says about each emulator's fixed sandbox credentials."""


def webhook_secrets(source: str) -> tuple[str, ...]:
    """The secret the `source` emulator signs its webhook deliveries with."""
    published = {
        "stripe": sandbox_values.STRIPE.webhook_secret,
        "zendesk": sandbox_values.ZENDESK.webhook_secret,
    }
    return (published[source],)


async def connect_salesforce_callouts(
    emulator: Any, *, database: AsyncEngine, base_url: str, var_dir: Path
) -> None:
    """Point the Salesforce emulator's Closed Won callout at this gateway's
    `/webhooks/salesforce`, signed in as the sandbox's integration client (`process:write`,
    every legal entity), as a real org's Named Credential would be set up. The client is
    created on first start and kept under the var folder (mode 0600)."""
    try:
        target_check = NamedCredential(
            endpoint=f"{base_url}/webhooks/salesforce",
            token_url=f"{base_url}/oauth/token",
            client_id="-",
            client_secret="-",
        )
    except ValueError:
        _log.warning("salesforce_callouts_off", reason="the gateway's URL is not loopback")
        return
    client_id, client_secret = await _callout_client(database, var_dir / CALLOUT_CLIENT_FILE)
    emulator.call_out_closed_won(
        NamedCredential(
            endpoint=target_check.endpoint,
            token_url=target_check.token_url,
            client_id=client_id,
            client_secret=client_secret,
        )
    )


async def _callout_client(database: AsyncEngine, path: Path) -> tuple[str, str]:
    """The stored integration client if it is still active, else a new one (stored)."""
    registry = ClientRegistry(database)
    stored = await asyncio.to_thread(_read_json, path)
    if stored is not None:
        existing = await registry.get(stored["client_id"])
        if existing is not None and existing.active:
            return stored["client_id"], stored["client_secret"]
    created = await registry.create(name=CALLOUT_CLIENT_NAME, scopes=CALLOUT_SCOPES, tier="gold")
    stored = {"client_id": created.client.client_id, "client_secret": created.client_secret}
    await asyncio.to_thread(_write_private_json, path, stored)
    return created.client.client_id, created.client_secret


def _read_json(path: Path) -> dict[str, str] | None:
    return dict(json.loads(path.read_text())) if path.exists() else None


def _write_private_json(path: Path, value: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(value, handle)
