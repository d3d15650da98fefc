"""An `Idempotency-Key` claim belongs to the process that made it: when that replica is
killed mid-request, the client's retry on another replica gets 409s with a short Retry-After
for a few seconds at most, then the claim is taken over and the request runs once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import time_machine

from contracts.errors import Conflict
from gateway import storage
from gateway.idempotency import LEASE_SECONDS, IdempotencyStore, StoredResponse
from sandbox.salesforce.ids import seeded_id
from tests.process_apis.emulator_processes import emulator_processes, gateway_env
from tests.support.processes import create_client, start_gateway
from tests.support.waiting import eventually

TAKEOVER_WITHIN = LEASE_SECONDS + 4.0


@pytest.mark.slow
async def test_a_killed_replicas_claim_is_taken_over_by_the_retry_on_another(
    tmp_path: Path,
) -> None:
    opportunity = seeded_id("Opportunity", "acme-platform")
    flow_id = f"q2c:{opportunity}"
    database = tmp_path / "gateway.db"
    with emulator_processes(tmp_path) as urls:
        env = {
            "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "ERPGW_VAR_DIR": str(tmp_path),
            "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
            "ERPGW_ISSUER": "http://gateway.test",
            "ERPGW_ACCESS_LOG": "false",
            **gateway_env(urls),
        }
        client = await asyncio.to_thread(
            create_client, env, scopes="process:write process:read", tier="gold"
        )
        first = await asyncio.to_thread(start_gateway, env, tmp_path / "first.log")
        second = await asyncio.to_thread(start_gateway, env, tmp_path / "second.log")
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                token = await http.post(
                    f"{first.base_url}/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client["client_id"], client["client_secret"]),
                )
                headers = {
                    "Authorization": f"Bearer {token.json()['access_token']}",
                    "Idempotency-Key": "deal-takeover-1",
                }
                body = {"opportunity_id": opportunity}
                faults = f"{urls['salesforce']}/_emulator/faults"
                # The deal's reads hang, so the first replica holds the claim when it dies.
                held = await http.post(
                    faults, json={"latency_ms": 30_000, "path": "/services/data/*"}
                )
                assert held.status_code == 200
                in_flight = asyncio.create_task(
                    http.post(
                        f"{first.base_url}/process/v1/quote-to-cash", json=body, headers=headers
                    )
                )
                await eventually(
                    lambda: _claim_state(database) == "in_flight",
                    timeout=15,
                    what="the first replica's claim",
                )
                first.kill()
                killed_at = time.monotonic()
                with contextlib.suppress(httpx.HTTPError):
                    await in_flight
                assert (await http.post(faults, json={})).status_code == 200

                refusals: list[httpx.Response] = []
                sent_at: list[float] = []

                async def retried() -> httpx.Response | None:
                    sent_at.append(time.monotonic())
                    response = await http.post(
                        f"{second.base_url}/process/v1/quote-to-cash", json=body, headers=headers
                    )
                    if response.status_code == 409:
                        refusals.append(response)
                        return None
                    return response

                # The retry that takes the claim over then does the booking's own work (its
                # checks read Salesforce), which a loaded machine may slow: the takeover is
                # timed to when that retry was sent, and its work has time of its own.
                answer = await eventually(
                    retried,
                    timeout=TAKEOVER_WITHIN + 30,
                    interval=0.25,
                    what="the retry taking the claim over",
                )
                waited = sent_at[-1] - killed_at
                assert answer.status_code == 202, answer.text
                assert waited < TAKEOVER_WITHIN
                for refusal in refusals:
                    assert refusal.json()["code"] == "idempotency_key_in_flight"
                    assert 1 <= int(refusal.headers["retry-after"]) <= 2

                # The same key again now replays the answer; the deal is booked once.
                replay = await http.post(
                    f"{second.base_url}/process/v1/quote-to-cash", json=body, headers=headers
                )
                assert replay.status_code == 202
                assert replay.headers["idempotent-replayed"] == "true"

                async def finished() -> dict[str, Any] | None:
                    flow: dict[str, Any] = (
                        await http.get(
                            f"{second.base_url}/process/v1/flows/{flow_id}",
                            headers={"Authorization": headers["Authorization"]},
                        )
                    ).json()
                    return flow if flow.get("status") in ("succeeded", "failed") else None

                flow = await eventually(finished, timeout=60, interval=0.2, what="the flow")
                assert flow["status"] == "succeeded", flow
        finally:
            first.kill()
            second.stop()


def _claim_state(database: Path) -> str | None:
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT state FROM idempotency_records WHERE key = 'deal-takeover-1'")
            ).first()
    finally:
        engine.dispose()
    return None if row is None else str(row[0])


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IdempotencyStore]:
    url = (
        str(request.getfixturevalue("postgres_url"))
        if request.param == "postgres"
        else f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    )
    await storage.upgrade_async(url)
    engine = storage.create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(storage.idempotency_records.delete())
    yield IdempotencyStore(engine, retention_seconds=3600)
    await engine.dispose()


async def test_a_live_owner_keeps_its_claim_past_the_lease_by_renewing(
    store: IdempotencyStore,
) -> None:
    other = IdempotencyStore(store.engine, retention_seconds=3600)  # another replica
    with time_machine.travel(datetime(2026, 12, 1, 12, 0, tzinfo=UTC), tick=False) as clock:
        assert (await store.claim("client-a", "key-1", "fp")).acquired
        for _ in range(3):
            clock.shift(LEASE_SECONDS - 1)
            assert await store.renew() == 1
            with pytest.raises(Conflict) as refused:
                await other.claim("client-a", "key-1", "fp")
            assert refused.value.retry_after is not None
            assert 1 <= refused.value.retry_after <= 2

        # The owner stops renewing (it died): one lease later the key is the other's.
        clock.shift(LEASE_SECONDS + 1)
        assert (await other.claim("client-a", "key-1", "fp")).acquired
        assert await store.renew() == 1  # the old owner still believes it holds the claim

        # A finished request renews nothing.
        await other.complete(
            "client-a", "key-1", StoredResponse(status=202, headers=[], body=b"{}")
        )
        assert await other.renew() == 0
        replay = await store.claim("client-a", "key-1", "fp")
        assert replay.replay is not None and replay.replay.status == 202
