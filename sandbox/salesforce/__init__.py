"""The Salesforce emulator: Salesforce's HTTP API in memory (layout in `sandbox`'s docstring)."""

from __future__ import annotations

from sandbox.salesforce.emulator import SalesforceEmulator, create_emulator

__all__ = ["SalesforceEmulator", "create_emulator"]
