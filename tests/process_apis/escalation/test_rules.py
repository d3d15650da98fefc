"""Escalation's business rules on the fakes (no HTTP): two sev-1 cases answered past their SLA
earn the month's credit (percent per breach of the monthly recurring amount); approved, the
same amount is a credit note in billing and a credit memo in the ERP against the credited
invoice, and the case says so; rejected, nothing is credited and the CRM account says why; an
organization the customer master never linked waits for support ops with nothing written."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contracts.v1 import Entitlement, SupportCaseCreate
from process_apis.escalation.credit import (
    DECISION_TOPIC,
    FLOW_TYPE,
    CreditDecision,
    Escalation,
    EscalationFlows,
    credit_id_for,
)
from process_apis.escalation.service_credit import ServiceCredit
from tests.process_apis.booked_fakes import SEAT_PRICE, START, Booked, booked_customer
from tests.process_apis.fakes_engine import (  # noqa: F401 (fixtures)
    FlowBench,
    flow_bench,
    migrated_database,
)

pytestmark = pytest.mark.timeout(60)

GOLD = Entitlement(id="", plan="enterprise", sla_first_response_minutes=60,
                   credit_percent_per_breach=5, credit_cap_percent=20)
MONTH = "2026-11"
MRR = 10 * SEAT_PRICE
CREDIT = MRR * 2 * 5 // 100
"""Two breaches at 5 % of 250.00: 25.00."""


async def escalated(bench: FlowBench) -> tuple[Booked, EscalationFlows, Escalation]:
    """A paid-up customer on the gold plan whose two urgent cases of November were answered
    after 61 and 90 minutes (SLA 60), and one answered in time."""
    booked = await booked_customer(seats=10, collection_method="charge_automatically",
                                   entitlement=GOLD)
    support, canonical = booked.support, f"cus-{booked.account.id}"
    case_ids = []
    for day, minutes in ((3, 61), (10, 90), (12, 30)):
        booked.clock.now = START + timedelta(days=day)
        case = await support.create_case(SupportCaseCreate(
            customer_id=canonical, subject="API down", description="Every call fails",
            priority="urgent", requester_email="ops@acme.test"))
        support.reply_publicly(case.id, "On it", at=booked.clock.now + timedelta(minutes=minutes))
        case_ids.append(case.id)
    booked.seeded_writes = {name: len(fake.writes) for name, fake in (
        ("crm", booked.crm), ("billing", booked.billing), ("erp", booked.erp),
        ("support", support))}
    flows = bench.register(EscalationFlows, crm=booked.crm, billing=booked.billing,
                           support=support, erp=booked.erp, approval_timeout_seconds=30.0)
    await bench.launch()
    return booked, flows, Escalation(organization_id=booked.organization_id,
                                     ticket_id=case_ids[1], month=MONTH)


async def decided(
    bench: FlowBench, flows: EscalationFlows, escalation: Escalation, decision: CreditDecision
) -> ServiceCredit:
    credit_id = credit_id_for(escalation.organization_id, escalation.month)
    handle = await bench.start(FLOW_TYPE, credit_id, flows.escalate, escalation)
    await bench.wait(credit_id, "waiting_approval")
    await bench.engine.send(credit_id, DECISION_TOPIC, decision)
    credit = await bench.result(handle)
    assert isinstance(credit, ServiceCredit), credit
    return credit


async def test_an_approved_credit_is_the_same_amount_in_billing_and_the_erp(
    bench: FlowBench,
) -> None:
    booked, flows, escalation = await escalated(bench)
    assert booked.erp_invoice is not None

    credit = await decided(bench, flows, escalation, CreditDecision(
        decision="approved", reason="SLA missed twice", actor="cfo"))

    assert (credit.status, credit.amount, credit.currency) == ("credited", CREDIT, "USD")
    assert (credit.monthly_recurring_amount, credit.percent_applied, credit.cap_applied) == (
        MRR, 10, False)
    assert len(credit.breaches) == 2
    (note,) = booked.billing.credit_notes.values()
    assert (note.id, note.invoice_id, note.amount, note.currency, note.reason) == (
        credit.credit_note_id, booked.first_invoice.id, CREDIT, "USD", "service_credit")
    (memo,) = booked.erp.credit_memos.values()
    assert (memo.id, memo.invoice_id, memo.customer_id, memo.amount, memo.currency) == (
        credit.credit_memo_id, booked.erp_invoice.id, booked.erp_customer.id, CREDIT, "USD")
    (task,) = booked.erp.approval_tasks.values()
    assert (task.status, task.amount, task.decided_by) == ("approved", CREDIT, "cfo")
    comments = booked.support.comments[escalation.ticket_id]
    assert [c.public for c in comments if "25.00 USD" in c.body] == [False]
    assert booked.crm.accounts[booked.account.id].risk_level == "high"
    assert booked.crm.notes == {}


async def test_a_rejected_credit_credits_nothing_and_tells_the_account_why(
    bench: FlowBench,
) -> None:
    booked, flows, escalation = await escalated(bench)

    credit = await decided(bench, flows, escalation, CreditDecision(
        decision="rejected", reason="outage was announced maintenance", actor="cfo"))

    assert (credit.status, credit.amount) == ("rejected", CREDIT)
    assert booked.billing.credit_notes == {}
    assert booked.erp.credit_memos == {}
    (note,) = booked.crm.notes.values()
    assert booked.crm.note_parents[note.id] == booked.account.id
    assert "Reason: outage was announced maintenance" in note.body
    (task,) = booked.erp.approval_tasks.values()
    assert (task.status, task.reason) == ("rejected", "outage was announced maintenance")


async def test_an_unlinked_organization_waits_for_support_ops_with_nothing_written(
    bench: FlowBench,
) -> None:
    booked, flows, _ = await escalated(bench)
    # Same terms, but the customer master never linked this organization to a CRM account.
    unlinked = booked.support.seed_organization("Initech", legal_entity="US01",
                                                currency="USD", entitlement=GOLD)
    escalation = Escalation(organization_id=unlinked, ticket_id="1", month=MONTH)
    credit_id = credit_id_for(unlinked, MONTH)

    await bench.start(FLOW_TYPE, credit_id, flows.escalate, escalation)
    await bench.wait(credit_id, "failed")

    (entry,) = await bench.exceptions()
    assert (entry.step, entry.system, entry.owner, entry.error_class) == (
        "read_credit_terms", "zendesk", "support_ops", "NotFound")
    assert entry.cause == (
        f"NotFound: Zendesk organization {unlinked} is not linked to a CRM account; run the "
        "customer master sync first")
    assert booked.new_writes() == {"crm": [], "billing": [], "erp": [], "support": []}
