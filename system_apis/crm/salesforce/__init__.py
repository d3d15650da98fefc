"""Salesforce (CRM): REST API client and mapping to the canonical contracts."""

from __future__ import annotations

from system_apis.crm.salesforce.client import (
    API_VERSION,
    SalesforceClient,
    SalesforceCredentials,
)

__all__ = [
    "API_VERSION",
    "SalesforceClient",
    "SalesforceCredentials",
]
