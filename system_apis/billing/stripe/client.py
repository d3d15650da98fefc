"""Stripe Billing client: Stripe's REST API in, canonical contracts out.

Every write takes the caller's idempotency key and sends it as Stripe's `Idempotency-Key`, so a
retried flow step is the same Stripe request (replayed, not repeated). Lists are cursor-paged
with Stripe's `starting_after`, wrapped in an opaque cursor. Reads of subscriptions, invoices
and credit notes expand the customer, whose metadata carries the legal entity. The operations
live in groups (customers, catalog, billing, admin); `StripeClient` is all of them.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx
import msgspec

from system_apis.billing.stripe._client_admin import AdminOperations
from system_apis.billing.stripe._client_base import MAX_PAGE
from system_apis.billing.stripe._client_billing import ProrationBehavior
from system_apis.billing.stripe._client_catalog import CatalogOperations
from system_apis.billing.stripe._client_customers import CustomerOperations
from system_apis.billing.stripe._client_http import Transport
from system_apis.billing.stripe._client_renewals import RenewalOperations
from system_apis.billing.stripe._client_usage import UsageOperations

__all__ = [
    "MAX_PAGE",
    "STRIPE_VERSION",
    "ProrationBehavior",
    "StripeAuth",
    "StripeClient",
    "StripeCredentials",
]

STRIPE_VERSION = "2023-08-16"
"""Pinned: Stripe serves a pinned API version unchanged for ever, and our wire Structs, the
emulator and the OpenAPI subset we test against all describe this version's shapes. Without
the header Stripe would answer in the account's default version, which changes when someone
upgrades the account."""
DEFAULT_BASE_URL = "https://api.stripe.com"


class StripeCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """A Stripe secret key and where to reach Stripe; webhook secrets to verify deliveries."""

    secret_key: str
    base_url: str = DEFAULT_BASE_URL
    webhook_secrets: tuple[str, ...] = ()
    """Every secret a delivery may be signed with (two while a secret is being rolled)."""


class StripeAuth(httpx.Auth):
    """Stripe's secret-key auth plus the pinned API version on every request.

    A secret key does not expire, so there is nothing to fetch or refresh.
    """

    def __init__(self, secret_key: str) -> None:
        self._secret_key = secret_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._secret_key}"
        request.headers["Stripe-Version"] = STRIPE_VERSION
        yield request


class StripeClient(
    CustomerOperations, CatalogOperations, RenewalOperations, UsageOperations, AdminOperations
):
    """One method per Stripe operation the gateway uses; implements `BillingPort` and
    `SubscriptionRenewals`."""

    def __init__(self, http: httpx.AsyncClient, *, credentials: StripeCredentials) -> None:
        auth = StripeAuth(credentials.secret_key)
        super().__init__(Transport(http, auth, credentials.base_url), api_version=STRIPE_VERSION)
        self.webhook_secrets = credentials.webhook_secrets
