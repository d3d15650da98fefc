"""Injected faults and NetSuite's own limits, as the client classifies them."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from contracts.errors import UpstreamAuthFailed, UpstreamUnavailable
from gateway.sandbox_wiring import netsuite_sandbox_credentials as sandbox_credentials
from sandbox.netsuite import NetSuiteEmulator
from system_apis.erp.netsuite import NetSuiteClient
from system_apis.erp.netsuite._client_auth import ASSERTION_TYPE, sign_assertion

TOKEN = "/services/rest/auth/oauth2/v1/token"


async def _faults(http: httpx.AsyncClient, **faults: object) -> None:
    response = await http.post("/_emulator/faults", json=faults)
    assert response.status_code == 200


async def _counters(http: httpx.AsyncClient) -> dict[str, int]:
    response = await http.get("/_emulator/faults")
    counters: dict[str, int] = response.json()["counters"]
    return counters


async def test_outage_is_unavailable(http: httpx.AsyncClient, client: NetSuiteClient) -> None:
    await client.list_currencies()
    await _faults(http, outage=True, path="/services/rest/record/*")
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.get_customer("1")
    assert caught.value.status == 503 and caught.value.request_id
    assert (await _counters(http))["outage"] == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_unavailable(
    http: httpx.AsyncClient, client: NetSuiteClient, status: int
) -> None:
    await client.list_currencies()
    await _faults(http, error_rate=1.0, error_status=status, path="/services/rest/record/*")
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.list_legal_entities()
    assert caught.value.status == status
    assert (await _counters(http))["error"] == 1


async def test_rate_limit_carries_retry_after(
    http: httpx.AsyncClient, client: NetSuiteClient
) -> None:
    await client.list_currencies()
    await _faults(http, rate_limit=True, retry_after=7, path="/services/rest/record/*")
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.get_customer("1")
    assert caught.value.retry_after == 7.0
    assert caught.value.code == "CONCURRENCY_LIMIT_EXCEEDED"
    assert (await _counters(http))["rate_limit"] == 1


async def test_latency_beyond_timeout_is_a_timeout(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=1.5) as http:
        client = NetSuiteClient(http, credentials=sandbox_credentials(base_url))
        await client.list_currencies()
        await _faults(http, latency_ms=3_000, path="/services/rest/record/*")
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get_customer("1")
        assert caught.value.timeout is True
        await http.post("/_emulator/faults", json={})


async def test_concurrency_limit_answers_429(
    http: httpx.AsyncClient, client: NetSuiteClient, emulator: NetSuiteEmulator
) -> None:
    await client.list_currencies()
    await _faults(http, latency_ms=400, path="/services/rest/record/*")
    results = await asyncio.gather(
        *(client.list_legal_entities() for _ in range(8)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, UpstreamUnavailable)]
    assert len(refused) >= 3 and all(r.code == "CONCURRENCY_LIMIT_EXCEEDED" for r in refused)
    assert all(r.retry_after == 1.0 for r in refused)
    assert sum(isinstance(r, list) for r in results) >= 1
    assert emulator.vendor.concurrency_rejections >= 3


async def test_bad_credentials_are_auth_failed(http: httpx.AsyncClient, base_url: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    credentials = sandbox_credentials(base_url)
    wrong = NetSuiteClient(http, credentials=type(credentials)(
        account_id="X", client_id=credentials.client_id,
        certificate_id=credentials.certificate_id, private_key_pem=pem, base_url=base_url))
    with pytest.raises(UpstreamAuthFailed):
        await wrong.list_legal_entities()
    raw = await http.get("/services/rest/record/v1/customer",
                         headers={"Authorization": "Bearer nope"})
    assert raw.status_code == 401
    assert raw.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"


async def test_control_api_reset_restores_the_seed(
    http: httpx.AsyncClient, client: NetSuiteClient
) -> None:
    from contracts.v1 import CustomerCreate

    created = await client.upsert_customer(
        CustomerCreate(legal_name="Temp", legal_entity="US01", currency="USD"),
        external_id="temp")
    assert (await http.post("/_emulator/reset", json={})).json() == {"reset": True}
    fresh = NetSuiteClient(http, credentials=sandbox_credentials(str(http.base_url)))
    assert await fresh.find_customer(external_id="temp") is None
    again = await fresh.upsert_customer(
        CustomerCreate(legal_name="Temp", legal_entity="US01", currency="USD"),
        external_id="temp")
    assert again.id == created.id  # deterministic ids after a reset


def _assertion(base_url: str, *, key_pem: str, kid: str = "erpgw-sandbox-cert",
               aud: str | None = None, iat: float | None = None, life: int = 300) -> str:
    now = int(iat if iat is not None else time.time())
    header = {"alg": "PS256", "typ": "JWT", "kid": kid}
    claims = {"iss": "erpgw-sandbox", "scope": ["restlets", "rest_webservices"],
              "aud": aud or f"{base_url}{TOKEN}", "iat": now, "exp": now + life}
    return jwt.encode(header, claims, RSAKey.import_key(key_pem), algorithms=["PS256"])


def _form(assertion: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion}


async def test_token_endpoint_checks_the_assertion(
    http: httpx.AsyncClient, base_url: str, emulator: NetSuiteEmulator
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    emulator.register_certificate("rsa-cert", public)
    ok = await http.post(TOKEN, data=_form(_assertion(base_url, key_pem=private,
                                                      kid="rsa-cert")))
    assert ok.status_code == 200
    assert ok.json()["token_type"] == "bearer" and ok.json()["expires_in"] == 3600
    cases = {
        "wrong key": (_assertion(base_url, key_pem=private), 401, "invalid_client"),
        "unknown kid": (_assertion(base_url, key_pem=private, kid="nope"), 401,
                        "invalid_client"),
        "wrong aud": (_assertion(base_url, key_pem=private, kid="rsa-cert",
                                 aud="https://other.test/token"), 400, "invalid_grant"),
        "expired": (_assertion(base_url, key_pem=private, kid="rsa-cert",
                               iat=time.time() - 7200), 400, "invalid_grant"),
        "too long": (_assertion(base_url, key_pem=private, kid="rsa-cert", life=7200), 400,
                     "invalid_grant"),
    }
    for name, (assertion, status, error) in cases.items():
        response = await http.post(TOKEN, data=_form(assertion))
        assert (response.status_code, response.json()["error"]) == (status, error), name
    es = sign_assertion(client_id="erpgw-sandbox", certificate_id="erpgw-sandbox-cert",
                        private_key_pem=emulator.sandbox_private_key_pem,
                        token_url=f"{base_url}{TOKEN}")
    assert (await http.post(TOKEN, data=_form(es))).status_code == 200
    bad_grant = await http.post(TOKEN, data={**_form(es), "grant_type": "password"})
    assert bad_grant.json()["error"] == "unsupported_grant_type"
