"""What the layers above need from the support platform, in canonical contracts.

Organizations and cases are addressed by the support platform's own ids (the `id` of the
contracts it returns); a canonical customer id finds its organization through
`find_organization`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from contracts.v1 import (
    CasePriority,
    CaseStatus,
    Contact,
    Customer,
    Entitlement,
    Page,
    SupportCase,
    SupportCaseCreate,
    SupportCasePatch,
)

__all__ = ["CaseComment", "SupportPort"]


class CaseComment(Protocol):
    """One comment on a case as the support platform returns it (the canonical contracts have
    no comment type)."""

    @property
    def body(self) -> str: ...

    @property
    def public(self) -> bool: ...


@runtime_checkable
class SupportPort(Protocol):
    """The support desk (Zendesk): customer organizations, their entitlements and cases."""

    async def get_organization(self, organization_id: str) -> Customer:
        """Raises UpstreamNotFound when there is no such organization."""
        ...

    async def find_organization(self, external_id: str) -> Customer | None:
        """The organization linked to a canonical customer id, if any."""
        ...

    async def list_organizations(
        self, *, cursor: str | None = None, limit: int = 50
    ) -> Page[Customer]: ...

    async def upsert_organization(self, customer: Customer, *, external_id: str) -> Customer:
        """Create or update the organization linked to `external_id` (safe to repeat)."""
        ...

    async def get_entitlement(self, organization_id: str) -> Entitlement | None:
        """The organization's SLA entitlement; None when it has no support plan."""
        ...

    async def get_case(self, case_id: str) -> SupportCase: ...

    async def list_cases(
        self,
        *,
        organization_id: str | None = None,
        priority: CasePriority | None = None,
        status: CaseStatus | None = None,
        entities: Collection[str] | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[SupportCase]:
        """A page of cases; `entities` keeps only cases of organizations in those legal
        entities (None keeps all)."""
        ...

    async def create_case(
        self, case: SupportCaseCreate, *, idempotency_key: str | None = None
    ) -> SupportCase: ...

    async def update_case(self, case_id: str, patch: SupportCasePatch) -> SupportCase: ...

    async def add_internal_comment(
        self, case_id: str, body: str, *, author_id: str | None = None
    ) -> None:
        """A note support staff see and the customer does not."""
        ...

    async def list_comments(self, case_id: str) -> Sequence[CaseComment]:
        """Every comment on the case, oldest first (internal notes included)."""
        ...

    async def get_first_response_at(self, case_id: str) -> datetime | None:
        """When support staff first answered the case publicly; None while unanswered."""
        ...

    async def find_user_by_email(self, email: str) -> Contact | None: ...
