"""Zendesk credentials, from the environment."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import msgspec

from system_apis.support.zendesk._client_auth import ZendeskApiTokenAuth, ZendeskOAuthAuth

__all__ = [
    "ZendeskCredentials",
    "credentials_from_env",
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


# TODO(#8): remove once process_apis takes typed webhook secrets; the gateway builds these
# credentials from its settings schema (gateway/settings.py).
def credentials_from_env(env: Mapping[str, str]) -> ZendeskCredentials | None:
    """Credentials from `ERPGW_ZENDESK_*`; None when Zendesk is not configured (emulator).

    SUBDOMAIN or BASE_URL, then EMAIL and API_TOKEN, or OAUTH_TOKEN; WEBHOOK_SECRETS is a
    comma-separated list.
    """
    subdomain = env.get("ERPGW_ZENDESK_SUBDOMAIN", "").strip()
    base_url = env.get("ERPGW_ZENDESK_BASE_URL", "").strip() or (
        f"https://{subdomain}.zendesk.com" if subdomain else ""
    )
    if not base_url:
        return None
    email = env.get("ERPGW_ZENDESK_EMAIL", "").strip() or None
    token = env.get("ERPGW_ZENDESK_API_TOKEN", "").strip() or None
    oauth = env.get("ERPGW_ZENDESK_OAUTH_TOKEN", "").strip() or None
    if not oauth and not (email and token):
        raise ValueError(
            "Zendesk is partly configured; set ERPGW_ZENDESK_EMAIL and ERPGW_ZENDESK_API_TOKEN, "
            "or ERPGW_ZENDESK_OAUTH_TOKEN"
        )
    secrets = tuple(
        part.strip() for part in env.get("ERPGW_ZENDESK_WEBHOOK_SECRETS", "").split(",")
        if part.strip()
    )
    return ZendeskCredentials(base_url=base_url.rstrip("/"), email=email, api_token=token,
                              oauth_token=oauth, webhook_secrets=secrets)
