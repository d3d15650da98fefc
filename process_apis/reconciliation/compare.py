"""What reconciliation compares, as pure functions: the books of the CRM, billing and the ERP
(read for the run's legal entities) in, the totals per kind, entity and currency and the
mismatches out, each with a reason a finance user reads without knowing the systems.

A record younger than the settle window is counted `pending`, never a mismatch: a webhook may
still be on its way. Every mismatch has a fingerprint (kind, what is wrong, which record), the
same whenever the same drift is found again, so it opens one exception however many runs see it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Final, Literal

import msgspec

from contracts.money import Money, to_decimal
from contracts.v1 import (
    CreditMemo,
    CreditNote,
    Customer,
    Deal,
    Invoice,
    SalesOrder,
    Subscription,
)

__all__ = [
    "KINDS",
    "Books",
    "Comparison",
    "Finding",
    "Kind",
    "Link",
    "RepairAction",
    "Total",
    "UsageBook",
    "Values",
    "compare",
    "money_text",
]

Kind = Literal["deals", "invoices", "payments", "credits", "customers", "usage"]
KINDS: Final[tuple[Kind, ...]] = (
    "deals",
    "invoices",
    "payments",
    "credits",
    "customers",
    "usage",
)
RepairAction = Literal["post_invoice", "apply_payment", "post_credit_memo", "relink_customer"]
CUSTOMER_PREFIX: Final = "cus-"
"""The canonical id of an account's customer is this prefix and the CRM account id."""
_BILLED: Final = frozenset({"open", "paid", "uncollectible"})
"""Billing invoice states that were issued (drafts and voided invoices are not booked)."""


class Link(msgspec.Struct, frozen=True, kw_only=True):
    """A cross-reference of a customer: its canonical id's record in one system."""

    canonical_id: str
    system: str
    legal_entity: str
    external_id: str


class UsageBook(msgspec.Struct, frozen=True, kw_only=True):
    """One metric of one subscription in one closed billing period: units the gateway accepted,
    pushed to billing, and billing invoiced (None: billing has not billed the period)."""

    subscription_id: str
    metric: str
    legal_entity: str
    period_start: datetime
    period_end: datetime
    accepted: int
    pushed: int
    invoiced: int | None


class Books(msgspec.Struct, frozen=True, kw_only=True):
    """What each system holds for the run's legal entities."""

    accounts: list[Customer] = []
    deals: list[Deal] = []
    billing_customers: list[Customer] = []
    subscriptions: list[Subscription] = []
    billing_invoices: list[Invoice] = []
    credit_notes: list[CreditNote] = []
    erp_customers: list[Customer] = []
    sales_orders: list[SalesOrder] = []
    erp_invoices: list[Invoice] = []
    credit_memos: list[CreditMemo] = []
    links: list[Link] = []
    usage: list[UsageBook] = []
    metered_products: list[str] = []
    """Codes of the CRM catalog's metered products (billed per unit of usage)."""


class Values(msgspec.Struct, frozen=True, kw_only=True):
    """What each system says: amounts in minor units, or record ids for customers."""

    crm: int | str | None = None
    billing: int | str | None = None
    erp: int | str | None = None


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One mismatch."""

    kind: Kind
    code: str
    """What is wrong, e.g. `missing_in_erp`, `amount_differs`."""
    key: str
    """The record it is about (a billing invoice id, a deal id, an account id, ...)."""
    legal_entity: str
    currency: str | None
    values: Values
    reason: str
    repair: RepairAction | None = None
    """What a machine can do about it; None: it needs a person."""
    subject: dict[str, str] = {}
    """The ids the repair works on."""

    @property
    def fingerprint(self) -> str:
        return f"{self.kind}:{self.code}:{self.key}"


class Total(msgspec.Struct, frozen=True, kw_only=True):
    kind: Kind
    legal_entity: str
    currency: str
    crm: int | None = None
    billing: int | None = None
    erp: int | None = None


class Comparison(msgspec.Struct, frozen=True, kw_only=True):
    checked: dict[str, int]
    pending: dict[str, int]
    totals: list[Total]
    findings: list[Finding]
    keys: dict[str, list[str]] = {}
    """The records compared (settled), by kind: the keys their findings would carry."""


def money_text(amount: int | None, currency: str | None) -> str:
    """`1,600.00 USD` (minor units shown in the currency's decimals)."""
    if amount is None or currency is None:
        return "nothing"
    value = to_decimal(Money(amount=abs(amount), currency=currency))
    return f"{'-' if amount < 0 else ''}{value:,} {currency}"


def compare(
    books: Books, kinds: Iterable[Kind], *, now: datetime, settle_seconds: float
) -> Comparison:
    """Compare `books` for `kinds`; records changed after `now - settle_seconds` are pending."""
    cutoff = now - timedelta(seconds=settle_seconds)
    tally = _Tally(cutoff)
    index = _Index(books)
    for kind in dict.fromkeys(kinds):
        tally.checked[kind] += 0
        tally.pending[kind] += 0
        _CHECKS[kind](books, index, tally)
    return Comparison(
        checked=dict(tally.checked),
        pending=dict(tally.pending),
        totals=tally.total_list(),
        findings=tally.findings,
        keys={kind: sorted(keys) for kind, keys in tally.keys.items()},
    )


class _Tally:
    def __init__(self, cutoff: datetime) -> None:
        self.cutoff = cutoff
        self.checked: dict[str, int] = defaultdict(int)
        self.pending: dict[str, int] = defaultdict(int)
        self.findings: list[Finding] = []
        self.totals: dict[tuple[Kind, str, str], dict[str, int]] = {}
        self.keys: dict[str, set[str]] = defaultdict(set)

    def settled(self, kind: Kind, at: datetime | None, key: str) -> bool:
        """Count a record (its key is checked); False (and counted pending) when it is
        younger than the window."""
        if at is not None and at > self.cutoff:
            self.pending[kind] += 1
            return False
        self.checked[kind] += 1
        self.keys[kind].add(key)
        return True

    def add(self, kind: Kind, entity: str, currency: str, **amounts: int | None) -> None:
        row = self.totals.setdefault((kind, entity, currency), {})
        for system, amount in amounts.items():
            if amount is not None:
                row[system] = row.get(system, 0) + amount

    def total_list(self) -> list[Total]:
        return [
            Total(
                kind=kind,
                legal_entity=entity,
                currency=currency,
                crm=row.get("crm"),
                billing=row.get("billing"),
                erp=row.get("erp"),
            )
            for (kind, entity, currency), row in sorted(self.totals.items())
        ]


class _Index:
    """Lookups shared by the checks."""

    def __init__(self, books: Books) -> None:
        self.erp_invoices: dict[str, list[Invoice]] = defaultdict(list)
        for invoice in books.erp_invoices:
            if invoice.external_id:
                self.erp_invoices[invoice.external_id].append(invoice)
        self.orders = {o.external_id: o for o in books.sales_orders if o.external_id}
        self.billing_customers = {c.id: c for c in books.billing_customers}
        self.accounts = {a.id: a for a in books.accounts}
        self.erp_customers = {c.id: c for c in books.erp_customers}
        self.links: dict[tuple[str, str], Link] = {}
        for link in books.links:
            self.links[(link.canonical_id, link.system)] = link
        self.erp_of_account: dict[str, str] = {
            link.canonical_id.removeprefix(CUSTOMER_PREFIX): link.external_id
            for link in books.links
            if link.system == "netsuite"
        }
        self.subscriptions = {s.id: s for s in books.subscriptions}
        self.first_invoice: dict[str, Invoice] = {}
        self.one_time_invoice: dict[str, Invoice] = {}
        """A deal of one-time services only: its own invoice, by deal id."""
        for invoice in sorted(books.billing_invoices, key=_issued_key):
            if invoice.status not in _BILLED:
                continue
            if invoice.subscription_id:
                self.first_invoice.setdefault(invoice.subscription_id, invoice)
            elif invoice.deal_id:
                self.one_time_invoice.setdefault(invoice.deal_id, invoice)

    def erp_customer_of(self, billing_customer_id: str) -> str | None:
        customer = self.billing_customers.get(billing_customer_id)
        account = customer.refs.get("salesforce") if customer else None
        return self.erp_of_account.get(account) if account else None


def _issued_key(invoice: Invoice) -> tuple[str, str]:
    return (invoice.issued_at.isoformat() if invoice.issued_at else "", invoice.id)


# -- deals -----------------------------------------------------------------------------


def _deals(books: Books, index: _Index, tally: _Tally) -> None:
    """A won deal's committed amount, what billing bills for it before tax (its subscription
    as it is now and its first invoice's one-time lines; a deal of one-time services only: its
    own invoice) and its sales order's total are equal.

    Committed means without the metered lines: a metered line sells a per-unit rate, and its
    quantity is an estimate. Billing leaves usage off the first invoice (it bills it in
    arrears) and quote-to-cash books a metered line on the sales order at its rate with no
    amount, so the three sides compare like with like; usage is the `usage` kind's."""
    by_deal = {s.deal_id: s for s in books.subscriptions if s.deal_id}
    metered = set(books.metered_products)
    for deal in books.deals:
        if not deal.won:
            continue
        entity = deal.legal_entity or ""
        if not tally.settled("deals", deal.updated_at, deal.id):
            continue
        crm = _contracted(deal, metered)
        order = index.orders.get(f"q2c:{deal.id}")
        subscription = by_deal.get(deal.id)
        if subscription is not None:
            first = index.first_invoice.get(subscription.id)
            billing = _billed_each_period(subscription, first)
        else:
            own = index.one_time_invoice.get(deal.id)
            billing = own.subtotal if own is not None else None
        erp = order.total if order is not None else None
        tally.add("deals", entity, deal.currency, crm=crm, billing=billing, erp=erp)
        values = Values(crm=crm, billing=billing, erp=erp)
        name = f"deal {deal.id} ({deal.name})"
        if order is None:
            reason = (
                f"{name} is won for {money_text(crm, deal.currency)} but has no sales order "
                "in the ERP"
            )
            code = "missing_in_erp"
        elif billing is not None and billing != crm:
            reason = (
                f"{name} was sold for {money_text(crm, deal.currency)} but billing charges "
                f"{money_text(billing, deal.currency)} for it"
            )
            code = "billing_differs"
        elif erp != crm:
            reason = (
                f"{name} was sold for {money_text(crm, deal.currency)} but its sales order "
                f"{order.number or order.id} books {money_text(erp, order.currency)}"
            )
            code = "erp_differs"
        else:
            continue
        tally.findings.append(
            Finding(
                kind="deals",
                code=code,
                key=deal.id,
                legal_entity=entity,
                currency=deal.currency,
                values=values,
                reason=reason,
            )
        )


def _contracted(deal: Deal, metered: set[str]) -> int:
    """What the CRM says the deal is committed to now: the amount it is booked at since its
    last amendment (a mirror the gateway writes), else its own amount, else its lines' total,
    less its metered lines (their sold quantity x rate). The opportunity's own amount stays
    what was first sold, so it alone would show every amended deal as drift."""
    if deal.contract_amount is not None:
        return deal.contract_amount
    usage = sum(line.total_amount for line in deal.lines if line.product_code in metered)
    if deal.amount is not None:
        return deal.amount - usage
    return sum(line.total_amount for line in deal.lines) - usage


def _billed_each_period(subscription: Subscription, first: Invoice | None) -> int | None:
    """What billing charges for a deal, as amended since: its subscription's licensed items
    as they are now at their unit prices, and the one-time lines of its first invoice (the
    lines of products the subscription does not bill each period). An amendment changes the
    items but never the first invoice, so the first invoice alone would show every amended
    deal as drift. A metered item commits nothing (its usage is billed in arrears). When an
    item has no unit price (tiered) or none is known, the first invoice's subtotal."""
    if first is None:
        return None
    items = [item for item in subscription.items if not item.usage_metric]
    if not items or any(item.unit_amount is None for item in items):
        return first.subtotal
    recurring = {item.product_code for item in subscription.items}
    one_time = sum(line.amount for line in first.lines if line.product_code not in recurring)
    return sum(item.quantity * (item.unit_amount or 0) for item in items) + one_time


# -- invoices and payments --------------------------------------------------------------


def _invoices(books: Books, index: _Index, tally: _Tally) -> None:
    """Every issued billing invoice with something to bill is in the ERP once, with the same
    total, tax, currency and legal entity; no ERP invoice without a billing invoice."""
    billed_ids = set()
    for invoice in books.billing_invoices:
        billed_ids.add(invoice.id)
        if invoice.status == "void":
            _voided(invoice, index.erp_invoices.get(invoice.id, []), tally)
            continue
        if invoice.status not in _BILLED or invoice.total <= 0:
            continue
        if not tally.settled("invoices", invoice.issued_at, invoice.id):
            continue
        posted = index.erp_invoices.get(invoice.id, [])
        erp_total = sum(p.total for p in posted) if posted else None
        tally.add(
            "invoices",
            invoice.legal_entity,
            invoice.currency,
            billing=invoice.total,
            erp=erp_total,
        )
        name = f"invoice {invoice.id}"
        values = Values(billing=invoice.total, erp=erp_total)
        finding = _invoice_finding(invoice, posted, name)
        if finding is None:
            continue
        code, reason, repair = finding
        tally.findings.append(
            Finding(
                kind="invoices",
                code=code,
                key=invoice.id,
                legal_entity=invoice.legal_entity,
                currency=invoice.currency,
                values=values,
                reason=reason,
                repair=repair,
                subject={"billing_invoice": invoice.id},
            )
        )
    for erp in books.erp_invoices:
        external_id = erp.external_id
        if external_id in billed_ids or not tally.settled("invoices", None, erp.id):
            continue
        tally.add("invoices", erp.legal_entity, erp.currency, erp=erp.total)
        tally.findings.append(
            Finding(
                kind="invoices",
                code="missing_in_billing",
                key=erp.id,
                legal_entity=erp.legal_entity,
                currency=erp.currency,
                values=Values(erp=erp.total),
                reason=(
                    f"ERP invoice {erp.number or erp.id} of "
                    f"{money_text(erp.total, erp.currency)} has no invoice in billing"
                    + (f" (it names {external_id})" if external_id else "")
                ),
            )
        )


def _voided(invoice: Invoice, posted: Sequence[Invoice], tally: _Tally) -> None:
    """A voided billing invoice books nothing: an ERP invoice still open for it is drift (no
    flow voids it in the ERP, so a person credits or voids it there)."""
    if not tally.settled("invoices", None, invoice.id):
        return
    booked = [p for p in posted if p.total > 0 and p.amount_paid < p.total]
    if not booked:
        return
    erp_total = sum(p.total for p in booked)
    numbers = ", ".join(p.number or p.id for p in booked)
    tally.add("invoices", invoice.legal_entity, invoice.currency, erp=erp_total)
    tally.findings.append(
        Finding(
            kind="invoices",
            code="voided_in_billing",
            key=invoice.id,
            legal_entity=invoice.legal_entity,
            currency=invoice.currency,
            values=Values(billing=0, erp=erp_total),
            reason=(
                f"invoice {invoice.id} was voided in billing but ERP invoice {numbers} still "
                f"books {money_text(erp_total, invoice.currency)}"
            ),
            subject={"billing_invoice": invoice.id},
        )
    )


def _invoice_finding(
    invoice: Invoice, posted: Sequence[Invoice], name: str
) -> tuple[str, str, RepairAction | None] | None:
    billed = money_text(invoice.total, invoice.currency)
    if not posted:
        return (
            "missing_in_erp",
            f"{name} ({billed}) is in billing but not in the ERP",
            "post_invoice",
        )
    if len(posted) > 1:
        numbers = ", ".join(p.number or p.id for p in posted)
        return (
            "posted_twice",
            f"{name} ({billed}) is posted {len(posted)} times in the ERP: {numbers}",
            None,
        )
    erp = posted[0]
    where = f"ERP invoice {erp.number or erp.id}"
    if erp.currency != invoice.currency:
        return (
            "currency_differs",
            f"{name} is billed in {invoice.currency} but {where} is in {erp.currency}",
            None,
        )
    if erp.legal_entity != invoice.legal_entity:
        return (
            "entity_differs",
            f"{name} is billed by {invoice.legal_entity} but {where} is booked in "
            f"{erp.legal_entity}",
            None,
        )
    if erp.total != invoice.total:
        return (
            "total_differs",
            f"{name} is {billed} in billing but {where} is {money_text(erp.total, erp.currency)}",
            None,
        )
    if erp.tax and erp.tax != invoice.tax:
        return (
            "tax_differs",
            f"{name} carries {money_text(invoice.tax, invoice.currency)} tax in billing but "
            f"{where} carries {money_text(erp.tax, erp.currency)}",
            None,
        )
    return None


def _payments(books: Books, index: _Index, tally: _Tally) -> None:
    """What billing collected on each invoice is applied to its ERP invoice."""
    for invoice in books.billing_invoices:
        if invoice.status not in _BILLED or invoice.amount_paid <= 0:
            continue
        if not tally.settled("payments", invoice.paid_at or invoice.issued_at, invoice.id):
            continue
        posted = index.erp_invoices.get(invoice.id, [])
        erp_paid = sum(p.amount_paid for p in posted) if posted else None
        tally.add(
            "payments",
            invoice.legal_entity,
            invoice.currency,
            billing=invoice.amount_paid,
            erp=erp_paid,
        )
        if erp_paid == invoice.amount_paid:
            continue
        if posted and _gap_is_a_missing_credit(invoice, posted, books, erp_paid or 0):
            continue
        collected = money_text(invoice.amount_paid, invoice.currency)
        if not posted:
            reason = (
                f"payment of {collected} on invoice {invoice.id} is in billing, but the "
                "invoice is not in the ERP"
            )
            repair: RepairAction | None = "post_invoice"
        else:
            reason = (
                f"invoice {invoice.id} was paid {collected} in billing but the ERP shows "
                f"{money_text(erp_paid, invoice.currency)} paid"
            )
            repair = "apply_payment" if (erp_paid or 0) < invoice.amount_paid else None
        tally.findings.append(
            Finding(
                kind="payments",
                code="paid_differs",
                key=invoice.id,
                legal_entity=invoice.legal_entity,
                currency=invoice.currency,
                values=Values(billing=invoice.amount_paid, erp=erp_paid),
                reason=reason,
                repair=repair,
                subject={"billing_invoice": invoice.id},
            )
        )


def _gap_is_a_missing_credit(
    invoice: Invoice, posted: Sequence[Invoice], books: Books, erp_paid: int
) -> bool:
    """The ERP counts a credit memo applied to an invoice as paid, so when a credit memo
    reached the ERP before the payment, the payment settled only what the memo left open.
    If that memo is later lost, the invoice falls short by the memo's amount: that is the
    credit's drift, reported once under `credits` (whose repair applies the memo again), not
    a second time as a payment."""
    shortfall = invoice.amount_paid - erp_paid
    credited = sum(
        n.amount for n in books.credit_notes if n.invoice_id == invoice.id and n.status != "void"
    )
    erp_ids = {p.id for p in posted}
    memos = sum(m.amount for m in books.credit_memos if m.invoice_id in erp_ids)
    return 0 < shortfall <= credited - memos


# -- credits ---------------------------------------------------------------------------


def _credits(books: Books, index: _Index, tally: _Tally) -> None:
    """Each billing credit (a credit note, or a negative proration invoice) has an ERP credit
    memo of the same amount for the same customer and currency; no ERP credit memo without one.

    Matched per ERP customer and currency: first by memo text, then by amount."""
    memos: dict[tuple[str, str], list[CreditMemo]] = defaultdict(list)
    for memo in books.credit_memos:
        memos[(memo.customer_id, memo.currency)].append(memo)
    credits: list[tuple[str, str, int, str | None, str, str, datetime | None]] = []
    for note in books.credit_notes:
        if note.status == "void":
            continue
        credits.append(
            (
                note.id,
                note.customer_id,
                note.amount,
                note.memo,
                note.currency,
                note.legal_entity or "",
                note.created_at,
            )
        )
    for invoice in books.billing_invoices:
        if invoice.status in _BILLED and invoice.total < 0:
            credits.append(
                (
                    invoice.id,
                    invoice.customer_id,
                    -invoice.total,
                    None,
                    invoice.currency,
                    invoice.legal_entity,
                    invoice.issued_at,
                )
            )
    for credit_id, customer_id, amount, text, currency, entity, at in credits:
        if not tally.settled("credits", at, credit_id):
            continue
        erp_customer = index.erp_customer_of(customer_id)
        pool = memos.get((erp_customer or "", currency), [])
        match = next((m for m in pool if text and m.memo == text and m.amount == amount), None)
        match = match or next((m for m in pool if m.amount == amount), None)
        if match is not None:
            pool.remove(match)
            entity = entity or match.legal_entity
        tally.add("credits", entity, currency, billing=amount, erp=match.amount if match else 0)
        if match is not None:
            continue
        tally.findings.append(
            Finding(
                kind="credits",
                code="missing_in_erp",
                key=credit_id,
                legal_entity=entity,
                currency=currency,
                values=Values(billing=amount, erp=None),
                reason=(
                    f"credit {credit_id} of {money_text(amount, currency)} is in billing but "
                    "has no credit memo in the ERP"
                ),
                repair="post_credit_memo" if erp_customer else None,
                subject={
                    "credit": credit_id,
                    "billing_customer": customer_id,
                    **({"erp_customer": erp_customer} if erp_customer else {}),
                },
            )
        )
    for pool in memos.values():
        for memo in pool:
            if not tally.settled("credits", None, memo.id):
                continue
            tally.add("credits", memo.legal_entity, memo.currency, erp=memo.amount)
            tally.findings.append(
                Finding(
                    kind="credits",
                    code="missing_in_billing",
                    key=memo.id,
                    legal_entity=memo.legal_entity,
                    currency=memo.currency,
                    values=Values(erp=memo.amount),
                    reason=(
                        f"ERP credit memo {memo.number or memo.id} of "
                        f"{money_text(memo.amount, memo.currency)} has no credit in billing"
                    ),
                )
            )


# -- customers -------------------------------------------------------------------------


def _customers(books: Books, index: _Index, tally: _Tally) -> None:
    """Each CRM account that billing or the ERP knows has one billing customer and one ERP
    customer, linked by the cross-references, in the account's legal entity."""
    billing_of: dict[str, list[Customer]] = defaultdict(list)
    for customer in books.billing_customers:
        account_id = customer.refs.get("salesforce")
        if account_id:
            billing_of[account_id].append(customer)
    known = set(billing_of) | set(index.erp_of_account)
    for account_id in sorted(known):
        account = index.accounts.get(account_id)
        if account is None:
            continue
        if not tally.settled("customers", None, account_id):
            continue
        entity = account.legal_entity
        canonical = CUSTOMER_PREFIX + account_id
        found = _customer_finding(account, billing_of.get(account_id, []), canonical, index)
        if found is None:
            continue
        code, reason, values, repair, subject = found
        tally.findings.append(
            Finding(
                kind="customers",
                code=code,
                key=account_id,
                legal_entity=entity,
                currency=account.currency,
                values=values,
                reason=reason,
                repair=repair,
                subject=subject,
            )
        )


def _customer_finding(
    account: Customer, billing: list[Customer], canonical: str, index: _Index
) -> tuple[str, str, Values, RepairAction | None, dict[str, str]] | None:
    name = f"account {account.id} ({account.legal_name})"
    billing_link = index.links.get((canonical, "stripe"))
    erp_link = index.links.get((canonical, "netsuite"))
    ids = ", ".join(sorted(c.id for c in billing))
    values = Values(
        crm=account.id,
        billing=ids or None,
        erp=erp_link.external_id if erp_link else None,
    )
    if len(billing) > 1:
        return (
            "duplicate_billing_customer",
            f"{name} has {len(billing)} billing customers ({ids}); one must go",
            values,
            None,
            {},
        )
    if billing and billing_link is not None and billing_link.external_id != billing[0].id:
        return (
            "stale_link",
            f"{name} is linked to billing customer {billing_link.external_id}, but billing "
            f"customer {billing[0].id} carries the account",
            values,
            "relink_customer",
            {
                "system": "stripe",
                "external_id": billing[0].id,
                "legal_entity": account.legal_entity,
            },
        )
    if billing and billing[0].legal_entity != account.legal_entity:
        return (
            "entity_differs",
            f"{name} belongs to {account.legal_entity} but billing customer {billing[0].id} is "
            f"in {billing[0].legal_entity}",
            values,
            None,
            {},
        )
    if erp_link is not None:
        erp = index.erp_customers.get(erp_link.external_id)
        if erp is None:
            return (
                "missing_in_erp",
                f"{name} is linked to ERP customer {erp_link.external_id}, which the ERP does "
                "not have",
                values,
                None,
                {},
            )
        if erp.legal_entity != account.legal_entity:
            return (
                "entity_differs",
                f"{name} belongs to {account.legal_entity} but ERP customer {erp.id} is in "
                f"subsidiary {erp.legal_entity}",
                values,
                None,
                {},
            )
    elif billing:
        return (
            "missing_in_erp",
            f"{name} has billing customer {billing[0].id} but no ERP customer",
            values,
            None,
            {},
        )
    return None


# -- usage -----------------------------------------------------------------------------


def _usage(books: Books, index: _Index, tally: _Tally) -> None:
    """Per closed period, every unit the gateway accepted was pushed to billing and billing
    invoiced exactly the units pushed. Totals count units (the currency is the subscription's).
    A period closed within the settle window is pending: its invoice may still be drafting."""
    for period in books.usage:
        # A billed period is settled; an unbilled one only once the window has passed.
        closed_at = None if period.invoiced is not None else period.period_end
        if not tally.settled("usage", closed_at, _usage_key(period)):
            continue
        subscription = index.subscriptions.get(period.subscription_id)
        currency = subscription.currency if subscription is not None else ""
        tally.add("usage", period.legal_entity, currency, billing=period.invoiced)
        name = (
            f"usage {period.metric} of subscription {period.subscription_id} for the period "
            f"from {period.period_start.date().isoformat()}"
        )
        key = _usage_key(period)
        values = Values(billing=period.invoiced)
        if period.pushed != period.accepted:
            tally.findings.append(
                Finding(
                    kind="usage",
                    code="usage_not_pushed",
                    key=key,
                    legal_entity=period.legal_entity,
                    currency=currency or None,
                    values=values,
                    reason=f"{name}: {period.accepted} units accepted, {period.pushed} pushed "
                    "to billing before the period closed",
                )
            )
        elif period.invoiced != period.pushed:
            tally.findings.append(
                Finding(
                    kind="usage",
                    code="usage_invoiced_differs",
                    key=key,
                    legal_entity=period.legal_entity,
                    currency=currency or None,
                    values=values,
                    reason=f"{name}: {period.pushed} units pushed to billing, "
                    f"{'none' if period.invoiced is None else period.invoiced} invoiced",
                )
            )


def _usage_key(period: UsageBook) -> str:
    return f"{period.subscription_id}:{period.metric}:{period.period_start.isoformat()}"


_CHECKS = {
    "deals": _deals,
    "invoices": _invoices,
    "payments": _payments,
    "credits": _credits,
    "customers": _customers,
    "usage": _usage,
}
