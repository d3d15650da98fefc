"""A replica killed and restarted on the same host, port and worker slot is the same
executor: it takes its old executor id and resumes its own pending flows at once, not after
the dead one's heartbeat went stale."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.salesforce.ids import seeded_id
from tests.process_apis.emulator_processes import emulator_processes, gateway_env
from tests.support.processes import create_client, start_gateway
from tests.support.servers import free_port
from tests.support.waiting import eventually

RESUMED_WITHIN = 12.0
"""Well under the 30 s a stale heartbeat takes, and the sweep after it."""


def _executor_ids(log: Path) -> list[str]:
    ids = []
    for line in log.read_text().splitlines():
        if '"flow_engine_launched"' in line:
            ids.append(json.loads(line)["executor_id"])
    return ids


@pytest.mark.slow
async def test_a_restarted_replica_resumes_its_own_flows_at_once(tmp_path: Path) -> None:
    opportunity = seeded_id("Opportunity", "acme-platform")
    flow_id = f"q2c:{opportunity}"
    port = free_port()
    with emulator_processes(tmp_path) as urls:
        env = {
            "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
            "ERPGW_VAR_DIR": str(tmp_path),
            "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
            "ERPGW_ISSUER": "http://gateway.test",
            "ERPGW_ACCESS_LOG": "false",
            "ERPGW_LOG_FORMAT": "json",
            **gateway_env(urls),
        }
        client = await asyncio.to_thread(
            create_client, env, scopes="process:write process:read", tier="gold"
        )
        async with httpx.AsyncClient(timeout=10) as http:
            faults = f"{urls['netsuite']}/_emulator/faults"
            # The sales order call hangs, so the flow sits in that step when it is killed.
            held = await http.post(
                faults, json={"latency_ms": 30_000, "path": "/services/rest/record/v1/salesOrder*"}
            )
            assert held.status_code == 200
            first = await asyncio.to_thread(start_gateway, env, tmp_path / "first.log", port=port)
            try:
                token = await http.post(
                    f"{first.base_url}/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client["client_id"], client["client_secret"]),
                )
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
                booked = await http.post(
                    f"{first.base_url}/process/v1/quote-to-cash",
                    json={"opportunity_id": opportunity},
                    headers={**headers, "Idempotency-Key": "restart-1"},
                )
                assert booked.status_code == 202, booked.text

                async def at_sales_order() -> bool:
                    flow = (
                        await http.get(
                            f"{first.base_url}/process/v1/flows/{flow_id}", headers=headers
                        )
                    ).json()
                    steps = flow.get("steps", [])
                    return bool(steps) and steps[-1]["name"] == "book_sales_order"

                await eventually(at_sales_order, timeout=20, what="the flow at the sales order")
            finally:
                first.kill()
            assert (await http.post(faults, json={})).status_code == 200

            second = await asyncio.to_thread(start_gateway, env, tmp_path / "second.log", port=port)
            restarted_at = time.monotonic()
            try:

                async def finished() -> dict[str, Any] | None:
                    flow: dict[str, Any] = (
                        await http.get(
                            f"{second.base_url}/process/v1/flows/{flow_id}", headers=headers
                        )
                    ).json()
                    return flow if flow.get("status") in ("succeeded", "failed") else None

                flow = await eventually(
                    finished,
                    timeout=RESUMED_WITHIN,
                    interval=0.2,
                    what="the flow resumed by the restarted replica",
                )
                assert time.monotonic() - restarted_at < RESUMED_WITHIN
                assert flow["status"] == "succeeded", flow
            finally:
                second.stop()
    first_ids = _executor_ids(tmp_path / "first.log")
    second_ids = _executor_ids(tmp_path / "second.log")
    assert first_ids and first_ids == second_ids
