"""The emulator's OAuth 2.0 client credentials (M2M) token endpoint and bearer-token check.

The client authenticates with a JWT client assertion signed by the private key of a mapped
certificate: header `kid` = certificate id; claims iss (client id), scope, aud (the token
endpoint URL), iat and exp at most 60 minutes after iat
(https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_162790605110.html).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import extract_compact

from sandbox.netsuite.errors import WireError

__all__ = ["ALGORITHMS", "TOKEN_PATH", "OAuthError", "TokenIssuer", "oauth_error_body"]

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
ALGORITHMS = ("PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME = 3600
_MAX_ASSERTION_LIFETIME = 3600
_LEEWAY = 60


class OAuthError(Exception):
    """An RFC 6749 error answer from the token endpoint."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


@dataclass(frozen=True)
class _Certificate:
    client_id: str
    key: RSAKey | ECKey


class TokenIssuer:
    """Registered certificates and the access tokens issued against them."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._certificates: dict[str, _Certificate] = {}
        self._tokens: dict[str, float] = {}

    def register(self, certificate_id: str, client_id: str, public_pem: str | bytes) -> None:
        key: RSAKey | ECKey
        try:
            key = RSAKey.import_key(public_pem)
        except (JoseError, ValueError, TypeError):
            key = ECKey.import_key(public_pem)
        self._certificates[certificate_id] = _Certificate(client_id, key)

    def revoke_tokens(self) -> None:
        """Forget every issued access token (as if they had all expired)."""
        self._tokens.clear()

    def issue(self, form: Mapping[str, str], token_url: str) -> dict[str, Any]:
        if form.get("grant_type") != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError(400, "invalid_request", "client_assertion_type is not jwt-bearer")
        assertion = form.get("client_assertion", "")
        if not assertion:
            raise OAuthError(400, "invalid_request", "client_assertion is missing")
        self._verify(assertion, token_url)
        token = secrets.token_urlsafe(32)
        self._tokens[token] = self._clock() + TOKEN_LIFETIME
        return {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_LIFETIME}

    def check_bearer(self, authorization: str | None) -> None:
        """Raise NetSuite's INVALID_LOGIN error unless the header carries a live token."""
        scheme, _, token = (authorization or "").partition(" ")
        expires = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expires is None or expires <= self._clock():
            self._tokens.pop(token.strip(), None)
            raise WireError(
                401, "INVALID_LOGIN",
                "Invalid login attempt. For more details, see the Login Audit Trail in the "
                "NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )

    def _verify(self, assertion: str, token_url: str) -> None:
        try:
            header = extract_compact(assertion.encode()).protected
        except (JoseError, ValueError) as exc:
            raise OAuthError(400, "invalid_request", "client_assertion is not a JWT") from exc
        certificate = self._certificates.get(str(header.get("kid", "")))
        if certificate is None:
            raise OAuthError(401, "invalid_client", "unknown certificate (kid)")
        if header.get("alg") not in ALGORITHMS:
            raise OAuthError(401, "invalid_client", "signature algorithm not allowed")
        try:
            token = jwt.decode(assertion, certificate.key, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as exc:
            raise OAuthError(401, "invalid_client", "client_assertion signature is invalid") \
                from exc
        self._check_claims(token.claims, certificate.client_id, token_url)

    def _check_claims(self, claims: dict[str, Any], client_id: str, token_url: str) -> None:
        if claims.get("iss") != client_id:
            raise OAuthError(401, "invalid_client", "iss is not the certificate's client")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if token_url not in audiences:
            raise OAuthError(400, "invalid_grant", "aud is not this token endpoint")
        scope = claims.get("scope")
        scopes = scope if isinstance(scope, list) else str(scope or "").replace(",", " ").split()
        if "rest_webservices" not in scopes:
            raise OAuthError(400, "invalid_scope", "scope must include rest_webservices")
        now = self._clock()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise OAuthError(400, "invalid_grant", "iat and exp are required")
        if exp <= now - _LEEWAY or iat > now + _LEEWAY:
            raise OAuthError(400, "invalid_grant", "the client assertion has expired")
        if exp - iat > _MAX_ASSERTION_LIFETIME:
            raise OAuthError(400, "invalid_grant", "exp is more than 60 minutes after iat")


def oauth_error_body(error: OAuthError) -> dict[str, Any]:
    return {"error": error.error, "error_description": error.description}
