"""Canonical CRM routes (`/system/crm/v1`): accounts, their contacts, deals, account updates.

Reads show only records of the legal entities the caller may see (another entity's record
is NotFound, not Forbidden, so its existence does not leak). An account update writes only
fields the CRM owns (`contracts.ownership`); any other field is refused naming its owner.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, Router, get, patch, route
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from litestar.params import PathParameter, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from contracts.errors import NotFound, UpstreamNotFound
from contracts.ownership import check_write
from contracts.principal import Principal
from contracts.v1 import Contact, Customer, CustomerPatch, Deal, Page
from system_apis.crm.port import CrmPort
from system_apis.outbound import Offset, decode_cursor, encode_cursor
from system_apis.params import (
    DEFAULT_LIMIT,
    LegalEntityFilter,
    PageCursor,
    PageLimit,
    exact_body,
)
from system_apis.visibility import caller, visible_one

__all__ = ["create_router"]

_READ: dict[str, Any] = {"scopes": ["crm:read"], "rate_limit_group": "system"}
_WRITE: dict[str, Any] = {"scopes": ["crm:write"], "rate_limit_group": "system"}
_SYSTEM = "salesforce"
_SALESFORCE_ID = r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$"

AccountId = Annotated[
    str,
    PathParameter(
        pattern=_SALESFORCE_ID, description="Salesforce Account id (15 or 18 characters)"
    ),
]
OpportunityId = Annotated[
    str,
    PathParameter(
        pattern=_SALESFORCE_ID, description="Salesforce Opportunity id (15 or 18 characters)"
    ),
]
NameFilter = Annotated[
    str | None,
    QueryParameter(
        name="name", min_length=1, max_length=255,
        description="Only accounts whose name contains this text",
    ),
]


def create_router() -> Router:
    """The `/system/crm/v1` router; the app provides the `crm` dependency (a CrmPort)."""
    return Router(
        path="/system/crm/v1",
        # account_options first: a path registered without an OPTIONS handler gets Litestar's.
        route_handlers=[list_accounts, account_options, get_account, update_account,
                        list_contacts, get_opportunity],
        tags=["crm"],
    )


@get("/accounts", opt=_READ)
async def list_accounts(
    request: Request[Any, Any, Any],
    crm: NamedDependency[CrmPort],
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
    legal_entity: LegalEntityFilter = None,
    name: NameFilter = None,
) -> Page[Customer]:
    """Accounts as customers, filtered by legal entity and by a part of the name."""
    principal = caller(request)
    page = await crm.list_accounts(
        legal_entities=_entities(principal, legal_entity),
        name=name,
        cursor=cursor,
        limit=limit,
    )
    data = [c for c in page.data if principal.may_see_entity(c.legal_entity)]
    return Page(data=data, next_cursor=page.next_cursor)


@get("/accounts/{account_id:str}", opt=_READ)
async def get_account(
    request: Request[Any, Any, Any], crm: NamedDependency[CrmPort], account_id: AccountId,
) -> Customer:
    return await visible_one(
        caller(request), f"account {account_id}", crm.get_account(account_id),
        lambda c: c.legal_entity,
    )


@get("/accounts/{account_id:str}/contacts", opt=_READ)
async def list_contacts(
    request: Request[Any, Any, Any],
    crm: NamedDependency[CrmPort],
    account_id: AccountId,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
) -> Page[Contact]:
    principal = caller(request)
    await visible_one(
        principal, f"account {account_id}", crm.get_account(account_id),
        lambda c: c.legal_entity,
    )
    contacts = await crm.list_contacts(account_id)
    pages = f"crm:/accounts/{account_id}/contacts"
    start = decode_cursor(cursor, list_name=pages, position=Offset) or 0
    end = start + limit
    return Page(
        data=contacts[start:end],
        next_cursor=encode_cursor(end, list_name=pages) if end < len(contacts) else None,
    )


@get("/opportunities/{opportunity_id:str}", opt=_READ)
async def get_opportunity(
    request: Request[Any, Any, Any],
    crm: NamedDependency[CrmPort],
    opportunity_id: OpportunityId,
) -> Deal:
    """A deal with its lines."""
    return await visible_one(
        caller(request), f"opportunity {opportunity_id}", crm.get_deal(opportunity_id),
        lambda d: d.legal_entity,
    )


@patch("/accounts/{account_id:str}", opt=_WRITE)
async def update_account(
    request: Request[Any, Any, Any],
    crm: NamedDependency[CrmPort],
    account_id: AccountId,
    data: Annotated[CustomerPatch, exact_body(CustomerPatch)],
) -> Customer:
    """Write CRM-owned customer fields; a field another system owns is refused (422)."""
    check_write("Customer", _SYSTEM, data.fields_set())
    principal = caller(request)
    await visible_one(
        principal, f"account {account_id}", crm.get_account(account_id),
        lambda c: c.legal_entity,
    )
    try:
        return await crm.update_account(account_id, data)
    except UpstreamNotFound as exc:
        raise NotFound(f"account {account_id} not found") from exc


_ACCOUNT_METHODS = ", ".join(
    sorted({*get_account.http_methods, *update_account.http_methods, HttpMethod.OPTIONS})
)


@route(
    "/accounts/{account_id:str}",
    http_method=HttpMethod.OPTIONS,
    include_in_schema=False,
    opt={"rate_limit_group": "system"},
    sync_to_thread=False,
)
def account_options() -> Response[None]:
    """The methods of an account. Litestar 2 builds a path's automatic OPTIONS answer when
    the path's first handler is registered, so it would leave out PATCH (litestar#4169)."""
    return Response(None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": _ACCOUNT_METHODS})




def _entities(principal: Principal, requested: str | None) -> frozenset[str] | None:
    """The legal entities to ask the CRM for: the filter, cut to what the caller may see."""
    if requested:
        return frozenset({requested}) if principal.may_see_entity(requested) else frozenset()
    return principal.entities
