"""The Stripe emulator: Stripe's HTTP API in memory (layout in `sandbox`'s docstring)."""

from __future__ import annotations

from sandbox.stripe.emulator import StripeEmulator, create_emulator

__all__ = ["StripeEmulator", "create_emulator"]
