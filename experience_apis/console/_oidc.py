"""People signing in to the console through the company's OpenID Connect provider.

Authorization code flow with PKCE (S256), through authlib's OAuth 2.0 client: `begin` makes a
fresh state, nonce and code verifier (kept in the console's encrypted sign-in cookie until the
provider sends the browser back) and the provider's authorization URL; `finish` checks that
the state that came back is the one this browser was given (CSRF), exchanges the code with
the verifier and the console's client secret, and validates the ID token with joserfc:
signature by a key of the provider's JWKS, `iss`, `aud`, `exp`, `iat` and the `nonce` of this
sign-in. The token's groups claim decides, through the configured roles, which console scopes
and legal entities the person gets; a person with none of them is refused.

The provider's discovery document is read once (its `issuer` must be the configured one); its
keys are read again when a token names a key not seen yet (a rotation), at most once a minute.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import structlog
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc6749.errors import OAuth2Error
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from contracts.principal import Principal

__all__ = [
    "CALLBACK_PATH",
    "OidcConfig",
    "OidcRefused",
    "OidcSignIn",
    "PendingSignIn",
    "RoleGrant",
    "person_principal",
]

CALLBACK_PATH = "/ops/oidc/callback"
ID_TOKEN_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]
"""Asymmetric algorithms only: a provider's key set never holds the console's secret."""
CLOCK_LEEWAY_SECONDS = 60
JWKS_REFETCH_SECONDS = 60.0
SIGN_IN_WINDOW_SECONDS = 600
"""How long a browser may stay at the provider before the pending sign-in is forgotten."""

log = structlog.get_logger("experience_apis.console.oidc")


@dataclass(frozen=True, kw_only=True)
class RoleGrant:
    """What the members of one provider group may do in the console."""

    group: str
    scopes: frozenset[str]
    entities: frozenset[str] | None
    """None: every legal entity."""


@dataclass(frozen=True, kw_only=True)
class OidcConfig:
    issuer: str
    """The provider's issuer URL; its discovery document is `{issuer}/.well-known/...`."""
    client_id: str
    client_secret: str
    """Sent to the provider's token endpoint only (client_secret_basic); never logged."""
    redirect_uri: str
    """This console's callback as the provider knows it (`{public base}/ops/oidc/callback`)."""
    roles: tuple[RoleGrant, ...]
    groups_claim: str = "groups"


class PendingSignIn(msgspec.Struct, frozen=True, kw_only=True):
    """A sign-in sent to the provider and not back yet (kept in the encrypted cookie)."""

    state: str
    nonce: str
    verifier: str
    next_path: str
    started: int


class Person(msgspec.Struct, frozen=True, kw_only=True):
    """A signed-in person and what the roles grant them."""

    subject: str
    name: str
    scopes: frozenset[str]
    entities: frozenset[str] | None


class OidcRefused(Exception):
    """The provider's answer does not sign anyone in; the message is safe to show."""


class OidcSignIn:
    """Signs people in at the configured provider."""

    def __init__(
        self,
        config: OidcConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._transport = transport
        self._clock = clock
        self._discovery: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._keys_read_at = float("-inf")

    async def begin(self, next_path: str) -> tuple[str, PendingSignIn]:
        """The provider's authorization URL for a new sign-in, and what to keep until the
        browser comes back."""
        discovery = await self._discovered()
        pending = PendingSignIn(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(48),
            next_path=next_path,
            started=int(self._clock()),
        )
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                discovery["authorization_endpoint"],
                state=pending.state,
                nonce=pending.nonce,
                code_verifier=pending.verifier,
            )
        return url, pending

    async def finish(
        self, *, code: str | None, state: str | None, error: str | None, pending: PendingSignIn
    ) -> Person:
        """The person the provider signed in, once everything checks.

        Raises:
            OidcRefused: a state that is not this browser's, an expired sign-in, an error
                from the provider, a failed code exchange or an ID token that does not check.
        """
        if not state or not secrets.compare_digest(state, pending.state):
            raise OidcRefused("This sign-in did not start in this browser. Sign in again.")
        if self._clock() - pending.started > SIGN_IN_WINDOW_SECONDS:
            raise OidcRefused("This sign-in took too long. Sign in again.")
        if error or not code:
            raise OidcRefused(f"The identity provider did not sign you in ({error or 'no code'}).")
        id_token = await self._exchange(code, pending)
        claims = await self._validated(id_token, nonce=pending.nonce)
        return self._person(claims)

    async def _exchange(self, code: str, pending: PendingSignIn) -> str:
        discovery = await self._discovered()
        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    discovery["token_endpoint"], code=code, code_verifier=pending.verifier
                )
        except (OAuth2Error, httpx.HTTPError) as exc:
            log.warning("oidc_code_exchange_failed", error=type(exc).__name__)
            raise OidcRefused("The identity provider refused the sign-in code.") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcRefused("The identity provider sent no ID token.")
        return id_token

    async def _validated(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        try:
            kid = jws.extract_compact(id_token.encode()).headers().get("kid")
        except (JoseError, ValueError) as exc:
            raise OidcRefused("The ID token is malformed.") from exc
        keys = await self._key_set(kid if isinstance(kid, str) else None)
        try:
            decoded = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
            JWTClaimsRegistry(
                now=int(self._clock()),
                leeway=CLOCK_LEEWAY_SECONDS,
                iss={"essential": True, "value": self.config.issuer},
                aud={"essential": True, "value": self.config.client_id},
                exp={"essential": True},
                iat={"essential": True},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            reason = getattr(exc, "description", None) or getattr(exc, "error", None) or "invalid"
            log.warning("oidc_id_token_refused", reason=reason)
            raise OidcRefused(f"The ID token does not check: {reason}.") from exc
        return dict(decoded.claims)

    def _person(self, claims: Mapping[str, Any]) -> Person:
        groups = claims.get(self.config.groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        scopes, entities = grants_for(self.config.roles, (str(g) for g in groups))
        if "ops:read" not in scopes:
            raise OidcRefused("Your groups give you no access to the console (ops:read).")
        name = claims.get("name") or claims.get("preferred_username") or claims.get("email")
        subject = str(claims["sub"])
        return Person(subject=subject, name=str(name or subject), scopes=scopes, entities=entities)

    async def _discovered(self) -> dict[str, Any]:
        if self._discovery is not None:
            return self._discovery
        url = f"{self.config.issuer.rstrip('/')}/.well-known/openid-configuration"
        try:
            async with self._http() as http:
                response = await http.get(url)
                response.raise_for_status()
                discovery = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcRefused("The identity provider cannot be reached. Try again.") from exc
        if not isinstance(discovery, dict) or discovery.get("issuer") != self.config.issuer:
            raise OidcRefused("The identity provider's discovery document names another issuer.")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(discovery.get(key), str):
                raise OidcRefused(f"The identity provider's discovery document lacks {key}.")
        self._discovery = discovery
        return discovery

    async def _key_set(self, kid: str | None) -> KeySet:
        known = self._keys is not None and (
            kid is None or any(key.kid == kid for key in self._keys.keys)
        )
        if not known and self._clock() - self._keys_read_at >= JWKS_REFETCH_SECONDS:
            discovery = await self._discovered()
            self._keys_read_at = self._clock()
            try:
                async with self._http() as http:
                    response = await http.get(discovery["jwks_uri"])
                    response.raise_for_status()
                    self._keys = KeySet.import_key_set(response.json())
            except (httpx.HTTPError, ValueError, JoseError) as exc:
                raise OidcRefused("The identity provider's keys cannot be read.") from exc
        if self._keys is None:
            raise OidcRefused("The identity provider's keys cannot be read.")
        return self._keys

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            scope="openid profile email",
            redirect_uri=self.config.redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",
            transport=self._transport,
            timeout=10.0,
        )

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self._transport, timeout=10.0)


def grants_for(
    roles: Iterable[RoleGrant], groups: Iterable[str]
) -> tuple[frozenset[str], frozenset[str] | None]:
    """The scopes and legal entities the roles of `groups` add up to (None: every entity)."""
    member = set(groups)
    scopes: set[str] = set()
    entities: set[str] | None = set()
    for role in roles:
        if role.group not in member:
            continue
        scopes |= role.scopes
        if role.entities is None:
            entities = None
        elif entities is not None:
            entities |= role.entities
    return frozenset(scopes), None if entities is None else frozenset(entities)


def person_principal(person: Person) -> Principal:
    """The person as the layers below see a caller; the client id names the person (hashed:
    a subject may be long) so that per-caller state never mixes two people."""
    digest = hashlib.sha256(person.subject.encode()).hexdigest()[:40]
    return Principal(
        client_id=f"person:{digest}",
        name=person.name,
        scopes=person.scopes,
        entities=person.entities,
        subject=person.subject,
    )
