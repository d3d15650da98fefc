"""Readiness says whether this replica can serve: Redis down in allow mode is ready (degraded),
in deny mode is not; a database that lost its tables is not ready."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.settings import load_settings
from tests.gateway.conftest import gateway_of, make_client, token_for

CLOSED_REDIS = "redis://127.0.0.1:1/0"


def _client(env: dict[str, str]) -> TestClient:  # type: ignore[type-arg]
    return TestClient(create_app(load_settings(env)))


def _bearer(client: TestClient) -> dict[str, str]:  # type: ignore[type-arg]
    client_id, secret = make_client(client, "process:read")
    return {"Authorization": f"Bearer {token_for(client, client_id, secret)}"}


def test_redis_down_in_allow_mode_is_ready_and_degraded(gateway_env: dict[str, str]) -> None:
    env = {
        **gateway_env,
        "ERPGW_REDIS_URL": CLOSED_REDIS,
        "ERPGW_RATE_LIMIT_ON_STORE_ERROR": "allow",
    }
    with _client(env) as client:
        ready = client.get("/health/ready")
        metrics = client.get("/metrics").text
        flows = client.get("/process/v1/flows", headers=_bearer(client))

    # Every route works without Redis in allow mode, so the replica must stay in rotation.
    assert flows.status_code == 200, flows.text
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "redis": "degraded"}}
    assert 'erpgw_dependency_up{dependency="redis"} 0.0' in metrics
    assert 'erpgw_dependency_up{dependency="database"} 1.0' in metrics


def test_redis_down_in_deny_mode_is_not_ready(gateway_env: dict[str, str]) -> None:
    env = {
        **gateway_env,
        "ERPGW_REDIS_URL": CLOSED_REDIS,
        "ERPGW_RATE_LIMIT_ON_STORE_ERROR": "deny",
    }
    with _client(env) as client:
        ready = client.get("/health/ready")
        client_id, secret = make_client(client, "process:read")
        token = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )

    # Deny mode refuses what it cannot count, so this replica cannot serve: not ready.
    assert token.status_code == 503
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert "redis unreachable" in ready.json()["detail"]
    assert int(ready.headers["retry-after"]) > 0


def test_redis_up_is_ready(gateway_env: dict[str, str], redis_url: str) -> None:
    env = {**gateway_env, "ERPGW_REDIS_URL": redis_url, "ERPGW_RATE_LIMIT_ON_STORE_ERROR": "deny"}
    with _client(env) as client:
        ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.parametrize("table", ["api_clients", "flows"])
def test_a_database_without_its_tables_is_not_ready(
    gateway_env: dict[str, str], tmp_path: Path, table: str
) -> None:
    with _client(gateway_env) as client:
        assert client.get("/health/ready").status_code == 200
        engine = gateway_of(client).engine

        async def drop() -> None:
            async with engine.begin() as conn:
                await conn.execute(sa.text(f"DROP TABLE {table}"))

        with client.portal() as portal:
            portal.call(drop)
        ready = client.get("/health/ready")

    assert ready.status_code == 503
    assert "database schema_missing" in ready.json()["detail"]


def test_durable_engine_without_its_tables_is_not_ready(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    with _client(gateway_env) as client:
        assert client.get("/health/ready").status_code == 200
        system = sa.create_engine(f"sqlite:///{tmp_path}/gw.dbos.sqlite")
        with system.begin() as conn:
            conn.execute(sa.text("PRAGMA foreign_keys=OFF"))
            conn.execute(sa.text("DROP TABLE workflow_status"))
        system.dispose()
        ready = client.get("/health/ready")

    assert ready.status_code == 503
    assert "database schema_missing" in ready.json()["detail"]
