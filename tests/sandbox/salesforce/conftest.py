"""Fixtures: the Salesforce emulator served on a loopback port (shared with the client's tests)."""

from __future__ import annotations

from tests.system_apis.crm.salesforce.conftest import (  # noqa: F401 (fixtures)
    client,
    http,
    served,
    served_module,
)
