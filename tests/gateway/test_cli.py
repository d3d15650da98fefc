"""The `erp-gateway` console script as an operator runs it: clients, keys, migrations, and one
clear line on stderr for a bad setting."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.gateway.conftest import token_for

SCRIPT = Path(sys.executable).parent / "erp-gateway"


def run_cli(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ERPGW_")}
    return subprocess.run(
        [str(SCRIPT), *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_created_client_gets_a_token_at_once_from_a_running_app(
    client: TestClient[Litestar], gateway_env: dict[str, str]
) -> None:
    result = run_cli(
        gateway_env,
        "clients", "create", "--name", "x", "--scopes", "crm:read billing:read",
        "--tier", "silver", "--entities", "US01", "--json",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["client_id"].startswith("cl_")
    assert created["client_secret"]
    assert created["scopes"] == ["billing:read", "crm:read"]
    assert created["tier"] == "silver"
    assert created["entities"] == ["US01"]

    token = token_for(client, created["client_id"], created["client_secret"])
    whoami = client.get("/gateway/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert whoami.status_code == 200
    assert whoami.json()["client_id"] == created["client_id"]
    assert whoami.json()["tier"] == "silver"


def test_scope_outside_the_catalog_is_refused(gateway_env: dict[str, str]) -> None:
    result = run_cli(
        gateway_env, "clients", "create", "--name", "x", "--scopes", "crm:read crm:delete"
    )

    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "crm:delete" in lines[0]


@pytest.mark.parametrize("entities", ["", " , "])
def test_entities_naming_no_entity_are_refused_not_widened_to_all(
    gateway_env: dict[str, str], entities: str
) -> None:
    result = run_cli(
        gateway_env,
        "clients", "create", "--name", "x", "--scopes", "crm:read", "--entities", entities,
        "--json",
    )  # fmt: skip

    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "entit" in result.stderr
    listed = json.loads(run_cli(gateway_env, "clients", "list", "--json").stdout)
    assert listed == []


def test_list_shows_clients_without_secrets_and_revoke_revokes(
    client: TestClient[Litestar], gateway_env: dict[str, str]
) -> None:
    created = json.loads(
        run_cli(gateway_env, "clients", "create", "--name", "lister", "--scopes", "crm:read",
                "--json").stdout
    )  # fmt: skip
    client_id, secret = created["client_id"], created["client_secret"]

    listed = run_cli(gateway_env, "clients", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    (row,) = [row for row in rows if row["client_id"] == client_id]
    assert row["name"] == "lister"
    assert row["revoked_at"] is None
    assert "client_secret" not in row
    assert secret not in listed.stdout

    revoked = run_cli(gateway_env, "clients", "revoke", client_id)
    assert revoked.returncode == 0, revoked.stderr

    (row,) = [r for r in json.loads(run_cli(gateway_env, "clients", "list", "--json").stdout)
              if r["client_id"] == client_id]  # fmt: skip
    assert row["revoked_at"] is not None
    refused = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(client_id, secret))  # fmt: skip
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


def test_revoking_an_unknown_client_fails(gateway_env: dict[str, str]) -> None:
    result = run_cli(gateway_env, "clients", "revoke", "cl_nope")

    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cl_nope" in result.stderr


def test_keys_rotate_adds_a_key_the_running_app_publishes_first(
    client: TestClient[Litestar], gateway_env: dict[str, str]
) -> None:
    (before,) = client.get("/.well-known/jwks.json").json()["keys"]

    result = run_cli(gateway_env, "keys", "rotate")

    assert result.returncode == 0, result.stderr
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert len(keys) == 2
    assert keys[1]["kid"] == before["kid"]
    assert keys[0]["kid"] in result.stderr
    assert len(list(Path(gateway_env["ERPGW_SIGNING_KEYS_DIR"]).glob("*.pem"))) == 2


def test_db_upgrade_creates_the_schema_on_a_fresh_database(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"

    result = run_cli(
        {"ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{database}", "ERPGW_VAR_DIR": str(tmp_path)},
        "db", "upgrade",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"api_clients", "alembic_version"} <= tables


@pytest.mark.parametrize(
    ("variable", "value", "command"),
    [
        ("ERPGW_PORT", "abc", ["clients", "list"]),
        ("ERPGW_LOG_FORMAT", "xml", ["keys", "rotate"]),
        ("ERPGW_DATABASE_URL", "mysql://x", ["db", "upgrade"]),
        ("ERPGW_RATE_LIMIT_TIERS", "bronze=lots", ["clients", "create", "--name", "x",
                                                   "--scopes", "crm:read"]),
        ("ERPGW_DATABASE_URL", "postgresql+asyncpg://u:secretpw@[::1/db", ["clients", "list"]),
        ("ERPGW_API_VERSIONS", '{"api": "system/crm"}', ["clients", "revoke", "cl_x"]),
    ],
    ids=["port", "log-format", "database-scheme", "rate-tiers", "unparsable-url",
         "api-versions-object"],
)  # fmt: skip
def test_bad_setting_stops_any_command_with_one_line(
    tmp_path: Path, variable: str, value: str, command: list[str]
) -> None:
    env = {
        "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        "ERPGW_VAR_DIR": str(tmp_path),
        variable: value,
    }

    result = run_cli(env, *command, cwd=tmp_path)

    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "secretpw" not in result.stderr
    assert not (tmp_path / "gw.db").exists()
