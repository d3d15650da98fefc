"""Fixtures for the process layer: a migrated SQLite app database per test, a fake platform,
the example order flows, and a launched flow engine (DBOS is one per process, so each test
launches and shuts down its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway import storage
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.records import FlowReader
from process_apis.flows import Flow
from tests.process_apis.example_flow import FakePlatform, OrderFlows
from tests.support.waiting import eventually

FAST: dict[str, Any] = {
    "poll_interval_seconds": 0.05,
    "heartbeat_seconds": 0.2,
    "executor_timeout_seconds": 2.0,
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    storage.upgrade(url)
    return url


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
def flow_engine(database_url: str) -> FlowEngine:
    """The engine before launch: register flows on it."""
    return FlowEngine(database_url=database_url, executor_id="test-executor", **FAST)


@pytest.fixture
def orders(flow_engine: FlowEngine, platform: FakePlatform) -> OrderFlows:
    return flow_engine.register(OrderFlows, platform=platform)


@pytest.fixture
async def engine(flow_engine: FlowEngine, orders: OrderFlows) -> AsyncIterator[FlowEngine]:
    await flow_engine.launch()
    try:
        yield flow_engine
    finally:
        await flow_engine.shutdown()


@pytest.fixture
def reader(database_url: str) -> FlowReader:
    return FlowReader(storage.create_engine(database_url))


async def wait_for_status(
    reader: FlowReader, flow_id: str, *statuses: str, within: float = 15.0
) -> Flow:
    """Wait until the flow resource shows the flow in one of `statuses`."""

    async def reached() -> Flow | None:
        flow = await reader.get(flow_id)
        return flow if flow is not None and flow.status in statuses else None

    return await eventually(reached, timeout=within, what=f"flow {flow_id} in {statuses}")
