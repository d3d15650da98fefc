"""The operations console (`/ops`): server-rendered pages for operators, signed in with an
ops client's id and secret. See `_signin` for sign-in, cookies and CSRF, `_pages` for what
the pages show and `_actions` for what operators can do.
"""

from __future__ import annotations

from experience_apis.console._router import console_routes
from experience_apis.console._signin import (
    ClientAuthenticator,
    ConsoleClient,
    console_secret,
)
from experience_apis.console._vendor_links import VendorLinks, vendor_links
from experience_apis.console._web import Console

__all__ = [
    "ClientAuthenticator",
    "Console",
    "ConsoleClient",
    "VendorLinks",
    "console_routes",
    "console_secret",
    "vendor_links",
]
