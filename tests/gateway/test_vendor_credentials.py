"""Vendor credentials built from the settings: what each vendor needs, where it is, and a
partly configured vendor refused with the variables it lacks (never silently emulated)."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from gateway.platforms import credentials_for
from gateway.settings import SettingsError, load_settings
from system_apis.billing.stripe import StripeCredentials


def test_no_client_id_means_salesforce_is_not_live() -> None:
    assert not load_settings({}).is_live("salesforce")


def test_salesforce_client_credentials() -> None:
    settings = load_settings(
        {
            "ERPGW_SALESFORCE_CLIENT_ID": "3MVG9",
            "ERPGW_SALESFORCE_CLIENT_SECRET": "secret",
            "ERPGW_SALESFORCE_LOGIN_URL": "https://acme.my.salesforce.com",
        }
    )
    creds = credentials_for("salesforce", settings)
    assert creds.login_url == "https://acme.my.salesforce.com"
    assert not creds.uses_jwt


def test_salesforce_jwt_credentials_from_a_key_file(tmp_path: Path) -> None:
    key = tmp_path / "server.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    settings = load_settings(
        {
            "ERPGW_SALESFORCE_CLIENT_ID": "3MVG9",
            "ERPGW_SALESFORCE_USERNAME": "integration@acme.com",
            "ERPGW_SALESFORCE_PRIVATE_KEY_FILE": str(key),
            "ERPGW_SALESFORCE_AUDIENCE": "https://test.salesforce.com",
        }
    )
    creds = credentials_for("salesforce", settings)
    assert creds.uses_jwt
    assert creds.login_url == "https://login.salesforce.com"
    assert creds.audience == "https://test.salesforce.com"
    assert creds.private_key_pem == key.read_text()


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"ERPGW_SALESFORCE_CLIENT_ID": "3MVG9"}, "ERPGW_SALESFORCE_CLIENT_SECRET"),
        ({"ERPGW_SALESFORCE_CLIENT_SECRET": "s"}, "ERPGW_SALESFORCE_CLIENT_ID"),
        ({"ERPGW_STRIPE_BASE_URL": "https://stripe.example.test"}, "ERPGW_STRIPE_SECRET_KEY"),
        ({"ERPGW_STRIPE_WEBHOOK_SECRETS": "whsec_1"}, "ERPGW_STRIPE_SECRET_KEY"),
        ({"ERPGW_ZENDESK_SUBDOMAIN": "northwind"}, "ERPGW_ZENDESK_API_TOKEN"),
        ({"ERPGW_ZENDESK_SUBDOMAIN": "northwind", "ERPGW_ZENDESK_EMAIL": "a@b.test"},
         "ERPGW_ZENDESK_API_TOKEN"),
        ({"ERPGW_ZENDESK_OAUTH_TOKEN": "oa"}, "ERPGW_ZENDESK_SUBDOMAIN"),
        ({"ERPGW_NETSUITE_ACCOUNT_ID": "123_SB1", "ERPGW_NETSUITE_CLIENT_ID": "c"},
         "ERPGW_NETSUITE_CERTIFICATE_ID"),
        ({"ERPGW_NETSUITE_PRIVATE_KEY": "pem"}, "ERPGW_NETSUITE_ACCOUNT_ID"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("sandbox", ["true", "false"])
def test_incomplete_credentials_are_refused_naming_what_is_missing(
    given: dict[str, str], missing: str, sandbox: str
) -> None:
    with pytest.raises(SettingsError, match="partly configured") as raised:
        load_settings({**given, "ERPGW_SANDBOX": sandbox})

    assert missing in str(raised.value)
    assert "\n" not in str(raised.value)


def test_stripe_credentials() -> None:
    settings = load_settings(
        {"ERPGW_STRIPE_SECRET_KEY": "sk_live_1", "ERPGW_STRIPE_WEBHOOK_SECRETS": "whsec_a, whsec_b"}
    )
    configured = credentials_for("stripe", settings)
    assert configured == StripeCredentials(
        secret_key="sk_live_1", webhook_secrets=("whsec_a", "whsec_b")
    )
    assert configured.base_url == "https://api.stripe.com"
    assert not load_settings({}).is_live("stripe")


def test_zendesk_credentials() -> None:
    assert not load_settings({}).is_live("zendesk")
    token = credentials_for(
        "zendesk",
        load_settings(
            {
                "ERPGW_ZENDESK_SUBDOMAIN": "northwind",
                "ERPGW_ZENDESK_EMAIL": "ops@northwind.test",
                "ERPGW_ZENDESK_API_TOKEN": "t0k",
                "ERPGW_ZENDESK_WEBHOOK_SECRETS": "new, old",
            }
        ),
    )
    assert token.base_url == "https://northwind.zendesk.com"
    assert token.webhook_secrets == ("new", "old")
    request = httpx.Request("GET", "https://northwind.zendesk.com/api/v2/tickets")
    next(token.auth().auth_flow(request))
    expected = base64.b64encode(b"ops@northwind.test/token:t0k").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    oauth = credentials_for(
        "zendesk",
        load_settings(
            {
                "ERPGW_ZENDESK_BASE_URL": "https://help.example.test/",
                "ERPGW_ZENDESK_OAUTH_TOKEN": "oa",
            }
        ),
    )
    assert oauth.base_url == "https://help.example.test"
    request = httpx.Request("GET", "https://help.example.test/api/v2/tickets")
    next(oauth.auth().auth_flow(request))
    assert request.headers["Authorization"] == "Bearer oa"


def test_netsuite_credentials_from_a_key_file(tmp_path: Path) -> None:
    key = tmp_path / "netsuite.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    creds = credentials_for(
        "netsuite",
        load_settings(
            {
                "ERPGW_NETSUITE_ACCOUNT_ID": "1234567_SB1",
                "ERPGW_NETSUITE_CLIENT_ID": "client",
                "ERPGW_NETSUITE_CERTIFICATE_ID": "cert",
                "ERPGW_NETSUITE_PRIVATE_KEY_FILE": str(key),
            }
        ),
    )
    assert creds.base_url == "https://1234567-sb1.suitetalk.api.netsuite.com"
    assert creds.private_key_pem == key.read_text()
    assert creds.algorithm is None
