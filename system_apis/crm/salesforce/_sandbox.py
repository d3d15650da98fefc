"""The emulator's fixed sandbox connected app, shared by the emulator and the client."""

from __future__ import annotations

__all__ = ["SANDBOX_CLIENT_ID", "SANDBOX_CLIENT_SECRET", "SANDBOX_USERNAME"]

SANDBOX_CLIENT_ID = "erpgw-sandbox"
SANDBOX_CLIENT_SECRET = "erpgw-sandbox-secret"
SANDBOX_USERNAME = "integration@erpgw-sandbox.example"
