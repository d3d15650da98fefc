"""The NetSuite emulator: NetSuite's HTTP API in memory (layout in `sandbox`'s docstring)."""

from __future__ import annotations

from sandbox.netsuite.emulator import NetSuiteEmulator, create_emulator

__all__ = ["NetSuiteEmulator", "create_emulator"]
