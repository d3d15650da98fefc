"""The flows queue a started gateway registers carries the concurrency and poll interval its
settings give (`ERPGW_FLOW_QUEUE_*`), read back from DBOS's own queue registry."""

from __future__ import annotations

from pathlib import Path

from dbos import DBOS
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.settings import load_settings
from process_apis.engine.flow_engine import FLOWS_QUEUE


def test_the_registered_flows_queue_has_the_configured_concurrency(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gw.db",
            "ERPGW_VAR_DIR": str(tmp_path),
            "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
            "ERPGW_LOG_FORMAT": "json",
            "ERPGW_SANDBOX": "true",
            "ERPGW_SANDBOX_VENDORS": "none",
            "ERPGW_FLOW_QUEUE_CONCURRENCY": "3",
            "ERPGW_FLOW_QUEUE_GLOBAL_CONCURRENCY": "5",
            "ERPGW_FLOW_QUEUE_POLL_SECONDS": "0.5",
        }
    )
    with TestClient(create_app(settings)) as client, client.portal() as portal:
        registered = portal.call(_registered_queue)

    assert registered == (3, 5, 0.5)


async def _registered_queue() -> tuple[int | None, int | None, float]:
    """(worker concurrency, global concurrency, poll interval) of the queue as DBOS holds it."""
    queue = await DBOS.retrieve_queue_async(FLOWS_QUEUE)
    assert queue is not None, "the gateway registered no flows queue"
    return (
        await queue.get_worker_concurrency_async(),
        await queue.get_global_concurrency_async(),
        await queue.get_polling_interval_sec_async(),
    )
