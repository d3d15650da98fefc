"""Where the vendors' published API descriptions and recorded responses are, for contract tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.services import REPO_ROOT, services_required

__all__ = ["vendor_specs_dir"]


def vendor_specs_dir() -> Path:
    """`ERPGW_VENDOR_SPECS` resolved against the repository root; skip (fail in CI) if absent."""
    raw = os.environ.get("ERPGW_VENDOR_SPECS", "")
    path = (REPO_ROOT / raw).resolve() if raw else None
    if path is not None and path.is_dir():
        return path
    reason = f"vendor specs directory {path} not found" if path else "ERPGW_VENDOR_SPECS is not set"
    if services_required():
        pytest.fail(f"{reason} (ERPGW_REQUIRE_SERVICES=1)")
    pytest.skip(reason)
