"""Fixtures: the Stripe emulator served over loopback (shared with the client's tests)."""

from __future__ import annotations

from tests.system_apis.billing.stripe.conftest import (  # noqa: F401 (fixtures)
    base_url,
    emulator,
    http,
    openapi,
    served,
    stripe,
    vendor,
)
