"""Sandbox and live modes fail closed: a live gateway starts only with every vendor's
credentials and webhook secrets, mounts no emulator, makes no demo client and refuses the
published sandbox webhook secrets; an unknown `ERPGW_*` variable stops start-up."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from gateway import storage
from gateway.platforms import sandbox_banner
from gateway.settings import VENDORS, SettingsError, load_settings
from sandbox.stripe.webhooks import sign_webhook as stripe_sign
from tests.support.apps import app_client, gateway_app
from tests.support.processes import start_gateway

SCRIPT = Path(sys.executable).parent / "erp-gateway"
UNREACHABLE = "http://127.0.0.1:9"
"""The discard port: nothing answers, so no test can reach a vendor by mistake."""
LIVE_STRIPE_SECRET = "whsec_live_test_only"
SANDBOX_STRIPE_SECRET = "whsec_erpgw_sandbox"
FAKE_PEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"

CREDENTIALS = {
    "ERPGW_SALESFORCE_CLIENT_ID": "3MVG9-live",
    "ERPGW_SALESFORCE_CLIENT_SECRET": "sf-secret",
    "ERPGW_SALESFORCE_LOGIN_URL": UNREACHABLE,
    "ERPGW_STRIPE_SECRET_KEY": "sk_test_live_mode",
    "ERPGW_STRIPE_BASE_URL": UNREACHABLE,
    "ERPGW_ZENDESK_BASE_URL": UNREACHABLE,
    "ERPGW_ZENDESK_EMAIL": "ops@example.test",
    "ERPGW_ZENDESK_API_TOKEN": "zd-token",
    "ERPGW_NETSUITE_ACCOUNT_ID": "1234567_SB1",
    "ERPGW_NETSUITE_CLIENT_ID": "ns-client",
    "ERPGW_NETSUITE_CERTIFICATE_ID": "ns-cert",
    "ERPGW_NETSUITE_PRIVATE_KEY": FAKE_PEM,
    "ERPGW_NETSUITE_BASE_URL": UNREACHABLE,
}
WEBHOOK_SECRETS = {
    "ERPGW_STRIPE_WEBHOOK_SECRETS": LIVE_STRIPE_SECRET,
    "ERPGW_ZENDESK_WEBHOOK_SECRETS": "zd-live-webhook-secret",
}


def local(tmp_path: Path) -> dict[str, str]:
    return {
        "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        "ERPGW_VAR_DIR": str(tmp_path),
        "ERPGW_LOG_FORMAT": "json",
        "ERPGW_ACCESS_LOG": "false",
    }


def serve(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`erp-gateway serve` with only `env` among the `ERPGW_*` variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ERPGW_")}
    return subprocess.run(
        [str(SCRIPT), "serve", "--port", "9"],
        env={**clean, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_live_serve_without_credentials_names_every_missing_variable(tmp_path: Path) -> None:
    line = one_line(serve(local(tmp_path), tmp_path))

    for name in (
        "ERPGW_SALESFORCE_CLIENT_ID",
        "ERPGW_STRIPE_SECRET_KEY",
        "ERPGW_STRIPE_WEBHOOK_SECRETS",
        "ERPGW_ZENDESK_SUBDOMAIN",
        "ERPGW_ZENDESK_WEBHOOK_SECRETS",
        "ERPGW_NETSUITE_ACCOUNT_ID",
        "ERPGW_NETSUITE_PRIVATE_KEY",
    ):
        assert name in line
    assert not (tmp_path / "gateway.db").exists()
    assert not (tmp_path / "demo-client.json").exists()


def test_live_serve_with_credentials_but_no_webhook_secret_names_the_secret(
    tmp_path: Path,
) -> None:
    line = one_line(serve({**local(tmp_path), **CREDENTIALS}, tmp_path))

    assert "ERPGW_STRIPE_WEBHOOK_SECRETS" in line
    assert "ERPGW_ZENDESK_WEBHOOK_SECRETS" in line
    assert "ERPGW_STRIPE_SECRET_KEY" not in line


def test_live_serve_refuses_a_published_sandbox_webhook_secret(tmp_path: Path) -> None:
    env = {
        **local(tmp_path),
        **CREDENTIALS,
        **WEBHOOK_SECRETS,
        "ERPGW_STRIPE_WEBHOOK_SECRETS": f"{LIVE_STRIPE_SECRET},{SANDBOX_STRIPE_SECRET}",
    }

    line = one_line(serve(env, tmp_path))

    assert "ERPGW_STRIPE_WEBHOOK_SECRETS" in line
    assert "sandbox" in line
    assert SANDBOX_STRIPE_SECRET not in line


def test_an_unknown_variable_stops_serve_naming_the_closest_known_one(tmp_path: Path) -> None:
    env = {**local(tmp_path), "ERPGW_SANDBOX": "true", "ERPGW_STRIPE_SECRET_KY": "sk_test_1"}

    line = one_line(serve(env, tmp_path))

    assert "ERPGW_STRIPE_SECRET_KY" in line
    assert "did you mean ERPGW_STRIPE_SECRET_KEY?" in line


def test_test_and_bench_variables_never_stop_the_gateway() -> None:
    settings = load_settings(
        {
            "ERPGW_TEST_DATABASE_URL": "postgresql+asyncpg://x",
            "ERPGW_BENCH_ANYTHING": "1",
            "ERPGW_REQUIRE_SERVICES": "1",
            "ERPGW_VENDOR_SPECS": "/specs",
            "ERPGW_SANDBOX": "true",
        }
    )

    assert settings.sandbox.enabled


def test_the_emulators_variable_is_gone_and_points_at_its_successor() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"ERPGW_EMULATORS": "true"})

    assert str(raised.value).startswith("ERPGW_EMULATORS:")
    assert str(raised.value).endswith("did you mean ERPGW_SANDBOX?")


def test_a_sandbox_banner_says_which_vendor_is_live_and_which_emulated(tmp_path: Path) -> None:
    settings = load_settings(
        {
            **local(tmp_path),
            "ERPGW_SANDBOX": "true",
            "ERPGW_STRIPE_SECRET_KEY": "sk_test_1",
            "ERPGW_SANDBOX_VENDORS": "salesforce,zendesk,netsuite",
        }
    )

    lines = sandbox_banner(settings)

    assert lines[0].startswith("mode: sandbox")
    rows = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert rows == {
        "salesforce": "emulated",
        "stripe": "live",
        "zendesk": "emulated",
        "netsuite": "emulated",
    }


def live_settings(tmp_path: Path) -> object:
    return load_settings(
        {
            **local(tmp_path),
            "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
            "ERPGW_PORT": "9",
            **CREDENTIALS,
            **WEBHOOK_SECRETS,
        }
    )


def stripe_event(event_type: str) -> dict[str, object]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": {"id": "in_forged", "object": "invoice", "customer": "cus_1"}},
        "livemode": True,
    }


async def test_a_live_app_mounts_no_emulator_makes_no_demo_client_and_refuses_sandbox_signatures(
    tmp_path: Path,
) -> None:
    app = gateway_app(live_settings(tmp_path))  # type: ignore[arg-type]
    forged = json.dumps(stripe_event("invoice.payment_failed")).encode()
    genuine = json.dumps(stripe_event("customer.created")).encode()

    async with app_client(app) as client:
        mounts = [await client.get(f"/_sandbox/{vendor}/") for vendor in
                  ("salesforce", "stripe", "zendesk", "netsuite")]  # fmt: skip
        now = int(time.time())
        refused = await client.post(
            "/webhooks/stripe",
            content=forged,
            headers={"Stripe-Signature": stripe_sign(forged, SANDBOX_STRIPE_SECRET, now)},
        )
        accepted = await client.post(
            "/webhooks/stripe",
            content=genuine,
            headers={"Stripe-Signature": stripe_sign(genuine, LIVE_STRIPE_SECRET, now)},
        )
        gateway = client.app.state.gateway
        async with gateway.engine.connect() as connection:
            count = sa.text("SELECT count(*) FROM api_clients")
            clients = (await connection.execute(count)).scalar()
            inbox = (
                (await connection.execute(sa.text("SELECT event_type FROM webhook_inbox")))
                .scalars()
                .all()
            )

    assert [response.status_code for response in mounts] == [404] * 4
    assert all(vendor.emulator is None for vendor in gateway.platforms.vendors.values())
    assert refused.status_code in (400, 401), refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert accepted.status_code == 200, accepted.text
    assert list(inbox) == ["customer.created"]
    assert clients == 0
    assert not (tmp_path / "demo-client.json").exists()


def test_create_app_refuses_incomplete_live_settings(tmp_path: Path) -> None:
    settings = load_settings({**local(tmp_path), **CREDENTIALS})

    with pytest.raises(SettingsError, match="ERPGW_STRIPE_WEBHOOK_SECRETS"):
        gateway_app(settings)


def test_a_live_app_imports_no_emulator_module(tmp_path: Path) -> None:
    storage.upgrade(f"sqlite+aiosqlite:///{tmp_path}/gateway.db")
    script = (
        "import sys\n"
        "from gateway.app import create_app\n"
        "create_app()\n"
        "loaded = sorted(m for m in sys.modules if 'emulat' in m or m.split('.')[0] == 'sandbox'"
        " or m.endswith(('_sandbox', 'demo_data')))\n"
        "print(','.join(loaded))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ERPGW_")}
    env = {**clean, **local(tmp_path), **CREDENTIALS, **WEBHOOK_SECRETS}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_a_served_live_gateway_names_its_live_vendors_and_makes_no_demo_client(
    tmp_path: Path,
) -> None:
    env = {
        **local(tmp_path),
        "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        **CREDENTIALS,
        **WEBHOOK_SECRETS,
    }
    gateway = start_gateway(env, tmp_path / "serve.log")
    try:
        sandbox = httpx.get(f"{gateway.base_url}/_sandbox/stripe/v1/customers", timeout=5)
    finally:
        gateway.stop()
    banner = (tmp_path / "serve.log").read_text()

    assert sandbox.status_code == 404
    assert "mode: live" in banner
    assert all(f"{vendor:<11} live" in banner for vendor in VENDORS)
    assert "demo client" not in banner
    assert not (tmp_path / "demo-client.json").exists()


def test_a_served_sandbox_gateway_makes_the_demo_client_and_says_what_is_emulated(
    tmp_path: Path,
) -> None:
    env = {
        **local(tmp_path),
        "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "ERPGW_SANDBOX": "true",
        "ERPGW_SANDBOX_VENDORS": "stripe",
    }
    gateway = start_gateway(env, tmp_path / "serve.log")
    try:
        demo = json.loads((tmp_path / "demo-client.json").read_text())
        token = httpx.post(
            f"{gateway.base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(demo["client_id"], demo["client_secret"]),
            timeout=5,
        )
    finally:
        gateway.stop()
    banner = (tmp_path / "serve.log").read_text()

    assert token.status_code == 200
    assert "mode: sandbox" in banner
    assert f"{'stripe':<11} emulated" in banner
    assert f"{'zendesk':<11} not wired" in banner


def test_the_refused_digests_are_the_published_sandbox_secrets() -> None:
    from gateway.modes import PUBLISHED_SANDBOX_SECRETS
    from sandbox.credentials import STRIPE, ZENDESK

    def digest(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    assert digest(STRIPE.webhook_secret) in PUBLISHED_SANDBOX_SECRETS["stripe"]
    assert digest(ZENDESK.webhook_secret) in PUBLISHED_SANDBOX_SECRETS["zendesk"]
