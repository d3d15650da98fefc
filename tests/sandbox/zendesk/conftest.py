"""Fixtures: the Zendesk emulator served over loopback (shared with the client's tests)."""

from __future__ import annotations

from tests.system_apis.support.zendesk.conftest import (  # noqa: F401 (fixtures)
    base_url,
    client,
    emulator,
    http,
    served,
    spec_validator,
)
