"""OAuth 2.0 client credentials (M2M) for NetSuite as an `httpx.Auth`.

The client proves itself with a JWT client assertion signed by its certificate's private key
(header `kid` = certificate id; claims iss, scope, aud, iat, exp), exchanges it for a bearer
token valid 60 minutes, caches the token, and fetches a new one once when NetSuite answers
401 (https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_162755359851.html).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Generator

import httpx
import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from contracts.errors import UpstreamAuthFailed, UpstreamUnavailable
from system_apis.erp.netsuite._wire import ErrorDocument, TokenResponse
from system_apis.outbound import ErrorRule, ErrorTable, Fault

__all__ = ["ASSERTION_TYPE", "NetSuiteAuth", "sign_assertion"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
_ASSERTION_LIFETIME = 300  # NetSuite allows up to 60 minutes; a short one limits replay.
_REFRESH_MARGIN = 60  # fetch a new token this many seconds before the old one expires


def sign_assertion(
    *,
    client_id: str,
    certificate_id: str,
    private_key_pem: str,
    token_url: str,
    algorithm: str | None = None,
    scope: str = "rest_webservices",
    now: float | None = None,
) -> str:
    """A client assertion for NetSuite's token endpoint.

    PS256 for RSA keys and ES256 for EC keys unless `algorithm` says otherwise (RS256 for an
    RSA key on an account that only maps RS256 certificates).
    """
    key: RSAKey | ECKey
    try:
        key = RSAKey.import_key(private_key_pem)
        default = "PS256"
    except (JoseError, ValueError, TypeError):
        key = ECKey.import_key(private_key_pem)
        default = "ES256"
    issued = int(now if now is not None else time.time())
    header = {"alg": algorithm or default, "typ": "JWT", "kid": certificate_id}
    claims = {"iss": client_id, "scope": scope, "aud": token_url, "iat": issued,
              "exp": issued + _ASSERTION_LIFETIME}
    return jwt.encode(header, claims, key, algorithms=[header["alg"]])


class NetSuiteAuth(httpx.Auth):
    """Bearer tokens from the client credentials flow, cached and refreshed once on 401."""

    def __init__(
        self,
        *,
        client_id: str,
        certificate_id: str,
        private_key_pem: str,
        token_url: str,
        algorithm: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client_id = client_id
        self._certificate_id = certificate_id
        self._private_key_pem = private_key_pem
        self._token_url = token_url
        self._algorithm = algorithm
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("NetSuiteAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._stale():
            async with self._lock:
                if self._stale():
                    token_response = yield self._token_request()
                    await token_response.aread()
                    self._accept(token_response)
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code != 401:
            return
        used = self._token
        async with self._lock:
            if self._token == used:
                token_response = yield self._token_request()
                await token_response.aread()
                self._accept(token_response)
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def _stale(self) -> bool:
        return self._token is None or self._clock() >= self._expires_at

    def _token_request(self) -> httpx.Request:
        assertion = sign_assertion(
            client_id=self._client_id,
            certificate_id=self._certificate_id,
            private_key_pem=self._private_key_pem,
            token_url=self._token_url,
            algorithm=self._algorithm,
            now=self._clock(),
        )
        form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion}
        # Asking for a token again is harmless, so the outbound policy may retry it.
        return httpx.Request("POST", self._token_url, data=form,
                             extensions={"erpgw_idempotent": True})

    def _accept(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise TOKEN_ERRORS.error_for(response)
        try:
            token = msgspec.json.decode(response.content, type=TokenResponse)
        except msgspec.DecodeError as exc:
            raise UpstreamAuthFailed("NetSuite token response is not readable",
                                     vendor="netsuite", status=200) from exc
        self._token = token.access_token
        self._expires_at = self._clock() + max(token.expires_in - _REFRESH_MARGIN, 1)


def _token_fault(response: httpx.Response) -> Fault:
    return Fault(
        message=f"NetSuite refused the client credentials ({_oauth_error(response)})",
        request_id=response.headers.get("X-N-OperationId"),
    )


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return f"status {response.status_code}"
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    document = msgspec.convert(body, ErrorDocument) if isinstance(body, dict) else None
    codes = [d.error_code for d in document.details if d.error_code] if document else []
    return ", ".join(codes) or f"status {response.status_code}"


_TOKEN_UNAVAILABLE = "NetSuite token endpoint answered {status}"
TOKEN_ERRORS = ErrorTable(
    "netsuite",
    name="NetSuite",
    read=_token_fault,
    rules=(
        ErrorRule(429, UpstreamUnavailable, message=_TOKEN_UNAVAILABLE),
        ErrorRule(range(500, 600), UpstreamUnavailable, message=_TOKEN_UNAVAILABLE),
    ),
    fallback=UpstreamAuthFailed,
)
"""The token endpoint's refusals: retry on 429 and 5xx, else our credentials were refused."""
