"""Salesforce (CRM): REST API client, mapping to the canonical contracts, and emulator."""

from __future__ import annotations

from system_apis.crm.salesforce.client import (
    API_VERSION,
    SalesforceClient,
    SalesforceCredentials,
    sandbox_credentials,
)
from system_apis.crm.salesforce.emulator import SalesforceEmulator, create_emulator

__all__ = [
    "API_VERSION",
    "SalesforceClient",
    "SalesforceCredentials",
    "SalesforceEmulator",
    "create_emulator",
    "sandbox_credentials",
]
