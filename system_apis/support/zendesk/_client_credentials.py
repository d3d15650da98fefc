"""Zendesk credentials, from the environment."""

from __future__ import annotations

import httpx
import msgspec

from system_apis.support.zendesk._client_auth import ZendeskApiTokenAuth, ZendeskOAuthAuth

__all__ = [
    "ZendeskCredentials",
]


class ZendeskCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """Where a Zendesk account is and how to sign in: API token (email + token) or OAuth."""

    base_url: str
    """`https://{subdomain}.zendesk.com` (the client appends `/api/v2/...`)."""
    email: str | None = None
    api_token: str | None = None
    oauth_token: str | None = None
    webhook_secrets: tuple[str, ...] = ()
    """Signing secrets of the webhooks that deliver to the gateway (several while rotating)."""

    def auth(self) -> httpx.Auth:
        if self.oauth_token:
            return ZendeskOAuthAuth(self.oauth_token)
        if self.email and self.api_token:
            return ZendeskApiTokenAuth(self.email, self.api_token)
        raise ValueError("Zendesk credentials need an email and API token, or an OAuth token")
