"""Where the suites that need real services find them, and what to do when they are absent.

`ERPGW_TEST_REDIS_URL` / `ERPGW_TEST_DATABASE_URL` point at the services; unset, those tests
skip with a visible reason, unless `ERPGW_REQUIRE_SERVICES=1` (CI), where they fail instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["REPO_ROOT", "require_env", "services_required"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def services_required() -> bool:
    return os.environ.get("ERPGW_REQUIRE_SERVICES", "") not in ("", "0", "false")


def require_env(name: str, what: str) -> str:
    """The value of `name`, or skip (fail in CI) naming what is missing."""
    value = os.environ.get(name, "")
    if value:
        return value
    reason = f"{what} not configured: set {name} to run this test"
    if services_required():
        pytest.fail(f"{reason} (ERPGW_REQUIRE_SERVICES=1)")
    pytest.skip(reason)
