"""Canonical support routes (`/system/support/v1`): organizations, cases and entitlements.

Every route reads only (`support:read`) and hides records of legal entities the caller may not
see, as if they did not exist.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast, get_args

from litestar import Request, Router, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from contracts.errors import FieldError, InvalidRequest, NotFound, UpstreamNotFound
from contracts.principal import Principal
from contracts.v1 import (
    CasePriority,
    CaseStatus,
    Customer,
    Entitlement,
    Page,
    SupportCase,
)
from system_apis.support.port import SupportPort

__all__ = ["create_router"]

_OPT: dict[str, Any] = {"scopes": ["support:read"], "rate_limit_group": "system"}
_PRIORITIES: tuple[str, ...] = get_args(CasePriority)
_STATUSES: tuple[str, ...] = get_args(CaseStatus)
AuthedRequest = Request[Principal, Any, Any]


@get("/organizations", opt=_OPT)
async def list_organizations(
    request: AuthedRequest,
    support: NamedDependency[SupportPort],
    cursor: FromQuery[str | None] = None,
    limit: FromQuery[int] = 50,
) -> Page[Customer]:
    _check_limit(limit)
    page = await support.list_organizations(cursor=cursor, limit=limit)
    principal = request.user
    visible = [c for c in page.data if principal.may_see_entity(c.legal_entity)]
    return Page(data=visible, next_cursor=page.next_cursor)


@get("/organizations/{organization_id:str}", opt=_OPT)
async def get_organization(
    request: AuthedRequest, support: NamedDependency[SupportPort],
    organization_id: FromPath[str],
) -> Customer:
    return await _visible_organization(request.user, support, organization_id)


@get("/cases", opt=_OPT)
async def list_cases(
    request: AuthedRequest,
    support: NamedDependency[SupportPort],
    organization: FromQuery[str | None] = None,
    priority: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
    limit: FromQuery[int] = 50,
) -> Page[SupportCase]:
    _check_limit(limit)
    problems = [
        FieldError(pointer=name, detail=f"must be one of {', '.join(allowed)}")
        for name, value, allowed in (("priority", priority, _PRIORITIES),
                                     ("status", status, _STATUSES))
        if value is not None and value not in allowed
    ]
    if problems:
        raise InvalidRequest("Invalid case filter", errors=problems)
    principal = request.user
    if organization is not None:
        await _visible_organization(principal, support, organization)
    return await support.list_cases(
        organization_id=organization,
        priority=cast("CasePriority | None", priority),
        status=cast("CaseStatus | None", status),
        entities=principal.entities, cursor=cursor, limit=limit,
    )


@get("/entitlements/{organization_id:str}", opt=_OPT)
async def get_entitlement(
    request: AuthedRequest, support: NamedDependency[SupportPort],
    organization_id: FromPath[str],
) -> Entitlement:
    _, entitlement = await asyncio.gather(
        _visible_organization(request.user, support, organization_id),
        _entitlement(support, organization_id),
    )
    if entitlement is None:
        raise NotFound(f"Organization {organization_id} has no support entitlement")
    return entitlement


def create_router() -> Router:
    """The support system API; the app provides the `support` dependency (a SupportPort)."""
    return Router(
        path="/system/support/v1",
        route_handlers=[list_organizations, get_organization, list_cases, get_entitlement],
        tags=["system: support"],
    )


async def _visible_organization(
    principal: Principal, support: SupportPort, organization_id: str
) -> Customer:
    try:
        customer = await support.get_organization(organization_id)
    except UpstreamNotFound as exc:
        raise NotFound(f"No organization {organization_id}") from exc
    if not principal.may_see_entity(customer.legal_entity):
        raise NotFound(f"No organization {organization_id}")
    return customer


async def _entitlement(support: SupportPort, organization_id: str) -> Entitlement | None:
    try:
        return await support.get_entitlement(organization_id)
    except UpstreamNotFound as exc:
        raise NotFound(f"No organization {organization_id}") from exc


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= 100:
        raise InvalidRequest(
            "limit must be between 1 and 100",
            errors=[FieldError(pointer="limit", detail="must be between 1 and 100")],
        )
