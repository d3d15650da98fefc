"""The flow resource as callers read it (`GET /process/v1/flows...`): what a flow is and did,
step by step. Its module path names the OpenAPI page schema (`Page_process_apis.flows.Flow_`),
so it stays here, beside the engine that records it (`process_apis.engine.records`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

__all__ = ["Flow", "FlowStatus", "FlowStep", "StepStatus"]

FlowStatus = Literal[
    "pending", "running", "waiting_approval", "waiting", "succeeded", "failed", "cancelled"
]
"""`waiting`: idle until an event it is open to (a month's escalation waiting for that month's
later breaches); `waiting_approval`: a person's decision."""
StepStatus = Literal["running", "succeeded", "failed"]


class FlowStep(msgspec.Struct, frozen=True, kw_only=True):
    """One business step of a flow: which platform it touched and how it went."""

    name: str
    system: str
    status: StepStatus
    attempts: int
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    external_ids: dict[str, str] = msgspec.field(default_factory=dict)
    """Records the step created on its platform (e.g. `{"stripe_invoice": "in_123"}`)."""


class Flow(msgspec.Struct, frozen=True, kw_only=True):
    """A governed business operation (quote-to-cash, amendment, ...) and its steps."""

    id: str
    type: str
    business_key: str
    status: FlowStatus
    crm_account: str | None = None
    legal_entity: str | None = None
    correlation_id: str | None = None
    caused_by: str | None = None
    """The flow that made the record this flow was started about (the quote-to-cash of the
    deal whose invoice it posts); it shares that flow's correlation id."""
    reason: str | None = None
    """Why the flow failed or was cancelled."""
    created_at: datetime
    updated_at: datetime
    steps: list[FlowStep] = msgspec.field(default_factory=list)
