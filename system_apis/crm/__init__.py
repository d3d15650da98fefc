"""The CRM system API: its port, its canonical routes and the Salesforce adapter."""

from __future__ import annotations

from system_apis.crm.api import create_router
from system_apis.crm.port import CrmContractsPort, CrmPort

__all__ = ["CrmContractsPort", "CrmPort", "create_router"]
