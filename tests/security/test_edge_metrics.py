"""Metrics label values come from closed sets: a token's tier claim is the caller's text (an
external IdP puts what it likes there), so a tier the gateway does not configure is counted as
`other`, as invented methods are; known tiers keep their own label."""

from __future__ import annotations

from pathlib import Path

from tests.gateway.test_auth import IDP_ISSUER, FakeIdentityProvider, idp  # noqa: F401
from tests.support.apps import app_client, bearer, gateway_app, new_client_token, settings_for


async def test_tier_claims_the_gateway_does_not_know_share_one_label(
    tmp_path: Path,
    idp: FakeIdentityProvider,  # noqa: F811
) -> None:
    settings = settings_for(
        tmp_path, ERPGW_EXTERNAL_ISSUER=IDP_ISSUER, ERPGW_EXTERNAL_JWKS_URL=idp.jwks_url
    )
    async with app_client(gateway_app(settings)) as client:
        for n in range(3):
            token = idp.token(tier=f"invented-{n}", sub=f"svc-{n}", client_id=f"svc-{n}")
            assert (
                await client.get("/gateway/v1/whoami", headers=bearer(token))
            ).status_code == 200
        _, ours = await new_client_token(client, ["crm:read"], tier="silver")
        assert (await client.get("/gateway/v1/whoami", headers=bearer(ours))).status_code == 200

        metrics = (await client.get("/metrics")).text
        assert "invented-" not in metrics
        assert 'route="/gateway/v1/whoami",status="200",tier="other"} 3.0' in metrics
        assert 'route="/gateway/v1/whoami",status="200",tier="silver"} 1.0' in metrics
