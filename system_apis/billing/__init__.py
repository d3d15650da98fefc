"""Billing system API: the port the layers above call and the canonical billing routes."""

from __future__ import annotations

from system_apis.billing.api import create_router
from system_apis.billing.port import BillingPort, ProrationBehavior, SubscriptionFilter

__all__ = ["BillingPort", "ProrationBehavior", "SubscriptionFilter", "create_router"]
