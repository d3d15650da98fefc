"""The Zendesk emulator: Zendesk's HTTP API in memory (layout in `sandbox`'s docstring)."""

from __future__ import annotations

from sandbox.zendesk.emulator import ZendeskEmulator, create_emulator

__all__ = ["ZendeskEmulator", "create_emulator"]
