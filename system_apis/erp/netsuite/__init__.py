"""NetSuite (ERP): SuiteTalk REST client, mapping to canonical contracts, and emulator."""

from __future__ import annotations

from system_apis.erp.netsuite.client import (
    NetSuiteClient,
    NetSuiteCredentials,
    sandbox_credentials,
)
from system_apis.erp.netsuite.emulator import NetSuiteEmulator, create_emulator

__all__ = [
    "NetSuiteClient",
    "NetSuiteCredentials",
    "NetSuiteEmulator",
    "create_emulator",
    "sandbox_credentials",
]
