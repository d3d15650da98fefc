"""Billing system API: the port the layers above call and the canonical billing routes
(`/system/billing/v1`, and `/system/billing/v2` beside it)."""

from __future__ import annotations

from litestar import Router

from system_apis.billing.api import create_router as create_router_v1
from system_apis.billing.api_v2 import create_router_v2
from system_apis.billing.port import BillingPort, ProrationBehavior, SubscriptionFilter

__all__ = ["BillingPort", "ProrationBehavior", "SubscriptionFilter", "create_router"]


def create_router() -> Router:
    """Both published majors of the billing routes; the app provides `billing`."""
    return Router(path="/", route_handlers=[create_router_v1(), create_router_v2()])
