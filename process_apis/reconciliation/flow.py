"""Reconciliation: read what the CRM, billing and the ERP hold for the run's legal entities,
compare deals, invoices, payments, credits and customers, record the totals and every mismatch,
and give each mismatch one exception for its owner team.

The exception of a mismatch lives as long as the drift: a later run that finds the same
mismatch (same kind, what is wrong, which record) keeps it, one that no longer finds it closes
it, and drift found again after a repair opens a new one. An operator resolves an exception
with a reason (the mismatch is `explained`), or a repair
(`process_apis.reconciliation.repair`) fixes the books and closes it (`repaired`). No
compensation: reading writes nothing, recording is one keyed transaction, and a run that fails
is `failed`; the next run reads everything again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Protocol

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from process_apis.engine.durable import (
    BUSY_PLATFORM,
    FlowInstance,
    flow,
    flow_class,
    flow_step,
)
from process_apis.engine.store import utcnow
from process_apis.reconciliation import books as reading
from process_apis.reconciliation.compare import (
    Books,
    Comparison,
    Kind,
    compare,
)
from process_apis.reconciliation.records import RunStore
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort

__all__ = [
    "FLOW_TYPE",
    "Gauges",
    "ReconciliationFlows",
    "RunRequest",
    "RunResult",
]

FLOW_TYPE: Final = "reconciliation"


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


class Gauges(Protocol):
    """What a completed run refreshes (the Prometheus gauges, read from the database)."""

    async def refresh(self) -> None: ...


@flow_class("reconciliation")
class ReconciliationFlows(FlowInstance):
    """The reconciliation run and its steps."""

    def __init__(
        self,
        *,
        crm: CrmPort,
        billing: BillingPort,
        erp: ErpPort,
        database: AsyncEngine,
        store: RunStore,
        gauges: Gauges,
    ) -> None:
        super().__init__()
        self.crm = crm
        self.billing = billing
        self.erp = erp
        self.database = database
        self.store = store
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

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def read_usage(self, entities: list[str] | None, now: datetime) -> Books:
        """Usage of the periods ended by `now`: the gateway's records and billing's
        invoiced units."""
        return Books(usage=await reading.read_usage(self.database, self.billing, entities, now=now))

    @flow_step(system="gateway")
    async def record_results(
        self, request: RunRequest, comparison: Comparison, incremental: bool
    ) -> None:
        """Record the findings, each with its exception for its owner team. An incremental
        run read only the deals that changed, so it closes no deal's exception."""
        await self.store.record(
            request.run_id,
            comparison,
            kinds=[k for k in request.kinds if not (incremental and k == "deals")],
            entities=request.entities,
        )

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
        usage = (
            await self.read_usage(request.entities, now) if "usage" in request.kinds else Books()
        )
        books = _merge(crm, billing, erp, links, usage)
        comparison = compare(books, request.kinds, now=now, settle_seconds=request.settle_seconds)
        await self.record_results(request, comparison, since is not None)
        await self.complete_run(request.run_id)
        return RunResult(
            run_id=request.run_id,
            checked=comparison.checked,
            mismatches=len(comparison.findings),
        )


def _merge(*parts: Books) -> Books:
    fields = {
        name: [item for part in parts for item in getattr(part, name)]
        for name in Books.__struct_fields__
    }
    return Books(**fields)
