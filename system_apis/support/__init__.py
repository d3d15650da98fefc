"""Support system API: the SupportPort the layers above call and its canonical routes."""

from __future__ import annotations

from system_apis.support.api import create_router
from system_apis.support.port import SupportPort

__all__ = ["SupportPort", "create_router"]
