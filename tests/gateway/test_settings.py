"""`load_settings`: defaults, one `SettingsError` naming the variable per bad value, the API
version table, and no password in an error message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.settings import ApiVersionEntry, SettingsError, load_settings


def test_defaults() -> None:
    settings = load_settings({})

    assert settings.database_url == "sqlite+aiosqlite:///var/erp-gateway.db"
    assert settings.redis_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.audience == "erp-gateway"
    assert settings.var_dir == Path("var")
    assert settings.signing_keys_dir == Path("var/keys")
    assert settings.external_issuer is None
    assert settings.external_jwks_url is None
    assert settings.log_format == "console"
    assert settings.log_level == "INFO"
    assert settings.access_log is True
    assert settings.token_ttl_seconds == 900
    assert settings.max_body_bytes == 1_048_576
    assert settings.api_versions == ()
    assert settings.sandbox.enabled is False
    assert settings.base_url == "http://127.0.0.1:8000"


def test_values_are_read_and_normalised() -> None:
    settings = load_settings(
        {
            "ERPGW_HOST": "0.0.0.0",
            "ERPGW_PORT": "9000",
            "ERPGW_ISSUER": "https://gw.example.test/",
            "ERPGW_VAR_DIR": "/srv/gw",
            "ERPGW_LOG_FORMAT": "JSON",
            "ERPGW_LOG_LEVEL": "debug",
            "ERPGW_ACCESS_LOG": "off",
            "ERPGW_SANDBOX": "yes",
            "ERPGW_REDIS_URL": "redis://cache:6379/0",
            "ERPGW_DATABASE_URL": "postgresql+asyncpg://gw:pw@db/gw",
        }
    )

    assert settings.port == 9000
    assert settings.issuer == "https://gw.example.test"
    assert settings.signing_keys_dir == Path("/srv/gw/keys")
    assert settings.log_format == "json"
    assert settings.log_level == "DEBUG"
    assert settings.access_log is False
    assert settings.sandbox.enabled is True
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.base_url == "http://0.0.0.0:9000"


def test_issuer_follows_host_and_port() -> None:
    assert load_settings({"ERPGW_PORT": "8443"}).issuer == "http://127.0.0.1:8443"


def test_blank_values_mean_the_default() -> None:
    assert load_settings({"ERPGW_PORT": "  ", "ERPGW_LOG_FORMAT": ""}).port == 8000


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ERPGW_PORT", "abc"),
        ("ERPGW_PORT", "0"),
        ("ERPGW_PORT", "70000"),
        ("ERPGW_LOG_FORMAT", "xml"),
        ("ERPGW_LOG_LEVEL", "chatty"),
        ("ERPGW_ACCESS_LOG", "maybe"),
        ("ERPGW_SANDBOX", "2"),
        ("ERPGW_DATABASE_URL", "mysql://x"),
        ("ERPGW_DATABASE_URL", "postgresql+asyncpg://[::1/db"),
        ("ERPGW_REDIS_URL", "http://cache:6379"),
        ("ERPGW_ISSUER", "gw.example.test"),
        ("ERPGW_ISSUER", "https:/gw.example.test"),
        ("ERPGW_PUBLIC_BASE_URL", "ftp://example.test"),
        ("ERPGW_EXTERNAL_JWKS_URL", "file:///etc/passwd"),
        ("ERPGW_RATE_LIMIT_TIERS", "bronze=lots"),
        ("ERPGW_RATE_LIMIT_STRATEGY", "fixed"),
        ("ERPGW_RATE_LIMIT_ON_STORE_ERROR", "panic"),
        ("ERPGW_MAX_BODY_BYTES", "10"),
        ("ERPGW_TOKEN_TTL_SECONDS", "5"),
        ("ERPGW_IDEMPOTENCY_RETENTION_SECONDS", "1.5"),
        ("ERPGW_API_VERSIONS", "not json"),
        ("ERPGW_API_VERSIONS", '{"api": "system/crm", "major": "v1"}'),
        ("ERPGW_API_VERSIONS", '["system/crm"]'),
        ("ERPGW_API_VERSIONS", '[{"api": "system/crm"}]'),
        ("ERPGW_API_VERSIONS", '[{"api": null, "major": "v1"}]'),
        ("ERPGW_API_VERSIONS", '[{"api": "system/crm", "major": 1}]'),
        ("ERPGW_API_VERSIONS", '[{"api": "system/crm", "major": "v1", "status": "retired"}]'),
        ("ERPGW_API_VERSIONS", '[{"api": "system/crm", "major": "v1", "sunset_at": "soon"}]'),
        ("ERPGW_RENEWAL_RISK_RULES", "not json"),
        ("ERPGW_RENEWAL_RISK_RULES", '{"no_such_rule": 1}'),
        ("ERPGW_RENEWAL_RISK_RULES", '{"sla_breaches_high": -1}'),
        ("ERPGW_RENEWAL_RISK_RULES", "[1, 2]"),
        ("ERPGW_RENEWAL_LEAD_DAYS", "0"),
        ("ERPGW_RENEWAL_LEAD_DAYS", "731"),
        ("ERPGW_RENEWAL_SCAN_INTERVAL_SECONDS", "-1"),
    ],
)
def test_bad_value_raises_settings_error_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({variable: value})

    message = str(raised.value)
    assert message.startswith(f"{variable}:")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"ERPGW_EXTERNAL_ISSUER": "https://idp.example.test"}, "ERPGW_EXTERNAL_JWKS_URL"),
        ({"ERPGW_EXTERNAL_JWKS_URL": "https://idp.example.test/jwks"}, "ERPGW_EXTERNAL_ISSUER"),
    ],
)
def test_half_an_external_idp_is_refused(given: dict[str, str], missing: str) -> None:
    with pytest.raises(SettingsError, match=f"^{missing}:"):
        load_settings(given)


def test_external_idp() -> None:
    settings = load_settings(
        {
            "ERPGW_EXTERNAL_ISSUER": "https://idp.example.test",
            "ERPGW_EXTERNAL_JWKS_URL": "https://idp.example.test/.well-known/jwks.json",
        }
    )

    assert settings.external_issuer == "https://idp.example.test"
    assert settings.external_jwks_url == "https://idp.example.test/.well-known/jwks.json"


def test_api_versions_are_parsed_from_json() -> None:
    raw = json.dumps(
        [
            {
                "api": "/system/crm/",
                "major": "v1",
                "status": "deprecated",
                "deprecated_at": "2025-01-01T00:00:00Z",
                "sunset_at": "2026-06-30",
                "successor": "/system/crm/v2",
            },
            {"api": "system/crm", "major": "v2"},
        ]
    )

    versions = load_settings({"ERPGW_API_VERSIONS": raw}).api_versions

    assert versions == (
        ApiVersionEntry(
            api="system/crm",
            major="v1",
            status="deprecated",
            deprecated_at=datetime(2025, 1, 1, tzinfo=UTC),
            sunset_at=datetime(2026, 6, 30, tzinfo=UTC),
            successor="/system/crm/v2",
        ),
        ApiVersionEntry(api="system/crm", major="v2"),
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ERPGW_DATABASE_URL", "mysql://u:secretpw@h/db"),
        ("ERPGW_DATABASE_URL", "mysql://u:secret@pw@h/db"),
        ("ERPGW_DATABASE_URL", "postgresql+asyncpg://u:secretpw@[h/db"),
        ("ERPGW_DATABASE_URL", "u:secretpw@h/db"),
        ("ERPGW_REDIS_URL", "http://:secretpw@cache:6379/0"),
        ("ERPGW_ISSUER", "ftp://u:secretpw@gw.example.test"),
    ],
)
def test_url_passwords_are_not_echoed(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({variable: value})

    message = str(raised.value)
    assert variable in message
    assert "secret" not in message
    assert "pw@" not in message


def test_the_flows_queue_is_configured_by_its_variables() -> None:
    default = load_settings({}).process
    chosen = load_settings(
        {
            "ERPGW_FLOW_QUEUE_CONCURRENCY": "16",
            "ERPGW_FLOW_QUEUE_GLOBAL_CONCURRENCY": "24",
            "ERPGW_FLOW_QUEUE_POLL_SECONDS": "0.1",
        }
    ).process

    assert (default.queue_concurrency, default.queue_global_concurrency) == (8, None)
    assert default.queue_poll_seconds == 0.25
    assert (chosen.queue_concurrency, chosen.queue_global_concurrency) == (16, 24)
    assert chosen.queue_poll_seconds == 0.1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ERPGW_FLOW_QUEUE_CONCURRENCY", "0"),
        ("ERPGW_FLOW_QUEUE_CONCURRENCY", "many"),
        ("ERPGW_FLOW_QUEUE_GLOBAL_CONCURRENCY", "-1"),
        ("ERPGW_FLOW_QUEUE_POLL_SECONDS", "0"),
    ],
)
def test_a_bad_flows_queue_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})
