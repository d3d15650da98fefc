"""What the escalation flow reads across the platforms, and how it follows one customer from
the support organization to the CRM account, the billing customer and the ERP customer.

The links are the customer master's: the organization's `crm_account_id` field names the CRM
account, the billing customer carries it in `metadata['crm_account_id']`, and the ERP customer
has the canonical customer id (the organization's `external_id`) as its external id. The ERP
invoice that mirrors a billing invoice has the billing invoice id as its external id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from contracts.errors import NotFound, UpstreamNotFound, UpstreamRejected
from contracts.v1 import Customer, Entitlement, Invoice, Price
from process_apis.escalation.service_credit import (
    CaseTiming,
    RecurringLine,
    line_amount,
    monthly_recurring_amount,
)
from system_apis.billing.port import BillingPort
from system_apis.erp.port import ErpPort
from system_apis.support.port import SupportPort

__all__ = [
    "CaseSnapshot",
    "CreditTerms",
    "ErpAccount",
    "RecurringCharge",
    "billing_customer",
    "erp_account",
    "largest_charge",
    "latest_paid_invoice",
    "recurring_charges",
    "urgent_cases",
]

PAGE_SIZE = 100
"""Zendesk and Stripe both cap a page at 100 records."""
MAX_PAGES = 100
ERP_EXTERNAL_ID_PREFIX = "eid:"
"""NetSuite addresses a record by its external id as `eid:<external id>`."""
_NEVER = datetime.min.replace(tzinfo=UTC)


class CreditTerms(msgspec.Struct, frozen=True, kw_only=True):
    """An organization's SLA credit terms and its links to the other platforms."""

    organization_id: str
    legal_entity: str
    crm_account_id: str
    customer_id: str | None = None
    """The canonical customer id (the organization's external id), once linked."""
    sla_minutes: int
    percent_per_breach: int
    cap_percent: int

    @classmethod
    def of(cls, organization: Customer, entitlement: Entitlement) -> CreditTerms:
        """Raises NotFound when the organization is not linked to a CRM account yet."""
        crm_account = organization.refs.get("salesforce")
        if not crm_account:
            raise NotFound(
                f"Zendesk organization {organization.id} is not linked to a CRM account; "
                "run the customer master sync first",
                code="organization_not_linked",
            )
        return cls(
            organization_id=organization.id,
            legal_entity=organization.legal_entity,
            crm_account_id=crm_account,
            customer_id=entitlement.customer_id,
            sla_minutes=entitlement.sla_first_response_minutes,
            percent_per_breach=entitlement.credit_percent_per_breach,
            cap_percent=entitlement.credit_cap_percent,
        )


class CaseSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """An organization's sev-1 cases as they stood at `as_of`."""

    as_of: datetime
    cases: list[CaseTiming]


class RecurringCharge(msgspec.Struct, frozen=True, kw_only=True):
    """One active subscription's recurring lines."""

    subscription_id: str
    currency: str
    lines: list[RecurringLine]


class ErpAccount(msgspec.Struct, frozen=True, kw_only=True):
    """Where the credit is booked: the ERP customer, its legal entity, the invoice credited."""

    customer_id: str
    legal_entity: str
    invoice_id: str | None = None


async def urgent_cases(
    support: SupportPort, organization_id: str, *, as_of: datetime
) -> CaseSnapshot:
    """Every urgent case of the organization (all pages), with the time they were read."""
    cases: list[CaseTiming] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        page = await support.list_cases(
            organization_id=organization_id, priority="urgent", cursor=cursor, limit=PAGE_SIZE
        )
        cases += [
            CaseTiming(
                case_id=case.id,
                priority=case.priority,
                status=case.status,
                created_at=case.created_at,
                first_response_at=case.first_response_at,
            )
            for case in page.data
        ]
        cursor = page.next_cursor
        if cursor is None:
            break
        if cursor in seen:
            raise UpstreamRejected(
                f"Zendesk repeated a case page cursor for organization {organization_id}",
                vendor="zendesk",
                code="pagination_loop",
            )
        seen.add(cursor)
    return CaseSnapshot(as_of=as_of, cases=cases)


async def billing_customer(billing: BillingPort, crm_account_id: str) -> str:
    customer = await billing.find_customer(crm_account_id=crm_account_id)
    if customer is None:
        raise UpstreamNotFound(
            f"No billing customer mirrors CRM account {crm_account_id}", vendor="stripe"
        )
    return customer.id


async def recurring_charges(billing: BillingPort, customer_id: str) -> list[RecurringCharge]:
    """The customer's active subscriptions with what each line bills per period, newest
    first. Raises UpstreamNotFound when there is none."""
    page = await billing.list_subscriptions(
        customer_id=customer_id, status="active", limit=PAGE_SIZE
    )
    prices: dict[str, Price] = {}
    charges: list[RecurringCharge] = []
    for subscription in page.data:
        lines: list[RecurringLine] = []
        for item in subscription.items:
            price = prices.get(item.price_id) or await billing.get_price(item.price_id)
            prices[item.price_id] = price
            if price.recurring_interval is None:
                continue
            lines.append(
                RecurringLine(
                    amount=line_amount(price, item.quantity),
                    interval=price.recurring_interval,
                    interval_count=price.interval_count,
                )
            )
        charges.append(
            RecurringCharge(
                subscription_id=subscription.id, currency=subscription.currency, lines=lines
            )
        )
    if not charges:
        raise UpstreamNotFound(
            f"Billing customer {customer_id} has no active subscription", vendor="stripe"
        )
    return charges


def largest_charge(charges: Sequence[RecurringCharge]) -> RecurringCharge:
    """The subscription a credit is measured against: the largest by monthly amount, the
    newest on a tie (`charges` is never empty: `recurring_charges` raises first)."""
    return max(
        enumerate(charges),
        key=lambda pair: (monthly_recurring_amount(pair[1].lines), -pair[0]),
    )[1]


async def latest_paid_invoice(billing: BillingPort, subscription_id: str) -> str:
    """The subscription's most recently paid invoice (from the newest page)."""
    page = await billing.list_invoices(
        subscription_id=subscription_id, status="paid", limit=PAGE_SIZE
    )
    if not page.data:
        raise UpstreamNotFound(
            f"Subscription {subscription_id} has no paid invoice to credit", vendor="stripe"
        )
    return max(page.data, key=_paid_order).id


async def erp_account(
    billing: BillingPort,
    erp: ErpPort,
    terms: CreditTerms,
    billing_customer_id: str,
    billing_invoice_id: str,
) -> ErpAccount:
    """The ERP customer of the account and the ERP invoice mirroring the billing invoice
    (else the customer's latest ERP invoice, else none)."""
    customer = await _erp_customer(billing, erp, terms, billing_customer_id)
    invoice_id = await _erp_invoice(erp, customer.id, billing_invoice_id)
    return ErpAccount(
        customer_id=customer.id, legal_entity=customer.legal_entity, invoice_id=invoice_id
    )


async def _erp_customer(
    billing: BillingPort, erp: ErpPort, terms: CreditTerms, billing_customer_id: str
) -> Customer:
    linked = (await billing.get_customer(billing_customer_id)).refs.get("netsuite")
    if linked:
        return await erp.get_customer(linked)
    found = await erp.find_customer(external_id=terms.customer_id) if terms.customer_id else None
    if found is None:
        raise UpstreamNotFound(
            f"No ERP customer is linked to organization {terms.organization_id} "
            f"(canonical id {terms.customer_id})",
            vendor="netsuite",
        )
    return found


async def _erp_invoice(erp: ErpPort, customer_id: str, billing_invoice_id: str) -> str | None:
    try:
        return (await erp.get_invoice(ERP_EXTERNAL_ID_PREFIX + billing_invoice_id)).id
    except UpstreamNotFound:
        pass
    page = await erp.list_invoices(customer_id=customer_id, limit=PAGE_SIZE)
    return max(page.data, key=_paid_order).id if page.data else None


def _paid_order(invoice: Invoice) -> tuple[datetime, str]:
    return (invoice.paid_at or invoice.issued_at or _NEVER, invoice.id)
