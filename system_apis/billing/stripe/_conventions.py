"""How the gateway's data sits in Stripe: metadata keys, cross-references, legal entity, time.

Stripe has no field for several canonical ones; they travel in `metadata` under the keys below.
Canonical ids are Stripe's ids, with the other platforms' ids in `refs` (and a customer's
gateway-wide canonical id, `metadata[canonical_id]`, as `refs["canonical"]`). Invoices,
subscriptions and credit notes take the legal entity of their customer: their own
`metadata[legal_entity]`, else the (expanded) customer's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Final

from system_apis.billing.stripe._wire import CustomerWire, InvoiceRefWire

__all__ = [
    "DEFAULT_CURRENCY",
    "META_BILLING_INTERVAL",
    "META_CANONICAL_ID",
    "META_CRM_ACCOUNT",
    "META_CURRENCY",
    "META_DEAL",
    "META_LEGAL_ENTITY",
    "META_NETSUITE_ID",
    "META_NETSUITE_ITEM",
    "META_PAYMENT_TERMS",
    "META_PRODUCT_CODE",
    "META_REASON",
    "META_SALES_ORDER",
    "META_TAX_CODE",
    "META_TAX_ID",
    "META_USAGE_METRIC",
    "META_WEBSITE",
    "SYSTEM",
    "UNASSIGNED_ENTITY",
    "customer_id_of",
    "day",
    "entity_of",
    "int_or_none",
    "ref_id",
    "refs",
    "str_or_none",
    "timestamp",
]

SYSTEM: Final = "stripe"
META_CRM_ACCOUNT: Final = "crm_account_id"
"""The Salesforce Account id a Stripe customer mirrors (what the customer search looks up)."""
META_CANONICAL_ID: Final = "canonical_id"
"""The gateway's canonical customer id (`cus-...`): on a customer, and on a subscription to
name its customer; read back into the customer's `refs["canonical"]`."""
META_LEGAL_ENTITY: Final = "legal_entity"
META_CURRENCY: Final = "currency"
"""The billing currency agreed for a customer before Stripe fixes `currency` on first use."""
META_TAX_ID: Final = "tax_id"
META_WEBSITE: Final = "website"
META_PAYMENT_TERMS: Final = "payment_terms_days"
META_NETSUITE_ID: Final = "netsuite_id"
META_PRODUCT_CODE: Final = "product_code"
META_BILLING_INTERVAL: Final = "billing_interval"
META_USAGE_METRIC: Final = "usage_metric"
"""A metered product's (and its subscription items') usage metric, e.g. `api_calls`."""
META_NETSUITE_ITEM: Final = "netsuite_item_id"
META_DEAL: Final = "deal_id"
META_CORRELATION: Final = "correlation_id"
"""The trace (correlation id) of the flow that made the record: what it causes joins it."""
META_TAX_CODE: Final = "tax_code"
"""On a tax rate: the company's tax code it stands for."""
META_SALES_ORDER: Final = "netsuite_sales_order_id"
META_REASON: Final = "erpgw_reason"
"""A canonical credit-note reason Stripe has no value for (`service_credit`)."""
UNASSIGNED_ENTITY: Final = "UNASSIGNED"
"""Legal entity of a Stripe record created outside the gateway with none in its metadata;
callers restricted to named entities never see it."""
DEFAULT_CURRENCY: Final = "USD"
"""Stripe's account default currency for a customer with none set yet (the sandbox is a US
account)."""


def customer_id_of(reference: str | CustomerWire) -> str:
    """The customer id of a reference, expanded or not."""
    return reference if isinstance(reference, str) else reference.id


def refs(stripe_id: str, **others: str | None) -> dict[str, str]:
    """`refs` of a record: its Stripe id plus the other platforms' ids that are known."""
    found = {SYSTEM: stripe_id}
    found.update({system: value for system, value in others.items() if value})
    return found


def entity_of(metadata: dict[str, str], customer: str | CustomerWire | None) -> str | None:
    """A record's legal entity: its own metadata's, else its expanded customer's."""
    own = metadata.get(META_LEGAL_ENTITY)
    if own:
        return own
    if isinstance(customer, CustomerWire):
        return customer.metadata.get(META_LEGAL_ENTITY) or UNASSIGNED_ENTITY
    return None


def ref_id(reference: str | InvoiceRefWire | None) -> str | None:
    """The id of a reference, expanded or not."""
    if reference is None or isinstance(reference, str):
        return reference
    return reference.id


def timestamp(stamp: int | None) -> datetime | None:
    """A Stripe Unix timestamp as an aware UTC datetime."""
    return None if stamp is None else datetime.fromtimestamp(stamp, tz=UTC)


def day(stamp: int | None) -> date | None:
    """A Stripe Unix timestamp as its UTC calendar day (due dates)."""
    return None if stamp is None else datetime.fromtimestamp(stamp, tz=UTC).date()


def int_or_none(raw: str | None) -> int | None:
    """An integer kept in metadata, or None when absent or not a number."""
    if raw is None or not raw.strip().lstrip("-").isdigit():
        return None
    return int(raw)


def str_or_none(value: object) -> str | None:
    """A value as metadata text (None stays None)."""
    return None if value is None else str(value)
