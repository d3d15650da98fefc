"""The gateway's sandbox wiring: the emulators and the vendor credentials that reach them.

Only sandbox mode imports this module (lazily, from `gateway.platforms` and the CLI's
`emulator` command), so a live gateway never loads `sandbox` or any emulator.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from sandbox import credentials as sandbox_values
from system_apis.billing.stripe.client import StripeCredentials
from system_apis.crm.salesforce.client import SalesforceCredentials
from system_apis.erp.netsuite.client import NetSuiteCredentials
from system_apis.support.zendesk.client import ZendeskCredentials

__all__ = [
    "SANDBOX_NOTES",
    "create_emulator",
    "emulator_app",
    "netsuite_sandbox_credentials",
    "salesforce_sandbox_credentials",
    "sandbox_credentials",
    "stripe_sandbox_credentials",
    "webhook_secrets",
    "zendesk_sandbox_credentials",
]

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
