"""Repair of a mismatch a machine can fix: post the missing invoice through the invoice posting
path, apply a missing payment there, book a missing credit memo, or relink a customer; then
mark the mismatch repaired and close its exception.

The repair flow's id is `reconcile-repair:{mismatch id}`, so asking twice repairs once. Every
write is a keyed upsert (the posting path's own keys; a credit memo's external id is
`recon:{billing credit id}`), so a repeat writes nothing twice. No compensation: a step that
fails waits in the exception queue for its owner.
"""

from __future__ import annotations

from typing import Final

from contracts.errors import Conflict
from contracts.v1 import CreditMemoCreate, Invoice
from process_apis.cross_references import CrossReferences
from process_apis.engine.durable import (
    SHORT_OUTAGE,
    FlowInstance,
    flow,
    flow_class,
    flow_step,
    report_external_ids,
)
from process_apis.invoice_posting.flow import InvoicePostingFlows
from process_apis.reconciliation.books import CUSTOMER
from process_apis.reconciliation.compare import CUSTOMER_PREFIX, Finding
from process_apis.reconciliation.records import MismatchRow, RunStore
from system_apis.billing.port import BillingPort
from system_apis.erp.port import ErpPort

__all__ = ["REPAIR_TYPE", "RepairFlows", "repair_id"]

REPAIR_TYPE: Final = "reconciliation_repair"
PAGE: Final = 100


def repair_id(mismatch_id: str) -> str:
    return f"reconcile-repair:{mismatch_id}"


@flow_class("reconciliation-repair")
class RepairFlows(FlowInstance):
    def __init__(
        self,
        *,
        posting: InvoicePostingFlows,
        billing: BillingPort,
        erp: ErpPort,
        references: CrossReferences,
        store: RunStore,
    ) -> None:
        super().__init__()
        self.posting = posting
        self.billing = billing
        self.erp = erp
        self.references = references
        self.store = store

    # -- steps -----------------------------------------------------------------------------

    @flow_step(system="stripe", owner="finance", retry=SHORT_OUTAGE)
    async def read_credit(self, credit_id: str) -> Invoice | None:
        """The negative proration invoice a credit is, or None for a credit note."""
        if credit_id.startswith("in_"):
            return await self.billing.get_invoice(credit_id)
        return None

    @flow_step(system="netsuite", owner="finance", retry=SHORT_OUTAGE)
    async def book_credit_memo(self, finding: Finding, proration: Invoice | None) -> str:
        credit_id = finding.subject["credit"]
        erp_customer = finding.subject["erp_customer"]
        memo: str | None
        credited: str | None
        if proration is not None:
            amount, currency = -proration.total, proration.currency
            memo, credited = f"Proration credit {proration.number or proration.id}", None
        else:
            note = await self.billing.get_credit_note(credit_id)
            amount, currency, memo, credited = (
                note.amount,
                note.currency,
                note.memo,
                note.invoice_id,
            )
        erp_invoice = await self._erp_invoice_of(erp_customer, credited) if credited else None
        booked = await self.erp.upsert_credit_memo(
            CreditMemoCreate(
                customer_id=erp_customer,
                invoice_id=erp_invoice,
                legal_entity=finding.legal_entity,
                currency=currency,
                amount=amount,
                memo=memo or f"Credit {credit_id}",
                external_id=f"recon:{credit_id}",
            )
        )
        report_external_ids(netsuite_credit_memo=booked.id)
        return booked.id

    @flow_step(system="gateway", owner="integration")
    async def relink_customer(self, finding: Finding) -> None:
        subject = finding.subject
        await self.references.link(
            CUSTOMER,
            CUSTOMER_PREFIX + finding.key,
            subject["system"],
            subject["external_id"],
            legal_entity=subject["legal_entity"],
        )

    @flow_step(system="gateway")
    async def mark_repaired(self, mismatch: MismatchRow) -> None:
        """The mismatch is repaired and its exception closed."""
        if mismatch.exception_id is not None:
            await self.store.mark_repaired(
                mismatch.exception_id, repaired_by=repair_id(mismatch.id)
            )

    # -- the flow --------------------------------------------------------------------------

    @flow()
    async def repair(self, mismatch: MismatchRow) -> None:
        finding = mismatch.finding
        if finding.repair in ("post_invoice", "apply_payment"):
            await self._post(finding)
        elif finding.repair == "post_credit_memo":
            proration = await self.read_credit(finding.subject["credit"])
            await self.book_credit_memo(finding, proration)
        elif finding.repair == "relink_customer":
            await self.relink_customer(finding)
        else:
            raise Conflict(f"Mismatch {mismatch.id} needs a person", code="repair_unavailable")
        await self.mark_repaired(mismatch)

    async def _post(self, finding: Finding) -> None:
        """Through the invoice posting path: the invoice posted once (its external id is the
        billing invoice's), and what billing collected applied to it."""
        invoice = await self.posting.fetch_invoice(finding.subject["billing_invoice"])
        account = await self.posting.fetch_crm_account(invoice.customer_id)
        posted = await self.posting.book(invoice, account)
        if invoice.amount_paid > 0:
            await self.posting.apply_payment(invoice, posted)

    async def _erp_invoice_of(self, erp_customer: str, billing_invoice: str) -> str | None:
        cursor: str | None = None
        while True:
            page = await self.erp.list_invoices(customer_id=erp_customer, cursor=cursor, limit=PAGE)
            for invoice in page.data:
                if invoice.external_id == billing_invoice:
                    return invoice.id
            if not page.next_cursor or page.next_cursor == cursor:
                # Not posted (yet): the memo is booked on the customer, not on an invoice.
                return None
            cursor = page.next_cursor
