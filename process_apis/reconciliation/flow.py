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

A scheduled run reads incrementally from the last scheduled run's start less the settle window
(its watermark): the records each system's change feed shows changed since then, widened to
their customers' whole books in every system (`books`), and it closes only the exceptions of
records it compared again. It reads everything when there is no watermark, when the watermark
is older than billing's event history (30 days), and once every `full_every_seconds`: a
record deleted in the ERP leaves no change behind, so only a full read finds it gone.
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
from system_apis.billing.port import BillingChanges, BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpChanges, ErpPort

__all__ = [
    "FLOW_TYPE",
    "Gauges",
    "ReconciliationFlows",
    "RunRequest",
    "RunResult",
]

FLOW_TYPE: Final = "reconciliation"
CHANGE_HISTORY: Final = timedelta(days=30)
"""How far back billing's change feed (Stripe's events) reaches."""


class RunRequest(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    kinds: list[Kind]
    entities: list[str] | None = None
    """None: every entity."""
    settle_seconds: float
    scheduled: bool = False
    full_every_seconds: float = 86400.0
    """A scheduled run reads everything when the last one that did began this long ago."""


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
        if watermark is not None and await self._due_full_read(request, watermark):
            watermark = None
        await self.store.open_run(
            request.run_id,
            kinds=request.kinds,
            entities=request.entities,
            settle_seconds=request.settle_seconds,
            scheduled=request.scheduled,
            watermark=watermark,
        )
        return watermark

    async def _due_full_read(self, request: RunRequest, watermark: datetime) -> bool:
        now = utcnow()
        if now - (watermark - timedelta(seconds=request.settle_seconds)) >= CHANGE_HISTORY:
            return True
        last_full = await self.store.last_full(before=request.run_id)
        return last_full is None or (now - last_full).total_seconds() >= (
            request.full_every_seconds
        )

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

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def read_billing_changes(self, since: datetime) -> BillingChanges:
        return await self.billing.changed_since(since)

    @flow_step(system="netsuite", retry=BUSY_PLATFORM)
    async def read_erp_changes(self, since: datetime) -> ErpChanges:
        return await self.erp.changed_since(since)

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def read_billing_customers(
        self, entities: list[str] | None, customer_ids: list[str]
    ) -> Books:
        return await reading.read_billing_customers(self.billing, entities, customer_ids)

    @flow_step(system="netsuite", retry=BUSY_PLATFORM)
    async def read_erp_customers(
        self, entities: list[str] | None, customer_ids: list[str]
    ) -> Books:
        return await reading.read_erp_customers(self.erp, entities, customer_ids)

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def read_billing_counterparts(
        self, entities: list[str] | None, invoice_ids: list[str]
    ) -> Books:
        return await reading.read_billing_counterparts(self.billing, entities, invoice_ids)

    @flow_step(system="netsuite", retry=BUSY_PLATFORM)
    async def read_erp_counterparts(
        self, entities: list[str] | None, external_ids: list[str]
    ) -> Books:
        return await reading.read_erp_counterparts(self.erp, entities, external_ids)

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
        run closes only the exceptions of records it compared again."""
        await self.store.record(
            request.run_id,
            comparison,
            kinds=request.kinds,
            entities=request.entities,
            partial=incremental,
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
        links = await self.read_cross_references(request.entities)
        if since is None:
            billing = await self.read_billing(request.entities)
            erp = await self.read_erp(request.entities)
        else:
            crm, billing, erp = await self._read_changed(request.entities, since, crm, links)
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

    async def _read_changed(
        self, entities: list[str] | None, since: datetime, crm: Books, links: Books
    ) -> tuple[Books, Books, Books]:
        """The books of the customers whose records changed since `since` in any system, the
        counterparts they name under other customers, and the CRM accounts they belong to."""
        billing_changes = await self.read_billing_changes(since)
        erp_changes = await self.read_erp_changes(since)
        billing = await self.read_billing_customers(
            entities, reading.billing_scope(billing_changes, erp_changes, crm.deals, links.links)
        )
        erp = await self.read_erp_customers(
            entities,
            reading.erp_scope(
                billing_changes, erp_changes, billing.billing_customers, crm.deals, links.links
            ),
        )
        billed = {invoice.id for invoice in billing.billing_invoices}
        posted = {invoice.external_id for invoice in erp.erp_invoices if invoice.external_id}
        billing_more = await self.read_billing_counterparts(entities, sorted(posted - billed))
        erp_more = await self.read_erp_counterparts(
            entities,
            sorted(i.id for i in billing.billing_invoices if i.id not in posted and i.total > 0),
        )
        accounts = reading.accounts_in_scope(
            billing_changes, erp_changes, billing.billing_customers, crm.deals, links.links
        )
        crm = msgspec.structs.replace(
            crm, accounts=[account for account in crm.accounts if account.id in accounts]
        )
        return crm, _merge(billing, billing_more), _merge(erp, erp_more)


def _merge(*parts: Books) -> Books:
    fields = {
        name: [item for part in parts for item in getattr(part, name)]
        for name in Books.__struct_fields__
    }
    return Books(**fields)
