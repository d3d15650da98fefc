"""The console's plumbing: the `console` dependency (who may sign in, what pages read, how
they render), HTML responses with strict security headers, and the HTML answers to errors
(the console is the one part of the gateway that does not answer problem+json)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import structlog
from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import SkipValidation
from litestar.response import Redirect

from contracts import errors
from contracts.audit import AuditEvent, AuditTrail
from experience_apis.console._oidc import OidcSignIn
from experience_apis.console._reads import ConsoleReads
from experience_apis.console._sessions import ConsoleSessions
from experience_apis.console._signin import (
    ClientAuthenticator,
    CsrfRejected,
    Operator,
    SignInRequired,
    current_operator,
)
from experience_apis.console._vendor_links import VendorLinks
from process_apis.engine.operations import Operations
from process_apis.engine.queue import ExceptionQueue
from process_apis.engine.records import FlowReader
from process_apis.escalation.routes import EscalationService

__all__ = [
    "STATIC_DIR",
    "Console",
    "ConsoleDep",
    "OperationsDep",
    "QueueDep",
    "ReaderDep",
    "exception_handlers",
    "flow_url",
    "html",
    "safe_next",
]

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    # Only our own script and styles; inline SVG needs neither.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_STATUS: tuple[tuple[type[errors.GatewayError], int], ...] = (
    (errors.ValidationFailed, 422),
    (errors.InvalidRequest, 400),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.Gone, 410),
    (errors.PayloadTooLarge, 413),
    (errors.RateLimited, 429),
    (errors.RequestRejected, 400),
    (errors.ServiceUnavailable, 503),
    (errors.UpstreamUnavailable, 503),
    (errors.UpstreamError, 502),
)
"""First match wins; a refusal of the caller's request not named here is still a 400."""

log = structlog.get_logger("experience_apis.console")


@dataclass
class Console:
    """What every console page needs, provided as the `console` dependency."""

    authenticator: ClientAuthenticator
    reads: ConsoleReads
    sessions: ConsoleSessions
    links: VendorLinks = field(default_factory=VendorLinks)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    templates: jinja2.Environment = field(default_factory=lambda: _environment())
    audit: AuditTrail | None = None
    """Where sign-ins and sign-outs are recorded, and what the audit page lists."""
    oidc: OidcSignIn | None = None
    """People's sign-in at the company's identity provider, when configured."""
    clients_allowed: bool = True
    """Whether an API client may sign in with its id and secret (sandbox mode only)."""
    pending_key: bytes = b""
    """The 32-byte key sealing a pending OpenID Connect sign-in in its cookie."""
    credits: EscalationService | None = None
    """Service credits awaiting finance's decision, when escalation is wired."""
    secure_cookies: bool = False

    async def operator(self, request: Request[Any, Any, Any]) -> Operator:
        return await current_operator(
            request, self.authenticator, self.sessions, clients_allowed=self.clients_allowed
        )

    async def record(self, event: AuditEvent) -> None:
        if self.audit is not None:
            await self.audit.record(event)


# Taken as provided (no per-request validation of the objects the app injects).
ConsoleDep = NamedDependency[SkipValidation[Console]]
ReaderDep = NamedDependency[SkipValidation[FlowReader]]
QueueDep = NamedDependency[SkipValidation[ExceptionQueue]]
OperationsDep = NamedDependency[SkipValidation[Operations]]


def html(
    console: Console,
    template: str,
    *,
    status: int = 200,
    request: Request[Any, Any, Any] | None = None,
    **context: Any,
) -> Response[str]:
    """A rendered page with the console's security headers; a flash message (the outcome of
    the operator's last action, kept in the cookie) is shown once."""
    flash = None
    if request is not None and "session" in request.scope and request.session.get("flash"):
        stored = dict(request.session)
        flash = stored.pop("flash")
        request.set_session(stored)
    body = console.templates.get_template(template).render(flash=flash, **context)
    return Response(body, status_code=status, media_type="text/html", headers=SECURITY_HEADERS)


def safe_next(value: str | None) -> str:
    """Only a path inside the console (no open redirect to another site)."""
    if value and value.startswith("/ops") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ops"


def flow_url(flow_id: str) -> str:
    return f"/ops/flows/{quote(flow_id, safe=':')}"


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["flow_url"] = flow_url
    environment.filters["when"] = _when
    return environment


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _to_sign_in(request: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    return Redirect(f"/ops/sign-in?next={quote(exc.next_path, safe='/')}", status_code=303)


def _error_page(
    environment: jinja2.Environment,
) -> Callable[[Request[Any, Any, Any], Exception], Response[str]]:
    def render(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
        status, message = _describe(exc)
        if status >= 500 and not isinstance(exc, errors.GatewayError | HTTPException):
            log.error("console_error", path=request.url.path, exc_info=exc)
        body = environment.get_template("error.html").render(
            status=status, message=message, operator=None, flash=None
        )
        return Response(
            body, status_code=status, media_type="text/html", headers=_headers_of(request, exc)
        )

    return render


def _headers_of(request: Request[Any, Any, Any], exc: Exception) -> dict[str, str]:
    """The security headers, plus what the refusal tells the client: when to retry (a 429
    or 503) and the RateLimit fields the rate-limit policy left on the request's state."""
    headers = dict(SECURITY_HEADERS)
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float):
        headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
    state = request.scope.get("state", {})
    for name, value in state.get("rate_limit_headers", ()):
        headers.setdefault(name, value)
    if isinstance(exc, HTTPException) and exc.headers:
        for name, value in exc.headers.items():
            headers.setdefault(name, value)
    return headers


def _describe(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, CsrfRejected):
        return 403, "This form has expired or did not come from the console. Reload the page."
    if isinstance(exc, errors.GatewayError):
        for kind, status in _STATUS:
            if isinstance(exc, kind):
                return status, exc.message
        return 500, "The console could not complete the request."
    if isinstance(exc, HTTPException):
        detail = exc.detail if exc.status_code < 500 else "The console failed."
        return exc.status_code, detail
    return 500, "The console could not complete the request."


def exception_handlers(console: Console) -> Mapping[type[Exception] | int, Any]:
    """Router-level handlers of the console (they win over the app's problem+json ones)."""
    page = _error_page(console.templates)
    return {
        SignInRequired: _to_sign_in,
        CsrfRejected: page,
        errors.GatewayError: page,
        HTTPException: page,
        Exception: page,
    }
