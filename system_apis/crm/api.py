"""Canonical CRM routes (`/system/crm/v1`): accounts, their contacts, deals, account updates.

Reads show only records of the legal entities the caller may see (another entity's record
is NotFound, not Forbidden, so its existence does not leak). An account update writes only
fields the CRM owns (`contracts.ownership`); any other field is refused naming its owner.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar import Request, Router, get, patch
from litestar.params import FromPath, FromQuery

from contracts.errors import FieldError, InvalidRequest, NotFound, UpstreamNotFound
from contracts.ownership import check_write
from contracts.principal import Principal
from contracts.v1 import Contact, Customer, CustomerPatch, Deal, Page
from system_apis.crm.port import CrmPort

__all__ = ["create_router"]

T = TypeVar("T")
_READ: dict[str, Any] = {"scopes": ["crm:read"], "rate_limit_group": "system"}
_WRITE: dict[str, Any] = {"scopes": ["crm:write"], "rate_limit_group": "system"}
_DEFAULT_LIMIT = 50
_MAX_LIMIT = 100
_SYSTEM = "salesforce"


def create_router() -> Router:
    """The `/system/crm/v1` router; the app provides the `crm` dependency (a CrmPort)."""
    return Router(
        path="/system/crm/v1",
        route_handlers=[list_accounts, get_account, list_contacts, get_opportunity,
                        update_account],
        tags=["crm"],
    )


@get("/accounts", opt=_READ)
async def list_accounts(
    request: Request[Any, Any, Any],
    crm: CrmPort,
    cursor: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
    legal_entity: FromQuery[str | None] = None,
    name: FromQuery[str | None] = None,
) -> Page[Customer]:
    """Accounts as customers, filtered by legal entity and by a part of the name."""
    principal = _principal(request)
    page = await crm.list_accounts(
        legal_entities=_entities(principal, legal_entity),
        name=name or None,
        cursor=cursor,
        limit=_limit(limit),
    )
    data = [c for c in page.data if principal.may_see_entity(c.legal_entity)]
    return Page(data=data, next_cursor=page.next_cursor)


@get("/accounts/{account_id:str}", opt=_READ)
async def get_account(
    request: Request[Any, Any, Any], crm: CrmPort, account_id: FromPath[str]
) -> Customer:
    return await _visible_one(
        _principal(request), f"account {account_id}", crm.get_account(account_id),
        lambda c: c.legal_entity,
    )


@get("/accounts/{account_id:str}/contacts", opt=_READ)
async def list_contacts(
    request: Request[Any, Any, Any],
    crm: CrmPort,
    account_id: FromPath[str],
    cursor: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
) -> Page[Contact]:
    principal = _principal(request)
    await _visible_one(
        principal, f"account {account_id}", crm.get_account(account_id),
        lambda c: c.legal_entity,
    )
    contacts = await crm.list_contacts(account_id)
    start, size = _decode_offset(cursor), _limit(limit)
    end = start + size
    return Page(
        data=contacts[start:end],
        next_cursor=_encode_offset(end) if end < len(contacts) else None,
    )


@get("/opportunities/{opportunity_id:str}", opt=_READ)
async def get_opportunity(
    request: Request[Any, Any, Any], crm: CrmPort, opportunity_id: FromPath[str]
) -> Deal:
    """A deal with its lines."""
    return await _visible_one(
        _principal(request), f"opportunity {opportunity_id}", crm.get_deal(opportunity_id),
        lambda d: d.legal_entity,
    )


@patch("/accounts/{account_id:str}", opt=_WRITE)
async def update_account(
    request: Request[Any, Any, Any], crm: CrmPort, account_id: FromPath[str], data: CustomerPatch
) -> Customer:
    """Write CRM-owned customer fields; a field another system owns is refused (422)."""
    check_write("Customer", _SYSTEM, data.fields_set())
    principal = _principal(request)
    await _visible_one(
        principal, f"account {account_id}", crm.get_account(account_id),
        lambda c: c.legal_entity,
    )
    try:
        return await crm.update_account(account_id, data)
    except UpstreamNotFound as exc:
        raise NotFound(f"account {account_id} not found") from exc


def _principal(request: Request[Any, Any, Any]) -> Principal:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise InvalidRequest("no authenticated caller")
    return user


def _entities(principal: Principal, requested: str | None) -> frozenset[str] | None:
    """The legal entities to ask the CRM for: the filter, cut to what the caller may see."""
    if requested:
        return frozenset({requested}) if principal.may_see_entity(requested) else frozenset()
    return principal.entities


def _limit(limit: int | None) -> int:
    if limit is None:
        return _DEFAULT_LIMIT
    if not 1 <= limit <= _MAX_LIMIT:
        raise InvalidRequest(
            "limit out of range",
            errors=[FieldError(pointer="limit", detail=f"between 1 and {_MAX_LIMIT}")],
        )
    return limit


async def _visible_one(
    principal: Principal, what: str, fetch: Awaitable[T], entity: Callable[[T], str | None]
) -> T:
    try:
        record = await fetch
    except UpstreamNotFound as exc:
        raise NotFound(f"{what} not found") from exc
    if not principal.may_see_entity(entity(record)):
        raise NotFound(f"{what} not found")
    return record


def _encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    prefix, _, number = text.partition(":")
    if prefix != "offset" or not number.isdigit():
        raise InvalidRequest(
            "invalid cursor", errors=[FieldError(pointer="cursor", detail="not a cursor we gave")]
        )
    return int(number)
