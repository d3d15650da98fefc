"""A small OpenID Connect provider for the console's sign-in tests: discovery document, JWKS,
an authorization endpoint (a form where the test's person picks who they are) and a token
endpoint that checks the client secret, the redirect URI and the PKCE verifier (S256) and
issues RS256 ID tokens with joserfc.

`faults` makes it misbehave the ways a test needs: `wrong_nonce`, `wrong_audience`,
`wrong_issuer`, `expired`, `foreign_key` (signed by a key not in its JWKS)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from litestar import Litestar, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

__all__ = ["OidcProvider", "Person"]


@dataclass(frozen=True)
class Person:
    subject: str
    name: str
    groups: tuple[str, ...]


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str
    person: Person


@dataclass
class OidcProvider:
    """The provider's state; `app()` serves it. Set `issuer` to the URL it is served at."""

    client_id: str
    client_secret: str
    people: dict[str, Person]
    issuer: str = ""
    faults: set[str] = field(default_factory=set)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "idp-1"}))
    foreign: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "idp-1"}))
    codes: dict[str, _Grant] = field(default_factory=dict)
    token_requests: int = 0

    def app(self) -> Litestar:
        provider = self

        @get("/.well-known/openid-configuration", sync_to_thread=False)
        def discovery() -> dict[str, Any]:
            return {
                "issuer": provider.issuer,
                "authorization_endpoint": f"{provider.issuer}/authorize",
                "token_endpoint": f"{provider.issuer}/token",
                "jwks_uri": f"{provider.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }

        @get("/jwks", sync_to_thread=False)
        def jwks() -> dict[str, Any]:
            return KeySet([provider.key]).as_dict(private=False)

        @get("/authorize", sync_to_thread=False)
        def authorize(request: Request[Any, Any, Any]) -> Response[str]:
            query = dict(request.query_params)
            problem = provider._authorize_problem(query)
            if problem:
                return Response(problem, status_code=400, media_type="text/plain")
            hidden = "".join(
                f'<input type="hidden" name="{name}" value="{value}">'
                for name, value in query.items()
            )
            page = (
                "<!doctype html><title>Company sign-in</title><h1>Company sign-in</h1>"
                f'<form method="post" action="/authorize">{hidden}'
                '<label>User <input name="username" id="username"></label>'
                '<button type="submit" id="idp-sign-in">Sign in</button></form>'
            )
            return Response(page, media_type="text/html")

        @post("/authorize", status_code=303, sync_to_thread=False)
        def approve(
            data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
        ) -> Response[Any]:
            problem = provider._authorize_problem(data)
            person = provider.people.get(data.get("username", ""))
            if problem or person is None:
                return Response(problem or "unknown user", status_code=400, media_type="text/plain")
            code = secrets.token_urlsafe(24)
            provider.codes[code] = _Grant(
                client_id=data["client_id"],
                redirect_uri=data["redirect_uri"],
                nonce=data.get("nonce", ""),
                challenge=data["code_challenge"],
                person=person,
            )
            back = urlencode({"code": code, "state": data.get("state", "")})
            return Redirect(f"{data['redirect_uri']}?{back}", status_code=303)

        @post("/token", sync_to_thread=False)
        def token(
            request: Request[Any, Any, Any],
            data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
        ) -> Response[dict[str, Any]]:
            provider.token_requests += 1
            error = provider._token_problem(request.headers.get("authorization", ""), data)
            if error:
                return Response({"error": error}, status_code=400)
            grant = provider.codes.pop(data["code"])
            return Response(
                {
                    "access_token": secrets.token_urlsafe(24),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": provider._id_token(grant),
                }
            )

        return Litestar([discovery, jwks, authorize, approve, token], debug=False)

    def _authorize_problem(self, query: dict[str, str]) -> str | None:
        if query.get("response_type") != "code" or query.get("client_id") != self.client_id:
            return "unknown client or response type"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return "PKCE with S256 is required"
        if "openid" not in query.get("scope", "").split():
            return "the openid scope is required"
        return None

    def _token_problem(self, authorization: str, data: dict[str, str]) -> str | None:
        expected = (
            "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        )
        if not secrets.compare_digest(authorization, expected):
            return "invalid_client"
        grant = self.codes.get(data.get("code", ""))
        if data.get("grant_type") != "authorization_code" or grant is None:
            return "invalid_grant"
        if data.get("redirect_uri") != grant.redirect_uri:
            return "invalid_grant"
        verifier = data.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge.decode().rstrip("=") != grant.challenge:
            return "invalid_grant"
        return None

    def _id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://elsewhere.example" if "wrong_issuer" in self.faults else self.issuer,
            "aud": "another-client" if "wrong_audience" in self.faults else grant.client_id,
            "sub": grant.person.subject,
            "name": grant.person.name,
            "groups": list(grant.person.groups),
            "nonce": "not-the-nonce" if "wrong_nonce" in self.faults else grant.nonce,
            "iat": now - 3600 if "expired" in self.faults else now,
            "exp": now - 1800 if "expired" in self.faults else now + 300,
        }
        key = self.foreign if "foreign_key" in self.faults else self.key
        return jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, key)
