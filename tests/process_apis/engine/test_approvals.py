"""Human-in-the-loop waits: a flow shows `waiting_approval` until its approval arrives, and
goes on without one when the wait times out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.records import FlowReader
from tests.process_apis.approval_flow import ApprovalFlows
from tests.process_apis.conftest import FAST, wait_for_status
from tests.process_apis.example_flow import FakePlatform


@pytest.fixture
async def approvals(
    database_url: str, tmp_path: Path, platform: FakePlatform
) -> AsyncIterator[tuple[FlowEngine, ApprovalFlows]]:
    engine = FlowEngine(database_url=database_url, executor_id="approvals", **FAST)
    flows = engine.register(ApprovalFlows, platform=platform, timeout=1.0)
    await engine.launch()
    try:
        yield engine, flows
    finally:
        await engine.shutdown()


async def test_flow_waits_for_approval_then_continues(
    approvals: tuple[FlowEngine, ApprovalFlows], platform: FakePlatform, reader: FlowReader
) -> None:
    engine, flows = approvals
    handle = await engine.start("escalation", "esc:c-1", flows.escalate, "c-1")

    waiting = await wait_for_status(reader, "esc:c-1", "waiting_approval")
    assert waiting.steps == []
    await engine.send("esc:c-1", "finance_approval", "approved")

    assert await handle.result() == "issue_credit-1"
    flow = await wait_for_status(reader, "esc:c-1", "succeeded")
    assert [s.name for s in flow.steps] == ["issue_credit"]


async def test_approval_wait_times_out(
    approvals: tuple[FlowEngine, ApprovalFlows], platform: FakePlatform, reader: FlowReader
) -> None:
    engine, flows = approvals
    handle = await engine.start("escalation", "esc:c-2", flows.escalate, "c-2")

    assert await handle.result() == "timed out"
    await wait_for_status(reader, "esc:c-2", "succeeded")
    assert platform.calls == []
