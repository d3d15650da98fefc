"""The exception resource as operators read it (`GET /process/v1/exceptions...`): a flow
stopped at a step, its owner team and what was done about it. Its module path names the
OpenAPI page schema (`Page_process_apis.exceptions.ExceptionEntry_`), so it stays here,
beside the engine's queue that keeps it (`process_apis.engine.queue`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

__all__ = ["ExceptionEntry", "ExceptionStatus", "HistoryEntry", "OwnerTeam"]

OwnerTeam = Literal["finance", "revenue_ops", "support_ops", "integration"]
ExceptionStatus = Literal["open", "retrying", "resolved"]


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One audited action: who, when, what."""

    at: datetime
    actor: str
    action: str
    detail: str | None = None


class ExceptionEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A flow stopped at `step`, waiting for an operator's decision."""

    id: str
    flow_id: str
    flow_type: str
    step: str
    step_ref: str
    """The step's code (`module.qualname`), whose input contract an edited input must meet."""
    system: str
    owner: OwnerTeam
    status: ExceptionStatus
    error_class: str
    cause: str
    input: dict[str, Any] | None = None
    """The failed step's input, as it will be sent again on retry (JSON)."""
    assignee: str | None = None
    legal_entity: str | None = None
    occurrences: int = 1
    resolution: str | None = None
    created_at: datetime
    updated_at: datetime
    history: list[HistoryEntry] | None = None
    """Present on single reads."""
