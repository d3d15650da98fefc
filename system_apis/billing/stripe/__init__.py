"""Stripe Billing: the client (with its mapping to contracts), webhook signatures, the emulator."""

from __future__ import annotations

from system_apis.billing.stripe.client import (
    STRIPE_VERSION,
    StripeAuth,
    StripeClient,
    StripeCredentials,
    credentials_from_env,
    sandbox_credentials,
)
from system_apis.billing.stripe.emulator import StripeEmulator, create_emulator
from system_apis.billing.stripe.webhooks import sign_webhook, verify_webhook

__all__ = [
    "STRIPE_VERSION",
    "StripeAuth",
    "StripeClient",
    "StripeCredentials",
    "StripeEmulator",
    "create_emulator",
    "credentials_from_env",
    "sandbox_credentials",
    "sign_webhook",
    "verify_webhook",
]
