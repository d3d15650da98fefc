"""A tiny escalation flow for the approval tests: it waits for a finance approval, then
issues a credit or records the refusal."""

from __future__ import annotations

from process_apis.engine.durable import (
    NO_RETRY,
    FlowInstance,
    flow,
    flow_class,
    flow_step,
    wait_for_approval,
)
from tests.process_apis.example_flow import FakePlatform

__all__ = ["ApprovalFlows"]


@flow_class("approvals")
class ApprovalFlows(FlowInstance):
    def __init__(self, *, platform: FakePlatform, timeout: float) -> None:
        super().__init__()
        self.platform = platform
        self.timeout = timeout

    @flow_step(system="stripe", retry=NO_RETRY)
    async def issue_credit(self, case_id: str) -> str:
        return await self.platform.call("issue_credit", case_id)

    @flow()
    async def escalate(self, case_id: str) -> str:
        answer = await wait_for_approval("finance_approval", timeout_seconds=self.timeout)
        if answer is None:
            return "timed out"
        if answer != "approved":
            return "refused"
        return await self.issue_credit(case_id)
