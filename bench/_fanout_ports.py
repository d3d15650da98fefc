"""Fake domain ports for `fanout.py`: every call waits its platform's delay, records how long
it really took, and answers one canned customer's data as contracts."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import UTC, date, datetime, timedelta
from typing import Any

from contracts.money import Money
from contracts.v1 import (
    CasePriority,
    Contact,
    Customer,
    Entitlement,
    Invoice,
    Page,
    Price,
    Subscription,
    SubscriptionItem,
    SupportCase,
)
from system_apis.erp.port import ReceivablesBalance

__all__ = ["FakePorts", "LoopWatch"]

_KEEP = 200_000
_NOW = datetime(2026, 11, 20, tzinfo=UTC)
_PRIORITIES: tuple[CasePriority, ...] = ("urgent", "high", "normal")


class _Timed:
    def __init__(self, delay: float, record: deque[float]) -> None:
        self._delay = delay
        self._record = record

    async def _wait(self) -> None:
        started = time.perf_counter()
        await asyncio.sleep(self._delay)
        self._record.append((time.perf_counter() - started) * 1000)


class FakeCrm(_Timed):
    async def get_account(self, account_id: str) -> Customer:
        await self._wait()
        return Customer(id=account_id, legal_name="Bench Corp", legal_entity="US01",
                        currency="USD", refs={"salesforce": account_id})

    async def list_contacts(self, account_id: str) -> list[Contact]:
        await self._wait()
        return [Contact(id=f"003BENCH{i}", customer_id=account_id, last_name=f"Person {i}",
                        email=f"p{i}@bench.test") for i in range(2)]


class FakeBilling(_Timed):
    async def get_customer(self, customer_id: str) -> Customer:
        await self._wait()
        return Customer(id=customer_id, legal_name="Bench Corp", legal_entity="US01",
                        currency="USD", payment_status="current")

    async def find_customer(self, *, crm_account_id: str) -> Customer | None:
        return await self.get_customer("cus_bench")

    async def list_subscriptions(self, **_: Any) -> Page[Subscription]:
        await self._wait()
        items = [
            SubscriptionItem(id="si_1", price_id="price_std", quantity=1, unit_amount=50_000),
            SubscriptionItem(id="si_2", price_id="price_seat", quantity=20, unit_amount=2_500),
        ]
        return Page(data=[Subscription(id="sub_bench", customer_id="cus_bench", status="active",
                                       currency="USD", current_period_end=_NOW + timedelta(30),
                                       items=items)])

    async def list_invoices(self, **_: Any) -> Page[Invoice]:
        await self._wait()
        return Page(data=[
            Invoice(id=f"in_bench{i}", customer_id="cus_bench", status="open", currency="USD",
                    subtotal=100_000, total=100_000, amount_due=100_000,
                    amount_remaining=100_000, due_date=date(2026, 12, 20), legal_entity="US01")
            for i in range(2)
        ])

    async def get_price(self, price_id: str) -> Price:
        await self._wait()
        return Price(id=price_id, product_id="prod_bench", currency="USD", unit_amount=50_000,
                     recurring_interval="month")

    async def list_credit_notes(self, **_: Any) -> Page[Any]:
        await self._wait()
        return Page(data=[])


class FakeSupport(_Timed):
    async def get_organization(self, organization_id: str) -> Customer:
        await self._wait()
        return Customer(id=organization_id, legal_name="Bench Corp", legal_entity="US01",
                        currency="USD")

    async def find_organization(self, external_id: str) -> Customer | None:
        return await self.get_organization("9001")

    async def get_entitlement(self, organization_id: str) -> Entitlement | None:
        await self._wait()
        return Entitlement(id=organization_id, plan="enterprise", sla_first_response_minutes=60,
                           credit_percent_per_breach=5, credit_cap_percent=20)

    async def list_cases(self, **_: Any) -> Page[SupportCase]:
        await self._wait()
        return Page(data=[
            SupportCase(id=str(i), organization_id="9001", subject=f"case {i}",
                        priority=priority, status="open", created_at=_NOW)
            for i, priority in enumerate(_PRIORITIES)
        ])


class FakeErp(_Timed):
    async def get_customer(self, customer_id: str) -> Customer:
        await self._wait()
        return Customer(id=customer_id, legal_name="Bench Corp", legal_entity="US01",
                        currency="USD", payment_status="current")

    async def find_customer(self, *, external_id: str) -> Customer | None:
        return await self.get_customer("5001")

    async def receivables_balance(self, customer_id: str) -> ReceivablesBalance:
        await self._wait()
        return ReceivablesBalance(customer_id=customer_id,
                                  balance=Money(amount=200_000, currency="USD"),
                                  overdue=Money(amount=0, currency="USD"))

    async def list_approval_tasks(self, **_: Any) -> Page[Any]:
        await self._wait()
        return Page(data=[])


class LoopWatch:
    """How late the server's event loop wakes a 10 ms timer: its stalls (GC pauses, CPU taken
    by other processes) show in every request's latency."""

    def __init__(self) -> None:
        self.late_ms: deque[float] = deque(maxlen=_KEEP)

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            self.late_ms.append((time.perf_counter() - started) * 1000 - 10)


class FakePorts:
    """One fake per domain, each waiting its delay in seconds."""

    def __init__(self, delays: dict[str, float]) -> None:
        self._records: dict[str, deque[float]] = {
            name: deque(maxlen=_KEEP) for name in ("crm", "billing", "support", "erp")
        }
        self.crm = FakeCrm(delays["crm"], self._records["crm"])
        self.billing = FakeBilling(delays["billing"], self._records["billing"])
        self.support = FakeSupport(delays["support"], self._records["support"])
        self.erp = FakeErp(delays["erp"], self._records["erp"])

    def by_domain(self) -> dict[str, Any]:
        return {"crm": self.crm, "billing": self.billing, "support": self.support, "erp": self.erp}

    def latencies(self) -> dict[str, list[float]]:
        return {name: list(record) for name, record in self._records.items()}

    def reset(self) -> None:
        for record in self._records.values():
            record.clear()
