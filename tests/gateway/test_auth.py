"""Access-token validation as a caller sees it: forged and mangled tokens are refused with a
Bearer challenge and a problem+json body, each beside a control token made the same way that
is accepted; scopes, revocation, key rotation and an external identity provider."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from litestar import Litestar, Request, Response, get
from litestar.testing import TestClient

from contracts.principal import Principal
from gateway.app import create_app
from gateway.keys import KeyStore
from gateway.settings import Settings, load_settings
from tests.gateway.conftest import gateway_of, make_client, token_for
from tests.support.servers import serve_asgi

PROBE_PATH = "/test/crm-probe"
IDP_ISSUER = "https://idp.example.test"


@get(PROBE_PATH, opt={"scopes": ["crm:read"]}, sync_to_thread=False)
def crm_probe(request: Request[Principal, Any, Any]) -> dict[str, str]:
    """A route declaring a scope, standing in for a real `crm:read` route."""
    return {"client_id": request.user.client_id}


@pytest.fixture
def app(gateway_settings: Settings) -> Litestar:
    app = create_app(gateway_settings)
    app.register(crm_probe)
    return app


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: object) -> str:
    return _b64(json.dumps(value).encode())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _kid_of(token: str) -> str:
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    return str(header["kid"])


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert challenge.isascii()
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 401
    assert body["title"] == "Unauthenticated"
    assert body["detail"]


@dataclass
class Forger:
    """Makes tokens for one real client of the app, signed with our current key unless told."""

    key: ECKey
    kid: str
    issuer: str
    audience: str
    client_id: str
    public_jwk: dict[str, Any] = field(default_factory=dict)

    def header(self, **changes: Any) -> dict[str, Any]:
        return {"alg": "ES256", "typ": "at+jwt", "kid": self.kid, **changes}

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": self.client_id,
            "client_id": self.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": f"test-{time.monotonic_ns()}",
            "scope": "crm:read",
            "tier": "gold",
            **changes,
        }

    def sign(
        self,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        key: ECKey | None = None,
    ) -> str:
        return jwt.encode(
            header or self.header(), claims or self.claims(), key or self.key, default_type=None
        )

    def control(self) -> str:
        return self.sign()


@pytest.fixture
def forger(client: TestClient[Litestar]) -> Forger:
    gateway = gateway_of(client)
    client_id, _secret = make_client(client, ["crm:read"])
    signer = gateway.keys.current
    published = client.get("/.well-known/jwks.json").json()["keys"]
    return Forger(
        key=signer.key,
        kid=signer.kid,
        issuer=gateway.settings.issuer,
        audience=gateway.settings.audience,
        client_id=client_id,
        public_jwk=next(k for k in published if k["kid"] == signer.kid),
    )


def _attacker_key(kid: str = "attacker-1") -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)


def _alg_none(f: Forger) -> str:
    return f"{_segment(f.header(alg='none'))}.{_segment(f.claims())}."


def _hs256_with(secret: bytes, f: Forger) -> str:
    signing_input = f"{_segment(f.header(alg='HS256'))}.{_segment(f.claims())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _hs256_public_pem(f: Forger) -> str:
    return _hs256_with(ECKey.import_key(f.public_jwk).as_pem(private=False), f)


def _hs256_public_jwk(f: Forger) -> str:
    return _hs256_with(json.dumps(f.public_jwk).encode(), f)


def _embedded_jwk(f: Forger) -> str:
    attacker = _attacker_key()
    header = f.header(jwk=attacker.as_dict(private=False))
    return f.sign(header=header, key=attacker)


def _unknown_kid(f: Forger) -> str:
    attacker = _attacker_key("not-in-our-jwks")
    return f.sign(header=f.header(kid="not-in-our-jwks"), key=attacker)


def _now() -> int:
    return int(time.time())


ATTACKS: dict[str, Callable[[Forger], str]] = {
    "alg-none": _alg_none,
    "hs256-signed-with-our-public-key-pem": _hs256_public_pem,
    "hs256-signed-with-our-public-jwk": _hs256_public_jwk,
    "typ-jwt-not-access-token": lambda f: f.sign(header=f.header(typ="JWT")),
    "no-typ": lambda f: f.sign(header={"alg": "ES256", "kid": f.kid}),
    "wrong-iss": lambda f: f.sign(claims=f.claims(iss="https://evil.example.test")),
    "wrong-aud": lambda f: f.sign(claims=f.claims(aud="another-api")),
    "expired": lambda f: f.sign(
        claims=f.claims(iat=_now() - 7200, nbf=_now() - 7200, exp=_now() - 3600)
    ),
    "nbf-in-the-future": lambda f: f.sign(claims=f.claims(nbf=_now() + 3600)),
    "unknown-kid": _unknown_kid,
    "embedded-jwk-header": _embedded_jwk,
    "jku-header-signed-by-our-key": lambda f: f.sign(
        header=f.header(jku="https://evil.example.test/jwks.json")
    ),
    "x5u-header-signed-by-our-key": lambda f: f.sign(
        header=f.header(x5u="https://evil.example.test/cert.pem")
    ),
    "signature-of-another-token": lambda f: ".".join(
        f.sign(claims=f.claims(scope="crm:read crm:write")).split(".")[:2]
        + f.control().split(".")[2:]
    ),
    "no-sub": lambda f: f.sign(claims={k: v for k, v in f.claims().items() if k != "sub"}),
}


def _with_header(header: object) -> Callable[[Forger], str]:
    def make(f: Forger) -> str:
        return f"{_segment(header)}.{_segment(f.claims())}.c2ln"

    return make


GARBAGE: dict[str, Callable[[Forger], str]] = {
    "one-word": lambda f: "garbage",
    "three-empty-parts": lambda f: "..",
    "not-base64": lambda f: "!!!.???.***",
    "header-not-json": lambda f: f"{_b64(b'not json')}.{_segment(f.claims())}.c2ln",
    "header-not-utf8": lambda f: f"{_b64(bytes([0xFF, 0xFE]))}.{_segment(f.claims())}.c2ln",
    "header-a-list": _with_header(["ES256"]),
    "alg-a-list": _with_header({"alg": ["ES256"], "typ": "at+jwt", "kid": "k"}),
    "alg-non-ascii": _with_header({"alg": "\u2603", "typ": "at+jwt", "kid": "k"}),
    "alg-latin1": _with_header({"alg": "\u00e9s256", "typ": "at+jwt", "kid": "k"}),
    "kid-a-number": _with_header({"alg": "ES256", "typ": "at+jwt", "kid": 7}),
    "no-kid": _with_header({"alg": "ES256", "typ": "at+jwt"}),
    "payload-not-json": lambda f: (
        f"{_segment(f.header())}.{_b64(b'not json')}.{f.control().split('.')[2]}"
    ),
    "five-parts": lambda f: f"{f.control()}.a.b",
}


@pytest.mark.parametrize("make_token", list(ATTACKS.values()), ids=list(ATTACKS))
def test_forged_token_is_refused_beside_an_accepted_control(
    client: TestClient[Litestar], forger: Forger, make_token: Callable[[Forger], str]
) -> None:
    control = client.get("/gateway/v1/whoami", headers=_bearer(forger.control()))
    assert control.status_code == 200, control.text
    assert control.json()["client_id"] == forger.client_id

    assert_invalid_token(client.get("/gateway/v1/whoami", headers=_bearer(make_token(forger))))


@pytest.mark.parametrize("make_token", list(GARBAGE.values()), ids=list(GARBAGE))
def test_garbage_token_is_refused(
    client: TestClient[Litestar], forger: Forger, make_token: Callable[[Forger], str]
) -> None:
    assert client.get("/gateway/v1/whoami", headers=_bearer(forger.control())).status_code == 200

    assert_invalid_token(client.get("/gateway/v1/whoami", headers=_bearer(make_token(forger))))


def test_refused_token_does_not_echo_long_header_values(
    client: TestClient[Litestar], forger: Forger
) -> None:
    alg = "X" * 4000
    token = f"{_segment(forger.header(alg=alg))}.{_segment(forger.claims())}.c2ln"

    response = client.get("/gateway/v1/whoami", headers=_bearer(token))

    assert_invalid_token(response)
    assert alg not in response.headers["www-authenticate"]
    assert alg not in response.text


def test_missing_authorization_is_challenged_without_an_error_code(
    client: TestClient[Litestar],
) -> None:
    response = client.get("/gateway/v1/whoami")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="erp-gateway"'
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 401


@pytest.mark.parametrize(
    "authorization", ["Basic Y2xfeDpzZWNyZXQ=", "Token abc.def.ghi", "abc.def.ghi"]
)
def test_another_scheme_is_no_bearer_credential(
    client: TestClient[Litestar], forger: Forger, authorization: str
) -> None:
    response = client.get("/gateway/v1/whoami", headers={"Authorization": authorization})

    # RFC 6750 §3.1: a request with no Bearer credential gets a challenge without error code.
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="erp-gateway"'
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Bearer" in response.json()["detail"]


def test_empty_bearer_token_is_an_invalid_request(client: TestClient[Litestar]) -> None:
    response = client.get("/gateway/v1/whoami", headers={"Authorization": "Bearer   "})

    assert response.status_code == 401
    assert 'error="invalid_request"' in response.headers["www-authenticate"]
    assert response.headers["content-type"].startswith("application/problem+json")


def test_token_without_the_routes_scope_is_forbidden(client: TestClient[Litestar]) -> None:
    reader_id, reader_secret = make_client(client, ["crm:read"])
    other_id, other_secret = make_client(client, ["billing:read", "crm:read"])
    allowed = token_for(client, reader_id, reader_secret)
    lacking = token_for(client, other_id, other_secret, scope="billing:read")

    ok = client.get(PROBE_PATH, headers=_bearer(allowed))
    refused = client.get(PROBE_PATH, headers=_bearer(lacking))

    assert ok.status_code == 200
    assert ok.json() == {"client_id": reader_id}
    assert refused.status_code == 403
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="crm:read"' in challenge
    assert refused.headers["content-type"].startswith("application/problem+json")
    body = refused.json()
    assert body["status"] == 403
    assert body["required_scopes"] == ["crm:read"]


def test_revoked_clients_token_stops_working_within_the_status_ttl(
    client: TestClient[Litestar],
) -> None:
    gateway = gateway_of(client)
    clock = FakeClock()
    gateway.validator.monotonic = clock
    client_id, secret = make_client(client, ["crm:read"])
    token = token_for(client, client_id, secret)
    assert client.get("/gateway/v1/whoami", headers=_bearer(token)).status_code == 200

    with client.portal() as portal:
        portal.call(gateway.clients.revoke, client_id)
    # The client's status is cached for up to CLIENT_STATUS_TTL (30 s): still served now...
    assert client.get("/gateway/v1/whoami", headers=_bearer(token)).status_code == 200
    clock.advance(31)
    refused = client.get("/gateway/v1/whoami", headers=_bearer(token))

    assert_invalid_token(refused)
    assert "revoked" in refused.json()["detail"]


def test_previous_keys_tokens_keep_working_after_rotation(
    client: TestClient[Litestar], gateway_settings: Settings
) -> None:
    client_id, secret = make_client(client, ["crm:read"])
    old_token = token_for(client, client_id, secret)
    old_unseen = token_for(client, client_id, secret)

    # What `erp-gateway keys rotate` does, from its own process's KeyStore.
    KeyStore(gateway_settings.signing_keys_dir).rotate()
    new_token = token_for(client, client_id, secret)
    published = [key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]]

    assert published == [_kid_of(new_token), _kid_of(old_token)]
    assert client.get("/gateway/v1/whoami", headers=_bearer(old_token)).status_code == 200
    assert client.get("/gateway/v1/whoami", headers=_bearer(new_token)).status_code == 200

    # A second rotation unpublishes the first key: its tokens are no longer accepted.
    KeyStore(gateway_settings.signing_keys_dir).rotate()
    assert _kid_of(old_unseen) not in client.get("/.well-known/jwks.json").text
    assert_invalid_token(client.get("/gateway/v1/whoami", headers=_bearer(old_unseen)))
    assert client.get("/gateway/v1/whoami", headers=_bearer(new_token)).status_code == 200


@dataclass
class FakeIdentityProvider:
    """An external IdP's JWKS endpoint on loopback, counting how often it is fetched."""

    key: ECKey
    jwks_url: str = ""
    fetches: int = 0
    failing: bool = False

    def token(self, *, kid: str | None = None, key: ECKey | None = None, **changes: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": IDP_ISSUER,
            "aud": "erp-gateway",
            "sub": "svc-reporting",
            "client_id": "svc-reporting",
            "iat": now,
            "exp": now + 600,
            "scope": "crm:read",
            **changes,
        }
        header = {"alg": "ES256", "typ": "at+jwt", "kid": kid or str(self.key.kid)}
        return jwt.encode(header, claims, key or self.key, default_type=None)


@pytest.fixture
def idp() -> Iterator[FakeIdentityProvider]:
    provider = FakeIdentityProvider(key=_attacker_key("idp-key-1"))

    @get("/jwks.json", sync_to_thread=False)
    def jwks_document() -> Response[dict[str, Any]]:
        provider.fetches += 1
        if provider.failing:
            return Response({"error": "unavailable"}, status_code=503)
        return Response({"keys": [provider.key.as_dict(private=False)]})

    with serve_asgi(Litestar([jwks_document]), lifespan="off") as base_url:
        provider.jwks_url = f"{base_url}/jwks.json"
        yield provider


@pytest.fixture
def idp_client(
    gateway_env: dict[str, str], idp: FakeIdentityProvider
) -> Iterator[TestClient[Litestar]]:
    settings = load_settings(
        {
            **gateway_env,
            "ERPGW_EXTERNAL_ISSUER": IDP_ISSUER,
            "ERPGW_EXTERNAL_JWKS_URL": idp.jwks_url,
        }
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_external_idp_token_is_accepted(
    idp_client: TestClient[Litestar], idp: FakeIdentityProvider
) -> None:
    response = idp_client.get("/gateway/v1/whoami", headers=_bearer(idp.token()))

    assert response.status_code == 200, response.text
    # External client ids are namespaced so they never share quota or keys with ours.
    assert response.json()["client_id"] == "ext:svc-reporting"
    assert response.json()["scopes"] == ["crm:read"]


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "another-api"},
        {"iss": "http://127.0.0.1:8000"},
        {"iss": "https://other-idp.example.test"},
    ],
    ids=["wrong-aud", "claims-our-issuer", "other-issuer"],
)
def test_external_idp_token_must_match_its_own_issuer_and_our_audience(
    idp_client: TestClient[Litestar], idp: FakeIdentityProvider, changes: dict[str, Any]
) -> None:
    assert idp_client.get("/gateway/v1/whoami", headers=_bearer(idp.token())).status_code == 200

    assert_invalid_token(
        idp_client.get("/gateway/v1/whoami", headers=_bearer(idp.token(**changes)))
    )


def test_unknown_kids_do_not_refetch_the_idp_jwks_more_than_once_a_minute(
    idp_client: TestClient[Litestar], idp: FakeIdentityProvider
) -> None:
    external = gateway_of(idp_client).validator.external
    assert external is not None
    clock = FakeClock()
    external.monotonic = clock
    whoami = partial(idp_client.get, "/gateway/v1/whoami")
    assert whoami(headers=_bearer(idp.token())).status_code == 200
    assert idp.fetches == 1

    for n in range(5):
        stranger = _attacker_key(f"stranger-{n}")
        assert_invalid_token(whoami(headers=_bearer(idp.token(kid=stranger.kid, key=stranger))))
    assert idp.fetches == 1

    clock.advance(61)
    stranger = _attacker_key("stranger-late")
    for _ in range(3):
        assert_invalid_token(whoami(headers=_bearer(idp.token(kid=stranger.kid, key=stranger))))
    assert idp.fetches == 2


def test_a_failing_idp_jwks_is_not_hammered(
    idp_client: TestClient[Litestar], idp: FakeIdentityProvider
) -> None:
    external = gateway_of(idp_client).validator.external
    assert external is not None
    clock = FakeClock()
    external.monotonic = clock
    idp.failing = True

    for _ in range(5):
        assert_invalid_token(idp_client.get("/gateway/v1/whoami", headers=_bearer(idp.token())))
    assert idp.fetches == 1

    idp.failing = False
    clock.advance(61)
    assert idp_client.get("/gateway/v1/whoami", headers=_bearer(idp.token())).status_code == 200
    assert idp.fetches == 2
