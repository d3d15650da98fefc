"""A sweep over every operation of the OpenAPI document, with the demo company booked in both
legal entities (US01 and DE01):

- an anonymous caller gets 401 and a client without the operation's scope 403, both
  problem+json (operations the document declares public, `security: []`, are skipped by that
  declaration);
- for every per-id read of the system APIs, a US01-limited client asking for a DE01 record gets
  exactly what it gets for a missing id (status and problem type);
- every list, paged by a US01-limited client, holds only US01 records (all of them), and its
  cursors name no DE01 record.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import post

from contracts.scopes import SCOPES
from contracts.v1 import ApprovalTask
from gateway import storage
from gateway.clients import ClientRegistry
from sandbox.salesforce.ids import seeded_id
from system_apis.erp.port import ErpPort
from tests.support.apps import gateway_app, settings_for
from tests.support.servers import serve_asgi

METHODS = ("get", "post", "put", "patch", "delete")
PATH_PARAMETER = re.compile(r"{(\w+)}")
PROBLEM = "application/problem+json"
WON_DEALS = {"US01": "acme-platform", "DE01": "globex-enterprise"}
PORTAL_CUSTOMERS = {"US01": "acme", "DE01": "globex"}
PORTAL = "experience:portal"
MAX_PAGES = 50

# Per-id reads with no list beside them to find a DE01 record in: where to find one.
ID_SOURCES = {
    "/system/crm/v1/opportunities/{opportunity_id}": None,  # the booked DE01 deal
    "/system/support/v1/entitlements/{organization_id}": "/system/support/v1/organizations",
}


class Gateway:
    """The served gateway: its base URL, a token per caller name, its OpenAPI document."""

    def __init__(self, base_url: str, tokens: dict[str, str], document: dict[str, Any]):
        self.base_url = base_url
        self.tokens = tokens
        self.document = document

    def call(
        self, method: str, path: str, who: str | None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Idempotency-Key": uuid.uuid4().hex, **kwargs.pop("headers", {})}
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return httpx.request(
            method, f"{self.base_url}{path}", headers=headers, timeout=30, **kwargs
        )

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for path, item in self.document["paths"].items():
            for method in METHODS:
                if method in item:
                    yield method, path, item[method]


def _required(operation: dict[str, Any]) -> frozenset[str]:
    """The scopes an operation declares (its OAuth 2.0 security requirement)."""
    security = operation.get("security") or []
    return frozenset(next((s["oauth2"] for s in security if "oauth2" in s), []))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("sweep")
    settings = settings_for(
        tmp, emulated=True,
        ERPGW_RATE_LIMIT_TIERS="gold=1000000/minute;anonymous=1000000/minute",
    )
    with serve_asgi(gateway_app(settings, seed_erp), lifespan="on") as base_url:
        document = httpx.get(f"{base_url}/docs/openapi.json").json()
        lacking = {
            _required(operation)
            for item in document["paths"].values()
            for method, operation in item.items()
            if method in METHODS and _required(operation)
        }
        wanted: dict[str, tuple[list[str], list[str] | None, str | None]] = {
            "everything": (sorted(SCOPES), None, None),
            "us": (sorted(SCOPES), ["US01"], None),
        }
        for entity, account in PORTAL_CUSTOMERS.items():
            customer = seeded_id("Account", account)
            wanted[f"portal {entity}"] = ([PORTAL], None, customer)
        for required in lacking:
            wanted[_lacking(required)] = (sorted(set(SCOPES) - required), None, None)
        clients = asyncio.run(_clients(settings.database_url, wanted))
        tokens = {
            who: httpx.post(
                f"{base_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=auth
            ).json()["access_token"]
            for who, auth in clients.items()
        }
        gateway = Gateway(base_url, tokens, document)
        for entity, deal in WON_DEALS.items():
            _book(gateway, seeded_id("Opportunity", deal), entity)
        seeded = httpx.post(f"{base_url}/_sweep/seed-erp", timeout=60)
        assert seeded.status_code == 201, seeded.text
        yield gateway


@post("/_sweep/seed-erp", opt={"public": True}, include_in_schema=False)
async def seed_erp(erp: ErpPort) -> None:
    """Invoices and approval tasks in the ERP of both entities (the booking makes neither:
    invoices reach the ERP through Stripe's events, approvals through service credits); run
    inside the served app, whose event loop its vendor clients belong to."""
    orders = await erp.list_sales_orders(limit=100)
    for order in orders.data:
        await erp.upsert_invoice(sales_order_id=order.id, external_id=f"sweep:{order.id}")
    for entity, currency in (("US01", "USD"), ("DE01", "EUR")):
        await erp.upsert_approval_task(
            ApprovalTask(
                id="", kind="service_credit", subject=f"Sweep credit {entity}", amount=1000,
                currency=currency, requested_at=datetime.now(UTC), legal_entity=entity,
            ),
            external_id=f"sweep:{entity}",
        )


def _lacking(required: frozenset[str]) -> str:
    return "without " + " ".join(sorted(required))


async def _clients(
    database_url: str, wanted: dict[str, tuple[list[str], list[str] | None, str | None]]
) -> dict[str, tuple[str, str]]:
    engine = storage.create_engine(database_url)
    registry = ClientRegistry(engine)
    made: dict[str, tuple[str, str]] = {}
    try:
        for who, (scopes, entities, customer) in wanted.items():
            created = await registry.create(
                name=f"sweep {who}"[:100], scopes=scopes, tier="gold", entities=entities,
                customer=customer,
            )
            made[who] = (created.client.client_id, created.client_secret)
    finally:
        await engine.dispose()
    return made


def _book(gateway: Gateway, opportunity_id: str, entity: str) -> None:
    started = gateway.call(
        "POST", "/process/v1/quote-to-cash", "everything",
        json={"opportunity_id": opportunity_id},
    )
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        flow = gateway.call("GET", started.headers["location"], "everything").json()
        if flow.get("status") in ("succeeded", "failed"):
            assert flow["status"] == "succeeded", (entity, flow)
            return
        time.sleep(0.5)
    raise AssertionError(f"the {entity} quote-to-cash flow did not finish")


def _fill(path: str, value: str = "0") -> str:
    return PATH_PARAMETER.sub(value, path)


def _is_problem(response: httpx.Response) -> bool:
    return str(response.headers.get("content-type", "")).startswith(PROBLEM)


def test_every_operation_refuses_anonymous_callers_and_missing_scopes(gateway: Gateway) -> None:
    checked = 0
    for method, path, operation in gateway.operations():
        if operation.get("security") == []:
            continue  # declared public
        checked += 1
        required = _required(operation)
        body: dict[str, Any] = {"json": {}} if method in ("post", "put", "patch") else {}

        anonymous = gateway.call(method.upper(), _fill(path), None, **body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert _is_problem(anonymous), (method, path)

        if not required:
            continue
        refused = gateway.call(method.upper(), _fill(path), _lacking(required), **body)
        assert refused.status_code == 403, (method, path, refused.text)
        assert _is_problem(refused)
        assert set(refused.json()["required_scopes"]) == required

        # Control: with its scope the same request is not refused for want of one.
        allowed = gateway.call(method.upper(), _fill(path), "everything", **body)
        assert allowed.status_code != 401, (method, path)
        assert not (
            allowed.status_code == 403 and "required_scopes" in allowed.json()
        ), (method, path, allowed.text)
    assert checked >= 40


def _items(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    data = body.get("data", []) if isinstance(body, dict) else body
    return [item for item in data if isinstance(item, dict)]


def _missing_like(record_id: str) -> str:
    """A well-formed id of the same kind that names no record."""
    if record_id.isdigit():
        return "9" * min(len(record_id) + 3, 18)
    if "_" in record_id:
        prefix, rest = record_id.split("_", 1)
        return f"{prefix}_{'0' * len(rest)}"
    return record_id[:3] + "0" * (len(record_id) - 3)


def test_another_entitys_record_reads_as_a_missing_one(gateway: Gateway) -> None:
    paths = gateway.document["paths"]
    routes = [p for p in paths if p.startswith("/system/") and "{" in p and "get" in paths[p]]
    assert len(routes) >= 10, routes
    problems: list[Any] = []
    for path in routes:
        foreign, own = _records(gateway, path)
        if foreign is None:
            problems.append(("no DE01 record to ask for", path))
            continue
        missing = gateway.call("GET", _fill(path, _missing_like(foreign)), "us")
        crossing = gateway.call("GET", _fill(path, foreign), "us")
        answers = [(r.status_code, r.json().get("type")) for r in (crossing, missing)]
        if answers[0] != answers[1] or crossing.status_code != 404:
            problems.append((path, crossing.text, missing.text))
        # Controls: the record exists for a caller of every entity, and the limited caller
        # reads a record of its own entity.
        if gateway.call("GET", _fill(path, foreign), "everything").status_code != 200:
            problems.append(("DE01 record not readable at all", path))
        if own is not None and gateway.call("GET", _fill(path, own), "us").status_code != 200:
            problems.append(("US01 record not readable by US01", path))
    assert not problems, problems


def _records(gateway: Gateway, path: str) -> tuple[str | None, str | None]:
    """(the id of a DE01 record, the id of a US01 one) for the per-id route `path`."""
    if path in ID_SOURCES and ID_SOURCES[path] is None:
        return (
            seeded_id("Opportunity", WON_DEALS["DE01"]),
            seeded_id("Opportunity", WON_DEALS["US01"]),
        )
    listing = ID_SOURCES.get(path) or re.sub(r"/{\w+}.*$", "", path)
    items = _items(gateway.call("GET", listing, "everything", params={"limit": 100}))
    ids: dict[str, str] = {}
    for item in items:
        entity = item.get("legal_entity")
        if entity in ("US01", "DE01"):
            ids.setdefault(str(entity), str(item["id"]))
    return ids.get("DE01"), ids.get("US01")


def _list_routes(gateway: Gateway) -> list[str]:
    paths = gateway.document["paths"]
    return [
        path for path, item in paths.items()
        if "{" not in path and "get" in item
        and any(p.get("name") == "limit" for p in item["get"].get("parameters", []))
    ]


def _all_pages(gateway: Gateway, path: str, who: str) -> tuple[list[dict[str, Any]], list[str]]:
    items: list[dict[str, Any]] = []
    cursors: list[str] = []
    params: dict[str, Any] = {"limit": 1}
    for _ in range(MAX_PAGES):
        response = gateway.call("GET", path, who, params=params)
        assert response.status_code == 200, (path, who, response.text)
        items.extend(_items(response))
        cursor = response.json().get("next_cursor")
        if not cursor:
            return items, cursors
        cursors.append(cursor)
        params = {"limit": 1, "cursor": cursor}
    raise AssertionError(f"{path} pages past {MAX_PAGES} for one record a page")


def test_every_list_holds_only_what_a_limited_caller_may_see(gateway: Gateway) -> None:
    routes = _list_routes(gateway)
    assert len(routes) >= 15, routes
    foreign_seen = 0
    problems: list[Any] = []
    for path in routes:
        if PORTAL in _required(gateway.document["paths"][path]["get"]):
            problems.extend(_portal_problems(gateway, path))
            continue
        everything, _ = _all_pages(gateway, path, "everything")
        mine, cursors = _all_pages(gateway, path, "us")
        foreign = {_key(item) for item in everything if item.get("legal_entity") == "DE01"}
        foreign_seen += len(foreign)
        # Only US01 records, and every one of them.
        if not all(item.get("legal_entity") in (None, "US01") for item in mine):
            problems.append(("another entity's record", path))
        expected = sorted(_key(i) for i in everything if i.get("legal_entity") == "US01")
        if sorted(_key(i) for i in mine if i.get("legal_entity")) != expected:
            problems.append(("not every US01 record", path))
        # Pages are full: one record a page, and no page without one.
        if len(cursors) > max(len(mine) - 1, 0):
            problems.append(("empty pages", path, len(cursors), len(mine)))
        for cursor in cursors:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            for record_id in foreign:
                if record_id in cursor or record_id.encode() in raw:
                    problems.append(("a cursor names a DE01 record", path))
    assert not problems, problems
    # Control: the lists do hold DE01 records (the limited caller was shown none of them).
    assert foreign_seen >= 6


def _portal_problems(gateway: Gateway, path: str) -> list[Any]:
    """A portal client's pages hold only its customer's records, and its cursors name none of
    another customer's."""
    mine, cursors = _all_pages(gateway, path, "portal US01")
    theirs, _ = _all_pages(gateway, path, "portal DE01")
    problems: list[Any] = []
    if not mine or not theirs:
        problems.append(("portal control: each customer has records", path, mine, theirs))
    other_ids = {str(item["id"]) for item in theirs}
    if other_ids & {str(item["id"]) for item in mine}:
        problems.append(("another customer's record", path))
    for cursor in cursors:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if any(i in cursor or i.encode() in raw for i in other_ids):
            problems.append(("a cursor names another customer's record", path))
    return problems


def _key(item: dict[str, Any]) -> str:
    """A listed record's identity: its id, or its place in an append-only log (audit)."""
    return str(item["id"] if "id" in item else item["seq"])
