"""The console's forms: sign-in and sign-out, and the operator's actions on an exception
(assign, retry, edit-and-retry, resolve), each taken through the process layer's operations
service (audited there, as the process API's) and refused without `ops:replay` or the
sign-in's CSRF token."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect

from contracts.audit import AuditActor, AuditEvent, actor_of, gateway_target
from contracts.errors import FieldError, Forbidden, InvalidRequest, NotFound, ValidationFailed
from contracts.json_input import decode_json_input
from experience_apis.console._signin import (
    READ_SCOPE,
    CsrfRejected,
    Operator,
    check_csrf,
    start_sign_in,
)
from experience_apis.console._web import (
    Console,
    ConsoleDep,
    OperationsDep,
    QueueDep,
    flow_url,
    html,
    safe_next,
)
from process_apis.exceptions import ExceptionEntry

__all__ = ["ACTIONS"]

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
Next = Annotated[str | None, QueryParameter(name="next", max_length=500)]
_OPT: dict[str, Any] = {"public": True, "rate_limit_group": "console"}


@get("/sign-in", opt=_OPT, include_in_schema=False)
async def sign_in_page(
    request: Request[Any, Any, Any], console: ConsoleDep, next_path: Next = None
) -> Response[str]:
    # A token before there is an operator: a sign-in form posted from elsewhere is refused.
    token = secrets.token_urlsafe(32)
    request.set_session({"csrf": token})
    return html(
        console,
        "signin.html",
        operator=None,
        oidc=console.oidc is not None,
        clients_allowed=console.clients_allowed,
        csrf_token=token,
        next_path=safe_next(next_path),
        error=None,
    )


@post("/sign-in", opt=_OPT, include_in_schema=False, status_code=303)
async def sign_in(
    request: Request[Any, Any, Any], console: ConsoleDep, data: Form
) -> Response[Any]:
    if not console.clients_allowed:
        raise NotFound("Clients sign in to the console in sandbox mode only")
    expected = request.session.get("csrf") if "session" in request.scope else None
    given = data.get("csrf_token", "")
    if not isinstance(expected, str) or not secrets.compare_digest(given, expected):
        raise CsrfRejected()
    client = await console.authenticator.authenticate(
        data.get("client_id", "").strip(), data.get("client_secret", "")
    )
    next_path = safe_next(data.get("next"))
    if client is None or READ_SCOPE not in client.scopes:
        message = (
            "Unknown client or wrong secret."
            if client is None
            else f"This client lacks the {READ_SCOPE} scope the console needs."
        )
        return html(
            console,
            "signin.html",
            status=401 if client is None else 403,
            operator=None,
            oidc=console.oidc is not None,
            clients_allowed=True,
            csrf_token=expected,
            next_path=next_path,
            error=message,
        )
    start_sign_in(request, client, await console.sessions.open(client.client_id))
    await console.record(
        AuditEvent(
            action="console.sign_in",
            actor=AuditActor(kind="client", id=client.client_id, name=client.name),
            target=gateway_target("console"),
            detail={"method": "client_credentials"},
        )
    )
    return Redirect(next_path, status_code=303)


@post("/sign-out", opt=_OPT, include_in_schema=False, status_code=303)
async def sign_out(
    request: Request[Any, Any, Any], console: ConsoleDep, data: Form
) -> Response[Any]:
    operator = await console.operator(request)
    check_csrf(operator, data)
    await console.sessions.close(operator.session_id)
    request.clear_session()
    await console.record(
        AuditEvent(
            action="console.sign_out",
            actor=actor_of(operator.principal),
            target=gateway_target("console"),
        )
    )
    return Redirect("/ops/sign-in", status_code=303)


@post("/exceptions/{exception_id:str}/assign", opt=_OPT, include_in_schema=False, status_code=303)
async def assign(
    request: Request[Any, Any, Any],
    exception_id: str,
    console: ConsoleDep,
    operations: OperationsDep,
    data: Form,
) -> Response[Any]:
    operator = await _actor(request, console, data)
    assignee = data.get("assignee", "").strip() or operator.principal.actor_name
    entry = await operations.assign(
        exception_id, assignee=assignee[:128], principal=operator.principal
    )
    _flash(request, f"Assigned to {assignee}.")
    return Redirect(_back(data, entry), status_code=303)


@post("/exceptions/{exception_id:str}/retry", opt=_OPT, include_in_schema=False, status_code=303)
async def retry(
    request: Request[Any, Any, Any],
    exception_id: str,
    console: ConsoleDep,
    exception_queue: QueueDep,
    operations: OperationsDep,
    data: Form,
) -> Response[Any]:
    operator = await _actor(request, console, data)
    principal = operator.principal
    raw = data.get("input", "").strip()
    try:
        entry = await operations.retry(
            exception_id, principal=principal, edited_input=_json(raw) if raw else None
        )
    except ValidationFailed as exc:
        return html(
            console,
            "exception.html",
            status=422,
            request=request,
            operator=operator,
            entry=await exception_queue.get(exception_id, principal=principal),
            input_json=raw,
            errors=[f"{error.pointer}: {error.detail}" for error in exc.errors] or [exc.message],
        )
    note = " with the edited input." if raw else "."
    _flash(request, "Retry sent: the failed step runs again" + note)
    return Redirect(flow_url(entry.flow_id), status_code=303)


@post("/exceptions/{exception_id:str}/resolve", opt=_OPT, include_in_schema=False, status_code=303)
async def resolve(
    request: Request[Any, Any, Any],
    exception_id: str,
    console: ConsoleDep,
    operations: OperationsDep,
    data: Form,
) -> Response[Any]:
    operator = await _actor(request, console, data)
    reason = data.get("reason", "").strip()
    if not reason:
        raise ValidationFailed(
            "A reason is required to resolve",
            errors=[FieldError(pointer="/reason", detail="blank")],
        )
    entry = await operations.resolve(
        exception_id, reason=reason[:2000], principal=operator.principal
    )
    _flash(request, "Resolved: the flow ends cancelled.")
    return Redirect(flow_url(entry.flow_id), status_code=303)


ACTIONS = [sign_in_page, sign_in, sign_out, assign, retry, resolve]


async def _actor(
    request: Request[Any, Any, Any], console: Console, data: dict[str, str]
) -> Operator:
    """The operator behind a form, checked in this order: signed in, the form's CSRF token,
    the `ops:replay` scope."""
    operator = await console.operator(request)
    check_csrf(operator, data)
    if not operator.may_act:
        raise Forbidden(
            "Acting on exceptions needs the ops:replay scope", required_scopes=["ops:replay"]
        )
    return operator


def _json(raw: str) -> Any:
    try:
        return decode_json_input(raw.encode(), what="edited input")
    except InvalidRequest as exc:
        raise ValidationFailed(
            "The edited input is not JSON",
            errors=[FieldError(pointer="/input", detail=exc.message)],
        ) from exc


def _flash(request: Request[Any, Any, Any], message: str) -> None:
    request.set_session({**request.session, "flash": message})


def _back(data: dict[str, str], entry: ExceptionEntry) -> str:
    if data.get("back") == "exception":
        return f"/ops/exceptions/{quote(entry.id, safe='')}"
    return flow_url(entry.flow_id)


