"""A month's escalation stays open to that month's later breaches (on the fakes, under a fake
clock in an open month): each breach reported re-evaluates the credit, cumulative and capped;
one approval for the month's total is pending at a time; once one was approved, a later breach
asks for and credits only the difference. Amounts are read from billing's credit notes and
the ERP's credit memos and approval tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from contracts.v1 import Entitlement, SupportCaseCreate
from process_apis.escalation.credit import (
    DECISION_TOPIC,
    CreditDecision,
    EscalationFlows,
    credit_id_for,
)
from process_apis.escalation.routes import EscalationService
from process_apis.escalation.service_credit import ServiceCredit
from tests.process_apis.booked_fakes import SEAT_PRICE, Booked, booked_customer
from tests.process_apis.fakes_engine import (  # noqa: F401 (fixtures)
    FlowBench,
    flow_bench,
    migrated_database,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(90)

NOW = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
MONTH = "2026-12"
GOLD = Entitlement(
    id="",
    plan="enterprise",
    sla_first_response_minutes=60,
    credit_percent_per_breach=5,
    credit_cap_percent=20,
)
MRR = 10 * SEAT_PRICE
ONE_BREACH = MRR * 5 // 100
CAP = MRR * 20 // 100


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    """The engine's clock, in the middle of an open month."""
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@dataclass
class Month:
    bench: FlowBench
    booked: Booked
    service: EscalationService

    @property
    def credit_id(self) -> str:
        return credit_id_for(self.booked.organization_id, MONTH)

    async def report(self, ticket_id: str) -> bool:
        """A sev-1 ticket event of the month: starts the escalation, or makes it look again.
        Returns whether it started one."""
        handle = await self.service.escalate(self.booked.organization_id, ticket_id)
        return handle.created

    async def credit_in(self, *statuses: str, **fields: object) -> ServiceCredit:
        async def reached() -> ServiceCredit | None:
            flow = await self.bench.reader.get(self.credit_id)
            if flow is None:
                return None
            credit = await self.service.credit(flow)
            if credit.status not in statuses:
                return None
            if any(getattr(credit, name) != value for name, value in fields.items()):
                return None
            return credit

        return await eventually(
            reached, timeout=20, interval=0.05, what=f"service credit in {statuses} with {fields}"
        )

    async def decide(self, decision: str) -> None:
        await self.bench.engine.send(
            self.credit_id,
            DECISION_TOPIC,
            CreditDecision(
                decision="approved" if decision == "approved" else "rejected",
                reason="SLA missed",
                actor="cfo",
            ),
        )

    def notes(self) -> list[int]:
        return [note.amount for note in self.booked.billing.credit_notes.values()]

    def memos(self) -> list[int]:
        return [memo.amount for memo in self.booked.erp.credit_memos.values()]

    def tasks(self) -> list[tuple[str, int | None]]:
        return [(task.status, task.amount) for task in self.booked.erp.approval_tasks.values()]


async def _case(month: Month, created_at: datetime, answered_after: timedelta | None) -> str:
    support = month.booked.support
    month.booked.clock.now = created_at
    case = await support.create_case(
        SupportCaseCreate(
            customer_id=f"cus-{month.booked.account.id}",
            subject="API down",
            description="Every call fails",
            priority="urgent",
            requester_email="ops@acme.test",
        )
    )
    if answered_after is not None:
        support.reply_publicly(case.id, "On it", at=created_at + answered_after)
    return case.id


@pytest.fixture
async def month(bench: FlowBench, clock: time_machine.Coordinates) -> AsyncIterator[Month]:
    booked = await booked_customer(
        seats=10, collection_method="charge_automatically", entitlement=GOLD
    )
    flows = bench.register(
        EscalationFlows,
        crm=booked.crm,
        billing=booked.billing,
        support=booked.support,
        erp=booked.erp,
        approval_timeout_seconds=3600.0,
    )
    await bench.launch()
    yield Month(
        bench=bench,
        booked=booked,
        service=EscalationService(flows=flows, engine=bench.engine, support=booked.support),
    )


LATE = timedelta(minutes=90)


async def test_a_breach_after_a_start_that_owed_nothing_is_credited(
    month: Month, clock: time_machine.Coordinates
) -> None:
    # The ticket.created event: the case is ten minutes old, its target not reached.
    ticket = await _case(month, NOW - timedelta(minutes=10), None)
    assert await month.report(ticket) is True
    await month.credit_in("not_owed")
    assert (await month.bench.wait(month.credit_id, "waiting")).status == "waiting"
    assert month.tasks() == []

    # Answered 90 minutes late; the ticket's next event reaches the same escalation.
    month.booked.support.reply_publicly(ticket, "Sorry", at=NOW + timedelta(minutes=80))
    clock.shift(timedelta(hours=2))
    assert await month.report(ticket) is False
    pending = await month.credit_in("pending_approval")
    assert (pending.amount, pending.currency, pending.credited_amount) == (ONE_BREACH, "USD", 0)
    assert [b.case_id for b in pending.breaches] == [ticket]
    assert month.tasks() == [("pending", ONE_BREACH)]

    await month.decide("approved")
    await month.credit_in("credited")
    assert month.notes() == [ONE_BREACH]
    assert month.memos() == [ONE_BREACH]
    assert month.tasks() == [("approved", ONE_BREACH)]
    # The month is still open: the escalation waits for its later breaches.
    assert (await month.bench.wait(month.credit_id, "waiting")).status == "waiting"


async def test_two_breaches_are_one_cumulative_approval(month: Month) -> None:
    first = await _case(month, NOW - timedelta(hours=5), LATE)
    assert await month.report(first) is True
    await month.credit_in("pending_approval", amount=ONE_BREACH)

    second = await _case(month, NOW - timedelta(hours=3), timedelta(minutes=70))
    assert await month.report(second) is False
    pending = await month.credit_in("pending_approval", amount=2 * ONE_BREACH)
    assert [b.case_id for b in pending.breaches] == [first, second]
    # One approval for the month's total, raised in place.
    assert month.tasks() == [("pending", 2 * ONE_BREACH)]

    await month.decide("approved")
    credited = await month.credit_in("credited")
    assert (credited.amount, credited.credited_amount) == (2 * ONE_BREACH, 2 * ONE_BREACH)
    assert month.notes() == [2 * ONE_BREACH]
    assert month.memos() == [2 * ONE_BREACH]


async def test_the_cap_holds_for_the_month_whatever_breaches_come_later(month: Month) -> None:
    tickets = [
        await _case(month, NOW - timedelta(hours=20 - 2 * index), LATE) for index in range(5)
    ]
    assert await month.report(tickets[0]) is True
    pending = await month.credit_in("pending_approval", amount=CAP)
    assert (pending.percent_applied, pending.cap_applied, len(pending.breaches)) == (20, True, 5)
    await month.decide("approved")
    await month.credit_in("credited")

    sixth = await _case(month, NOW - timedelta(hours=4), LATE)
    assert await month.report(sixth) is False

    async def sixth_counted() -> ServiceCredit | None:
        found = await month.credit_in("credited")
        return found if len(found.breaches) == 6 else None

    capped = await eventually(sixth_counted, timeout=20, what="the sixth breach counted")
    assert (capped.amount, capped.credited_amount, capped.cap_applied) == (CAP, CAP, True)
    assert month.notes() == [CAP]
    assert month.memos() == [CAP]
    assert month.tasks() == [("approved", CAP)]


async def test_a_breach_after_an_approval_credits_only_the_difference(month: Month) -> None:
    first = await _case(month, NOW - timedelta(hours=5), LATE)
    assert await month.report(first) is True
    await month.credit_in("pending_approval", amount=ONE_BREACH)
    await month.decide("approved")
    await month.credit_in("credited", amount=ONE_BREACH)

    second = await _case(month, NOW - timedelta(hours=3), LATE)
    assert await month.report(second) is False
    pending = await month.credit_in("pending_approval", amount=2 * ONE_BREACH)
    assert pending.credited_amount == ONE_BREACH
    # A second approval, for the difference only.
    assert month.tasks() == [("approved", ONE_BREACH), ("pending", ONE_BREACH)]

    await month.decide("approved")
    credited = await month.credit_in("credited", amount=2 * ONE_BREACH)
    assert credited.credited_amount == 2 * ONE_BREACH
    assert month.notes() == [ONE_BREACH, ONE_BREACH]
    assert month.memos() == [ONE_BREACH, ONE_BREACH]
    assert sum(month.notes()) == sum(month.memos()) == 2 * ONE_BREACH
    assert month.tasks() == [("approved", ONE_BREACH), ("approved", ONE_BREACH)]
