"""Routes of the emulated Zendesk for organizations, users, organization fields and search."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post, put
from litestar.params import FromPath

from sandbox.zendesk.context import Call, json_response
from sandbox.zendesk.errors import ZendeskApiError, bad_request
from sandbox.zendesk.paging import parse_paging
from sandbox.zendesk.records import (
    INTEGER_ORGANIZATION_FIELDS,
    ORGANIZATION_FIELD_KEYS,
    Organization,
    User,
)
from sandbox.zendesk.render import (
    organization_json,
    ticket_json,
    user_json,
)
from sandbox.zendesk.search import SearchHit, search

__all__ = ["DIRECTORY_ROUTES"]

AnyRequest = Request[Any, Any, Any]
_SEARCH_RESULT_LIMIT = 1000


def _org_id(org: Organization) -> int:
    return org.id


def _user_id(user: User) -> int:
    return user.id


@get("/api/v2/organizations")
async def list_organizations(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    orgs = sorted(call.account.directory.organizations.values(), key=_org_id)
    return call.page("organizations", orgs, key=_org_id,
                     render=lambda org: organization_json(call.base, org))


@post("/api/v2/organizations")
async def create_organization(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    org = call.account.directory.create_organization(await call.body("organization"))
    return _created(call, "organizations", org.id, {"organization": organization_json(call.base,
                                                                                       org)})


@get("/api/v2/organizations/{organization_id:int}")
async def show_organization(request: AnyRequest, organization_id: FromPath[int]) -> Response[bytes]:
    call = Call(request)
    org = call.account.directory.organization(organization_id)
    return json_response({"organization": organization_json(call.base, org)})


@put("/api/v2/organizations/{organization_id:int}")
async def update_organization(
    request: AnyRequest, organization_id: FromPath[int]
) -> Response[bytes]:
    call = Call(request)
    directory = call.account.directory
    org = directory.update_organization(directory.organization(organization_id),
                                        await call.body("organization"))
    return json_response({"organization": organization_json(call.base, org)})


@post("/api/v2/organizations/create_or_update")
async def create_or_update_organization(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    org, created = call.account.directory.upsert_organization(await call.body("organization"))
    body = {"organization": organization_json(call.base, org)}
    return _created(call, "organizations", org.id, body) if created else json_response(body)


@get("/api/v2/organizations/search")
async def search_organizations(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    external_id, name = call.query("external_id"), call.query("name")
    if (external_id is None) == (name is None):
        raise bad_request("InvalidParameter", "Search by either external_id or name")
    orgs = sorted(call.account.directory.organizations.values(), key=_org_id)
    if external_id is not None:
        orgs = [o for o in orgs if (o.external_id or "").casefold() == external_id.casefold()]
    else:
        orgs = [o for o in orgs if o.name.casefold() == (name or "").casefold()]
    return call.page("organizations", orgs, key=_org_id,
                     render=lambda org: organization_json(call.base, org))


@get("/api/v2/organizations/show_many")
async def show_many_organizations(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    directory = call.account.directory
    if call.query("external_ids") is not None:
        keys = [k for k in (call.query("external_ids") or "").split(",") if k.strip()][:100]
        found = [directory.organization_by_external_id(k.strip()) for k in keys]
        orgs = [org for org in found if org is not None]
    else:
        orgs = [directory.organizations[i] for i in call.ids("ids") if i in directory.organizations]
    return json_response({
        "organizations": [organization_json(call.base, org) for org in orgs],
        "next_page": None, "previous_page": None, "count": len(orgs),
    })


@get("/api/v2/organization_fields")
async def list_organization_fields(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    fields = [_organization_field(call.base, position, key)
              for position, key in enumerate(ORGANIZATION_FIELD_KEYS, start=1)]
    return json_response({"organization_fields": fields, "next_page": None,
                          "previous_page": None, "count": len(fields)})


@get("/api/v2/users")
async def list_users(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    role = call.query("role")
    users = sorted((u for u in call.account.directory.users.values()
                    if role is None or u.role == role), key=_user_id)
    return call.page("users", users, key=_user_id, render=lambda u: user_json(call.base, u))


@post("/api/v2/users")
async def create_user(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    user = call.account.directory.create_user(await call.body("user"))
    return _created(call, "users", user.id, {"user": user_json(call.base, user)})


@get("/api/v2/users/me")
async def show_me(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    return json_response({"user": user_json(call.base, call.actor())})


@get("/api/v2/users/{user_id:int}")
async def show_user(request: AnyRequest, user_id: FromPath[int]) -> Response[bytes]:
    call = Call(request)
    return json_response({"user": user_json(call.base, call.account.directory.user(user_id))})


@put("/api/v2/users/{user_id:int}")
async def update_user(request: AnyRequest, user_id: FromPath[int]) -> Response[bytes]:
    call = Call(request)
    directory = call.account.directory
    user = directory.update_user(directory.user(user_id), await call.body("user"))
    return json_response({"user": user_json(call.base, user)})


@get("/api/v2/users/search")
async def search_users(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    query, external_id = call.query("query"), call.query("external_id")
    users = sorted(call.account.directory.users.values(), key=_user_id)
    if external_id is not None:
        users = [u for u in users if (u.external_id or "").casefold() == external_id.casefold()]
    elif query:
        text = query.removeprefix("email:").strip().casefold()
        users = [u for u in users
                 if text in (u.email or "").casefold() or text in u.name.casefold()]
    return call.page("users", users, key=_user_id, render=lambda u: user_json(call.base, u),
                     cursor_allowed=False)


@get("/api/v2/users/show_many")
async def show_many_users(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    directory = call.account.directory
    users = [directory.users[i] for i in call.ids("ids") if i in directory.users]
    return json_response({"users": [user_json(call.base, u) for u in users],
                          "next_page": None, "previous_page": None, "count": len(users)})


@get("/api/v2/search")
async def search_all(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    query = call.query("query")
    if not query:
        raise bad_request("InvalidParameter", "Parameter query is required")
    paging = parse_paging(call.params, cursor_allowed=False)
    if paging.page * paging.size > _SEARCH_RESULT_LIMIT:
        # Search has its own, lower ceiling than list endpoints, and answers it with 422.
        raise ZendeskApiError(422, {
            "error": "invalid",
            "description": "Invalid search: Requested response size was greater than Search "
                           "Response Limits",
        })
    hits = list(enumerate(search(query, call.account.directory, call.account.desk)))
    return call.page("results", hits, key=lambda pair: pair[0],
                     render=lambda pair: _hit_json(call, pair[1]), cursor_allowed=False)


def _hit_json(call: Call, hit: SearchHit) -> dict[str, Any]:
    record = hit.record
    if isinstance(record, Organization):
        body = organization_json(call.base, record)
    elif isinstance(record, User):
        body = user_json(call.base, record)
    else:
        body = ticket_json(call.base, record)
    return {**body, "result_type": hit.result_type}


def _organization_field(base: str, position: int, key: str) -> dict[str, Any]:
    field_id = 36_000_000_001_000 + position
    return {
        "url": f"{base}/api/v2/organization_fields/{field_id}.json", "id": field_id,
        "type": "integer" if key in INTEGER_ORGANIZATION_FIELDS else "text", "key": key,
        "title": key.replace("_", " ").capitalize(), "active": True, "position": position,
        "system": False,
    }


def _created(call: Call, collection: str, record_id: int, body: dict[str, Any]) -> Response[bytes]:
    return json_response(body, status=201, headers={
        "Location": f"{call.base}/api/v2/{collection}/{record_id}.json"
    })


DIRECTORY_ROUTES = [
    list_organizations, create_organization, show_organization, update_organization,
    create_or_update_organization, search_organizations, show_many_organizations,
    list_organization_fields, list_users, create_user, show_me,
    show_user, update_user, search_users, show_many_users, search_all,
]
