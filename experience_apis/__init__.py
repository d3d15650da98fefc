"""The experience layer: channel views composed from the layers below (sales console, support
desk, finance workspace, customer portal, operations) and the operations console web page.

`build_experience_layer(...)` gives the app factory the routers and dependencies to mount;
`create_routers()` the view routers alone.
"""

from __future__ import annotations

from experience_apis._layer import (
    ExperienceConfig,
    ExperienceLayer,
    build_experience_layer,
    create_routers,
)
from experience_apis.compose import InMemoryViewCache, RedisViewCache, ViewCache
from experience_apis.console import ClientAuthenticator, VendorLinks, console_secret

__all__ = [
    "ClientAuthenticator",
    "ExperienceConfig",
    "ExperienceLayer",
    "InMemoryViewCache",
    "RedisViewCache",
    "VendorLinks",
    "ViewCache",
    "build_experience_layer",
    "console_secret",
    "create_routers",
]
