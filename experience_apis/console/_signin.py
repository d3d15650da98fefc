"""Who is using the console: a person signed in through the company's OpenID Connect
provider (`_oidc`; the scopes and legal entities their groups grant, fixed for the sign-in),
or, in sandbox mode only, an API client signed in with its id and secret (its scopes read
again from the client registry on each request, so a revoked client is out at once). Either
way: a signed and encrypted sign-in cookie (HttpOnly, SameSite=Strict, path `/ops`), a CSRF token
per sign-in checked on every form, and the sign-in kept on the server (`ConsoleSessions`):
signing out ends it for every copy of the cookie. Scopes: `ops:read` to look, `ops:replay` to
act on exceptions, `finance:approve` to decide service credits, `audit:read` for the trail.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import msgspec
from litestar import Request
from litestar.middleware.session.base import SessionMiddleware
from litestar.middleware.session.client_side import ClientSideSessionBackend, CookieBackendConfig
from litestar.types import ASGIApp

from contracts.principal import Principal
from experience_apis.console._oidc import Person, person_principal
from experience_apis.console._sessions import ConsoleSessions

__all__ = [
    "ACT_SCOPE",
    "READ_SCOPE",
    "SIGN_IN_SECONDS",
    "ClientAuthenticator",
    "ConsoleClient",
    "CsrfRejected",
    "Operator",
    "SignInRequired",
    "check_csrf",
    "console_secret",
    "cookie_config",
    "cookie_middleware",
    "current_operator",
    "start_person_sign_in",
    "start_sign_in",
]

READ_SCOPE = "ops:read"
ACT_SCOPE = "ops:replay"
APPROVE_SCOPE = "finance:approve"
AUDIT_SCOPE = "audit:read"
SIGN_IN_SECONDS = 8 * 3600
COOKIE = "erpgw_console"
SECRET_FILE = "console-cookie.key"


@runtime_checkable
class ConsoleClient(Protocol):
    """An API client as the registry knows it (`gateway.clients.ApiClient` fits)."""

    @property
    def client_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def scopes(self) -> frozenset[str]: ...

    @property
    def entities(self) -> frozenset[str] | None: ...

    @property
    def active(self) -> bool: ...


class ClientAuthenticator(Protocol):
    """Checks client credentials (`gateway.clients.ClientRegistry` fits)."""

    async def authenticate(self, client_id: str, secret: str) -> ConsoleClient | None:
        """The active client with this id and secret, or None."""
        ...

    async def get(self, client_id: str) -> ConsoleClient | None:
        """The client as it is now (revoked or not), or None."""
        ...


class SignInRequired(Exception):
    """Nobody is signed in: the browser is sent to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in required")
        self.next_path = next_path


class CsrfRejected(Exception):
    """A form came without the CSRF token of this sign-in."""


@dataclass(frozen=True)
class Operator:
    """The signed-in client, as the process layer's calls need it."""

    principal: Principal
    csrf_token: str
    session_id: str
    """The server-side sign-in this operator's cookie names (ended at sign-out)."""

    @property
    def may_act(self) -> bool:
        return self.principal.has_scopes(ACT_SCOPE)

    @property
    def may_approve(self) -> bool:
        return self.principal.has_scopes(APPROVE_SCOPE)

    @property
    def may_audit(self) -> bool:
        return self.principal.has_scopes(AUDIT_SCOPE)


def cookie_config(secret: bytes, *, secure: bool) -> CookieBackendConfig:
    """The console's cookie: encrypted and authenticated (AES-GCM) with `secret`."""
    return CookieBackendConfig(
        secret=secret,
        key=COOKIE,
        path="/ops",
        max_age=SIGN_IN_SECONDS,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def cookie_middleware(secret: bytes, *, secure: bool) -> Callable[[ASGIApp], ASGIApp]:
    """The cookie middleware as a factory: Litestar deep-copies routers when it mounts
    them, and a built backend holds a cipher that cannot be copied."""
    config = cookie_config(secret, secure=secure)

    def wrap(app: ASGIApp) -> ASGIApp:
        return SessionMiddleware(app=app, backend=ClientSideSessionBackend(config=config))

    return wrap


def console_secret(var_dir: Path, configured: bytes | None = None) -> bytes:
    """The cookie key: the configured one (32 bytes; set it when replicas do not share
    `var/`), else `<var_dir>/console-cookie.key`, made on first use (mode 0600)."""
    if configured is not None:
        if len(configured) != 32:
            raise ValueError("the console cookie key must be 32 bytes")
        return configured
    path = var_dir / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when several processes start at once, one writes and the others read.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    return _read_key(path)


def start_sign_in(
    request: Request[Any, Any, Any], client: ConsoleClient, session_id: str
) -> None:
    request.set_session(
        {
            "client_id": client.client_id,
            "sid": session_id,
            "csrf": secrets.token_urlsafe(32),
            "since": int(time.time()),
        }
    )


def start_person_sign_in(request: Request[Any, Any, Any], person: Person, session_id: str) -> None:
    request.set_session(
        {
            "person": msgspec.to_builtins(person),
            "sid": session_id,
            "csrf": secrets.token_urlsafe(32),
            "since": int(time.time()),
        }
    )


async def current_operator(
    request: Request[Any, Any, Any],
    authenticator: ClientAuthenticator,
    sessions: ConsoleSessions,
    *,
    clients_allowed: bool = True,
) -> Operator:
    """The signed-in operator; SignInRequired when there is none (or the sign-in is over).
    A client's sign-in counts only where `clients_allowed` (sandbox mode)."""
    stored = request.session if "session" in request.scope else {}
    if "person" in stored:
        return await _person_operator(request, stored, sessions)
    if not clients_allowed:
        raise SignInRequired(_here(request))
    client_id = stored.get("client_id")
    since = stored.get("since")
    session_id = stored.get("sid")
    if (
        not isinstance(client_id, str)
        or not isinstance(since, int)
        or not isinstance(session_id, str)
    ):
        raise SignInRequired(_here(request))
    if time.time() - since > SIGN_IN_SECONDS or not await sessions.active(session_id, client_id):
        request.clear_session()
        raise SignInRequired(_here(request))
    client = await authenticator.get(client_id)
    if client is None or not client.active or READ_SCOPE not in client.scopes:
        request.clear_session()
        raise SignInRequired(_here(request))
    principal = Principal(
        client_id=client.client_id,
        name=client.name,
        scopes=frozenset(client.scopes),
        entities=client.entities,
    )
    return Operator(
        principal=principal, csrf_token=str(stored.get("csrf", "")), session_id=session_id
    )


async def _person_operator(
    request: Request[Any, Any, Any], stored: Mapping[str, Any], sessions: ConsoleSessions
) -> Operator:
    try:
        person = msgspec.convert(stored["person"], Person)
    except msgspec.ValidationError:
        request.clear_session()
        raise SignInRequired(_here(request)) from None
    principal = person_principal(person)
    since, session_id = stored.get("since"), stored.get("sid")
    if (
        not isinstance(since, int)
        or not isinstance(session_id, str)
        or time.time() - since > SIGN_IN_SECONDS
        or not await sessions.active(session_id, principal.client_id)
    ):
        request.clear_session()
        raise SignInRequired(_here(request))
    return Operator(
        principal=principal, csrf_token=str(stored.get("csrf", "")), session_id=session_id
    )


def check_csrf(operator: Operator, form: Mapping[str, Any]) -> None:
    given = form.get("csrf_token")
    if not isinstance(given, str) or not operator.csrf_token:
        raise CsrfRejected()
    if not hmac.compare_digest(given.encode(), operator.csrf_token.encode()):
        raise CsrfRejected()


def _here(request: Request[Any, Any, Any]) -> str:
    path = request.url.path
    if request.method != "GET":
        return "/ops"
    query = request.url.query
    return f"{path}?{query}" if query else path


def _read_key(path: Path) -> bytes:
    for _ in range(50):
        key = path.read_bytes()
        if len(key) == 32:
            return key
        # Another process created the file a moment ago and is still writing it.
        time.sleep(0.01)
    raise ValueError(f"{path} does not hold a 32-byte key")
