"""A billing credit note becomes an ERP credit memo through the posting path, once: keyed by
the credit note, against the ERP invoice posted for the credited billing invoice."""

from __future__ import annotations

from pathlib import Path

from contracts.v1 import CreditNoteCreate
from tests.process_apis.served_gateway import served_gateway
from tests.support.waiting import eventually


async def test_a_credit_note_becomes_one_credit_memo(tmp_path: Path) -> None:
    async with served_gateway(tmp_path) as world:
        customer = await world.subscribe("acme", "acme-platform")
        posted = await eventually(
            lambda: world.erp_invoices(customer.erp_customer),
            lambda invoices: len(invoices) == 1,
            what="the NetSuite invoice",
        )
        note = await world.stripe.create_credit_note(
            CreditNoteCreate(
                invoice_id=customer.stripe_invoice, currency="USD", amount=12_345,
                reason="product_unsatisfactory", memo="Goodwill",
            )
        )
        memos = await eventually(
            lambda: world.netsuite.list_credit_memos(customer_id=customer.erp_customer),
            lambda page: len(page.data) == 1,
            what="the NetSuite credit memo",
        )
        postings = await eventually(
            lambda: world.flows("credit_posting"),
            lambda flows: [f["status"] for f in flows] == ["succeeded"],
            what="the credit posting",
        )
        again = await world.netsuite.list_credit_memos(customer_id=customer.erp_customer)
        queue = await world.exceptions("finance")

    memo = memos.data[0]
    assert (memo.amount, memo.currency, memo.legal_entity) == (12_345, "USD", "US01")
    assert memo.external_id == f"cn:{note.id}"
    assert memo.invoice_id == posted[0].id
    assert len(again.data) == 1
    assert len(postings) == 1
    assert queue == []
