"""Routes of the emulated Zendesk for tickets, their comments and metrics."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import msgspec
from litestar import Request, Response, get, post, put
from litestar.params import FromPath

from sandbox.zendesk.context import JSON, Call, json_response
from sandbox.zendesk.errors import idempotency_mismatch
from sandbox.zendesk.records import (
    Comment,
    IdempotentResponse,
    Ticket,
)
from sandbox.zendesk.render import (
    audit_json,
    comment_json,
    metrics_json,
    organization_json,
    ticket_json,
    user_json,
)

__all__ = ["IDEMPOTENCY_WINDOW", "TICKET_ROUTES"]

AnyRequest = Request[Any, Any, Any]
IDEMPOTENCY_WINDOW = timedelta(hours=2)
"""How long Zendesk remembers an Idempotency-Key on ticket creation."""
_LOOKUP_HEADER = "x-idempotency-lookup"


def _ticket_id(ticket: Ticket) -> int:
    return ticket.id


@get("/api/v2/tickets")
async def list_tickets(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    external_id = call.query("external_id")
    tickets = sorted(
        (t for t in call.account.desk.tickets.values()
         if external_id is None or t.external_id == external_id),
        key=_ticket_id,
    )
    return _ticket_page(call, tickets)


@get("/api/v2/organizations/{organization_id:int}/tickets")
async def organization_tickets(
    request: AnyRequest, organization_id: FromPath[int]
) -> Response[bytes]:
    call = Call(request)
    call.account.directory.organization(organization_id)
    tickets = sorted(
        (t for t in call.account.desk.tickets.values() if t.organization_id == organization_id),
        key=_ticket_id,
    )
    return _ticket_page(call, tickets)


@post("/api/v2/tickets")
async def create_ticket(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    key = request.headers.get("idempotency-key")
    if not key:
        return await _create(call)
    desk = call.account.desk
    now = desk.directory.clock()
    for stale in [k for k, r in desk.idempotency.items() if now - r.stored_at > IDEMPOTENCY_WINDOW]:
        del desk.idempotency[stale]
    fingerprint = _fingerprint(await request.body())
    if (known := desk.idempotency.get(key)) is not None:
        if known.fingerprint != fingerprint:
            raise idempotency_mismatch()
        return Response(content=known.body, status_code=known.status, media_type=JSON,
                        headers={**dict(known.headers), _LOOKUP_HEADER: "hit"})
    response = await _create(call)
    desk.idempotency[key] = IdempotentResponse(
        fingerprint=fingerprint, status=response.status_code or 201, body=bytes(response.content),
        headers=tuple(response.headers.items()), stored_at=now,
    )
    response.headers[_LOOKUP_HEADER] = "miss"
    return response


@get("/api/v2/tickets/{ticket_id:int}")
async def show_ticket(request: AnyRequest, ticket_id: FromPath[int]) -> Response[bytes]:
    call = Call(request)
    ticket = call.account.desk.ticket(ticket_id)
    includes = call.includes()
    return json_response({"ticket": _render(call, ticket, includes),
                          **_sideloads(call, [ticket], includes)})


@put("/api/v2/tickets/{ticket_id:int}")
async def update_ticket(request: AnyRequest, ticket_id: FromPath[int]) -> Response[bytes]:
    call = Call(request)
    desk = call.account.desk
    ticket = desk.ticket(ticket_id)
    actor = call.actor()
    payload = await call.body("ticket")
    comment, events = desk.update(ticket, payload, actor=actor)
    audit = audit_json(ticket, events, comment, audit_id=desk.directory.new_id(),
                       author_id=actor.id, at=ticket.updated_at)
    return json_response({"ticket": ticket_json(call.base, ticket), "audit": audit})


@get("/api/v2/tickets/show_many")
async def show_many_tickets(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    tickets = call.account.desk.tickets
    found = [tickets[i] for i in call.ids("ids") if i in tickets]
    includes = call.includes()
    return json_response({"tickets": [_render(call, t, includes) for t in found],
                          **_sideloads(call, found, includes)})


@get("/api/v2/tickets/{ticket_id:int}/comments")
async def list_comments(request: AnyRequest, ticket_id: FromPath[int]) -> Response[bytes]:
    call = Call(request)
    ticket = call.account.desk.ticket(ticket_id)
    # Comments page in the order they were written, which their ids do not follow.
    ordered = list(enumerate(ticket.comments))
    return call.page("comments", ordered, key=_position,
                     render=lambda pair: comment_json(pair[1], ticket.channel))


@get("/api/v2/tickets/{ticket_id:int}/metrics")
async def ticket_metrics(request: AnyRequest, ticket_id: FromPath[int]) -> Response[bytes]:
    call = Call(request)
    ticket = call.account.desk.ticket(ticket_id)
    return json_response({"ticket_metric": metrics_json(call.base, ticket,
                                                        call.account.directory.users)})


@get("/api/v2/ticket_metrics")
async def list_ticket_metrics(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    tickets = sorted(call.account.desk.tickets.values(), key=_ticket_id)
    users = call.account.directory.users
    return call.page("ticket_metrics", tickets, key=_ticket_id,
                     render=lambda t: metrics_json(call.base, t, users))


@get("/api/v2/ticket_metrics/{ticket_metric_id:int}")
async def show_ticket_metric(
    request: AnyRequest, ticket_metric_id: FromPath[int]
) -> Response[bytes]:
    call = Call(request)
    # The sandbox gives each ticket's metric set the ticket's own id.
    ticket = call.account.desk.ticket(ticket_metric_id)
    return json_response({"ticket_metric": metrics_json(call.base, ticket,
                                                        call.account.directory.users)})


def _ticket_page(call: Call, tickets: list[Ticket]) -> Response[bytes]:
    includes = call.includes()
    return call.page("tickets", tickets, key=_ticket_id,
                     render=lambda t: _render(call, t, includes),
                     sideload=lambda page: _sideloads(call, page, includes))


def _render(call: Call, ticket: Ticket, includes: set[str]) -> dict[str, Any]:
    body = ticket_json(call.base, ticket)
    if "metric_sets" in includes:
        body["metric_set"] = metrics_json(call.base, ticket, call.account.directory.users)
    return body


def _sideloads(call: Call, tickets: list[Ticket], includes: set[str]) -> dict[str, Any]:
    """Zendesk's sideloading: the users and organizations the tickets refer to, once each."""
    directory = call.account.directory
    extra: dict[str, Any] = {}
    if "users" in includes:
        user_ids = sorted({uid for t in tickets for uid in
                           (t.requester_id, t.submitter_id, t.assignee_id) if uid is not None})
        extra["users"] = [user_json(call.base, directory.users[uid]) for uid in user_ids
                          if uid in directory.users]
    if "organizations" in includes:
        org_ids = sorted({t.organization_id for t in tickets if t.organization_id is not None})
        extra["organizations"] = [organization_json(call.base, directory.organizations[oid])
                                  for oid in org_ids if oid in directory.organizations]
    return extra


async def _create(call: Call) -> Response[bytes]:
    ticket = call.account.desk.create(await call.body("ticket"), actor=call.actor())
    return json_response(
        {"ticket": ticket_json(call.base, ticket), "audit": audit_json(
            ticket, [], ticket.comments[0], audit_id=ticket.comments[0].audit_id,
            author_id=ticket.submitter_id, at=ticket.created_at)},
        status=201,
        headers={"Location": f"{call.base}/api/v2/tickets/{ticket.id}.json"},
    )


def _position(pair: tuple[int, Comment]) -> int:
    return pair[0]


def _fingerprint(body: bytes) -> str:
    """The body's meaning, not its bytes: key order and whitespace do not make it differ."""
    try:
        canonical = msgspec.json.encode(msgspec.json.decode(body), order="sorted")
    except msgspec.DecodeError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


TICKET_ROUTES = [
    list_tickets, organization_tickets, create_ticket, show_ticket, update_ticket,
    show_many_tickets, list_comments, ticket_metrics, list_ticket_metrics, show_ticket_metric,
]
