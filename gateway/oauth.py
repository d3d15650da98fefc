"""Our authorization server: the client credentials grant (RFC 6749 §4.4), its metadata
(RFC 8414), the JWKS, and `whoami` for a caller to see what its token carries.

The token endpoint answers errors in RFC 6749's JSON shape (`error`, `error_description`), as
OAuth client libraries expect, not as problem+json.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import msgspec
from litestar import Request, Response, get, post

from contracts.principal import Principal
from contracts.scopes import SCOPES
from gateway.auth import TokenIssuer
from gateway.clients import ClientRegistry
from gateway.keys import SIGNING_ALGORITHM, KeyStore
from gateway.settings import Settings

__all__ = ["OAUTH_ROUTES", "WhoAmI"]

FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenAnswer(msgspec.Struct, kw_only=True):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


class OAuthError(msgspec.Struct, kw_only=True):
    error: str
    error_description: str


class WhoAmI(msgspec.Struct, kw_only=True):
    client_id: str
    name: str
    scopes: list[str]
    tier: str
    entities: list[str] | None
    customer: str | None


class _TokenRequestError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@post(
    "/oauth/token",
    opt={"public": True, "rate_limit_group": "token"},
    summary="Get an access token (OAuth 2.0 client credentials)",
    tags=["auth"],
    status_code=200,
)
async def token_endpoint(
    request: Request[Any, Any, Any], issuer: TokenIssuer, clients: ClientRegistry
) -> Response[TokenAnswer | OAuthError]:
    try:
        answer = await _grant(request, issuer, clients)
    except _TokenRequestError as exc:
        headers = dict(NO_STORE)
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="erp-gateway"'
        return Response(
            OAuthError(error=exc.error, error_description=exc.description),
            status_code=exc.status,
            headers=headers,
        )
    return Response(answer, status_code=200, headers=NO_STORE)


async def _grant(
    request: Request[Any, Any, Any], issuer: TokenIssuer, clients: ClientRegistry
) -> TokenAnswer:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM:
        raise _TokenRequestError("invalid_request", f"the body must be {FORM}")
    form = _parse_form(await request.body())
    client_id, secret = _client_credentials(request.headers.get("authorization"), form)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise _TokenRequestError("invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        raise _TokenRequestError(
            "unsupported_grant_type", "only the client_credentials grant is supported"
        )
    client = await clients.authenticate(client_id, secret)
    if client is None:
        raise _TokenRequestError("invalid_client", "client authentication failed", status=401)
    requested = frozenset(form.get("scope", "").split()) or client.scopes
    refused = sorted(requested - client.scopes)
    if refused:
        raise _TokenRequestError(
            "invalid_scope", f"scope(s) not granted to this client: {' '.join(refused)}"
        )
    return TokenAnswer(
        access_token=issuer.issue(client, requested),
        token_type="Bearer",
        expires_in=issuer.ttl_seconds,
        scope=" ".join(sorted(requested)),
    )


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=False, strict_parsing=False)
    except UnicodeDecodeError:
        raise _TokenRequestError("invalid_request", "the body is not UTF-8") from None
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise _TokenRequestError("invalid_request", f"parameter(s) repeated: {', '.join(repeated)}")
    return {name: values[0] for name, values in parsed.items()}


def _client_credentials(authorization: str | None, form: dict[str, str]) -> tuple[str, str]:
    """client_secret_basic or client_secret_post, never both (RFC 6749 §2.3)."""
    in_form = "client_secret" in form
    if authorization:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise _TokenRequestError("invalid_client", "use HTTP Basic client auth", status=401)
        if in_form:
            raise _TokenRequestError("invalid_request", "use one client authentication method")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, or text that is not ASCII
            raise _TokenRequestError(
                "invalid_client", "malformed Basic credentials", status=401
            ) from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise _TokenRequestError("invalid_client", "malformed Basic credentials", status=401)
        return unquote_plus(client_id), unquote_plus(secret)
    if in_form and form.get("client_id"):
        return form["client_id"], form["client_secret"]
    raise _TokenRequestError("invalid_client", "client authentication is required", status=401)


@get(
    "/.well-known/jwks.json",
    opt={"public": True, "rate_limit": False},
    summary="The public keys that sign our access tokens",
    tags=["auth"],
    sync_to_thread=False,
)
def jwks(keys: KeyStore) -> Response[dict[str, Any]]:
    return Response(keys.jwks(), headers={"Cache-Control": "public, max-age=300"})


@get(
    "/.well-known/oauth-authorization-server",
    opt={"public": True, "rate_limit": False},
    summary="Authorization server metadata (RFC 8414)",
    tags=["auth"],
    sync_to_thread=False,
)
def authorization_server_metadata(settings: Settings) -> dict[str, Any]:
    base = settings.issuer
    return {
        "issuer": base,
        "token_endpoint": f"{base}/oauth/token",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        # No authorization endpoint: client credentials only, so no response types.
        "response_types_supported": [],
        "scopes_supported": sorted(SCOPES),
        "token_signing_alg_values_supported": [SIGNING_ALGORITHM],
        "service_documentation": f"{base}/docs",
    }


@get(
    "/gateway/v1/whoami",
    summary="The client behind this token and what it may do",
    tags=["auth"],
    sync_to_thread=False,
)
def whoami(request: Request[Principal, Any, Any]) -> WhoAmI:
    principal = request.user
    return WhoAmI(
        client_id=principal.client_id,
        name=principal.name,
        scopes=sorted(principal.scopes),
        tier=principal.tier,
        entities=sorted(principal.entities) if principal.entities is not None else None,
        customer=principal.customer,
    )


OAUTH_ROUTES = [token_endpoint, jwks, authorization_server_metadata, whoami]
