"""The emulator at the wire: token flows, records, derived fields, upsert, collections, quota."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from authlib.oauth2.rfc7523 import JWTBearerGrant
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from sandbox.salesforce import SalesforceEmulator
from sandbox.salesforce.ids import is_record_id, seeded_id
from tests.system_apis.crm.salesforce.conftest import Served, token_for

DATA = "/services/data/v62.0"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


async def _auth(http: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await token_for(http)}"}


def _assertion(key_pem: str, *, aud: str, exp_in: int = 120, iss: str = "erpgw-sandbox",
               sub: str = "integration@erpgw-sandbox.example") -> str:
    now = int(time.time())
    signed = JWTBearerGrant.sign(
        RSAKey.import_key(key_pem), issuer=iss, audience=aud, subject=sub, issued_at=now,
        expires_at=now + exp_in, header={"alg": "RS256"},
    )
    return signed.decode() if isinstance(signed, bytes) else str(signed)


# -- token endpoint --------------------------------------------------------------------------


async def test_client_credentials_answer_has_salesforce_shape(
    served: Served, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        "/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "erpgw-sandbox",
              "client_secret": "erpgw-sandbox-secret"},
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "instance_url", "id", "token_type", "scope",
                         "issued_at", "signature"}
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == served.url
    assert body["id"].startswith(f"{served.url}/id/00D")


async def test_client_credentials_accepts_http_basic(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/services/oauth2/token", data={"grant_type": "client_credentials"},
        auth=("erpgw-sandbox", "erpgw-sandbox-secret"),
    )
    assert response.status_code == 200


async def test_bad_secret_and_unknown_grant_are_refused(http: httpx.AsyncClient) -> None:
    bad = await http.post(
        "/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "erpgw-sandbox",
              "client_secret": "wrong"},
    )
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid_client",
                          "error_description": "invalid client credentials"}
    odd = await http.post("/services/oauth2/token", data={"grant_type": "password"})
    assert odd.json()["error"] == "unsupported_grant_type"


async def test_jwt_bearer_with_registered_key_gets_a_working_token(
    served: Served, http: httpx.AsyncClient
) -> None:
    assertion = _assertion(served.emulator.sandbox_jwt_private_key_pem,
                           aud="https://login.salesforce.com")
    response = await http.post(
        "/services/oauth2/token", data={"grant_type": JWT_GRANT, "assertion": assertion}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    query = await http.get(f"{DATA}/query", params={"q": "SELECT Id FROM Account"},
                           headers={"Authorization": f"Bearer {token}"})
    assert query.status_code == 200


@pytest.mark.parametrize(
    ("aud", "exp_in", "description"),
    [
        ("https://example.com", 120, "audience is invalid"),
        ("https://test.salesforce.com", -10, "expired"),
        ("https://login.salesforce.com", 600, "3 minutes"),
    ],
)
async def test_jwt_bearer_refuses_bad_audience_and_expiry(
    served: Served, http: httpx.AsyncClient, aud: str, exp_in: int, description: str
) -> None:
    assertion = _assertion(served.emulator.sandbox_jwt_private_key_pem, aud=aud, exp_in=exp_in)
    response = await http.post(
        "/services/oauth2/token", data={"grant_type": JWT_GRANT, "assertion": assertion}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert description in response.json()["error_description"]


async def test_jwt_bearer_accepts_the_emulators_own_url_as_audience(
    served: Served, http: httpx.AsyncClient
) -> None:
    assertion = _assertion(served.emulator.sandbox_jwt_private_key_pem, aud=served.url)
    response = await http.post(
        "/services/oauth2/token", data={"grant_type": JWT_GRANT, "assertion": assertion}
    )
    assert response.status_code == 200


async def test_jwt_bearer_refuses_a_key_that_is_not_registered(
    served: Served, http: httpx.AsyncClient
) -> None:
    assert served.emulator.sandbox_jwt_private_key_pem  # registers the sandbox key
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    response = await http.post(
        "/services/oauth2/token",
        data={"grant_type": JWT_GRANT,
              "assertion": _assertion(other, aud="https://login.salesforce.com")},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    unknown = await http.post(
        "/services/oauth2/token",
        data={"grant_type": JWT_GRANT,
              "assertion": _assertion(other, aud="https://login.salesforce.com", iss="nobody")},
    )
    assert unknown.json()["error"] == "invalid_client_id"


async def test_data_api_needs_a_token(http: httpx.AsyncClient) -> None:
    response = await http.get(f"{DATA}/query", params={"q": "SELECT Id FROM Account"},
                              headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


# -- records ---------------------------------------------------------------------------------


async def test_seeded_ids_are_deterministic_and_survive_reset(served: Served,
                                                              http: httpx.AsyncClient) -> None:
    acme = seeded_id("Account", "acme")
    headers = await _auth(http)
    before = await http.get(f"{DATA}/sobjects/Account/{acme}", headers=headers)
    assert before.json()["Name"] == "Acme Robotics Inc."
    await http.delete(f"{DATA}/sobjects/Account/{acme}", headers=headers)
    gone = await http.get(f"{DATA}/sobjects/Account/{acme}", headers=headers)
    assert gone.status_code == 404
    assert gone.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    reset = await http.post("/_emulator/reset", json={})
    assert reset.status_code == 200
    headers = await _auth(http)
    after = await http.get(f"{DATA}/sobjects/Account/{acme}", headers=headers)
    assert after.json()["Id"] == acme


async def test_record_carries_attributes_and_decimal_money(http: httpx.AsyncClient) -> None:
    headers = await _auth(http)
    entry = seeded_id("PricebookEntry", "SEAT:USD")
    response = await http.get(f"{DATA}/sobjects/PricebookEntry/{entry}", headers=headers)
    body = response.json()
    assert body["attributes"] == {"type": "PricebookEntry",
                                  "url": f"{DATA}/sobjects/PricebookEntry/{entry}"}
    assert body["UnitPrice"] == 25.0
    assert b'"UnitPrice":25.00' in response.content
    assert body["ProductCode"] == "SEAT"
    assert response.headers["Sforce-Limit-Info"].startswith("api-usage=")


async def test_create_update_delete_and_field_rules(http: httpx.AsyncClient) -> None:
    headers = await _auth(http)
    created = await http.post(f"{DATA}/sobjects/Account", headers=headers,
                              json={"Name": "Hooli", "Legal_Entity__c": "US01"})
    assert created.status_code == 201
    body = created.json()
    assert body["success"] is True and body["errors"] == []
    assert is_record_id(body["id"]) and body["id"].startswith("001")
    assert created.headers["Location"] == f"{DATA}/sobjects/Account/{body['id']}"
    updated = await http.patch(f"{DATA}/sobjects/Account/{body['id']}", headers=headers,
                               json={"Phone": "+1 555 0100"})
    assert updated.status_code == 204
    read = await http.get(f"{DATA}/sobjects/Account/{body['id'][:15]}",
                          params={"fields": "Phone,CurrencyIsoCode"}, headers=headers)
    assert read.json() == {"attributes": read.json()["attributes"], "Phone": "+1 555 0100",
                           "CurrencyIsoCode": "USD"}
    missing = await http.post(f"{DATA}/sobjects/Account", headers=headers, json={"Phone": "1"})
    assert missing.status_code == 400
    assert missing.json() == [{"message": "Required fields are missing: [Name]",
                               "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Name"]}]
    unknown = await http.patch(f"{DATA}/sobjects/Account/{body['id']}", headers=headers,
                               json={"Nmae": "x"})
    assert unknown.json()[0]["errorCode"] == "INVALID_FIELD"
    readonly = await http.patch(f"{DATA}/sobjects/Account/{body['id']}", headers=headers,
                                json={"SystemModstamp": "2026-01-01T00:00:00.000+0000"})
    assert readonly.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    deleted = await http.delete(f"{DATA}/sobjects/Account/{body['id']}", headers=headers)
    assert deleted.status_code == 204


async def test_stage_sets_won_and_closed_and_lines_sum_into_amount(
    http: httpx.AsyncClient,
) -> None:
    headers = await _auth(http)
    opportunity = await http.post(
        f"{DATA}/sobjects/Opportunity", headers=headers,
        json={"Name": "Initech - Seats", "StageName": "Prospecting", "CloseDate": "2026-12-01",
              "AccountId": seeded_id("Account", "initech")},
    )
    opp_id = opportunity.json()["id"]
    for code, quantity, price in (("SEAT", 3, None), ("PLAT-STD", 2, 450.5)):
        line: dict[str, Any] = {"OpportunityId": opp_id, "Quantity": quantity,
                                "PricebookEntryId": seeded_id("PricebookEntry", f"{code}:USD")}
        if price is not None:
            line["UnitPrice"] = price
        made = await http.post(f"{DATA}/sobjects/OpportunityLineItem", headers=headers,
                               json=line)
        assert made.status_code == 201, made.text
    wrong_currency = await http.post(
        f"{DATA}/sobjects/OpportunityLineItem", headers=headers,
        json={"OpportunityId": opp_id, "Quantity": 1,
              "PricebookEntryId": seeded_id("PricebookEntry", "SEAT:EUR")},
    )
    assert wrong_currency.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    await http.patch(f"{DATA}/sobjects/Opportunity/{opp_id}", headers=headers,
                     json={"StageName": "Closed Won"})
    read = (await http.get(f"{DATA}/sobjects/Opportunity/{opp_id}", headers=headers)).json()
    assert read["IsWon"] is True and read["IsClosed"] is True
    assert read["Amount"] == 3 * 25 + 2 * 450.5
    assert read["Pricebook2Id"] == seeded_id("Pricebook2", "standard")
    await http.patch(f"{DATA}/sobjects/Opportunity/{opp_id}", headers=headers,
                     json={"StageName": "Closed Lost"})
    lost = (await http.get(f"{DATA}/sobjects/Opportunity/{opp_id}", headers=headers)).json()
    assert (lost["IsWon"], lost["IsClosed"]) == (False, True)


async def test_contract_end_date_is_computed(http: httpx.AsyncClient) -> None:
    headers = await _auth(http)
    made = await http.post(
        f"{DATA}/sobjects/Contract", headers=headers,
        json={"AccountId": seeded_id("Account", "acme"), "StartDate": "2026-01-31",
              "ContractTerm": 12},
    )
    contract = (await http.get(f"{DATA}/sobjects/Contract/{made.json()['id']}",
                               headers=headers)).json()
    assert contract["EndDate"] == "2027-01-30"
    assert contract["Status"] == "Draft"
    assert contract["Id"].startswith("800")


async def test_upsert_creates_then_updates_then_reports_ambiguity(
    http: httpx.AsyncClient,
) -> None:
    headers = await _auth(http)
    url = f"{DATA}/sobjects/Account/ERP_Customer_Id__c/CUST-9"
    first = await http.patch(url, headers=headers, json={"Name": "Nine", "Legal_Entity__c": "US01"})
    assert first.status_code == 201
    assert first.json()["created"] is True
    second = await http.patch(url, headers=headers, json={"Name": "Nine Ltd"})
    assert second.status_code == 200
    assert second.json() == {"id": first.json()["id"], "success": True, "errors": [],
                             "created": False}
    await http.post(f"{DATA}/sobjects/Account", headers=headers,
                    json={"Name": "Twin", "ERP_Customer_Id__c": "cust-9"})
    third = await http.patch(url, headers=headers, json={"Name": "x"})
    assert third.status_code == 300
    assert len(third.json()) == 2
    assert all(u.startswith(f"{DATA}/sobjects/Account/") for u in third.json())
    not_external = await http.patch(f"{DATA}/sobjects/Account/Name/x", headers=headers, json={})
    assert not_external.status_code == 404


async def test_collections_all_or_none_rolls_back(http: httpx.AsyncClient) -> None:
    headers = await _auth(http)
    records = [
        {"attributes": {"type": "Contact"}, "LastName": "Dyer"},
        {"attributes": {"type": "Contact"}, "FirstName": "Markus"},
    ]
    rolled = await http.post(f"{DATA}/composite/sobjects", headers=headers,
                             json={"allOrNone": True, "records": records})
    assert rolled.status_code == 200
    first, second = rolled.json()
    assert first["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert second["errors"][0] == {"statusCode": "REQUIRED_FIELD_MISSING",
                                   "message": "Required fields are missing: [LastName]",
                                   "fields": ["LastName"]}
    count = await http.get(f"{DATA}/query", headers=headers,
                           params={"q": "SELECT Id FROM Contact WHERE LastName = 'Dyer'"})
    assert count.json()["totalSize"] == 0
    partial = await http.post(f"{DATA}/composite/sobjects", headers=headers,
                              json={"allOrNone": False, "records": records})
    made, failed = partial.json()
    assert made["success"] is True and failed["success"] is False
    renamed = await http.patch(
        f"{DATA}/composite/sobjects", headers=headers,
        json={"records": [{"attributes": {"type": "Contact"}, "id": made["id"],
                           "LastName": "Dyer-Smith"}, {"LastName": "no id"}]},
    )
    ok, missing = renamed.json()
    assert ok == {"id": made["id"], "success": True, "errors": []}
    assert missing["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    empty = await http.post(f"{DATA}/composite/sobjects", headers=headers, json={"records": []})
    assert empty.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"


async def test_unknown_routes_methods_and_types_answer_in_salesforce_shape(
    http: httpx.AsyncClient,
) -> None:
    headers = await _auth(http)
    nowhere = await http.get(f"{DATA}/nowhere", headers=headers)
    assert nowhere.status_code == 404
    assert nowhere.json() == [{"message": "The requested resource does not exist",
                               "errorCode": "NOT_FOUND"}]
    put = await http.put(f"{DATA}/sobjects/Account/{seeded_id('Account', 'acme')}",
                         headers=headers, json={})
    assert put.status_code == 405
    assert put.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    unknown = await http.post(f"{DATA}/sobjects/Widget__c", headers=headers, json={})
    assert unknown.json()[0]["errorCode"] == "INVALID_TYPE"
    garbage = await http.post(f"{DATA}/sobjects/Account", headers=headers, content=b"{nope")
    assert garbage.status_code == 400
    assert garbage.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    old = await http.get("/services/data/v20.0/query", params={"q": "SELECT Id FROM Account"},
                         headers=headers)
    assert old.status_code == 404


async def test_versions_list_needs_no_token(http: httpx.AsyncClient) -> None:
    response = await http.get("/services/data/")
    assert response.status_code == 200
    assert {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"} in (
        response.json()
    )


async def test_query_pages_follow_next_records_url(served: Served,
                                                   http: httpx.AsyncClient) -> None:
    headers = await _auth(http)
    first = (await http.get(f"{DATA}/query", headers=headers,
                            params={"q": "SELECT Name FROM Account ORDER BY Name"})).json()
    assert first["totalSize"] == 4 and first["done"] is False
    assert first["nextRecordsUrl"].startswith(f"{DATA}/query/01g")
    second = (await http.get(first["nextRecordsUrl"], headers=headers)).json()
    assert second["done"] is True and "nextRecordsUrl" not in second
    names = [r["Name"] for r in first["records"] + second["records"]]
    assert names == sorted(names)


# -- quota and control API -------------------------------------------------------------------


@pytest.fixture
async def small_quota() -> AsyncIterator[httpx.AsyncClient]:
    emulator = SalesforceEmulator(daily_api_limit=3)
    transport = httpx.ASGITransport(app=emulator.vendor)
    async with httpx.AsyncClient(transport=transport, base_url="http://sf.test") as http:
        yield http


async def test_daily_quota_is_reported_then_enforced(small_quota: httpx.AsyncClient) -> None:
    headers = await _auth(small_quota)
    seen = []
    for _ in range(3):
        response = await small_quota.get(f"{DATA}/limits", headers=headers)
        assert response.status_code == 200
        seen.append(response.headers["Sforce-Limit-Info"])
    assert seen == ["api-usage=1/3", "api-usage=2/3", "api-usage=3/3"]
    spent = await small_quota.get(f"{DATA}/limits", headers=headers)
    assert spent.status_code == 403
    assert spent.json() == [{"message": "TotalRequests Limit exceeded.",
                             "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert spent.headers["Sforce-Limit-Info"] == "api-usage=3/3"


async def test_faults_are_counted_and_rendered_in_vendor_shape(
    http: httpx.AsyncClient,
) -> None:
    headers = await _auth(http)
    await http.post("/_emulator/faults", json={"rate_limit": True, "retry_after": 9})
    limited = await http.get(f"{DATA}/limits", headers=headers)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "9"
    assert limited.headers["Sforce-Limit-Info"].startswith("api-usage=")
    assert limited.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    await http.post("/_emulator/faults", json={"outage": True})
    down = await http.get(f"{DATA}/limits", headers=headers)
    assert down.status_code == 503
    assert down.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    state = (await http.get("/_emulator/faults")).json()
    assert state["counters"]["outage"] == 1
