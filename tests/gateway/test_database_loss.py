"""Losing the database: every database-backed route answers 503 problem+json with Retry-After
(never 500) and readiness says so; once the database is back and `erp-gateway db upgrade` has
recreated every table (the durable engine's included), the same running gateway serves again.
A flow record left pending without its durable workflow is started when the deal is booked
again, instead of being returned as pending for ever."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from process_apis.engine.records import create_flow
from sandbox.salesforce.ids import seeded_id
from tests.process_apis.emulator_processes import emulator_processes, gateway_env
from tests.process_apis.q2c_harness import Harness, harness
from tests.support.processes import cli, create_client, start_gateway
from tests.support.waiting import eventually

SCOPES = "process:write process:read erp:read"


def _admin_url(url: str) -> str:
    return sa.make_url(url).set(database="postgres").render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    engine = create_async_engine(_admin_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
async def lost_database(postgres_url: str) -> AsyncIterator[str]:
    """A PostgreSQL database of its own, which the test drops and creates again."""
    name = f"{sa.make_url(postgres_url).database}_loss"
    url = sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    await _admin(
        postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )
    yield url
    await _admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def emulators(tmp_path: Path) -> Iterator[dict[str, str]]:
    with emulator_processes(tmp_path) as urls:
        yield urls


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    body: dict[str, Any] = response.json()
    return body


async def _token(http: httpx.AsyncClient, base_url: str, client: dict[str, str]) -> httpx.Response:
    return await http.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
    )


@pytest.mark.slow
@pytest.mark.postgres
async def test_a_dropped_database_is_503_until_upgraded_then_serves_without_restart(
    tmp_path: Path, lost_database: str, emulators: dict[str, str], postgres_url: str
) -> None:
    name = sa.make_url(lost_database).database
    env = {
        "ERPGW_DATABASE_URL": lost_database,
        "ERPGW_VAR_DIR": str(tmp_path),
        "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "ERPGW_ISSUER": "http://gateway.test",
        "ERPGW_ACCESS_LOG": "false",
        "ERPGW_LOG_FORMAT": "json",
        **gateway_env(emulators),
    }
    client = await asyncio.to_thread(create_client, env, scopes=SCOPES, tier="gold")
    gateway = await asyncio.to_thread(start_gateway, env, tmp_path / "gateway.log")
    acme = seeded_id("Opportunity", "acme-platform")
    globex = seeded_id("Opportunity", "globex-enterprise")
    try:
        async with httpx.AsyncClient(timeout=20) as http:
            base = gateway.base_url
            token = await _token(http, base, client)
            assert token.status_code == 200, token.text
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            assert (await http.get(f"{base}/health/ready")).status_code == 200

            await _admin(postgres_url, f'DROP DATABASE "{name}" WITH (FORCE)')

            ready = _problem(await http.get(f"{base}/health/ready"), 503)
            assert "database" in ready["detail"]
            _problem(await _token(http, base, client), 503)
            flows = _problem(
                await http.get(f"{base}/process/v1/flows/q2c:{acme}", headers=headers), 503
            )
            assert flows["code"] == "database_unavailable"
            _problem(await http.get(f"{base}/process/v1/flows", headers=headers), 503)
            _problem(
                await http.post(
                    f"{base}/process/v1/quote-to-cash",
                    json={"opportunity_id": acme},
                    headers={**headers, "Idempotency-Key": "loss-1"},
                ),
                503,
            )

            # Back, but empty: still not ready, still 503, never 500.
            await _admin(postgres_url, f'CREATE DATABASE "{name}"')
            ready = _problem(await http.get(f"{base}/health/ready"), 503)
            assert "schema_missing" in ready["detail"] or "unreachable" in ready["detail"]
            _problem(await _token(http, base, client), 503)

            await asyncio.to_thread(cli, "db", "upgrade", env=env)

            async def ready_again() -> bool:
                return (await http.get(f"{base}/health/ready")).status_code == 200

            await eventually(ready_again, timeout=30, what="ready after db upgrade")
            # Clients lived in the lost database: a new one is made the usual way.
            again = await asyncio.to_thread(create_client, env, scopes=SCOPES, tier="gold")
            token = await _token(http, base, again)
            assert token.status_code == 200, token.text
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            booked = await http.post(
                f"{base}/process/v1/quote-to-cash",
                json={"opportunity_id": globex},
                headers={**headers, "Idempotency-Key": "loss-2"},
            )
            assert booked.status_code == 202, booked.text

            async def finished() -> dict[str, Any] | None:
                body: dict[str, Any] = (
                    await http.get(f"{base}/process/v1/flows/q2c:{globex}", headers=headers)
                ).json()
                return body if body.get("status") in ("succeeded", "failed") else None

            flow = await eventually(finished, timeout=60, interval=0.2, what="flow after loss")
            assert flow["status"] == "succeeded", flow
        _assert_quiet_json_log(tmp_path / "gateway.log")
    finally:
        gateway.stop()


def _assert_quiet_json_log(log: Path) -> None:
    """Through the outage: one JSON object a line, whatever wrote it, no 500, and no failure
    written again and again."""
    failures: Counter[str] = Counter()
    lines = log.read_text().splitlines()
    # `serve` prints its banner to stdout before anything is logged.
    first = next(index for index, line in enumerate(lines) if line.startswith("{"))
    assert "erp-gateway on" in "\n".join(lines[:first])
    for line in lines[first:]:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON log line: {line[:300]!r}") from None
        assert event.get("status") != 500, event
        if event.get("level") in ("warning", "error"):
            gist = re.sub(r"\d+", "#", str(event.get("event")).split("\n", 1)[0])
            failures[f"{gist} {event.get('error', '')}".strip()] += 1
    # Each failure once (a second time only if the test spanned its one-minute window).
    assert all(count <= 2 for count in failures.values()), failures.most_common(5)


@pytest.fixture
async def q2c(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(tmp_path) as opened:
        yield opened


async def test_a_pending_record_without_its_workflow_runs_when_booked_again(
    q2c: Harness,
) -> None:
    opportunity = seeded_id("Opportunity", "acme-platform")
    flow_id = f"q2c:{opportunity}"
    # What a gateway that died between committing the record and enqueueing its workflow
    # left behind.
    async with q2c.gateway.engine.begin() as conn:
        await create_flow(
            conn,
            flow_id=flow_id,
            flow_type="quote_to_cash",
            correlation_id=None,
            crm_account=None,
            legal_entity=None,
            now=datetime.now(UTC),
        )

    response = await q2c.book(opportunity)

    assert response.status_code == 202, response.text
    flow = await q2c.wait(flow_id, "succeeded", "failed", within=25.0)
    assert flow["status"] == "succeeded", flow
