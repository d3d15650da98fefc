"""A flow engine whose flows run on the in-memory fakes of the four ports: business rules of a
flow tested without HTTP (cosmicpython `tests/unit/test_handlers.py`).

The `bench` fixture (`flow_bench`) gives each test a fresh engine on its own SQLite file
(DBOS is one per process, so the engine is launched and destroyed per test, as dbos-demo-apps'
widget-store conftest does); the test registers its flow class with fakes as its ports
(`engine.register(FlowClass, **ports)`), launches, starts flows and reads what they did: the
fakes' records, the flow resource and the exception queue. A test module imports the
fixtures by name:

    from tests.process_apis.fakes_engine import (  # noqa: F401 (fixtures)
        FlowBench, flow_bench, migrated_database)

    async def test_something(bench: FlowBench) -> None:
        flows = bench.register(OrderFlows, billing=FakeBilling())
        await bench.launch()
        result = await bench.run("order", "order:1", flows.order, "1")
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from dbos import DBOS, SetWorkflowID
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.principal import Principal
from gateway import storage
from process_apis.engine.durable import FlowInstance
from process_apis.engine.flow_engine import FlowEngine, FlowHandle
from process_apis.engine.queue import ExceptionQueue
from process_apis.engine.records import FlowReader, create_flow
from process_apis.engine.store import utcnow
from process_apis.exceptions import ExceptionEntry
from process_apis.flows import Flow
from tests.support.waiting import eventually

__all__ = ["FlowBench", "flow_bench", "migrated_database"]

F = TypeVar("F", bound=FlowInstance)
R = TypeVar("R")

FAST: dict[str, Any] = {
    "poll_interval_seconds": 0.02,
    "heartbeat_seconds": 1.0,
    "executor_timeout_seconds": 10.0,
}
"""Queues and message waits poll often, so a flow starts and finishes within milliseconds."""
OPERATOR = Principal(client_id="test-operator", name="operator", scopes=frozenset({"ops:read"}))
"""Sees every legal entity's exceptions."""


class FlowBench:
    """One test's flow engine on a temporary SQLite database, and what a test reads back."""

    def __init__(self, database_url: str, **engine_options: Any) -> None:
        self.database_url = database_url
        self.engine = FlowEngine(
            database_url=database_url, executor_id="fakes-executor",
            **{**FAST, **engine_options},
        )
        self.database: AsyncEngine = storage.create_engine(database_url)
        """The app database (flows, steps, exceptions, cross-references): for ports that
        keep state there (`CrossReferences`, `AppliedVersions`)."""
        self.reader = FlowReader(self.database)
        self.queue = ExceptionQueue(self.database, registry=CollectorRegistry())
        self._launched = False

    def register(self, flow_type: type[F], /, **ports: Any) -> F:
        """`engine.register(flow_type, **ports)`: call before `launch`."""
        return self.engine.register(flow_type, **ports)

    async def launch(self) -> None:
        await self.engine.launch()
        self._launched = True

    async def start(
        self, flow_type: str, flow_id: str, fn: Callable[..., Coroutine[Any, Any, Any]],
        *args: Any,
    ) -> FlowHandle:
        """What `FlowEngine.start` does (the flow record, then the workflow under the business
        key; a key that exists is that flow), but run at once rather than from the flows
        queue: DBOS looks for a queue registered after launch once a second (a fixed interval
        in its queue manager), which made each test wait about 1 s for its first flow."""
        async with self.database.begin() as conn:
            created = await create_flow(
                conn, flow_id=flow_id, flow_type=flow_type, correlation_id=None,
                crm_account=None, legal_entity=None, now=utcnow(),
            )
        with SetWorkflowID(flow_id):
            workflow = await DBOS.start_workflow_async(fn, *args)
        return FlowHandle(flow_id=flow_id, created=created, workflow=workflow,
                          poll_interval_seconds=FAST["poll_interval_seconds"])

    async def run(
        self, flow_type: str, flow_id: str, fn: Callable[..., Coroutine[Any, Any, R]],
        *args: Any, within: float = 10.0,
    ) -> R:
        """Start the flow and wait for its result; a flow still running after `within`
        seconds (waiting for an operator, say) fails the test with its status and causes."""
        handle = await self.start(flow_type, flow_id, fn, *args)
        # The workflow's result is what `fn` returned (DBOS hands it back untyped).
        return cast(R, await self.result(handle, within=within))

    async def result(self, handle: FlowHandle, *, within: float = 10.0) -> Any:
        try:
            return await asyncio.wait_for(handle.result(), within)
        except TimeoutError:
            flow = await self.reader.get(handle.flow_id)
            causes = [entry.cause for entry in await self.exceptions()]
            status = flow.status if flow is not None else None
            raise AssertionError(
                f"flow {handle.flow_id} did not end within {within}s: {status}; open "
                f"exceptions: {causes}"
            ) from None

    async def flow(self, flow_id: str) -> Flow:
        flow = await self.reader.get(flow_id)
        assert flow is not None, f"no flow {flow_id}"
        return flow

    async def wait(self, flow_id: str, *statuses: str, within: float = 10.0) -> Flow:
        """The flow once its resource shows one of `statuses`."""

        async def reached() -> Flow | None:
            flow = await self.reader.get(flow_id)
            return flow if flow is not None and flow.status in statuses else None

        return await eventually(
            reached, timeout=within, interval=0.02, what=f"flow {flow_id} in {statuses}"
        )

    async def exceptions(self, *, status: str | None = "open") -> list[ExceptionEntry]:
        """The exception queue (oldest first), as an operator who sees every entity."""
        page = await self.queue.list(principal=OPERATOR, status=status, limit=100)
        return list(page.data)

    async def close(self) -> None:
        if self._launched:
            await self.engine.shutdown()
            self._launched = False
        await self.database.dispose()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty app database at the newest migration, made once: each test gets a copy (the
    migrations take about half a second, a copy a millisecond)."""
    path = tmp_path_factory.mktemp("fakes-engine") / "template.db"
    storage.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(name="bench")
async def flow_bench(migrated_database: Path, tmp_path: Path) -> AsyncIterator[FlowBench]:
    """A fresh flow engine on its own migrated SQLite file; shut down and disposed after the
    test."""
    path = tmp_path / "gateway.db"
    shutil.copyfile(migrated_database, path)
    bench = FlowBench(f"sqlite+aiosqlite:///{path}")
    try:
        yield bench
    finally:
        await bench.close()
