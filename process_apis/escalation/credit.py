"""Escalation to service credit: a sev-1 case of an organization whose support entitlement has
credit terms raises the account's risk in the CRM, computes the month's credit
(`process_apis.escalation.service_credit`) and waits for finance to approve it (an ERP
approval task).
Approved, the credit is issued in billing (a credit note on the subscription's latest paid
invoice), booked in the ERP (a credit memo) and noted on the case; rejected, the refusal is
noted on the CRM account. Nobody deciding within the approval timeout puts the flow in
finance's exception queue.

No compensation: nothing reaches billing or the books before the approval, and every write
after it is idempotent, so a failing step waits in the exception queue and resumes there.

One escalation per organization and month: the workflow id is
`escalation:{organization}:{YYYY-MM}` with the month (UTC) of the case that started it, so a
second sev-1 case of that month (or a duplicate webhook) joins the same flow and makes it look
again. The flow stays open to the month's later breaches until the month closes (its last
case's first-response target gone by): each breach re-evaluates the month's credit, cumulative
and capped; one approval for the month's total is pending at a time (a breach meanwhile raises
it), and once one was approved, a later breach asks for and credits only the difference.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import msgspec

from contracts.errors import Conflict, NotFound
from contracts.ownership import check_write
from contracts.v1 import (
    ApprovalDecision,
    ApprovalTask,
    CreditNoteCreate,
    CustomerPatch,
    RiskLevel,
)
from process_apis.engine.durable import (
    FlowInstance,
    current_idempotency_key,
    flow,
    flow_class,
    flow_step,
    report_external_ids,
    wait_for_approval,
    wait_for_event,
)
from process_apis.engine.published import publish
from process_apis.engine.store import utcnow
from process_apis.escalation.links import (
    CaseSnapshot,
    CreditTerms,
    ErpAccount,
    RecurringCharge,
    billing_customer,
    erp_account,
    largest_charge,
    latest_paid_invoice,
    recurring_charges,
    urgent_cases,
)
from process_apis.escalation.service_credit import (
    ServiceCredit,
    compute_credit,
    describe_credit,
    find_breaches,
    month_bounds,
    monthly_recurring_amount,
    next_breach_at,
)
from process_apis.invoice_posting.flow import book_credit_note
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort
from system_apis.support.port import SupportPort

__all__ = [
    "CREDIT_EVENT",
    "DECISION_TOPIC",
    "FLOW_TYPE",
    "ApprovalOverdue",
    "BreachReported",
    "CreditDecision",
    "Escalation",
    "EscalationFlows",
    "OverdueApproval",
    "credit_id_for",
]

FLOW_TYPE = "escalation_credit"
DECISION_TOPIC = "service_credit_decision"
CREDIT_EVENT = "service_credit"
ESCALATED_RISK: RiskLevel = "high"
"""A sev-1 escalation puts the account at the top risk level (never lowers it)."""
REQUESTED_BY = "erp-gateway"
DEFAULT_APPROVAL_TIMEOUT_SECONDS = 7 * 24 * 3600.0


class Escalation(msgspec.Struct, frozen=True, kw_only=True):
    """What starts the flow: the organization, the sev-1 case, and the month it counts in."""

    organization_id: str
    ticket_id: str
    month: str


class BreachReported(msgspec.Struct, frozen=True, kw_only=True):
    """A sev-1 case of the month reported again (a new case, a late answer): the month's
    escalation looks at its breaches again."""

    ticket_id: str


class CreditDecision(msgspec.Struct, frozen=True, kw_only=True):
    """Finance's answer, sent to the waiting flow by the approve and reject routes."""

    decision: Literal["approved", "rejected"]
    reason: str
    actor: str


class OverdueApproval(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Input of the overdue step: an operator retries it with `reopen: true` to give finance
    another approval window."""

    credit_id: str
    task_id: str
    waited_seconds: float
    reopen: bool = False


class ApprovalOverdue(Conflict):
    """Nobody decided a service credit within the approval timeout."""


def credit_id_for(organization_id: str, month: str) -> str:
    """The service credit's id, which is its escalation flow's id."""
    return f"escalation:{organization_id}:{month}"


@flow_class("escalation")
class EscalationFlows(FlowInstance):
    """The escalation flow and its steps; ports are held by the instance."""

    def __init__(
        self,
        *,
        crm: CrmPort,
        billing: BillingPort,
        support: SupportPort,
        erp: ErpPort,
        approval_timeout_seconds: float,
    ) -> None:
        super().__init__()
        self.crm = crm
        self.billing = billing
        self.support = support
        self.erp = erp
        self.approval_timeout_seconds = approval_timeout_seconds

    # -- steps: reads ------------------------------------------------------------------

    @flow_step(system="zendesk", owner="support_ops")
    async def read_credit_terms(self, organization_id: str) -> CreditTerms:
        organization = await self.support.get_organization(organization_id)
        entitlement = await self.support.get_entitlement(organization_id)
        if entitlement is None:
            raise NotFound(f"Zendesk organization {organization_id} has no support entitlement")
        return CreditTerms.of(organization, entitlement)

    @flow_step(system="zendesk", owner="support_ops")
    async def list_urgent_cases(self, organization_id: str) -> CaseSnapshot:
        return await urgent_cases(self.support, organization_id, as_of=utcnow())

    @flow_step(system="stripe", owner="finance")
    async def find_billing_customer(self, crm_account_id: str) -> str:
        return await billing_customer(self.billing, crm_account_id)

    @flow_step(system="stripe", owner="finance")
    async def read_recurring_charges(self, customer_id: str) -> list[RecurringCharge]:
        return await recurring_charges(self.billing, customer_id)

    @flow_step(system="stripe", owner="finance")
    async def find_paid_invoice(self, subscription_id: str) -> str:
        return await latest_paid_invoice(self.billing, subscription_id)

    @flow_step(system="netsuite", owner="finance")
    async def find_erp_account(
        self, terms: CreditTerms, billing_customer_id: str, invoice_id: str
    ) -> ErpAccount:
        return await erp_account(self.billing, self.erp, terms, billing_customer_id, invoice_id)

    # -- steps: writes -----------------------------------------------------------------

    @flow_step(system="salesforce", owner="revenue_ops")
    async def raise_account_risk(self, crm_account_id: str) -> None:
        # A flow's write-back to the CRM follows the mirror rule of the ownership table.
        check_write("Customer", "salesforce", ["risk_level"], mirror=True)
        await self.crm.update_account(crm_account_id, CustomerPatch(risk_level=ESCALATED_RISK))

    @flow_step(system="netsuite", owner="finance")
    async def open_approval_task(self, credit: ServiceCredit, external_id: str) -> str:
        """The approval task for what the month owes beyond what is already credited,
        upserted by `external_id`: a later breach raises the same pending task."""
        due = None if credit.amount is None else credit.amount - credit.credited_amount
        task = await self.erp.upsert_approval_task(
            ApprovalTask(
                id="",
                kind="service_credit",
                subject=describe_credit(credit),
                amount=due,
                currency=credit.currency,
                requested_at=utcnow(),
                requested_by=REQUESTED_BY,
                flow_id=credit.id,
                legal_entity=credit.legal_entity,
            ),
            external_id=external_id,
        )
        report_external_ids(netsuite_approval_task=task.id)
        return task.id

    @flow_step(system="netsuite", owner="finance", input=OverdueApproval)
    async def escalate_overdue_approval(self, overdue: OverdueApproval) -> None:
        if overdue.reopen:
            await self.erp.set_approval_status(overdue.task_id, "pending")
            return
        await self.erp.set_approval_status(overdue.task_id, "expired")
        raise ApprovalOverdue(
            f"Service credit {overdue.credit_id} was not approved or rejected within "
            f"{overdue.waited_seconds:g} s: retry with input reopen=true to take finance's "
            "decision (given meanwhile, or within another wait), or resolve to drop the credit",
            code="approval_overdue",
        )

    @flow_step(system="stripe", owner="finance")
    async def issue_credit_note(self, credit: ServiceCredit, memo: str, amount: int) -> str:
        """A credit note for `amount`: what this approval adds to the month's credit."""
        if credit.invoice_id is None or amount <= 0 or credit.currency is None:
            raise Conflict(f"Service credit {credit.id} has no invoice or amount to credit")
        note = await self.billing.create_credit_note(
            CreditNoteCreate(
                invoice_id=credit.invoice_id,
                currency=credit.currency,
                amount=amount,
                reason="service_credit",
                memo=memo,
            ),
            idempotency_key=current_idempotency_key(),
        )
        report_external_ids(stripe_credit_note=note.id)
        return note.id

    @flow_step(system="netsuite", owner="finance")
    async def book_credit_memo(
        self, credit: ServiceCredit, erp: ErpAccount, memo: str, note_id: str
    ) -> str:
        """The credit note's credit memo through the invoice posting's one path (keyed by the
        credit note, so its `credit_note.created` posting is the same memo)."""
        if credit.amount is None or credit.currency is None:
            raise Conflict(f"Service credit {credit.id} has no amount to book")
        note = await self.billing.get_credit_note(note_id)
        booked = await book_credit_note(
            self.erp,
            note,
            customer_id=erp.customer_id,
            legal_entity=erp.legal_entity,
            erp_invoice_id=erp.invoice_id,
            memo=memo,
        )
        report_external_ids(netsuite_credit_memo=booked.id)
        return booked.id

    @flow_step(system="zendesk", owner="support_ops")
    async def comment_on_case(self, case_id: str, body: str, marker: str) -> None:
        # Zendesk comments take no idempotency key: a comment an earlier attempt wrote (its
        # answer lost) carries the marker, so look for it before writing.
        comments = await self.support.list_comments(case_id)
        if not any(marker in comment.body for comment in comments):
            await self.support.add_internal_comment(case_id, body)

    @flow_step(system="netsuite", owner="finance")
    async def close_approval_task(self, task_id: str, decision: CreditDecision) -> None:
        await self.erp.decide_approval_task(
            task_id,
            ApprovalDecision(decision=decision.decision, reason=decision.reason),
            decided_by=decision.actor,
        )

    @flow_step(system="salesforce", owner="revenue_ops")
    async def note_rejection_on_account(self, crm_account_id: str, title: str, body: str) -> None:
        # Salesforce notes take no idempotency key: the adapter looks for a note of this title
        # (unique to the flow) before writing, so a retry whose answer was lost writes none.
        note_id = await self.crm.add_account_note(
            crm_account_id, title=title, body=body, idempotency_key=current_idempotency_key()
        )
        report_external_ids(salesforce_note=note_id)

    # -- the flow ----------------------------------------------------------------------

    @flow()
    async def escalate(self, escalation: Escalation) -> ServiceCredit:
        credit = ServiceCredit(
            id=credit_id_for(escalation.organization_id, escalation.month),
            status="computing",
            organization_id=escalation.organization_id,
            ticket_id=escalation.ticket_id,
            month=escalation.month,
        )
        await publish(CREDIT_EVENT, credit)
        terms = await self.read_credit_terms(escalation.organization_id)
        credit = msgspec.structs.replace(
            credit, legal_entity=terms.legal_entity, crm_account_id=terms.crm_account_id
        )
        await self.raise_account_risk(terms.crm_account_id)
        settled = 0  # credited or refused by finance: never asked for again
        round_number = 0
        while True:
            credit, erp, cases = await self._compute(credit, terms)
            if (credit.amount or 0) <= settled:
                if round_number == 0:
                    credit = msgspec.structs.replace(credit, status="not_owed")
                await publish(CREDIT_EVENT, credit)
                if not await self._later_breach(credit, terms, cases):
                    return credit
                continue
            round_number += 1
            credit, decision, erp = await self._approval(credit, terms, erp, round_number)
            settled = credit.amount or 0
            if decision.decision == "approved":
                credit = await self._credit(credit, erp, decision, round_number)
            else:
                credit = await self._refuse(credit, decision, round_number)

    async def _compute(
        self, credit: ServiceCredit, terms: CreditTerms
    ) -> tuple[ServiceCredit, ErpAccount | None, CaseSnapshot]:
        """The month's figures, every breach found so far counted (capped); no ERP account
        when no breach earned any credit."""
        cases = await self.list_urgent_cases(credit.organization_id)
        customer_id = await self.find_billing_customer(terms.crm_account_id)
        charge = largest_charge(await self.read_recurring_charges(customer_id))
        computed = compute_credit(
            monthly_recurring_amount=monthly_recurring_amount(charge.lines),
            currency=charge.currency,
            breaches=find_breaches(
                cases.cases, sla_minutes=terms.sla_minutes, month=credit.month, as_of=cases.as_of
            ),
            percent_per_breach=terms.percent_per_breach,
            cap_percent=terms.cap_percent,
        )
        credit = msgspec.structs.replace(
            credit,
            amount=computed.amount,
            currency=computed.currency,
            monthly_recurring_amount=computed.monthly_recurring_amount,
            percent_per_breach=computed.percent_per_breach,
            cap_percent=computed.cap_percent,
            percent_applied=computed.percent_applied,
            cap_applied=computed.cap_applied,
            breaches=computed.breaches,
            subscription_id=charge.subscription_id,
        )
        if computed.amount <= 0:
            return credit, None, cases
        invoice_id = await self.find_paid_invoice(charge.subscription_id)
        erp = await self.find_erp_account(terms, customer_id, invoice_id)
        credit = msgspec.structs.replace(
            credit, invoice_id=invoice_id, legal_entity=erp.legal_entity
        )
        return credit, erp, cases

    async def _later_breach(
        self, credit: ServiceCredit, terms: CreditTerms, cases: CaseSnapshot
    ) -> bool:
        """Wait, open to the month's later breaches, until one is reported, an open case's
        target passes, or the month closes (its last case's target gone by). False when the
        month is closed: nothing more can be owed."""
        _, month_end = month_bounds(credit.month)
        closes_at = month_end + timedelta(minutes=terms.sla_minutes)
        due = next_breach_at(
            cases.cases, sla_minutes=terms.sla_minutes, month=credit.month, as_of=cases.as_of
        )
        if due is None and cases.as_of >= closes_at:
            return False
        wake_at = min(due or closes_at, closes_at)
        # A minute past the target, so the case is late when it is looked at again.
        wait = max((wake_at - cases.as_of).total_seconds() + 60, 1.0)
        while True:
            message = await wait_for_event(DECISION_TOPIC, timeout_seconds=wait)
            # A decision arriving now (a late double click), or a breach already counted,
            # changes nothing: wait on.
            if message is None or _new_breach(credit, message):
                return True

    async def _approval(
        self, credit: ServiceCredit, terms: CreditTerms, erp: ErpAccount | None, round_number: int
    ) -> tuple[ServiceCredit, CreditDecision, ErpAccount | None]:
        """One approval for what the month owes beyond what is already credited; a breach
        reported meanwhile raises that same approval to the new total."""
        task_key = _approval_key(credit, round_number)
        task_id = await self.open_approval_task(credit, task_key)
        credit = msgspec.structs.replace(credit, approval_task_id=task_id)
        while True:
            message = await self._decision(credit, task_id)
            if isinstance(message, CreditDecision):
                break
            if not _new_breach(credit, message):
                continue
            revised, erp, _ = await self._compute(credit, terms)
            if revised.amount != credit.amount:
                await self.open_approval_task(revised, task_key)
            credit = revised
        # Shown at once, so a second decision is refused while the first is carried out.
        credit = msgspec.structs.replace(
            credit,
            status=message.decision,
            decided_by=message.actor,
            decision_reason=message.reason,
        )
        await publish(CREDIT_EVENT, credit)
        return credit, message, erp

    async def _decision(
        self, credit: ServiceCredit, task_id: str
    ) -> CreditDecision | BreachReported:
        """Wait for finance (or a later breach); each timeout goes to the exception queue
        until reopened."""
        while True:
            await publish(CREDIT_EVENT, msgspec.structs.replace(credit, status="pending_approval"))
            message = await wait_for_approval(
                DECISION_TOPIC, timeout_seconds=self.approval_timeout_seconds
            )
            if isinstance(message, CreditDecision | BreachReported):
                return message
            await publish(CREDIT_EVENT, msgspec.structs.replace(credit, status="expired"))
            await self.escalate_overdue_approval(
                OverdueApproval(
                    credit_id=credit.id,
                    task_id=task_id,
                    waited_seconds=self.approval_timeout_seconds,
                )
            )

    async def _credit(
        self,
        credit: ServiceCredit,
        erp: ErpAccount | None,
        decision: CreditDecision,
        round_number: int,
    ) -> ServiceCredit:
        assert erp is not None, "an owed credit has its ERP account"
        task_id = credit.approval_task_id
        assert task_id is not None, "a decided credit has its approval task"
        memo = _memo(credit, decision)
        amount = (credit.amount or 0) - credit.credited_amount
        note_id = await self.issue_credit_note(credit, memo, amount)
        memo_id = await self.book_credit_memo(credit, erp, memo, note_id)
        credit = msgspec.structs.replace(credit, credit_note_id=note_id, credit_memo_id=memo_id)
        if credit.ticket_id is not None:
            await self.comment_on_case(
                credit.ticket_id, _case_comment(credit, round_number), _marker(credit, round_number)
            )
        await self.close_approval_task(task_id, decision)
        credit = msgspec.structs.replace(
            credit, status="credited", credited_amount=credit.amount or 0
        )
        await publish(CREDIT_EVENT, credit)
        return credit

    async def _refuse(
        self, credit: ServiceCredit, decision: CreditDecision, round_number: int
    ) -> ServiceCredit:
        assert credit.approval_task_id is not None
        await self.note_rejection_on_account(
            credit.crm_account_id or "",
            _rejection_title(credit, round_number),
            _rejection_note(credit, decision),
        )
        await self.close_approval_task(credit.approval_task_id, decision)
        credit = msgspec.structs.replace(credit, status="rejected")
        await publish(CREDIT_EVENT, credit)
        return credit


def _new_breach(credit: ServiceCredit, message: object) -> bool:
    """Whether `message` reports a case the credit does not count yet (each report of a case
    it counts would only read every platform again for the same figure)."""
    counted = {breach.case_id for breach in credit.breaches}
    return isinstance(message, BreachReported) and message.ticket_id not in counted


def _approval_key(credit: ServiceCredit, round_number: int) -> str:
    """The ERP approval task's external id: one task per approval round of the month (the
    first keeps the key the one-round flow used)."""
    key = f"{credit.id}:open_approval_task"
    return key if round_number == 1 else f"{key}#{round_number}"


def _memo(credit: ServiceCredit, decision: CreditDecision) -> str:
    return f"{describe_credit(credit)}; approved by {decision.actor}: {decision.reason}"[:1000]


def _rejection_title(credit: ServiceCredit, round_number: int) -> str:
    """The account note's title, one per approval round: the CRM adapter finds a repeated
    note by it."""
    suffix = "" if round_number == 1 else f" #{round_number}"
    return f"Service credit rejected ({credit.id}){suffix}"


def _rejection_note(credit: ServiceCredit, decision: CreditDecision) -> str:
    return f"{describe_credit(credit)} was rejected by {decision.actor}.\nReason: {decision.reason}"


def _marker(credit: ServiceCredit, round_number: int) -> str:
    return f"[{credit.id}]" if round_number == 1 else f"[{credit.id}#{round_number}]"


def _case_comment(credit: ServiceCredit, round_number: int) -> str:
    breaches = ", ".join(f"#{breach.case_id}" for breach in credit.breaches)
    return (
        f"{describe_credit(credit)} was approved and issued: credit note {credit.credit_note_id}, "
        f"ERP credit memo {credit.credit_memo_id}. Breached cases: {breaches}. "
        f"{_marker(credit, round_number)}"
    )
