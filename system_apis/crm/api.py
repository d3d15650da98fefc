"""Canonical CRM routes (`/system/crm/v1`): accounts, their contacts, deals, contracts, account
updates.

Reads show only records of the legal entities the caller may see (another entity's record
is NotFound, not Forbidden, so its existence does not leak). An account update writes only
fields the CRM owns (`contracts.ownership`); any other field is refused naming its owner.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, patch, route
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from litestar.params import PathParameter, QueryParameter, SkipValidation
from litestar.status_codes import HTTP_204_NO_CONTENT

from contracts.audit import AuditEvent, AuditTarget, AuditTrail, actor_of
from contracts.errors import NotFound, UpstreamNotFound
from contracts.ownership import check_write
from contracts.principal import Principal
from contracts.v1 import Contact, Contract, Customer, CustomerPatch, Deal, Page
from system_apis.crm.port import CrmContractsPort, CrmPort
from system_apis.outbound import CursorSeal, Offset, decode_cursor, encode_cursor
from system_apis.params import (
    DEFAULT_LIMIT,
    LegalEntityFilter,
    PageCursor,
    PageLimit,
    Provided,
    exact_body,
)
from system_apis.visibility import caller, known_id, visible_one, visible_page

__all__ = ["create_router"]

_READ: dict[str, Any] = {"scopes": ["crm:read"], "rate_limit_group": "system"}
_WRITE: dict[str, Any] = {"scopes": ["crm:write"], "rate_limit_group": "system"}
_SYSTEM = "salesforce"


def _salesforce_id(key_prefix: str) -> re.Pattern[str]:
    """A record id of one sObject: its key prefix, then 12 characters, then an optional
    3-character checksum (the 18-character form)."""
    return re.compile(rf"{key_prefix}[a-zA-Z0-9]{{12}}(?:[a-zA-Z0-9]{{3}})?")


_ACCOUNT_ID = _salesforce_id("001")
_OPPORTUNITY_ID = _salesforce_id("006")
_CONTRACT_ID = _salesforce_id("800")
# Path ids are checked in the handler, not by a pattern here: an id that is not a Salesforce
# id of the right object is a record that does not exist (404), and is never put in a query.
AccountId = Annotated[
    str,
    PathParameter(
        max_length=128, description="Salesforce Account id (15 or 18 characters, 001...)"
    ),
]
OpportunityId = Annotated[
    str,
    PathParameter(
        max_length=128, description="Salesforce Opportunity id (15 or 18 characters, 006...)"
    ),
]
ContractId = Annotated[
    str,
    PathParameter(
        max_length=128, description="Salesforce Contract id (15 or 18 characters, 800...)"
    ),
]
AccountFilter = Annotated[
    str | None,
    QueryParameter(
        name="account_id", min_length=1, max_length=128,
        description="Only contracts of this Salesforce account",
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
                        list_contacts, get_opportunity, list_contracts, get_contract],
        tags=["crm"],
    )


@get("/accounts", opt=_READ)
async def list_accounts(
    request: Request[Any, Any, Any],
    crm: Provided[CrmPort],
    cursor_seal: NamedDependency[CursorSeal],
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
    legal_entity: LegalEntityFilter = None,
    name: NameFilter = None,
) -> Page[Customer]:
    """Accounts as customers, filtered by legal entity and by a part of the name."""
    principal = caller(request)
    # The entities are part of the query Salesforce runs, so its pages are already the
    # caller's; the entity check stays as the one rule every list applies.
    entities = _entities(principal, legal_entity)
    return await visible_page(
        principal, seal=cursor_seal, list_name=f"crm:accounts:{legal_entity}:{name}",
        cursor=cursor, limit=limit,
        fetch=lambda at, n: crm.list_accounts(
            legal_entities=entities, name=name, cursor=at, limit=n
        ),
        entity=lambda c: c.legal_entity,
    )


@get("/accounts/{account_id:str}", opt=_READ)
async def get_account(
    request: Request[Any, Any, Any], crm: Provided[CrmPort], account_id: AccountId,
) -> Customer:
    return await _visible_account(caller(request), crm, account_id)


@get("/accounts/{account_id:str}/contacts", opt=_READ)
async def list_contacts(
    request: Request[Any, Any, Any],
    crm: Provided[CrmPort],
    cursor_seal: NamedDependency[CursorSeal],
    account_id: AccountId,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
) -> Page[Contact]:
    principal = caller(request)
    await _visible_account(principal, crm, account_id)
    pages = f"crm:/accounts/{account_id}/contacts"

    async def fetch(at: str | None, size: int) -> Page[Contact]:
        contacts = await crm.list_contacts(account_id)
        start = decode_cursor(at, list_name=pages, position=Offset) or 0
        end = start + size
        more = end < len(contacts)
        return Page(
            data=contacts[start:end],
            next_cursor=encode_cursor(end, list_name=pages) if more else None,
        )

    return await visible_page(
        principal, seal=cursor_seal, list_name=pages, cursor=cursor, limit=limit, fetch=fetch
    )


@get("/opportunities/{opportunity_id:str}", opt=_READ)
async def get_opportunity(
    request: Request[Any, Any, Any],
    crm: Provided[CrmPort],
    opportunity_id: OpportunityId,
) -> Deal:
    """A deal with its lines."""
    what = f"opportunity {opportunity_id}"
    return await visible_one(
        caller(request), what, crm.get_deal(known_id(opportunity_id, _OPPORTUNITY_ID, what)),
        lambda d: d.legal_entity,
    )


@get("/contracts", opt=_READ)
async def list_contracts(
    request: Request[Any, Any, Any],
    crm: Provided[CrmPort],
    cursor_seal: NamedDependency[CursorSeal],
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
    legal_entity: LegalEntityFilter = None,
    account_id: AccountFilter = None,
) -> Page[Contract]:
    """Contracts of the legal entities the caller may see, optionally of one account."""
    principal = caller(request)
    contracts = _contracts_of(crm)
    if account_id is not None:
        await _visible_account(principal, crm, account_id)
    entities = _entities(principal, legal_entity)
    return await visible_page(
        principal, seal=cursor_seal, list_name=f"crm:contracts:{legal_entity}:{account_id}",
        cursor=cursor, limit=limit,
        fetch=lambda at, n: contracts.list_contracts(
            customer_id=account_id, legal_entities=entities, cursor=at, limit=n
        ),
        entity=lambda c: c.legal_entity,
    )


@get("/contracts/{contract_id:str}", opt=_READ)
async def get_contract(
    request: Request[Any, Any, Any], crm: Provided[CrmPort], contract_id: ContractId,
) -> Contract:
    """A contract with the lines of the deal it was signed for."""
    what = f"contract {contract_id}"
    contracts = _contracts_of(crm)
    return await visible_one(
        caller(request), what,
        contracts.get_contract(known_id(contract_id, _CONTRACT_ID, what)),
        lambda c: c.legal_entity,
    )


@patch("/accounts/{account_id:str}", opt=_WRITE)
async def update_account(
    request: Request[Any, Any, Any],
    crm: Provided[CrmPort],
    account_id: AccountId,
    data: Annotated[CustomerPatch, exact_body(CustomerPatch)],
    audit: NamedDependency[SkipValidation[AuditTrail]],
) -> Customer:
    """Write CRM-owned customer fields; a field another system owns is refused (422). The
    write is audited with the written fields before and after."""
    fields = data.fields_set()
    check_write("Customer", _SYSTEM, fields)
    principal = caller(request)
    before = await _visible_account(principal, crm, account_id)
    try:
        after = await crm.update_account(account_id, data)
    except UpstreamNotFound as exc:
        raise NotFound(f"account {account_id} not found") from exc
    await audit.record(
        AuditEvent(
            action="crm.account.update",
            actor=actor_of(principal),
            target=AuditTarget(system=_SYSTEM, id=account_id),
            legal_entity=before.legal_entity,
            before=_fields_of(before, fields),
            after=_fields_of(after, fields),
        )
    )
    return after


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




async def _visible_account(principal: Principal, crm: CrmPort, account_id: str) -> Customer:
    """The account, or NotFound when it is not an account id, missing or not the caller's."""
    what = f"account {account_id}"
    return await visible_one(
        principal, what, crm.get_account(known_id(account_id, _ACCOUNT_ID, what)),
        lambda c: c.legal_entity,
    )


def _fields_of(customer: Customer, fields: Iterable[str]) -> dict[str, Any]:
    return {name: msgspec.to_builtins(getattr(customer, name, None)) for name in sorted(fields)}


def _contracts_of(crm: CrmPort) -> CrmContractsPort:
    """The CRM's contracts; a CRM adapter without them has none to show."""
    if not isinstance(crm, CrmContractsPort):
        raise NotFound("this CRM keeps no contracts")
    return crm


def _entities(principal: Principal, requested: str | None) -> frozenset[str] | None:
    """The legal entities to ask the CRM for: the filter, cut to what the caller may see."""
    if requested:
        return frozenset({requested}) if principal.may_see_entity(requested) else frozenset()
    return principal.entities
