"""Canonical support routes (`/system/support/v1`): organizations, cases and entitlements.

Every route reads only (`support:read`) and hides records of legal entities the caller may not
see, as if they did not exist.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from litestar import Request, Router, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from contracts.errors import NotFound, UpstreamNotFound
from contracts.principal import Principal
from contracts.v1 import (
    CasePriority,
    CaseStatus,
    Customer,
    Entitlement,
    Page,
    SupportCase,
)
from system_apis.outbound import CursorSeal
from system_apis.params import (
    DEFAULT_LIMIT,
    PageCursor,
    PageLimit,
    Provided,
)
from system_apis.support.port import SupportPort
from system_apis.visibility import caller, known_id, visible_page

__all__ = ["create_router"]

_OPT: dict[str, Any] = {"scopes": ["support:read"], "rate_limit_group": "system"}
_ZENDESK_ID = r"^[0-9]{1,19}$"
AuthedRequest = Request[Principal, Any, Any]
_ORGANIZATION_ID = re.compile(_ZENDESK_ID)
# Path ids are checked in the handler, not by a pattern here: an id that is not a Zendesk id
# is an organization that does not exist (404).
OrganizationId = Annotated[
    str, PathParameter(max_length=128, description="Zendesk organization id (numeric)")
]
OrganizationFilter = Annotated[
    str | None,
    QueryParameter(
        name="organization", pattern=_ZENDESK_ID,
        description="Only cases of this Zendesk organization id (numeric)",
    ),
]
PriorityFilter = Annotated[
    CasePriority | None, QueryParameter(name="priority", description="Only cases of this priority")
]
StatusFilter = Annotated[
    CaseStatus | None, QueryParameter(name="status", description="Only cases in this status")
]


@get("/organizations", opt=_OPT)
async def list_organizations(
    request: AuthedRequest,
    support: Provided[SupportPort],
    cursor_seal: NamedDependency[CursorSeal],
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
) -> Page[Customer]:
    return await visible_page(
        caller(request), seal=cursor_seal, list_name="support:organizations", cursor=cursor,
        limit=limit, fetch=lambda at, n: support.list_organizations(cursor=at, limit=n),
        entity=lambda c: c.legal_entity,
    )


@get("/organizations/{organization_id:str}", opt=_OPT)
async def get_organization(
    request: AuthedRequest, support: Provided[SupportPort],
    organization_id: OrganizationId,
) -> Customer:
    return await _visible_organization(request.user, support, organization_id)


@get("/cases", opt=_OPT)
async def list_cases(
    request: AuthedRequest,
    support: Provided[SupportPort],
    cursor_seal: NamedDependency[CursorSeal],
    organization: OrganizationFilter = None,
    priority: PriorityFilter = None,
    status: StatusFilter = None,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
) -> Page[SupportCase]:
    principal = caller(request)
    if organization is not None:
        await _visible_organization(principal, support, organization)
    # A case carries no legal entity of its own: the port keeps only cases of organizations
    # in the caller's entities, page by page, so the filling loop does the rest.
    return await visible_page(
        principal, seal=cursor_seal,
        list_name=f"support:cases:{organization}:{priority}:{status}", cursor=cursor,
        limit=limit,
        fetch=lambda at, n: support.list_cases(
            organization_id=organization, priority=priority, status=status,
            entities=principal.entities, cursor=at, limit=n,
        ),
        filtered=True,
    )


@get("/entitlements/{organization_id:str}", opt=_OPT)
async def get_entitlement(
    request: AuthedRequest, support: Provided[SupportPort],
    organization_id: OrganizationId,
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
    known_id(organization_id, _ORGANIZATION_ID, f"organization {organization_id}")
    try:
        customer = await support.get_organization(organization_id)
    except UpstreamNotFound as exc:
        raise NotFound(f"organization {organization_id} not found") from exc
    if not principal.may_see_entity(customer.legal_entity):
        raise NotFound(f"organization {organization_id} not found")
    return customer


async def _entitlement(support: SupportPort, organization_id: str) -> Entitlement | None:
    known_id(organization_id, _ORGANIZATION_ID, f"organization {organization_id}")
    try:
        return await support.get_entitlement(organization_id)
    except UpstreamNotFound as exc:
        raise NotFound(f"organization {organization_id} not found") from exc

