"""Injected faults and Zendesk's own limits, as the client classifies them; the control API."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from contracts.errors import (
    UpstreamAuthFailed,
    UpstreamInvalid,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from gateway.sandbox_wiring import zendesk_sandbox_credentials as sandbox_credentials
from sandbox.credentials import ZENDESK
from sandbox.zendesk import ZendeskEmulator
from system_apis.support.zendesk import ZendeskClient
from system_apis.support.zendesk._client_auth import ZendeskApiTokenAuth, ZendeskOAuthAuth
from tests.system_apis.support.zendesk.seed import ACME, org_id


async def _set_faults(http: httpx.AsyncClient, **faults: object) -> dict[str, object]:
    response = await http.post("/_emulator/faults", json=faults)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _counters(http: httpx.AsyncClient) -> dict[str, int]:
    return dict((await http.get("/_emulator/faults")).json()["counters"])


async def test_outage_is_unavailable(client: ZendeskClient, http: httpx.AsyncClient) -> None:
    await _set_faults(http, outage=True)
    with pytest.raises(UpstreamUnavailable) as failed:
        await client.get_organization(org_id(ACME))
    assert failed.value.status == 503
    assert (await _counters(http))["outage"] == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_unavailable(
    client: ZendeskClient, http: httpx.AsyncClient, status: int
) -> None:
    await _set_faults(http, error_rate=1.0, error_status=status)
    with pytest.raises(UpstreamUnavailable) as failed:
        await client.list_organizations()
    assert failed.value.status == status
    assert (await _counters(http))["error"] == 1


async def test_injected_429_carries_retry_after(
    client: ZendeskClient, http: httpx.AsyncClient, base_url: str
) -> None:
    await _set_faults(http, rate_limit=True, retry_after=7)
    with pytest.raises(UpstreamUnavailable) as failed:
        await client.get_case("1")
    assert (failed.value.status, failed.value.retry_after) == (429, 7.0)
    raw = await http.get("/api/v2/tickets/1.json")
    assert raw.headers["retry-after"] == "7"
    assert raw.headers["x-rate-limit-remaining"] == "0"
    assert raw.json() == {"errors": [{"code": "TooManyRequests", "title": "Too many requests"}]}
    assert (await _counters(http))["rate_limit"] == 2


async def test_latency_beyond_the_timeout_is_a_timeout(
    http: httpx.AsyncClient, base_url: str
) -> None:
    await _set_faults(http, latency_ms=3_000)
    async with httpx.AsyncClient(base_url=base_url, timeout=1.5) as impatient:
        client = ZendeskClient(impatient, credentials=sandbox_credentials(base_url))
        with pytest.raises(UpstreamUnavailable) as failed:
            await client.get_organization(org_id(ACME))
    assert failed.value.timeout is True
    assert (await _counters(http))["latency"] == 1


async def test_injected_client_errors_keep_their_meaning(
    client: ZendeskClient, http: httpx.AsyncClient
) -> None:
    await _set_faults(http, error_rate=1.0, error_status=404)
    with pytest.raises(UpstreamNotFound):
        await client.get_case("1")
    await _set_faults(http, error_rate=1.0, error_status=422)
    with pytest.raises(UpstreamInvalid) as invalid:
        await client.get_case("1")
    assert [e.pointer for e in invalid.value.errors] == ["base"]
    await _set_faults(http, error_rate=1.0, error_status=401)
    with pytest.raises(UpstreamAuthFailed):
        await client.get_case("1")


async def test_faults_can_target_one_path(client: ZendeskClient, http: httpx.AsyncClient) -> None:
    await _set_faults(http, outage=True, path="/api/v2/tickets*")
    assert (await client.get_organization(org_id(ACME))).legal_name == "Acme Robotics Inc."
    with pytest.raises(UpstreamUnavailable):
        await client.get_case("1")


async def test_missing_records_are_not_found(client: ZendeskClient) -> None:
    with pytest.raises(UpstreamNotFound) as missing:
        await client.get_organization("999")
    assert "RecordNotFound" in missing.value.message
    assert missing.value.request_id is not None
    assert missing.value.request_id in missing.value.message
    with pytest.raises(UpstreamNotFound):
        await client.get_case("999999")


async def test_wrong_credentials_fail_authentication(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as http:
        wrong = ZendeskClient(http, auth=ZendeskApiTokenAuth("sandbox@erpgw.test", "nope"))
        with pytest.raises(UpstreamAuthFailed) as refused:
            await wrong.list_organizations()
        assert refused.value.status == 401
        oauth = ZendeskClient(http, auth=ZendeskOAuthAuth(ZENDESK.oauth_token))
        assert len((await oauth.list_organizations()).data) == 4


async def test_read_only_token_may_not_write() -> None:
    emulator = ZendeskEmulator(read_only_oauth_token="read-only")
    transport = httpx.ASGITransport(app=emulator.vendor)
    async with httpx.AsyncClient(transport=transport, base_url="https://z.test") as http:
        client = ZendeskClient(http, auth=ZendeskOAuthAuth("read-only"))
        assert (await client.get_organization(org_id(ACME))).legal_entity == "US01"
        with pytest.raises(UpstreamAuthFailed) as refused:
            await client.create_webhook(name="x", endpoint="http://127.0.0.1:8000/hook")
    assert refused.value.status == 403
    assert "Forbidden" in refused.value.message


async def test_account_rate_limit_answers_429_with_retry_after() -> None:
    moment = datetime(2026, 11, 20, 10, 0, 15, tzinfo=UTC)
    emulator = ZendeskEmulator(rate_limit_per_minute=3, clock=lambda: moment)
    transport = httpx.ASGITransport(app=emulator.vendor)
    async with httpx.AsyncClient(transport=transport, base_url="https://z.test") as http:
        client = ZendeskClient(http, credentials=sandbox_credentials("https://z.test"))
        for _ in range(3):
            await client.get_case("1")
        with pytest.raises(UpstreamUnavailable) as limited:
            await client.get_case("1")
        raw = await http.get("/api/v2/tickets/1.json")
    assert (limited.value.status, limited.value.retry_after) == (429, 45.0)
    assert (raw.headers["x-rate-limit"], raw.headers["x-rate-limit-remaining"]) == ("3", "0")


async def test_reset_restores_the_seed(
    client: ZendeskClient, http: httpx.AsyncClient, emulator: ZendeskEmulator
) -> None:
    before = [c.id for c in (await client.list_organizations(limit=100)).data]
    await _set_faults(http, outage=True)
    # The control API is never affected by the faults it sets.
    reset = await http.post("/_emulator/reset", json={})
    assert reset.json() == {"reset": True}
    await client.upsert_organization(
        (await client.get_organization(org_id(ACME))), external_id="cus_acme")
    assert (await client.find_organization("cus_acme")) is not None
    await http.post("/_emulator/reset", json={})
    assert await client.find_organization("cus_acme") is None
    assert [c.id for c in (await client.list_organizations(limit=100)).data] == before
    state = (await http.get("/_emulator/faults")).json()
    assert state["faults"]["outage"] is False
    assert len(emulator.desk.tickets) == 12
