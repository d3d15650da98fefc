"""Finance's page of service credits awaiting a decision, and the approve/reject form: the
decision goes through the escalation service (`EscalationService.decide`, the one the process
API's approve and reject routes call), credited to the signed-in person, and is refused
without `finance:approve`, the sign-in's CSRF token or a reason."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from contracts.errors import FieldError, Forbidden, NotFound, ValidationFailed
from contracts.money import Money, format_decimal
from experience_apis.console._reads import FlowFilter
from experience_apis.console._signin import APPROVE_SCOPE, Operator, check_csrf
from experience_apis.console._web import Console, ConsoleDep, ReaderDep, flow_url, html
from process_apis.escalation.credit import FLOW_TYPE, CreditDecision
from process_apis.escalation.routes import EscalationService

__all__ = ["CREDIT_PAGES"]

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
_OPT: dict[str, Any] = {"public": True, "rate_limit_group": "console"}


@get("/credits", opt=_OPT, include_in_schema=False)
async def credits_page(
    request: Request[Any, Any, Any], console: ConsoleDep, flow_reader: ReaderDep
) -> Response[str]:
    operator = await _approver(request, console)
    service = _service(console)
    waiting = await console.reads.flows(
        FlowFilter(type=FLOW_TYPE, status="waiting_approval"),
        operator.principal.entities,
        now=console.clock(),
    )
    items = []
    for row in waiting:
        flow = await flow_reader.get(row.id, principal=operator.principal)
        if flow is None:
            continue
        credit = await service.credit(flow)
        items.append(
            {
                "credit": credit,
                "amount": _money(credit.amount, credit.currency),
                "monthly": _money(credit.monthly_recurring_amount, credit.currency),
            }
        )
    return html(console, "credits.html", request=request, operator=operator, credits=items)


@post("/credits/{credit_id:str}/decide", opt=_OPT, include_in_schema=False, status_code=303)
async def decide_credit(
    request: Request[Any, Any, Any],
    credit_id: str,
    console: ConsoleDep,
    flow_reader: ReaderDep,
    data: Form,
) -> Response[Any]:
    operator = await console.operator(request)
    check_csrf(operator, data)
    _require_approver(operator)
    decision = data.get("decision", "")
    reason = data.get("reason", "").strip()[:2000]
    problems = []
    if decision not in ("approved", "rejected"):
        problems.append(FieldError(pointer="/decision", detail="must be approved or rejected"))
    if not reason:
        problems.append(FieldError(pointer="/reason", detail="is required"))
    if problems:
        raise ValidationFailed("The decision cannot be sent", errors=problems)
    flow = await flow_reader.get(credit_id, principal=operator.principal)
    if flow is None or flow.type != FLOW_TYPE:
        raise NotFound(f"No service credit {credit_id}")
    principal = operator.principal
    await _service(console).decide(
        flow,
        CreditDecision(
            decision="approved" if decision == "approved" else "rejected",
            reason=reason,
            actor=principal.actor_name,
        ),
        principal=principal,
    )
    request.set_session({**request.session, "flash": f"Service credit {decision}: {credit_id}."})
    return Redirect(flow_url(flow.id), status_code=303)


CREDIT_PAGES = [credits_page, decide_credit]


async def _approver(request: Request[Any, Any, Any], console: Console) -> Operator:
    operator = await console.operator(request)
    _require_approver(operator)
    return operator


def _require_approver(operator: Operator) -> None:
    if not operator.may_approve:
        raise Forbidden(
            "Deciding service credits needs the finance:approve scope",
            required_scopes=[APPROVE_SCOPE],
        )


def _service(console: Console) -> EscalationService:
    if console.credits is None:
        raise NotFound("Service credits are not wired in this gateway")
    return console.credits


def _money(amount: int | None, currency: str | None) -> str:
    if amount is None or currency is None:
        return "computing"
    return f"{format_decimal(Money(amount=amount, currency=currency))} {currency}"
