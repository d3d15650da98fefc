"""NetSuite (ERP): SuiteTalk REST client and mapping to canonical contracts."""

from __future__ import annotations

from system_apis.erp.netsuite.client import (
    NetSuiteClient,
    NetSuiteCredentials,
)

__all__ = [
    "NetSuiteClient",
    "NetSuiteCredentials",
]
