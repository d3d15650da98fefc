"""How the client authenticates to Zendesk: an API token (HTTP Basic) or an OAuth token."""

from __future__ import annotations

import base64
from collections.abc import Generator

import httpx

__all__ = ["ZendeskApiTokenAuth", "ZendeskOAuthAuth"]


class ZendeskApiTokenAuth(httpx.Auth):
    """API token auth: Basic with user `{email}/token` and the token as password
    (https://developer.zendesk.com/api-reference/introduction/security-and-auth/)."""

    def __init__(self, email: str, api_token: str) -> None:
        raw = f"{email}/token:{api_token}".encode()
        self._header = "Basic " + base64.b64encode(raw).decode("ascii")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class ZendeskOAuthAuth(httpx.Auth):
    """A Zendesk OAuth access token as a bearer token.

    Zendesk grants long-lived tokens to an OAuth client (no refresh flow), so the token is
    configured, not fetched; a 401 with it is a revoked token and surfaces as auth failure.
    """

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request
