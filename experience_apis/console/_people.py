"""The console's OpenID Connect sign-in routes: `/ops/sign-in/oidc` sends the browser to the
company's identity provider, `/ops/oidc/callback` takes it back and signs the person in.

The pending sign-in (state, nonce, PKCE verifier, where to go next) waits in its own cookie,
sealed with AES-GCM, path `/ops/oidc`, SameSite=Lax: the provider sends the browser back from
its own site, and a Strict cookie would not come along. The sign-in cookie itself stays
Strict, so the callback answers with a page that moves on from this site (a same-site
navigation carries it).
"""

from __future__ import annotations

import base64
import secrets
from typing import Annotated, Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from litestar import Request, Response, get
from litestar.datastructures import Cookie
from litestar.params import QueryParameter
from litestar.response import Redirect

from contracts.audit import AuditEvent, actor_of, gateway_target
from experience_apis.console._oidc import (
    SIGN_IN_WINDOW_SECONDS,
    OidcRefused,
    PendingSignIn,
    person_principal,
)
from experience_apis.console._signin import start_person_sign_in
from experience_apis.console._web import Console, ConsoleDep, html, safe_next

__all__ = ["PENDING_COOKIE", "PEOPLE"]

PENDING_COOKIE = "erpgw_console_oidc"
_PENDING_PATH = "/ops/oidc"
_AAD = b"erp-gateway console oidc pending sign-in"
_OPT: dict[str, Any] = {"public": True, "rate_limit_group": "console"}
Param = Annotated[str | None, QueryParameter(max_length=2048)]
StateParam = Annotated[str | None, QueryParameter(name="state", max_length=2048)]
"""`state` is a name Litestar keeps for the app's state."""
Next = Annotated[str | None, QueryParameter(name="next", max_length=500)]


@get("/sign-in/oidc", opt=_OPT, include_in_schema=False)
async def begin_oidc(console: ConsoleDep, next_path: Next = None) -> Response[Any]:
    if console.oidc is None:
        return _refused(console, "Company sign-in is not configured here.", status=404)
    try:
        url, pending = await console.oidc.begin(safe_next(next_path))
    except OidcRefused as exc:
        return _refused(console, str(exc), status=502)
    response: Response[Any] = Redirect(url, status_code=303)
    response.set_cookie(_pending_cookie(console, _seal(console.pending_key, pending)))
    return response


@get("/oidc/callback", opt=_OPT, include_in_schema=False)
async def oidc_callback(
    request: Request[Any, Any, Any],
    console: ConsoleDep,
    code: Param = None,
    returned_state: StateParam = None,
    error: Param = None,
) -> Response[Any]:
    if console.oidc is None:
        return _refused(console, "Company sign-in is not configured here.", status=404)
    pending = _open(console.pending_key, request.cookies.get(PENDING_COOKIE))
    if pending is None:
        return _refused(console, "This sign-in did not start in this browser. Sign in again.")
    try:
        person = await console.oidc.finish(
            code=code, state=returned_state, error=error, pending=pending
        )
    except OidcRefused as exc:
        return _refused(console, str(exc), forget=True)
    principal = person_principal(person)
    start_person_sign_in(request, person, await console.sessions.open(principal.client_id))
    await console.record(
        AuditEvent(
            action="console.sign_in",
            actor=actor_of(principal),
            target=gateway_target("console"),
            detail={
                "method": "oidc",
                "scopes": sorted(person.scopes),
                "entities": sorted(person.entities) if person.entities is not None else None,
            },
        )
    )
    response = html(
        console, "signed_in.html", operator=None, name=person.name, next_path=pending.next_path
    )
    response.delete_cookie(PENDING_COOKIE, path=_PENDING_PATH)
    return response


PEOPLE = [begin_oidc, oidc_callback]


def _refused(
    console: Console, message: str, *, status: int = 401, forget: bool = False
) -> Response[str]:
    response = html(
        console,
        "signin.html",
        status=status,
        operator=None,
        oidc=console.oidc is not None,
        clients_allowed=False,
        csrf_token="",
        next_path="/ops",
        error=message,
    )
    if forget:
        response.delete_cookie(PENDING_COOKIE, path=_PENDING_PATH)
    return response


def _pending_cookie(console: Console, value: str) -> Cookie:
    return Cookie(
        key=PENDING_COOKIE,
        value=value,
        path=_PENDING_PATH,
        max_age=SIGN_IN_WINDOW_SECONDS,
        httponly=True,
        samesite="lax",
        secure=console.secure_cookies,
    )


def _seal(key: bytes, pending: PendingSignIn) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, msgspec.json.encode(pending), _AAD)
    return base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")


def _open(key: bytes, value: str | None) -> PendingSignIn | None:
    """The pending sign-in sealed in `value`; None for anything this console did not seal."""
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], _AAD)
        return msgspec.json.decode(plain, type=PendingSignIn)
    except (ValueError, InvalidTag, msgspec.DecodeError):
        return None
