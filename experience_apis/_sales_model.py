"""The sales console's account overview: what each source answers, and the view built from
those answers (pure functions, so the rules read and test without any platform)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from fractions import Fraction

import msgspec

from contracts.money import Money
from contracts.v1 import (
    CasePriority,
    Contact,
    Customer,
    Deal,
    Entitlement,
    Invoice,
    InvoiceStatus,
    PaymentStatus,
    Price,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
    SupportCase,
)
from experience_apis._health import Health, health_score, worse_payment_status
from experience_apis._process_reads import ExceptionSummary, FlowSummary, ProcessActivity
from experience_apis._recurring import BILLING_STATUSES, round_half_up, subscription_monthly
from experience_apis.compose import SourceState
from system_apis.erp.port import ReceivablesBalance

__all__ = [
    "OPEN_CASE_STATUSES",
    "BillingData",
    "BillingSection",
    "CrmData",
    "ErpData",
    "ErpSection",
    "InvoiceSummary",
    "Opportunity",
    "ProcessSection",
    "SalesOverview",
    "SubscriptionSummary",
    "SupportData",
    "SupportSection",
    "billing_section",
    "build_overview",
    "erp_section",
    "invoice_summary",
    "support_section",
]

OPEN_CASE_STATUSES = frozenset({"new", "open", "pending", "hold"})
PRIORITIES: tuple[CasePriority, ...] = ("urgent", "high", "normal", "low")
SEV1_WINDOW = timedelta(days=90)


# -- what the sources answer (cached as they are) ------------------------------------------


class CrmData(msgspec.Struct, frozen=True, kw_only=True):
    account: Customer
    contacts: list[Contact]
    open_deals: list[Deal] | None = None
    """None when the CRM adapter cannot list an account's open deals."""
    owner: Contact | None = None


class BillingData(msgspec.Struct, frozen=True, kw_only=True):
    customer: Customer | None
    """None when billing does not know the customer."""
    subscriptions: list[Subscription] = []
    open_invoices: list[Invoice] = []
    prices: dict[str, Price] = {}


class SupportData(msgspec.Struct, frozen=True, kw_only=True):
    organization_id: str | None
    """None when the customer has no support organization linked."""
    entitlement: Entitlement | None = None
    cases: list[SupportCase] = []


class ErpData(msgspec.Struct, frozen=True, kw_only=True):
    customer: Customer | None
    """None when the ERP does not know the customer."""
    receivables: ReceivablesBalance | None = None
    credit_hold: bool | None = None


# -- the view ------------------------------------------------------------------------------


class Opportunity(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    stage: str
    close_date: date | None = None
    amount: Money | None = None


class SubscriptionSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: SubscriptionStatus
    currency: str
    mrr: Money
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    counted_in_mrr: bool
    """False when the subscription does not bill now or bills in another currency."""
    items: list[SubscriptionItem] = []


class InvoiceSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    number: str | None = None
    status: InvoiceStatus
    total: Money
    amount_remaining: Money
    due_date: date | None = None
    overdue: bool


class BillingSection(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str | None
    payment_status: PaymentStatus | None = None
    mrr: Money
    """Monthly recurring revenue in the account's currency (rule: `_recurring`)."""
    arr: Money
    subscriptions: list[SubscriptionSummary]
    open_invoices: list[InvoiceSummary]
    overdue_invoices: int
    balance: Money
    """What the open invoices in the account's currency still ask for."""
    overdue_balance: Money


class ErpSection(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str | None
    credit_hold: bool | None = None
    """None when the ERP adapter does not report credit holds."""
    payment_status: PaymentStatus | None = None
    ar_balance: Money | None = None
    ar_overdue: Money | None = None


class SupportSection(msgspec.Struct, frozen=True, kw_only=True):
    organization_id: str | None
    entitlement: Entitlement | None = None
    open_cases: int
    open_cases_by_priority: dict[str, int]
    sev1_cases_90d: int


class ProcessSection(msgspec.Struct, frozen=True, kw_only=True):
    flows_in_progress: list[FlowSummary]
    open_exceptions: list[ExceptionSummary]


class SalesOverview(msgspec.Struct, frozen=True, kw_only=True):
    """One account as the sales console shows it; a section is null when its source did not
    answer (see `sources`)."""

    account: Customer
    contacts: list[Contact]
    account_owner: Contact | None = None
    open_opportunities: list[Opportunity] | None = None
    billing: BillingSection | None = None
    erp: ErpSection | None = None
    support: SupportSection | None = None
    process: ProcessSection | None = None
    health: Health
    sources: dict[str, SourceState]


def build_overview(
    crm: CrmData,
    billing: BillingData | None,
    support: SupportData | None,
    erp: ErpData | None,
    process: ProcessActivity | None,
    *,
    sources: dict[str, SourceState],
    now: datetime,
) -> SalesOverview:
    currency = crm.account.currency
    billing_view = billing_section(billing, currency, now.date()) if billing else None
    support_view = support_section(support, now) if support else None
    erp_view = erp_section(erp) if erp else None
    process_view = (
        ProcessSection(
            flows_in_progress=process.in_progress, open_exceptions=process.open_exceptions
        )
        if process
        else None
    )
    payment_known = billing_view is not None or erp_view is not None
    health = health_score(
        overdue_invoices=billing_view.overdue_invoices if billing_view else None,
        sev1_cases_90d=support_view.sev1_cases_90d if support_view else None,
        payment_status=worse_payment_status(
            billing_view.payment_status if billing_view else None,
            erp_view.payment_status if erp_view else None,
        ),
        payment_known=payment_known,
        open_exceptions=len(process_view.open_exceptions) if process_view else None,
    )
    return SalesOverview(
        account=crm.account,
        contacts=crm.contacts,
        account_owner=crm.owner,
        open_opportunities=(
            [_opportunity(deal) for deal in crm.open_deals] if crm.open_deals is not None else None
        ),
        billing=billing_view,
        erp=erp_view,
        support=support_view,
        process=process_view,
        health=health,
        sources=sources,
    )


def billing_section(data: BillingData, currency: str, today: date) -> BillingSection:
    total = Fraction(0)
    subscriptions = []
    for subscription in data.subscriptions:
        monthly = subscription_monthly(subscription, data.prices)
        counted = subscription.status in BILLING_STATUSES and subscription.currency == currency
        if counted:
            total += monthly
        subscriptions.append(
            SubscriptionSummary(
                id=subscription.id,
                status=subscription.status,
                currency=subscription.currency,
                mrr=Money(amount=round_half_up(monthly), currency=subscription.currency),
                current_period_end=subscription.current_period_end,
                cancel_at_period_end=subscription.cancel_at_period_end,
                counted_in_mrr=counted,
                items=subscription.items,
            )
        )
    invoices = [invoice_summary(invoice, today) for invoice in data.open_invoices]
    mine = [i for i in invoices if i.amount_remaining.currency == currency]
    overdue = [i for i in mine if i.overdue]
    return BillingSection(
        customer_id=data.customer.id if data.customer else None,
        payment_status=data.customer.payment_status if data.customer else None,
        mrr=Money(amount=round_half_up(total), currency=currency),
        arr=Money(amount=round_half_up(total * 12), currency=currency),
        subscriptions=subscriptions,
        open_invoices=invoices,
        overdue_invoices=len([i for i in invoices if i.overdue]),
        balance=Money(amount=sum(i.amount_remaining.amount for i in mine), currency=currency),
        overdue_balance=Money(
            amount=sum(i.amount_remaining.amount for i in overdue), currency=currency
        ),
    )


def invoice_summary(invoice: Invoice, today: date) -> InvoiceSummary:
    overdue = (
        invoice.status == "open"
        and invoice.amount_remaining > 0
        and invoice.due_date is not None
        and invoice.due_date < today
    )
    return InvoiceSummary(
        id=invoice.id,
        number=invoice.number,
        status=invoice.status,
        total=Money(amount=invoice.total, currency=invoice.currency),
        amount_remaining=Money(amount=invoice.amount_remaining, currency=invoice.currency),
        due_date=invoice.due_date,
        overdue=overdue,
    )


def support_section(data: SupportData, now: datetime) -> SupportSection:
    open_cases = [case for case in data.cases if case.status in OPEN_CASE_STATUSES]
    by_priority: dict[str, int] = dict.fromkeys(PRIORITIES, 0)
    for case in open_cases:
        by_priority[case.priority] = by_priority.get(case.priority, 0) + 1
    since = now - SEV1_WINDOW
    sev1 = [case for case in data.cases if case.severity == "sev1" and case.created_at >= since]
    return SupportSection(
        organization_id=data.organization_id,
        entitlement=data.entitlement,
        open_cases=len(open_cases),
        open_cases_by_priority=by_priority,
        sev1_cases_90d=len(sev1),
    )


def erp_section(data: ErpData) -> ErpSection:
    receivables = data.receivables
    return ErpSection(
        customer_id=data.customer.id if data.customer else None,
        credit_hold=data.credit_hold,
        payment_status=data.customer.payment_status if data.customer else None,
        ar_balance=receivables.balance if receivables else None,
        ar_overdue=receivables.overdue if receivables else None,
    )


def _opportunity(deal: Deal) -> Opportunity:
    return Opportunity(
        id=deal.id,
        name=deal.name,
        stage=deal.stage,
        close_date=deal.close_date,
        amount=Money(amount=deal.amount, currency=deal.currency)
        if deal.amount is not None
        else None,
    )
