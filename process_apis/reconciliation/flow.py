"""Reconciliation: read what the CRM, billing and the ERP hold for the run's legal entities,
compare deals, invoices, payments, credits and customers, record the totals and every mismatch,
and give each mismatch one exception for its owner team.

Each mismatch has a follow-up flow keyed by its fingerprint (`reconcile-mismatch:{kind}:{what}:
{record}`): the same drift found by any later run is that same flow, so it opens one exception.
The follow-up waits on its exception: an operator resolves it with a reason (the mismatch is
`explained`), or a repair (`process_apis.reconciliation.repair`) fixes the books and retries it,
which then finds the mismatch repaired and closes the exception. No compensation: reading and
recording are idempotent, a run that fails is `failed` and the next run reads everything again.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Final, Protocol

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import Conflict
from process_apis.engine.durable import (
    BUSY_PLATFORM,
    NO_RETRY,
    FlowInstance,
    flow,
    flow_class,
    flow_step,
)
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.store import utcnow
from process_apis.reconciliation import books as reading
from process_apis.reconciliation.compare import (
    Books,
    Comparison,
    Finding,
    Kind,
    compare,
)
from process_apis.reconciliation.records import RunStore
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort

__all__ = [
    "FLOW_TYPE",
    "FOLLOW_UP_TYPE",
    "FollowUp",
    "Gauges",
    "ReconciliationFlows",
    "RunRequest",
    "RunResult",
]

FLOW_TYPE: Final = "reconciliation"
FOLLOW_UP_TYPE: Final = "reconciliation_mismatch"
LINK_WAIT_SECONDS: Final = 60.0
"""How long a run waits for its mismatches' exceptions before it completes without them (they
appear on the run as soon as they open)."""
LINK_POLL_SECONDS: Final = 0.1


class RunRequest(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    kinds: list[Kind]
    entities: list[str] | None = None
    """None: every entity."""
    settle_seconds: float
    scheduled: bool = False


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    checked: dict[str, int]
    mismatches: int


class FollowUp(msgspec.Struct, frozen=True, kw_only=True):
    """The mismatch a follow-up flow waits on (its exception's input)."""

    flow_id: str
    """The follow-up flow's own id (an occurrence of the mismatch)."""
    fingerprint: str
    kind: Kind
    legal_entity: str
    reason: str


class Gauges(Protocol):
    """What a completed run refreshes (the Prometheus gauges, read from the database)."""

    async def refresh(self) -> None: ...


@flow_class("reconciliation")
class ReconciliationFlows(FlowInstance):
    """The reconciliation run and each mismatch's follow-up."""

    def __init__(
        self,
        *,
        crm: CrmPort,
        billing: BillingPort,
        erp: ErpPort,
        database: AsyncEngine,
        store: RunStore,
        engine: FlowEngine,
        gauges: Gauges,
    ) -> None:
        super().__init__()
        self.crm = crm
        self.billing = billing
        self.erp = erp
        self.database = database
        self.store = store
        self.engine = engine
        self.gauges = gauges

    # -- steps of a run --------------------------------------------------------------------

    @flow_step(system="gateway")
    async def open_run(self, request: RunRequest) -> datetime | None:
        """Record the run; a scheduled run returns its watermark (None: read everything)."""
        watermark = await self.store.watermark(before=request.run_id) if request.scheduled else None
        await self.store.open_run(
            request.run_id,
            kinds=request.kinds,
            entities=request.entities,
            settle_seconds=request.settle_seconds,
            scheduled=request.scheduled,
            watermark=watermark,
        )
        return watermark

    @flow_step(system="gateway")
    async def read_clock(self) -> datetime:
        return utcnow()

    @flow_step(system="salesforce", retry=BUSY_PLATFORM)
    async def read_crm(self, entities: list[str] | None, since: datetime | None) -> Books:
        return await reading.read_crm(self.crm, entities, since=since)

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def read_billing(self, entities: list[str] | None) -> Books:
        return await reading.read_billing(self.billing, entities)

    @flow_step(system="netsuite", retry=BUSY_PLATFORM)
    async def read_erp(self, entities: list[str] | None) -> Books:
        return await reading.read_erp(self.erp, entities)

    @flow_step(system="gateway")
    async def read_cross_references(self, entities: list[str] | None) -> Books:
        return Books(links=await reading.read_links(self.database, entities))

    @flow_step(system="gateway")
    async def record_results(self, run_id: str, comparison: Comparison) -> dict[str, str]:
        """Record the run's findings; returns each mismatch's follow-up flow."""
        follow_ups = await self.store.follow_ups({f.fingerprint for f in comparison.findings})
        await self.store.record(run_id, comparison, follow_ups)
        return follow_ups

    @flow_step(system="gateway")
    async def link_exceptions(self, follow_up_ids: list[str]) -> list[str]:
        """Wait (a little) until each mismatch's follow-up has opened its exception, so a
        completed run shows every mismatch with its exception. Returns those still waiting."""
        deadline = asyncio.get_running_loop().time() + LINK_WAIT_SECONDS
        while True:
            waiting = await self.store.awaiting_exceptions(follow_up_ids)
            if not waiting or asyncio.get_running_loop().time() > deadline:
                return sorted(waiting)
            await asyncio.sleep(LINK_POLL_SECONDS)

    @flow_step(system="gateway")
    async def complete_run(self, run_id: str) -> None:
        await self.store.finish(run_id)
        await self.gauges.refresh()

    # -- the run ---------------------------------------------------------------------------

    @flow()
    async def reconcile(self, request: RunRequest) -> RunResult:
        watermark = await self.open_run(request)
        now = await self.read_clock()
        # An incremental run reads deals changed since the last scheduled run began, less
        # the settle window (a deal that was pending then is compared now).
        since = (
            watermark - timedelta(seconds=request.settle_seconds) if watermark is not None else None
        )
        crm = await self.read_crm(request.entities, since)
        billing = await self.read_billing(request.entities)
        erp = await self.read_erp(request.entities)
        links = await self.read_cross_references(request.entities)
        books = _merge(crm, billing, erp, links)
        comparison = compare(books, request.kinds, now=now, settle_seconds=request.settle_seconds)
        follow_ups = await self.record_results(request.run_id, comparison)
        for finding in comparison.findings:
            await self._follow_up(finding, follow_ups[finding.fingerprint])
        await self.link_exceptions(sorted(set(follow_ups.values())))
        await self.complete_run(request.run_id)
        return RunResult(
            run_id=request.run_id,
            checked=comparison.checked,
            mismatches=len(comparison.findings),
        )

    async def _follow_up(self, finding: Finding, flow_id: str) -> None:
        """Start the mismatch's follow-up (the same mismatch again: the same flow)."""
        await self.engine.start(
            FOLLOW_UP_TYPE,
            flow_id,
            self.follow_up,
            FollowUp(
                flow_id=flow_id,
                fingerprint=finding.fingerprint,
                kind=finding.kind,
                legal_entity=finding.legal_entity,
                reason=finding.reason,
            ),
            legal_entity=finding.legal_entity,
        )

    # -- a mismatch's follow-up ------------------------------------------------------------

    @flow_step(system="netsuite", owner="finance", retry=NO_RETRY, name="reconcile_books")
    async def reconcile_finance_books(self, mismatch: FollowUp) -> None:
        """Money booked differently in billing and the ERP (invoices, payments, credits)."""
        await self._agreed(mismatch)

    @flow_step(system="salesforce", owner="revenue_ops", retry=NO_RETRY, name="reconcile_books")
    async def reconcile_deal_books(self, mismatch: FollowUp) -> None:
        """A won deal sold, billed and booked at different amounts."""
        await self._agreed(mismatch)

    @flow_step(system="gateway", owner="integration", retry=NO_RETRY, name="reconcile_books")
    async def reconcile_customer_links(self, mismatch: FollowUp) -> None:
        """A customer linked differently across the four systems."""
        await self._agreed(mismatch)

    async def _agreed(self, mismatch: FollowUp) -> None:
        if not await self.store.is_repaired(mismatch.flow_id):
            raise Conflict(mismatch.reason, code="books_disagree")

    @flow()
    async def follow_up(self, mismatch: FollowUp) -> None:
        """Waits, in the exception queue, until the mismatch is repaired or explained."""
        if mismatch.kind == "deals":
            await self.reconcile_deal_books(mismatch)
        elif mismatch.kind == "customers":
            await self.reconcile_customer_links(mismatch)
        else:
            await self.reconcile_finance_books(mismatch)


def _merge(*parts: Books) -> Books:
    fields = {
        name: [item for part in parts for item in getattr(part, name)]
        for name in Books.__struct_fields__
    }
    return Books(**fields)
