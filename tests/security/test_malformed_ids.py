"""An id that is not in the vendor's id format is a record that does not exist: 404, the same
problem as a well-formed missing id, and the vendor never sees it (nor its query or request id
the caller)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.apps import app_client, bearer, gateway_app, new_client_token, settings_for

READ = ["crm:read", "billing:read", "support:read", "erp:read"]

# (route, a well-formed id that does not exist, malformed ids)
ID_ROUTES = [
    ("/system/crm/v1/accounts/{}", "001000000000000AAA",
     ["abc", "006000000000000AAA", "001'OR'1'='1xxxx", "0010000000000000"]),
    ("/system/crm/v1/accounts/{}/contacts", "001000000000000",
     ["x", "zzzzzzzzzzzzzzz"]),
    ("/system/crm/v1/opportunities/{}", "006000000000000AAA",
     ["abc", "001000000000000AAA", "006 00000000000"]),
    ("/system/billing/v1/subscriptions/{}", "sub_000000000000",
     ["abc", "in_0000", "sub_'x"]),
    ("/system/billing/v1/invoices/{}", "in_000000000000", ["abc", "sub_0000", "in_"]),
    ("/system/support/v1/organizations/{}", "999999999", ["abc", "-1", "1.5"]),
    ("/system/support/v1/entitlements/{}", "999999999", ["abc"]),
    ("/system/erp/v1/customers/{}", "999999999", ["abc", "1 OR 1=1", "1'"]),
    ("/system/erp/v1/sales-orders/{}", "999999999", ["abc"]),
    ("/system/erp/v1/invoices/{}", "999999999", ["abc"]),
    ("/system/erp/v1/approvals/{}", "999999999", ["abc"]),
]


@pytest.mark.parametrize(("route", "missing", "malformed"), ID_ROUTES)
async def test_a_malformed_id_answers_as_a_missing_one(
    tmp_path: Path, route: str, missing: str, malformed: list[str]
) -> None:
    app = gateway_app(settings_for(tmp_path, emulated=True))
    async with app_client(app) as client:
        _, token = await new_client_token(client, READ)
        control = await client.get(route.format(missing), headers=bearer(token))
        assert control.status_code == 404, control.text
        for value in malformed:
            response = await client.get(route.format(value), headers=bearer(token))
            assert response.status_code == 404, (value, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            body = response.json()
            assert body["type"] == control.json()["type"]
            text = response.text.lower()
            for internal in ("select ", " from ", "request id", "malformed", "soql", "vendor"):
                assert internal not in text, (value, response.text)


async def test_an_id_with_a_wrong_checksum_never_reaches_salesforce(tmp_path: Path) -> None:
    app = gateway_app(settings_for(tmp_path, emulated=True))
    async with app_client(app) as client:
        _, token = await new_client_token(client, READ)
        accounts = await client.get("/system/crm/v1/accounts", headers=bearer(token))
        real = accounts.json()["data"][0]["id"]
        assert len(real) == 18
        # Control: the real id reads.
        assert (await client.get(f"/system/crm/v1/accounts/{real}", headers=bearer(token))
                ).status_code == 200
        wrong = real[:15] + ("AAA" if real[15:] != "AAA" else "BBB")
        for path in (f"/system/crm/v1/accounts/{wrong}", "/system/crm/v1/opportunities/"
                     "006000000000000000"):
            response = await client.get(path, headers=bearer(token))
            assert response.status_code == 404, response.text
            assert "select" not in response.text.lower()
            assert "request id" not in response.text.lower()


@pytest.mark.parametrize("status", [400, 404, 409])
async def test_a_vendor_refusal_reaches_the_caller_without_the_vendors_words(
    tmp_path: Path, status: int
) -> None:
    app = gateway_app(settings_for(tmp_path, emulated=True))
    async with app_client(app) as client:
        _, token = await new_client_token(client, READ)
        control = await client.get("/system/crm/v1/accounts", headers=bearer(token))
        assert control.status_code == 200
        faults = await client.post(
            "/_sandbox/salesforce/_emulator/faults",
            json={"error_rate": 1.0, "error_status": status},
        )
        assert faults.status_code == 200, faults.text
        refused = await client.get("/system/crm/v1/accounts", headers=bearer(token))
        assert 400 <= refused.status_code < 600 and refused.status_code != 200
        assert refused.headers["content-type"].startswith("application/problem+json")
        body = refused.json()
        assert body["vendor"] == "salesforce"
        text = refused.text.lower()
        for internal in ("request id", "/services/data", "select ", "answered"):
            assert internal not in text, refused.text
