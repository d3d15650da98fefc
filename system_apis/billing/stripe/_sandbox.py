"""The fixed credentials of the Stripe sandbox (the emulator), known to client and emulator."""

from __future__ import annotations

__all__ = ["SANDBOX_SECRET_KEY", "SANDBOX_WEBHOOK_SECRET"]

SANDBOX_SECRET_KEY = "sk_test_erpgw_sandbox"
"""The one secret key the emulator accepts."""
SANDBOX_WEBHOOK_SECRET = "whsec_erpgw_sandbox"
"""The signing secret of every webhook endpoint the emulator creates."""
