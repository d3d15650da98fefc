"""The fixed sandbox credentials: what each emulator accepts, and what a script or the gateway's
sandbox wiring presents to it to talk to the emulator as that vendor's integration would.

Plain values only; `gateway.platforms` turns them into each vendor client's credentials object.
These values are published (README, start-up banner): they sign and open nothing but the
in-memory emulators.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "NETSUITE",
    "SALESFORCE",
    "STRIPE",
    "ZENDESK",
    "NetSuiteSandbox",
    "SalesforceSandbox",
    "StripeSandbox",
    "ZendeskSandbox",
]


@dataclass(frozen=True, kw_only=True)
class SalesforceSandbox:
    """The emulated org's connected app (OAuth 2.0 client credentials).

    JWT bearer has no fixed key: each emulator makes its own on demand
    (`SalesforceEmulator.sandbox_jwt_private_key_pem`), so a key from another emulator is refused.
    """

    client_id: str
    client_secret: str
    username: str
    """The integration user a JWT bearer assertion names (`sub`)."""


@dataclass(frozen=True, kw_only=True)
class StripeSandbox:
    """The emulated account's secret key and the signing secret of every webhook endpoint."""

    secret_key: str
    webhook_secret: str


@dataclass(frozen=True, kw_only=True)
class ZendeskSandbox:
    """The emulated account's API user (email + API token, or OAuth) and webhook secret."""

    email: str
    api_token: str
    oauth_token: str
    webhook_secret: str
    """Every webhook the emulator delivers is signed with this one secret."""


@dataclass(frozen=True, kw_only=True)
class NetSuiteSandbox:
    """The emulated account's OAuth 2.0 M2M integration: client id, certificate and its key."""

    account_id: str
    client_id: str
    certificate_id: str
    private_key_pem: str
    """PKCS#8 PEM of a P-256 key (NetSuite accepts ES256 client assertions); the emulator maps
    its public half to `certificate_id`."""


SALESFORCE = SalesforceSandbox(
    client_id="erpgw-sandbox",
    client_secret="erpgw-sandbox-secret",
    username="integration@erpgw-sandbox.example",
)

STRIPE = StripeSandbox(
    secret_key="sk_test_erpgw_sandbox",
    webhook_secret="whsec_erpgw_sandbox",
)

ZENDESK = ZendeskSandbox(
    email="sandbox@erpgw.test",
    api_token="erpgw-sandbox-token",
    oauth_token="erpgw-sandbox-oauth-token",
    webhook_secret="erpgw-sandbox-webhook-secret",
)

NETSUITE = NetSuiteSandbox(
    account_id="ERPGW_SANDBOX",
    client_id="erpgw-sandbox",
    certificate_id="erpgw-sandbox-cert",
    private_key_pem=(
        "-----BEGIN PRIVATE KEY-----\n"
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQggo8rSmdQ/zAvqz3D\n"
        "hRMbtiNJBR8HshZxvo4qgtTqOcGhRANCAASvlOImKpkPYP4sUjKg6ph9pv4kHgVI\n"
        "BB+yCyaNRnnjnysVQtBWMgfK7u3c5HKjJibPa6iXk7ltFZ8ysoXqWUes\n"
        "-----END PRIVATE KEY-----\n"
    ),
)
