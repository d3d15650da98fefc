"""Who is calling: RFC 9068 access tokens, minted for our clients and validated on every route.

Validation is strict (algorithm allow-list, `typ: at+jwt`, iss, aud, exp, nbf, a `kid` from
our JWKS or the configured external IdP's; key-bearing headers refused) and cheap: a verified
token is cached by its hash until it expires, so a signature is checked once per token, not
once per request. A revoked client's cached tokens stop working within `CLIENT_STATUS_TTL`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Scope

from contracts.errors import Forbidden, Unauthenticated
from contracts.principal import Principal
from gateway.clients import ApiClient, ClientRegistry
from gateway.keys import SIGNING_ALGORITHM, KeyStore

__all__ = [
    "Authenticator",
    "ExternalIdentityProvider",
    "TokenIssuer",
    "TokenValidator",
    "check_scopes",
]

ALLOWED_ALGORITHMS = frozenset({"ES256", "RS256"})
"""Asymmetric only: never `none`, never an HMAC algorithm that a public key could forge."""
FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c"})
"""Keys or key locations inside the token are never trusted: keys come from our JWKS only."""
CLIENT_STATUS_TTL = 30.0
TOKEN_CACHE_SIZE = 50_000
CLOCK_LEEWAY = 30
JWKS_REFETCH_INTERVAL = 60.0

log = structlog.get_logger("gateway.auth")


class TokenIssuer:
    """Mints access tokens for authenticated clients (the client credentials grant)."""

    def __init__(self, *, keys: KeyStore, issuer: str, audience: str, ttl_seconds: int) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds

    def issue(self, client: ApiClient, scopes: frozenset[str]) -> str:
        self.keys.refresh_if_changed()
        signer = self.keys.current
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": client.client_id,
            "client_id": client.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": secrets.token_urlsafe(16),
            "scope": " ".join(sorted(scopes)),
            "tier": client.tier,
        }
        if client.entities is not None:
            claims["entities"] = sorted(client.entities)
        if client.customer is not None:
            claims["customer"] = client.customer
        header = {"alg": SIGNING_ALGORITHM, "typ": "at+jwt", "kid": signer.kid}
        return jwt.encode(header, claims, signer.key)


class ExternalIdentityProvider:
    """An external IdP whose JWKS we fetch (cached; refetched on an unknown kid at most once a
    minute). Its URL comes from settings, never from a token."""

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str,
        http: httpx.AsyncClient,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.http = http
        self.monotonic = monotonic
        self._key_set: KeySet | None = None
        self._fetched_at: float | None = None

    async def key_for(self, kid: str) -> KeySet | None:
        if self._has(kid):
            return self._key_set
        # A failed fetch counts too: unknown kids must never make us hammer the IdP.
        if self._fetched_at is None or self.monotonic() - self._fetched_at >= JWKS_REFETCH_INTERVAL:
            await self._fetch()
        return self._key_set if self._has(kid) else None

    def _has(self, kid: str) -> bool:
        return self._key_set is not None and any(
            key.kid == kid for key in self._key_set.keys
        )

    async def _fetch(self) -> None:
        self._fetched_at = self.monotonic()
        try:
            response = await self.http.get(self.jwks_url, timeout=5.0)
            response.raise_for_status()
            self._key_set = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            log.warning("external_jwks_fetch_failed", url=self.jwks_url, error=str(exc))


@dataclass
class _CachedToken:
    principal: Principal
    expires_at: float
    own: bool


class TokenValidator:
    """Turns a bearer token into a `Principal`, or raises `Unauthenticated`."""

    def __init__(
        self,
        *,
        keys: KeyStore,
        issuer: str,
        audience: str,
        clients: ClientRegistry,
        external: ExternalIdentityProvider | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.clients = clients
        self.external = external
        self.clock = clock
        """Wall-clock seconds, for `exp`, `nbf` and `iat`."""
        self.monotonic = monotonic
        """Seconds for the client-status cache (`CLIENT_STATUS_TTL`)."""
        self._tokens: OrderedDict[str, _CachedToken] = OrderedDict()
        self._client_status: dict[str, tuple[float, ApiClient | None]] = {}
        self._own_reload_at = 0.0

    async def validate(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._tokens.get(digest)
        now = self.clock()
        if cached is None or cached.expires_at <= now:
            cached = await self._verify(token)
            self._remember(digest, cached)
        if cached.own:
            await self._check_client_active(cached.principal.client_id)
        return cached.principal

    async def _verify(self, token: str) -> _CachedToken:
        header = _unverified_header(token)
        key_set, issuer, own = await self._key_set_for(header["kid"])
        try:
            decoded = jwt.decode(token, key_set, algorithms=[header["alg"]])
        except (JoseError, ValueError) as exc:
            raise Unauthenticated("the token signature is not valid") from exc
        claims = decoded.claims
        _check_claims(claims, issuer=issuer, audience=self.audience, now=self.clock())
        principal = await self._principal(claims, own=own)
        return _CachedToken(principal=principal, expires_at=float(claims["exp"]), own=own)

    async def _key_set_for(self, kid: str) -> tuple[KeySet, str, bool]:
        own = self.keys.key_set()
        if not any(key.kid == kid for key in own.keys):
            self.keys.refresh_if_changed()
            own = self.keys.key_set()
        if any(key.kid == kid for key in own.keys):
            return own, self.issuer, True
        if self.external is not None:
            external = await self.external.key_for(kid)
            if external is not None:
                return external, self.external.issuer, False
        raise Unauthenticated("the token was signed by an unknown key")

    async def _principal(self, claims: dict[str, Any], *, own: bool) -> Principal:
        client_id = str(claims.get("client_id") or claims["sub"])
        if not own:
            # An external IdP's client ids live in its own namespace: one that happens to
            # equal one of ours must not share our client's quota or idempotency keys.
            client_id = f"ext:{client_id}"
        scopes = frozenset(str(claims.get("scope", "")).split())
        entities = claims.get("entities")
        name = client_id
        if own:
            client = await self._check_client_active(client_id)
            name = client.name
        return Principal(
            client_id=client_id,
            name=name,
            scopes=scopes,
            tier=str(claims.get("tier", "bronze")),
            entities=frozenset(str(e) for e in entities) if isinstance(entities, list) else None,
            customer=str(claims["customer"]) if claims.get("customer") else None,
        )

    async def _check_client_active(self, client_id: str) -> ApiClient:
        now = self.monotonic()
        checked = self._client_status.get(client_id)
        if checked is None or now - checked[0] > CLIENT_STATUS_TTL:
            checked = (now, await self.clients.get(client_id))
            self._client_status[client_id] = checked
        client = checked[1]
        if client is None or not client.active:
            raise Unauthenticated("the client of this token has been revoked")
        return client

    def _remember(self, digest: str, cached: _CachedToken) -> None:
        self._tokens[digest] = cached
        self._tokens.move_to_end(digest)
        while len(self._tokens) > TOKEN_CACHE_SIZE:
            self._tokens.popitem(last=False)


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, checked before any key is looked up."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthenticated("the token is not a signed JWT")
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unauthenticated("the token header cannot be read") from exc
    if not isinstance(header, dict):
        raise Unauthenticated("the token header cannot be read")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        # The value is the caller's: echo it only as short ASCII (it ends up in a header).
        shown = ascii(alg)[:20] if isinstance(alg, str) else "of this type"
        raise Unauthenticated(f"token algorithm {shown} is not accepted")
    if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
        raise Unauthenticated("the token is not an access token (typ must be at+jwt)")
    if FORBIDDEN_HEADERS & header.keys():
        raise Unauthenticated("tokens carrying their own key or key location are refused")
    if not isinstance(header.get("kid"), str):
        raise Unauthenticated("the token names no key (kid)")
    return header


def _check_claims(claims: dict[str, Any], *, issuer: str, audience: str, now: float) -> None:
    registry = JWTClaimsRegistry(
        now=int(now),
        leeway=CLOCK_LEEWAY,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        reason = exc.description or exc.error
        raise Unauthenticated(f"the token is not valid here: {reason}") from exc


class Authenticator:
    """Establishes who is calling and whether the route allows it: puts the caller's
    `Principal` in `scope["user"]`, or raises 401 (no valid token) or 403 (a scope the route
    declares in `opt["scopes"]` is missing).

    Authorization is decided here, from the token alone, rather than in a route guard:
    Litestar copies the handler for every guard call (~20 us a request), and a refused
    request must spend no quota and claim no Idempotency-Key."""

    def __init__(
        self, validator: TokenValidator, on_failure: Callable[[str], None] | None = None
    ) -> None:
        self.validator = validator
        self.on_failure = on_failure

    async def authenticate(self, scope: Scope) -> Principal:
        try:
            principal = await self.validator.validate(_bearer_token(scope))
        except Unauthenticated as exc:
            if self.on_failure is not None:
                self.on_failure(exc.error or "missing_token")
            raise
        scope["user"] = principal
        check_scopes(principal, scope["route_handler"])
        return principal


def _bearer_token(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                # RFC 6750 §3.1: another scheme is no Bearer credential at all, so the
                # challenge carries no error code (as when the header is missing).
                raise Unauthenticated("use the Bearer authorization scheme", error="")
            if not token.strip():
                raise Unauthenticated("the Bearer token is empty", error="invalid_request")
            return token.strip()
    raise Unauthenticated("an access token is required", error="")


def check_scopes(principal: object, handler: BaseRouteHandler) -> None:
    """Raise `Forbidden` unless `principal` holds every scope `handler` declares."""
    required: tuple[str, ...] = tuple(handler.opt.get("scopes", ()))
    if not required:
        return
    if not isinstance(principal, Principal) or not principal.has_scopes(*required):
        raise Forbidden(
            f"this operation needs the scope(s): {' '.join(required)}",
            required_scopes=required,
        )
