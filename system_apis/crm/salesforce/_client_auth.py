"""Outbound Salesforce credentials and the httpx auth that gets, caches and refreshes tokens.

Two OAuth 2.0 flows: client credentials (consumer key and secret as form fields on the token
endpoint) and JWT bearer (an RS256 assertion signed with authlib: `iss` the consumer key,
`sub` the integration user, `aud` the login host, `exp` under three minutes ahead). The token
answer's `instance_url` is where data calls go. A data call answered 401 INVALID_SESSION_ID
gets one fresh token and one retry.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable

import httpx
import msgspec
from authlib.oauth2.rfc7523 import JWTBearerGrant
from joserfc.jwk import RSAKey

from contracts.errors import UpstreamAuthFailed
from system_apis.crm.salesforce._client_http import TOKEN_ERRORS, VENDOR, request_id
from system_apis.crm.salesforce._wire import TokenResponse

__all__ = [
    "ASSERTION_LIFETIME",
    "LOGIN_AUDIENCE",
    "SalesforceAuth",
    "SalesforceCredentials",
    "TokenGrant",
]

LOGIN_AUDIENCE = "https://login.salesforce.com"
"""The JWT `aud` for production orgs (sandboxes use https://test.salesforce.com)."""
ASSERTION_LIFETIME = 170
"""Seconds: Salesforce refuses an assertion whose `exp` is more than 3 minutes ahead."""
TOKEN_PATH = "/services/oauth2/token"
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_RETRIED = "erpgw_salesforce_token_retried"


class SalesforceCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """A connected app's credentials: a client secret, or a username and private key (JWT)."""

    login_url: str
    """Where the token endpoint is: https://login.salesforce.com, a My Domain URL, or the
    emulator's base URL."""
    client_id: str
    client_secret: str | None = None
    username: str | None = None
    private_key_pem: str | None = None
    audience: str = LOGIN_AUDIENCE
    """JWT `aud`: the login host (https://test.salesforce.com for sandboxes)."""

    def __post_init__(self) -> None:
        if not self.client_secret and not (self.username and self.private_key_pem):
            raise ValueError(
                "Salesforce credentials need a client secret, or a username and private key"
            )

    @property
    def uses_jwt(self) -> bool:
        return bool(self.username and self.private_key_pem)


class TokenGrant(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    instance_url: str


class SalesforceAuth(httpx.Auth):
    """Bearer token from the token endpoint, cached; one refresh on INVALID_SESSION_ID."""

    def __init__(
        self, credentials: SalesforceCredentials, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.credentials = credentials
        self.token_url = credentials.login_url.rstrip("/") + TOKEN_PATH
        self.grant: TokenGrant | None = None
        self._clock = clock
        self._signing_key: RSAKey | None = None

    def token_request(self) -> httpx.Request:
        """The token request; safe to repeat, so the outbound policy may retry it."""
        return httpx.Request(
            "POST",
            self.token_url,
            data=self._grant(),
            extensions={"erpgw_idempotent": True, "erpgw_path_template": TOKEN_PATH},
        )

    def accept(self, response: httpx.Response) -> TokenGrant:
        """Cache the grant of a token answer, or raise what the refusal means."""
        if response.status_code != 200:
            raise TOKEN_ERRORS.error_for(response)
        try:
            answer = msgspec.json.decode(response.content, type=TokenResponse)
        except msgspec.DecodeError as exc:
            raise UpstreamAuthFailed(
                f"Salesforce token answer unreadable: {exc}", vendor=VENDOR,
                status=response.status_code, request_id=request_id(response),
            ) from exc
        self.grant = TokenGrant(
            access_token=answer.access_token, instance_url=answer.instance_url.rstrip("/")
        )
        return self.grant

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # Overriding the async flow directly means reading bodies ourselves.
        grant = self.grant
        if grant is None:
            grant = await self._fetch_grant((yield self.token_request()))
        request.headers["Authorization"] = f"Bearer {grant.access_token}"
        response = yield request
        if response.status_code == 401 and not request.extensions.get(_RETRIED):
            # The token timed out or was revoked: one new token, one more try.
            await response.aread()
            self.grant = None
            grant = await self._fetch_grant((yield self.token_request()))
            request.headers["Authorization"] = f"Bearer {grant.access_token}"
            request.extensions = {**request.extensions, _RETRIED: True}
            yield request

    async def _fetch_grant(self, response: httpx.Response) -> TokenGrant:
        await response.aread()
        return self.accept(response)

    def _grant(self) -> dict[str, str]:
        creds = self.credentials
        if not creds.uses_jwt:
            return {
                "grant_type": "client_credentials",
                "client_id": creds.client_id,
                "client_secret": creds.client_secret or "",
            }
        now = int(self._clock())
        if self._signing_key is None:
            self._signing_key = RSAKey.import_key(creds.private_key_pem or "")
        assertion = JWTBearerGrant.sign(
            self._signing_key,
            issuer=creds.client_id,
            audience=creds.audience,
            subject=creds.username,
            issued_at=now,
            expires_at=now + ASSERTION_LIFETIME,
            header={"alg": "RS256"},
        )
        text = assertion.decode() if isinstance(assertion, bytes) else str(assertion)
        return {"grant_type": _JWT_BEARER, "assertion": text}
