"""Support: customer cases (tickets) and the SLA entitlements they are measured against."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType
from msgspec.structs import force_setattr

from contracts.v1.base import Entity, InputStruct, Refs, UtcDateTime

__all__ = [
    "CasePriority",
    "CaseStatus",
    "Entitlement",
    "Severity",
    "SupportCase",
    "SupportCaseCreate",
    "SupportCasePatch",
    "severity_for",
]

CasePriority = Literal["low", "normal", "high", "urgent"]
Severity = Literal["sev1", "sev2", "sev3", "sev4"]
CaseStatus = Literal["new", "open", "pending", "hold", "solved", "closed"]

_SEVERITY_BY_PRIORITY: dict[str, Severity] = {
    "urgent": "sev1",
    "high": "sev2",
    "normal": "sev3",
    "low": "sev4",
}

_Percent = Annotated[int, msgspec.Meta(ge=0, le=100)]
_Email = Annotated[str, msgspec.Meta(pattern="^[^@\\s]+@[^@\\s]+$", max_length=254)]


def severity_for(priority: CasePriority) -> Severity:
    """The severity a priority implies: urgent sev1, high sev2, normal sev3, low sev4."""
    return _SEVERITY_BY_PRIORITY[priority]


class SupportCase(Entity, frozen=True, kw_only=True):
    """A customer's support request.

    `severity` follows from `priority` (urgent = sev1 ... low = sev4) unless given.
    """

    id: str
    customer_id: str | None = None
    """The canonical customer, when the support organization is linked to one."""
    organization_id: str | None = None
    """The support platform's organization id."""
    subject: str
    description: str | None = None
    priority: CasePriority = "normal"
    severity: Severity | None = None
    status: CaseStatus
    created_at: UtcDateTime
    updated_at: UtcDateTime | None = None
    first_response_at: UtcDateTime | None = None
    requester_email: str | None = None
    tags: list[str] = []
    refs: Refs = {}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.severity is None:
            # Frozen struct: the derived value is set once, while the instance is being built.
            force_setattr(self, "severity", severity_for(self.priority))


class SupportCaseCreate(InputStruct, frozen=True, kw_only=True):
    """A new support case for a customer."""

    customer_id: str
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    description: Annotated[str, msgspec.Meta(min_length=1)]
    priority: CasePriority = "normal"
    requester_email: _Email | None = None
    tags: list[str] = []


class SupportCasePatch(InputStruct, frozen=True, kw_only=True):
    """A partial update of a support case: only the fields present are written."""

    priority: CasePriority | UnsetType = UNSET
    status: CaseStatus | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET

    def fields_set(self) -> tuple[str, ...]:
        """Names of the fields this patch writes, in declaration order."""
        return tuple(
            name for name in self.__struct_fields__ if getattr(self, name) is not UNSET
        )


class Entitlement(Entity, frozen=True, kw_only=True):
    """A customer's support plan: the first-response SLA and the credit owed per breach."""

    id: str
    customer_id: str | None = None
    organization_id: str | None = None
    plan: str
    sla_first_response_minutes: Annotated[int, msgspec.Meta(ge=1)]
    credit_percent_per_breach: _Percent
    """Percent of the month's recurring charge credited per breached case."""
    credit_cap_percent: _Percent
    """The most that breaches can credit in one month, in percent."""
    active: bool = True
    refs: Refs = {}
