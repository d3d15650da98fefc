"""Credentials from the environment, and the emulator's sandbox credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.platforms import salesforce_sandbox_credentials as sandbox_credentials
from system_apis.crm.salesforce import credentials_from_env


def test_no_client_id_means_use_the_emulator() -> None:
    assert credentials_from_env({}) is None
    assert credentials_from_env({"ERPGW_SALESFORCE_CLIENT_SECRET": "s"}) is None


def test_client_credentials_from_env() -> None:
    creds = credentials_from_env({
        "ERPGW_SALESFORCE_CLIENT_ID": "3MVG9",
        "ERPGW_SALESFORCE_CLIENT_SECRET": "secret",
        "ERPGW_SALESFORCE_LOGIN_URL": "https://acme.my.salesforce.com",
    })
    assert creds is not None
    assert creds.login_url == "https://acme.my.salesforce.com"
    assert not creds.uses_jwt


def test_jwt_credentials_from_a_key_file(tmp_path: Path) -> None:
    key = tmp_path / "server.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    creds = credentials_from_env({
        "ERPGW_SALESFORCE_CLIENT_ID": "3MVG9",
        "ERPGW_SALESFORCE_USERNAME": "integration@acme.com",
        "ERPGW_SALESFORCE_PRIVATE_KEY_FILE": str(key),
        "ERPGW_SALESFORCE_AUDIENCE": "https://test.salesforce.com",
    })
    assert creds is not None and creds.uses_jwt
    assert creds.login_url == "https://login.salesforce.com"
    assert creds.audience == "https://test.salesforce.com"
    assert creds.private_key_pem == key.read_text()


def test_incomplete_credentials_are_refused() -> None:
    with pytest.raises(ValueError):
        credentials_from_env({"ERPGW_SALESFORCE_CLIENT_ID": "3MVG9"})


def test_sandbox_credentials_point_at_the_emulator() -> None:
    creds = sandbox_credentials("http://127.0.0.1:8000/_sandbox/salesforce/")
    assert creds.login_url == "http://127.0.0.1:8000/_sandbox/salesforce"
    assert (creds.client_id, creds.client_secret) == ("erpgw-sandbox", "erpgw-sandbox-secret")
