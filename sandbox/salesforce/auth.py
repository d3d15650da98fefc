"""The emulated token endpoint: OAuth 2.0 client credentials and JWT bearer, Salesforce style.

JWT bearer (RFC 7523 as Salesforce profiles it): an RS256 assertion signed with the key whose
certificate is registered on the connected app; `iss` is the consumer key, `sub` the username,
`aud` the login host (or the org's own URL), `exp` no more than three minutes ahead.
Errors answer `{"error", "error_description"}` with status 400, as the real endpoint does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

__all__ = ["LOGIN_AUDIENCES", "MAX_ASSERTION_LIFETIME", "Grant", "OAuthServer", "TokenError"]

LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
MAX_ASSERTION_LIFETIME = 180
"""Seconds: Salesforce refuses a JWT bearer assertion whose `exp` is further ahead."""

_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class TokenError(Exception):
    """A refused token request, rendered as `{"error", "error_description"}`."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class Grant:
    client_id: str
    username: str


class OAuthServer:
    """Connected apps (client secrets, JWT certificates) and the access tokens granted to them."""

    def __init__(
        self,
        *,
        clients: Mapping[str, str],
        jwt_public_keys: Mapping[str, str | bytes],
        org_id: str,
        user_id: str,
    ) -> None:
        self.clients = dict(clients)
        self.org_id = org_id
        self.user_id = user_id
        self.grants: dict[str, Grant] = {}
        self._keys: dict[str, RSAKey] = {}
        self._server_secret = secrets.token_bytes(32)
        for client_id, pem in jwt_public_keys.items():
            self.register_jwt_public_key(client_id, pem)

    def register_jwt_public_key(self, client_id: str, pem: str | bytes) -> None:
        """Register a connected app's certificate or public key (PEM) for JWT bearer."""
        data = pem.encode() if isinstance(pem, str) else pem
        if b"BEGIN CERTIFICATE" in data:
            data = (
                x509.load_pem_x509_certificate(data)
                .public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        self._keys[client_id] = RSAKey.import_key(data)

    def grant_for(self, access_token: str | None) -> Grant | None:
        return self.grants.get(access_token or "")

    def revoke_tokens(self) -> None:
        """Invalidate every access token granted (as a timeout or a revocation does)."""
        self.grants.clear()

    def grant_token(
        self, form: Mapping[str, str], authorization: str | None, *, base_url: str, now: float
    ) -> dict[str, Any]:
        """Answer one token request; raises TokenError."""
        grant_type = form.get("grant_type", "")
        if grant_type == "client_credentials":
            grant = self._client_credentials(form, authorization)
        elif grant_type == _JWT_BEARER:
            grant = self._jwt_bearer(form.get("assertion", ""), base_url=base_url, now=now)
        else:
            raise TokenError("unsupported_grant_type", "grant type not supported")
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(48)}"
        self.grants[token] = grant
        issued_at = str(int(now * 1000))
        identity = f"{base_url}/id/{self.org_id}/{self.user_id}"
        signature = hmac.new(
            self._signing_key(grant.client_id), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
        return {
            "access_token": token,
            "instance_url": base_url,
            "id": identity,
            "token_type": "Bearer",
            "scope": "api",
            "issued_at": issued_at,
            "signature": base64.b64encode(signature).decode(),
        }

    def _signing_key(self, client_id: str) -> bytes:
        secret = self.clients.get(client_id)
        return secret.encode() if secret else self._server_secret

    def _client_credentials(self, form: Mapping[str, str], authorization: str | None) -> Grant:
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization and authorization.lower().startswith("basic "):
            client_id, client_secret = _basic(authorization)
        expected = self.clients.get(client_id)
        if expected is None or not hmac.compare_digest(expected, client_secret):
            raise TokenError("invalid_client", "invalid client credentials")
        return Grant(client_id=client_id, username=f"integration@{client_id}")

    def _jwt_bearer(self, assertion: str, *, base_url: str, now: float) -> Grant:
        claims = _unverified_claims(assertion)
        client_id = str(claims.get("iss", ""))
        key = self._keys.get(client_id)
        if key is None:
            raise TokenError("invalid_client_id", "client identifier invalid")
        try:
            token = jwt.decode(assertion, key, algorithms=["RS256"])
        except JoseError as exc:
            raise TokenError("invalid_grant", "invalid assertion: signature check failed") from exc
        claims = token.claims
        audiences = claims.get("aud")
        allowed = {*LOGIN_AUDIENCES, base_url.rstrip("/")}
        given = audiences if isinstance(audiences, list) else [audiences]
        if not any(isinstance(a, str) and a.rstrip("/") in allowed for a in given):
            raise TokenError("invalid_grant", "audience is invalid")
        expires = claims.get("exp")
        if not isinstance(expires, int | float):
            raise TokenError("invalid_grant", "invalid assertion: exp is missing")
        if expires <= now:
            raise TokenError("invalid_grant", "invalid assertion: the assertion has expired")
        if expires > now + MAX_ASSERTION_LIFETIME:
            raise TokenError(
                "invalid_grant", "invalid assertion: exp is more than 3 minutes in the future"
            )
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise TokenError("invalid_grant", "user hasn't approved this consumer")
        return Grant(client_id=client_id, username=subject)


def _unverified_claims(assertion: str) -> dict[str, Any]:
    """The payload before verification: needed to pick the key named by `iss`."""
    try:
        payload = json.loads(jws.extract_compact(assertion.encode()).payload)
    except (JoseError, ValueError) as exc:
        raise TokenError("invalid_grant", "invalid assertion") from exc
    if not isinstance(payload, dict):
        raise TokenError("invalid_grant", "invalid assertion")
    return payload


def _basic(authorization: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(authorization.split(" ", 1)[1]).decode()
    except (binascii.Error, UnicodeDecodeError, IndexError) as exc:
        raise TokenError("invalid_client", "invalid client credentials") from exc
    client_id, _, client_secret = decoded.partition(":")
    return client_id, client_secret
