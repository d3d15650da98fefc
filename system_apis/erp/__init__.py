"""The ERP system API: its port and canonical routes (NetSuite is the vendor behind it)."""

from __future__ import annotations

from system_apis.erp.api import create_router
from system_apis.erp.port import ErpPort, ReceivablesBalance

__all__ = ["ErpPort", "ReceivablesBalance", "create_router"]
