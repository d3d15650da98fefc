"""The settings schema as operators see it: the README's table is the schema's, `erp-gateway
config` shows no secret, and `erp-gateway doctor` reports one line per check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gateway.settings import Settings, markdown_table, variables

SCRIPT = Path(sys.executable).parent / "erp-gateway"
README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ERPGW_")}
    return subprocess.run(
        [str(SCRIPT), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def local(tmp_path: Path) -> dict[str, str]:
    return {
        "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        "ERPGW_VAR_DIR": str(tmp_path),
        "ERPGW_LOG_FORMAT": "json",
    }


def test_the_readme_table_is_generated_from_the_schema() -> None:
    text = README.read_text()
    table = text[text.index(START) + len(START) : text.index(END)].strip()

    assert table == markdown_table(), "run `erp-gateway config --markdown` into README.md"


def test_every_variable_is_declared_once_with_a_meaning() -> None:
    declared = variables()
    names = [item.name for item in declared]

    assert len(names) == len(set(names))
    assert all(name.startswith("ERPGW_") for name in names)
    assert all(item.meaning for item in declared)
    assert {"ERPGW_SANDBOX", "ERPGW_CRM_POLL_SECONDS", "ERPGW_APPROVAL_TIMEOUT_SECONDS",
            "ERPGW_EXECUTOR_ID", "ERPGW_STRIPE_WEBHOOK_SECRETS", "ERPGW_CONSOLE_SECRET",
            "ERPGW_VIEW_BUDGET_BILLING"} <= set(names)  # fmt: skip


def test_no_module_but_the_settings_reads_or_writes_the_environment() -> None:
    root = README.parent
    offenders = [
        str(path.relative_to(root))
        for package in ("contracts", "system_apis", "process_apis", "experience_apis", "gateway")
        for path in (root / package).rglob("*.py")
        if path != root / "gateway" / "settings.py"
        and ("os.environ" in path.read_text() or "os.getenv" in path.read_text())
    ]

    assert offenders == []


def test_config_prints_every_setting_and_no_secret(tmp_path: Path) -> None:
    secrets = {
        "ERPGW_STRIPE_SECRET_KEY": "sk_test_s3cr3t_stripe_key",
        "ERPGW_STRIPE_WEBHOOK_SECRETS": "whsec_s3cr3t_one,whsec_s3cr3t_two",
        "ERPGW_ZENDESK_SUBDOMAIN": "northwind",
        "ERPGW_ZENDESK_EMAIL": "ops@northwind.test",
        "ERPGW_ZENDESK_API_TOKEN": "zendesk_s3cr3t_token",
        "ERPGW_ZENDESK_WEBHOOK_SECRETS": "zendesk_s3cr3t_webhook",
        "ERPGW_SALESFORCE_CLIENT_ID": "3MVG9",
        "ERPGW_SALESFORCE_CLIENT_SECRET": "salesforce_s3cr3t",
        "ERPGW_CONSOLE_SECRET": "ab" * 32,
    }
    env = {
        **local(tmp_path),
        "ERPGW_SANDBOX": "true",
        "ERPGW_REDIS_URL": "redis://:redis_s3cr3t_pw@cache:6379/0",
        **secrets,
    }

    result = run_cli(env, "config")

    assert result.returncode == 0, result.stderr
    shown = dict(line.split(None, 1) for line in result.stdout.strip().splitlines())
    assert set(shown) == {item.name for item in variables()}
    assert "s3cr3t" not in result.stdout
    assert "ab" * 32 not in result.stdout
    assert shown["ERPGW_STRIPE_SECRET_KEY"] == "***"
    assert shown["ERPGW_ZENDESK_SUBDOMAIN"] == "northwind"
    assert shown["ERPGW_SANDBOX"] == "true"
    secret_fields = {item.name for item in variables() if item.secret}
    assert set(secrets) - {"ERPGW_ZENDESK_SUBDOMAIN", "ERPGW_ZENDESK_EMAIL",
                           "ERPGW_SALESFORCE_CLIENT_ID"} <= secret_fields  # fmt: skip


def test_config_markdown_is_the_readme_table() -> None:
    result = run_cli({}, "config", "--markdown")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == markdown_table()


def test_doctor_passes_against_the_emulators(tmp_path: Path) -> None:
    env = {**local(tmp_path), "ERPGW_SANDBOX": "true"}
    assert run_cli(env, "keys", "rotate").returncode == 0

    result = run_cli(env, "doctor")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    status = {line[:22].strip(): line[22:].split()[0] for line in lines}
    assert status == {
        "mode": "ok",
        "database": "ok",
        "signing keys": "ok",
        "salesforce": "ok",
        "stripe": "ok",
        "zendesk": "ok",
        "netsuite": "ok",
    }
    assert all("emulated" in line for line in lines if line.split()[0] in ("stripe", "netsuite"))


def test_doctor_fails_on_a_broken_database_and_says_why(tmp_path: Path) -> None:
    env = {
        **local(tmp_path),
        "ERPGW_SANDBOX": "true",
        "ERPGW_SANDBOX_VENDORS": "none",
        "ERPGW_DATABASE_URL": "postgresql+asyncpg://postgres:pw@127.0.0.1:9/nowhere",
    }

    result = run_cli(env, "doctor")

    assert result.returncode == 1
    database = next(line for line in result.stdout.splitlines() if line.startswith("database"))
    assert database.split()[1] == "failed"
    assert len(database.split()) > 2
    assert ":pw@" not in result.stdout
    signing = next(line for line in result.stdout.splitlines() if line.startswith("signing"))
    assert "failed" in signing


def test_doctor_names_what_a_live_gateway_lacks(tmp_path: Path) -> None:
    env = {
        **local(tmp_path),
        "ERPGW_STRIPE_SECRET_KEY": "sk_test_1",
        "ERPGW_STRIPE_BASE_URL": "http://127.0.0.1:9",
    }

    result = run_cli(env, "doctor")

    assert result.returncode == 1
    mode = next(line for line in result.stdout.splitlines() if line.startswith("mode"))
    assert "failed" in mode
    assert "ERPGW_STRIPE_WEBHOOK_SECRETS" in mode
    assert "ERPGW_SALESFORCE_CLIENT_ID" in mode


def test_settings_are_a_struct_tree() -> None:
    settings = Settings()

    assert settings.stripe.secret_key is None
    assert settings.process.approval_timeout_seconds == 7 * 24 * 3600
    assert settings.experience.budgets == {}
