"""A tiny order flow for the engine tests: reserve stock in the CRM, invoice in billing, post
to the ERP. Each step calls a fake platform that records every call, so a test can count how
often a step really ran.

No compensation: a failure waits in the exception queue for an operator.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import msgspec

from process_apis.engine.durable import (
    FlowInstance,
    Retry,
    current_idempotency_key,
    flow,
    flow_class,
    flow_step,
    report_external_ids,
)

__all__ = ["FakePlatform", "InvoiceInput", "OrderFlows"]


class FakePlatform:
    """Records each call as (operation, idempotency key); raises the errors queued for it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.amounts: list[int] = []
        self._failures: dict[str, list[Exception]] = {}
        self._held: dict[str, asyncio.Event] = {}

    def fail(self, operation: str, *errors: Exception) -> None:
        self._failures.setdefault(operation, []).extend(errors)

    def hold(self, operation: str) -> asyncio.Event:
        """Calls of `operation` wait until the returned event is set."""
        return self._held.setdefault(operation, asyncio.Event())

    def count(self, operation: str) -> int:
        return Counter(op for op, _ in self.calls)[operation]

    async def call(self, operation: str, key: str) -> str:
        self.calls.append((operation, key))
        if operation in self._held:
            await self._held[operation].wait()
        queued = self._failures.get(operation)
        if queued:
            raise queued.pop(0)
        return f"{operation}-{len(self.calls)}"


class InvoiceInput(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    amount: int
    currency: str


@flow_class("orders")
class OrderFlows(FlowInstance):
    def __init__(self, *, platform: FakePlatform) -> None:
        super().__init__()
        self.platform = platform

    @flow_step(system="salesforce", retry=Retry(further=2, interval_seconds=0.01))
    async def reserve_stock(self, order_id: str) -> str:
        return await self.platform.call("reserve_stock", current_idempotency_key())

    @flow_step(system="stripe", retry=Retry(further=3, interval_seconds=0.01), input=InvoiceInput)
    async def create_invoice(self, invoice: InvoiceInput) -> str:
        invoice_id = await self.platform.call("create_invoice", current_idempotency_key())
        self.platform.amounts.append(invoice.amount)
        report_external_ids(stripe_invoice=invoice_id)
        return invoice_id

    @flow_step(system="netsuite", retry=Retry(further=1, interval_seconds=0.01))
    async def post_to_erp(self, invoice_id: str) -> str:
        return await self.platform.call("post_to_erp", current_idempotency_key())

    @flow()
    async def order(self, order_id: str, amount: int) -> str:
        await self.reserve_stock(order_id)
        invoice_id = await self.create_invoice(
            InvoiceInput(order_id=order_id, amount=amount, currency="USD")
        )
        return await self.post_to_erp(invoice_id)

    @flow()
    async def reserve_only(self, order_id: str) -> str:
        return await self.reserve_stock(order_id)
