"""The emulator's wire behaviour as a Zendesk API user sees it: paths, auth, paging, errors,
idempotency, sideloads, search and the seeded account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sandbox.zendesk import ZendeskEmulator
from tests.system_apis.support.zendesk.seed import ACME, GLOBEX, org_id, user_id

AUTH = httpx.BasicAuth("sandbox@erpgw.test/token", "erpgw-sandbox-token")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def zendesk(clock: Clock) -> ZendeskEmulator:
    return ZendeskEmulator(clock=clock)


@pytest.fixture
async def api(zendesk: ZendeskEmulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=zendesk.vendor)
    async with httpx.AsyncClient(transport=transport, base_url="https://acme.zendesk.test",
                                 auth=AUTH) as client:
        yield client


async def test_json_suffix_is_optional(api: httpx.AsyncClient) -> None:
    with_suffix = await api.get(f"/api/v2/organizations/{org_id(ACME)}.json")
    without = await api.get(f"/api/v2/organizations/{org_id(ACME)}")
    assert with_suffix.status_code == without.status_code == 200
    assert with_suffix.json() == without.json()


async def test_unauthenticated_requests_are_refused(api: httpx.AsyncClient) -> None:
    for auth in (httpx.BasicAuth("sandbox@erpgw.test/token", "wrong"),
                 httpx.BasicAuth("sandbox@erpgw.test", "erpgw-sandbox-token")):
        refused = await api.get("/api/v2/tickets.json", auth=auth)
        assert (refused.status_code, refused.json()) == (401, {"error":
                                                              "Couldn't authenticate you"})
    missing = await api.get("/api/v2/tickets.json", auth=None)
    assert missing.status_code == 401
    bearer = await api.get("/api/v2/tickets.json",
                           headers={"Authorization": "Bearer erpgw-sandbox-oauth-token"})
    assert bearer.status_code == 200


async def test_unknown_routes_answer_invalid_endpoint(api: httpx.AsyncClient) -> None:
    for method, path in (("GET", "/api/v2/nothing.json"), ("DELETE", "/api/v2/search.json")):
        answer = await api.request(method, path)
        assert (answer.status_code, answer.json()) == (
            404, {"error": "InvalidEndpoint", "description": "Not found"})
    missing = await api.get("/api/v2/organizations/1.json")
    assert missing.json() == {"error": "RecordNotFound", "description": "Not found"}


async def test_every_response_carries_rate_limit_headers(api: httpx.AsyncClient) -> None:
    first = await api.get("/api/v2/tickets.json")
    second = await api.get("/api/v2/nothing")
    refused = await api.get("/api/v2/tickets", auth=httpx.BasicAuth("x", "y"))
    assert first.headers["x-rate-limit"] == "700"
    assert int(second.headers["x-rate-limit-remaining"]) == int(
        first.headers["x-rate-limit-remaining"]) - 1
    assert "x-rate-limit" in refused.headers
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_cursor_pages_link_forward_and_back(api: httpx.AsyncClient) -> None:
    first = (await api.get("/api/v2/tickets.json", params={"page[size]": 5})).json()
    assert first["meta"]["has_more"] is True
    assert first["links"]["next"].startswith("https://acme.zendesk.test/api/v2/tickets.json?")
    second = (await api.get(first["links"]["next"])).json()
    third = (await api.get(second["links"]["next"])).json()
    ids = [t["id"] for page in (first, second, third) for t in page["tickets"]]
    assert ids == list(range(1, 13))
    assert third["meta"]["has_more"] is False
    back = (await api.get(third["links"]["prev"])).json()
    assert [t["id"] for t in back["tickets"]] == list(range(6, 11))
    too_big = await api.get("/api/v2/tickets.json", params={"page[size]": 101})
    assert too_big.status_code == 400
    assert too_big.json()["errors"][0]["code"] == "InvalidPaginationParameter"
    bad_cursor = await api.get("/api/v2/tickets.json", params={"page[size]": 2,
                                                               "page[after]": "%%%"})
    assert bad_cursor.status_code == 400


async def test_offset_paging_stops_at_ten_thousand_records(api: httpx.AsyncClient) -> None:
    page = (await api.get("/api/v2/users.json", params={"per_page": 4, "page": 2})).json()
    assert page["count"] == 7
    assert len(page["users"]) == 3
    assert page["next_page"] is None
    assert page["previous_page"] == "https://acme.zendesk.test/api/v2/users.json?page=1&per_page=4"
    last_allowed = await api.get("/api/v2/users.json", params={"per_page": 100, "page": 100})
    assert (last_allowed.status_code, last_allowed.json()["users"]) == (200, [])
    refused = await api.get("/api/v2/users.json", params={"per_page": 100, "page": 101})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "InvalidPaginationParameter"


async def test_validation_errors_name_each_field(api: httpx.AsyncClient) -> None:
    refused = await api.post("/api/v2/tickets.json", json={"ticket": {
        "subject": "x", "priority": "asap", "requester_id": 1}})
    assert refused.status_code == 422
    body = refused.json()
    assert (body["error"], body["description"]) == ("RecordInvalid", "Record validation errors")
    assert set(body["details"]) == {"description", "priority", "requester_id"}
    assert body["details"]["priority"][0] == {"description": "Priority: asap is not valid",
                                              "error": "InvalidValue"}
    no_root = await api.post("/api/v2/organizations.json", json={"name": "x"})
    assert (no_root.status_code, no_root.json()) == (400, {
        "error": "ParameterMissing", "description": "Parameter organization is required"})


async def test_idempotent_ticket_creation(api: httpx.AsyncClient, clock: Clock) -> None:
    body = {"ticket": {"subject": "Refund", "comment": {"body": "Please refund"}}}
    key = {"Idempotency-Key": "k-1"}
    first = await api.post("/api/v2/tickets.json", json=body, headers=key)
    replay = await api.post("/api/v2/tickets.json", json=body, headers=key)
    assert (first.status_code, first.headers["x-idempotency-lookup"]) == (201, "miss")
    assert (replay.status_code, replay.headers["x-idempotency-lookup"]) == (201, "hit")
    assert replay.json() == first.json()
    assert replay.headers["location"] == first.headers["location"]
    other = await api.post("/api/v2/tickets.json", json={"ticket": {
        "subject": "Other", "comment": {"body": "x"}}}, headers=key)
    assert (other.status_code, other.json()["error"]) == (400, "IdempotentRequestError")
    clock.now += timedelta(hours=2, seconds=1)
    after_window = await api.post("/api/v2/tickets.json", json=body, headers=key)
    assert after_window.headers["x-idempotency-lookup"] == "miss"
    assert after_window.json()["ticket"]["id"] != first.json()["ticket"]["id"]


async def test_read_only_oauth_tokens_are_forbidden_to_write() -> None:
    emulator = ZendeskEmulator(read_only_oauth_token="ro")
    transport = httpx.ASGITransport(app=emulator.vendor)
    async with httpx.AsyncClient(transport=transport, base_url="https://z.test") as http:
        answer = await http.post("/api/v2/organizations.json", json={"organization": {
            "name": "x"}}, headers={"Authorization": "Bearer ro"})
    assert answer.status_code == 403
    assert answer.json()["error"]["title"] == "Forbidden"


async def test_sideloads_users_organizations_and_metrics(api: httpx.AsyncClient) -> None:
    answer = (await api.get("/api/v2/tickets/2.json",
                            params={"include": "users,organizations,metric_sets"})).json()
    assert [o["id"] for o in answer["organizations"]] == [int(org_id(ACME))]
    assert {u["email"] for u in answer["users"]} == {"ada@acme.test", "sam.rivera@northwind.test"}
    assert answer["ticket"]["metric_set"]["reply_time_in_minutes"] == {"calendar": 135,
                                                                       "business": 135}
    plain = (await api.get("/api/v2/tickets/2.json")).json()
    assert set(plain) == {"ticket"} and "metric_set" not in plain["ticket"]


async def test_search_finds_by_type_and_field(api: httpx.AsyncClient) -> None:
    await api.put(f"/api/v2/organizations/{org_id(GLOBEX)}.json",
                  json={"organization": {"external_id": "cus_globex"}})
    found = (await api.get("/api/v2/search.json",
                           params={"query": "type:organization external_id:cus_globex"})).json()
    assert [(r["result_type"], r["id"]) for r in found["results"]] == [
        ("organization", int(org_id(GLOBEX)))]
    urgent = (await api.get("/api/v2/search.json",
                            params={"query": "type:ticket priority:urgent"})).json()
    assert urgent["count"] == 4
    users = (await api.get("/api/v2/search.json",
                           params={"query": 'type:user email:"ben@acme.test"'})).json()
    assert [r["id"] for r in users["results"]] == [int(user_id("ben@acme.test"))]
    beyond = await api.get("/api/v2/search.json", params={"query": "x", "page": 11})
    assert beyond.status_code == 422


async def test_upsert_by_external_id(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v2/organizations/create_or_update.json", json={
        "organization": {"name": "Hooli", "external_id": "cus_h"}})
    updated = await api.post("/api/v2/organizations/create_or_update.json", json={
        "organization": {"name": "Hooli Inc", "external_id": "CUS_H"}})
    assert (created.status_code, updated.status_code) == (201, 200)
    assert created.json()["organization"]["id"] == updated.json()["organization"]["id"]
    found = (await api.get("/api/v2/organizations/search.json",
                           params={"external_id": "cus_h"})).json()
    assert [o["name"] for o in found["organizations"]] == ["Hooli Inc"]
    many = (await api.get("/api/v2/organizations/show_many.json",
                          params={"external_ids": "cus_h,unknown"})).json()
    assert [o["name"] for o in many["organizations"]] == ["Hooli Inc"]


async def test_the_seed_is_the_demo_company(api: httpx.AsyncClient) -> None:
    orgs = (await api.get("/api/v2/organizations.json")).json()["organizations"]
    acme = next(o for o in orgs if o["id"] == int(org_id(ACME)))
    assert acme["external_id"] is None
    assert acme["organization_fields"] == {
        "plan": "enterprise", "sla_first_response_minutes": 60, "credit_percent_per_breach": 5,
        "credit_cap_percent": 20, "legal_entity": "US01", "currency": "USD",
        "crm_account_id": "demo:acme"}
    tickets = (await api.get(f"/api/v2/organizations/{acme['id']}/tickets.json",
                             params={"include": "metric_sets"})).json()["tickets"]
    by_priority = {t["priority"]: t for t in tickets}
    assert by_priority["normal"]["status"] == "solved"
    urgent = by_priority["urgent"]["metric_set"]["reply_time_in_minutes"]["calendar"]
    assert urgent > acme["organization_fields"]["sla_first_response_minutes"]
    assert by_priority["high"]["metric_set"]["reply_time_in_minutes"]["calendar"] is None
    admins = (await api.get("/api/v2/users.json", params={"role": "admin"})).json()["users"]
    assert [a["email"] for a in admins] == ["sandbox@erpgw.test"]
    staff = (await api.get("/api/v2/users.json", params={"role": "agent"})).json()["users"]
    assert [a["id"] for a in staff] == [by_priority["urgent"]["assignee_id"]]


async def test_ids_are_the_same_on_every_reset() -> None:
    def snapshot(emulator: ZendeskEmulator) -> tuple[list[int], list[int], list[int]]:
        return (sorted(emulator.directory.organizations), sorted(emulator.directory.users),
                sorted(emulator.desk.tickets))

    first, second = ZendeskEmulator(), ZendeskEmulator()
    assert snapshot(first) == snapshot(second)
    first.desk.tickets.clear()
    first.reset()
    assert snapshot(first) == snapshot(second)


async def test_webhook_input_is_checked(api: httpx.AsyncClient) -> None:
    refused = await api.post("/api/v2/webhooks", json={"webhook": {
        "name": "x", "endpoint": "ftp://nowhere", "subscriptions": []}})
    assert refused.status_code == 400
    pointers = {e["source"]["pointer"] for e in refused.json()["errors"]}
    assert pointers == {"/webhook/endpoint", "/webhook/subscriptions"}


async def test_comments_and_first_response_follow_zendesk_rules(api: httpx.AsyncClient) -> None:
    internal = await api.put("/api/v2/tickets/3.json", json={"ticket": {
        "comment": {"body": "note", "public": False}}})
    assert internal.json()["audit"]["events"][0]["public"] is False
    metrics = (await api.get("/api/v2/tickets/3/metrics.json")).json()["ticket_metric"]
    assert metrics["reply_time_in_minutes"]["calendar"] is None
    await api.put("/api/v2/tickets/3.json", json={"ticket": {"comment": {
        "body": "reply", "public": True}, "status": "pending"}})
    metrics = (await api.get("/api/v2/tickets/3/metrics.json")).json()["ticket_metric"]
    assert metrics["reply_time_in_minutes"]["calendar"] is not None
    comments = (await api.get("/api/v2/tickets/3/comments.json")).json()["comments"]
    assert [c["body"] for c in comments][-2:] == ["note", "reply"]
    closed = await api.put("/api/v2/tickets/3.json", json={"ticket": {"status": "closed"}})
    assert closed.status_code == 200
    refused = await api.put("/api/v2/tickets/3.json", json={"ticket": {"priority": "low"}})
    assert refused.status_code == 422
