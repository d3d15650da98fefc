"""The authorization server as an OAuth client sees it: the token endpoint (client
credentials), its RFC 6749 errors, the tokens it mints, the JWKS, the RFC 8414 metadata and
`whoami`."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from contracts.scopes import SCOPES
from tests.gateway.conftest import gateway_of, make_client, token_for

TOKEN = "/oauth/token"
GRANT = {"grant_type": "client_credentials"}


def _decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _signature = token.split(".")
    return _segment(header), _segment(payload)


def _segment(text: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return decoded


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def assert_oauth_error(response: httpx.Response, status: int, error: str, *secrets: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str)
    assert body["error_description"]
    for secret in secrets:
        assert secret not in response.text
        assert all(secret not in value for value in response.headers.values())


@pytest.fixture
def credentials(client: TestClient[Litestar]) -> tuple[str, str]:
    return make_client(client, ["crm:read", "billing:read"], tier="silver")


def test_token_with_http_basic(client: TestClient[Litestar], credentials: tuple[str, str]) -> None:
    response = client.post(TOKEN, data=GRANT, auth=credentials)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == gateway_of(client).settings.token_ttl_seconds
    assert body["scope"] == "billing:read crm:read"
    assert body["access_token"].count(".") == 2


def test_token_with_client_secret_post(
    client: TestClient[Litestar], credentials: tuple[str, str]
) -> None:
    client_id, secret = credentials

    response = client.post(TOKEN, data={**GRANT, "client_id": client_id, "client_secret": secret})

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["token_type"] == "Bearer"


def test_basic_credentials_are_form_urlencoded_per_rfc6749(
    client: TestClient[Litestar], credentials: tuple[str, str]
) -> None:
    client_id, secret = credentials
    assert secret.startswith("cs_")
    encoded = "%63s_" + secret[3:]  # "%63" is "c"

    response = client.post(TOKEN, data=GRANT, headers=_basic(client_id, encoded))

    assert response.status_code == 200


def test_requested_scope_subset_is_honoured(
    client: TestClient[Litestar], credentials: tuple[str, str]
) -> None:
    response = client.post(TOKEN, data={**GRANT, "scope": "crm:read"}, auth=credentials)

    assert response.status_code == 200
    assert response.json()["scope"] == "crm:read"
    _header, claims = _decode_unverified(response.json()["access_token"])
    assert claims["scope"] == "crm:read"


@pytest.mark.parametrize(
    "who",
    ["wrong-secret", "unknown-client", "revoked-client"],
)
def test_bad_client_credentials_are_invalid_client(
    client: TestClient[Litestar], credentials: tuple[str, str], who: str
) -> None:
    client_id, secret = credentials
    if who == "wrong-secret":
        secret = secret[:-4] + "AAAA"
    elif who == "unknown-client":
        client_id = "cl_0000000000000000"
    else:
        with client.portal() as portal:
            portal.call(gateway_of(client).clients.revoke, client_id)

    basic = client.post(TOKEN, data=GRANT, auth=(client_id, secret))
    posted = client.post(TOKEN, data={**GRANT, "client_id": client_id, "client_secret": secret})

    assert_oauth_error(basic, 401, "invalid_client", secret)
    assert basic.headers["www-authenticate"].startswith("Basic ")
    assert_oauth_error(posted, 401, "invalid_client", secret)
    assert "www-authenticate" in posted.headers


def test_request_without_client_authentication_is_invalid_client(
    client: TestClient[Litestar],
) -> None:
    response = client.post(TOKEN, data=GRANT)

    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")


@pytest.mark.parametrize(
    "authorization", ["Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"no-colon").decode()]
)
def test_malformed_basic_credentials_are_invalid_client(
    client: TestClient[Litestar], authorization: str
) -> None:
    response = client.post(TOKEN, data=GRANT, headers={"Authorization": authorization})

    assert_oauth_error(response, 401, "invalid_client")


def test_scope_not_granted_is_invalid_scope(
    client: TestClient[Litestar], credentials: tuple[str, str]
) -> None:
    response = client.post(TOKEN, data={**GRANT, "scope": "crm:read crm:write"}, auth=credentials)

    assert_oauth_error(response, 400, "invalid_scope", credentials[1])
    assert "crm:write" in response.json()["error_description"]


def test_other_grant_is_unsupported_grant_type(
    client: TestClient[Litestar], credentials: tuple[str, str]
) -> None:
    response = client.post(TOKEN, data={"grant_type": "password"}, auth=credentials)

    assert_oauth_error(response, 400, "unsupported_grant_type", credentials[1])


def test_missing_grant_type_is_invalid_request(
    client: TestClient[Litestar], credentials: tuple[str, str]
) -> None:
    response = client.post(TOKEN, data={"scope": "crm:read"}, auth=credentials)

    assert_oauth_error(response, 400, "invalid_request", credentials[1])


def test_json_body_is_invalid_request(
    client: TestClient[Litestar], credentials: tuple[str, str]
) -> None:
    client_id, secret = credentials

    response = client.post(TOKEN, json={**GRANT, "client_id": client_id, "client_secret": secret})

    assert_oauth_error(response, 400, "invalid_request", secret)


def test_two_client_authentication_methods_are_invalid_request(
    client: TestClient[Litestar], credentials: tuple[str, str]
) -> None:
    client_id, secret = credentials

    response = client.post(
        TOKEN,
        data={**GRANT, "client_id": client_id, "client_secret": secret},
        auth=credentials,
    )

    assert_oauth_error(response, 400, "invalid_request", secret)


def test_repeated_parameter_is_invalid_request(
    client: TestClient[Litestar], credentials: tuple[str, str]
) -> None:
    response = client.post(
        TOKEN,
        content=b"grant_type=client_credentials&scope=crm:read&scope=billing:read",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=credentials,
    )

    assert_oauth_error(response, 400, "invalid_request", credentials[1])


def test_minted_token_carries_the_clients_claims(client: TestClient[Litestar]) -> None:
    gateway = gateway_of(client)
    client_id, secret = make_client(
        client, ["experience:portal"], tier="bronze", entities=["US01", "DE02"], customer="cus_42"
    )

    header, claims = _decode_unverified(token_for(client, client_id, secret))

    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": gateway.keys.current.kid}
    assert claims["iss"] == gateway.settings.issuer
    assert claims["aud"] == gateway.settings.audience
    assert claims["sub"] == client_id
    assert claims["client_id"] == client_id
    assert claims["exp"] - claims["iat"] == gateway.settings.token_ttl_seconds
    # Unique per token: revocation and replay checks key on it.
    _, again = _decode_unverified(token_for(client, client_id, secret))
    assert len(claims["jti"]) >= 16 and again["jti"] != claims["jti"]
    assert claims["scope"] == "experience:portal"
    assert claims["tier"] == "bronze"
    assert claims["entities"] == ["DE02", "US01"]
    assert claims["customer"] == "cus_42"


def test_token_of_an_unrestricted_client_has_no_entities_or_customer(
    client: TestClient[Litestar],
) -> None:
    client_id, secret = make_client(client, ["crm:read"])

    first = token_for(client, client_id, secret)
    second = token_for(client, client_id, secret)
    _header, claims = _decode_unverified(first)

    assert "entities" not in claims
    assert "customer" not in claims
    assert claims["jti"] != _decode_unverified(second)[1]["jti"]


def test_jwks_publishes_public_keys_only(client: TestClient[Litestar]) -> None:
    response = client.get("/.well-known/jwks.json")

    assert response.status_code == 200
    keys = response.json()["keys"]
    assert [key["kid"] for key in keys] == [gateway_of(client).keys.current.kid]
    for key in keys:
        assert key["kty"] == "EC"
        assert key["crv"] == "P-256"
        assert key["alg"] == "ES256"
        assert key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()


def test_authorization_server_metadata(client: TestClient[Litestar]) -> None:
    issuer = gateway_of(client).settings.issuer

    response = client.get("/.well-known/oauth-authorization-server")

    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == issuer
    assert meta["token_endpoint"] == f"{issuer}/oauth/token"
    assert meta["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert meta["grant_types_supported"] == ["client_credentials"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert set(meta["scopes_supported"]) == SCOPES
    assert "response_types_supported" in meta


def test_metadata_issuer_is_the_tokens_iss(client: TestClient[Litestar]) -> None:
    client_id, secret = make_client(client, ["crm:read"])

    _header, claims = _decode_unverified(token_for(client, client_id, secret))

    assert claims["iss"] == client.get("/.well-known/oauth-authorization-server").json()["issuer"]


def test_whoami_shows_what_the_token_carries(client: TestClient[Litestar]) -> None:
    client_id, secret = make_client(
        client,
        ["experience:portal", "billing:read"],
        tier="silver",
        entities=["US01"],
        customer="cus_42",
        name="portal for cus_42",
    )
    token = token_for(client, client_id, secret, scope="experience:portal")

    response = client.get("/gateway/v1/whoami", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json() == {
        "client_id": client_id,
        "name": "portal for cus_42",
        "scopes": ["experience:portal"],
        "tier": "silver",
        "entities": ["US01"],
        "customer": "cus_42",
    }


def test_whoami_needs_a_token(client: TestClient[Litestar]) -> None:
    response = client.get("/gateway/v1/whoami")

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
