"""Stripe Billing: the client (with its mapping to contracts) and webhook verification."""

from __future__ import annotations

from system_apis.billing.stripe.client import (
    STRIPE_VERSION,
    StripeAuth,
    StripeClient,
    StripeCredentials,
    credentials_from_env,
)
from system_apis.billing.stripe.webhooks import verify_webhook

__all__ = [
    "STRIPE_VERSION",
    "StripeAuth",
    "StripeClient",
    "StripeCredentials",
    "credentials_from_env",
    "verify_webhook",
]
