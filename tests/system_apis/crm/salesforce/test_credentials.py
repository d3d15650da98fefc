"""The emulator's sandbox credentials (credentials from settings: tests/gateway/
test_vendor_credentials.py)."""

from __future__ import annotations

from gateway.sandbox_wiring import salesforce_sandbox_credentials as sandbox_credentials


def test_sandbox_credentials_point_at_the_emulator() -> None:
    creds = sandbox_credentials("http://127.0.0.1:8000/_sandbox/salesforce/")
    assert creds.login_url == "http://127.0.0.1:8000/_sandbox/salesforce"
    assert (creds.client_id, creds.client_secret) == ("erpgw-sandbox", "erpgw-sandbox-secret")
