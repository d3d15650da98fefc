"""Stripe Billing: the client (with its mapping to contracts) and webhook verification."""

from __future__ import annotations

from system_apis.billing.stripe.client import (
    STRIPE_VERSION,
    StripeAuth,
    StripeClient,
    StripeCredentials,
)
from system_apis.billing.stripe.webhooks import VerifiedEvent, verify_event

__all__ = [
    "STRIPE_VERSION",
    "StripeAuth",
    "StripeClient",
    "StripeCredentials",
    "VerifiedEvent",
    "verify_event",
]
