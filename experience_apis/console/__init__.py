"""The operations console (`/ops`): server-rendered pages for operators, people signed in
through the company's OpenID Connect provider (`_oidc`, `_people`), or in sandbox mode an ops
client with its id and secret. See `_signin` for sign-in, cookies and CSRF, `_pages` for what
the pages show, `_actions` for what operators can do, `_credits` for finance's decisions and
`_audit_page` for the audit trail.
"""

from __future__ import annotations

from experience_apis.console._oidc import CALLBACK_PATH as OIDC_CALLBACK_PATH
from experience_apis.console._oidc import OidcConfig, RoleGrant
from experience_apis.console._router import console_routes
from experience_apis.console._signin import (
    ClientAuthenticator,
    ConsoleClient,
    console_secret,
)
from experience_apis.console._vendor_links import VendorLinks, vendor_links
from experience_apis.console._web import Console

__all__ = [
    "OIDC_CALLBACK_PATH",
    "ClientAuthenticator",
    "Console",
    "ConsoleClient",
    "OidcConfig",
    "RoleGrant",
    "VendorLinks",
    "console_routes",
    "console_secret",
    "vendor_links",
]
