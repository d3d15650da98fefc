"""Stripe objects <-> canonical contracts: pure functions, exact money.

The wire Structs (`_wire`) decode Stripe's JSON leniently; the functions here turn them into
contracts (`to_*`) and turn contracts into Stripe request parameters (`from_*`). Amounts
convert exactly (`to_minor_units`, `to_stripe_amount`); what Stripe has no field for travels in
metadata (`META_*`); records take the legal entity of their customer. See the private modules
for each family: customers, catalog, billing, events.
"""

from __future__ import annotations

from system_apis.billing.stripe._amounts import to_minor_units, to_stripe_amount
from system_apis.billing.stripe._conventions import (
    META_CANONICAL_ID,
    META_CORRELATION,
    META_CRM_ACCOUNT,
    META_CURRENCY,
    META_DEAL,
    META_LEGAL_ENTITY,
    META_PRODUCT_CODE,
    META_TAX_CODE,
    SYSTEM,
    UNASSIGNED_ENTITY,
    customer_id_of,
)
from system_apis.billing.stripe._map_billing import (
    from_credit_note_create,
    from_subscription_create,
    from_subscription_patch,
    from_tax_rate,
    to_credit_note,
    to_invoice,
    to_invoice_line,
    to_payment,
    to_subscription,
    to_tax_rate,
)
from system_apis.billing.stripe._map_catalog import from_price, from_product, to_price, to_product
from system_apis.billing.stripe._map_customers import (
    from_customer_create,
    from_customer_patch,
    to_customer,
)
from system_apis.billing.stripe._map_events import (
    TestClock,
    WebhookEndpoint,
    to_event,
    to_test_clock,
    to_webhook_endpoint,
)
from system_apis.billing.stripe._wire import (
    CreditNoteWire,
    CustomerWire,
    ErrorWire,
    EventWire,
    InvoiceLineWire,
    InvoiceWire,
    ListWire,
    PaymentIntentWire,
    PriceWire,
    ProductWire,
    SearchResultWire,
    SubscriptionWire,
    TestClockWire,
    WebhookEndpointWire,
)

__all__ = [
    "META_CANONICAL_ID",
    "META_CORRELATION",
    "META_CRM_ACCOUNT",
    "META_CURRENCY",
    "META_DEAL",
    "META_LEGAL_ENTITY",
    "META_PRODUCT_CODE",
    "META_TAX_CODE",
    "SYSTEM",
    "UNASSIGNED_ENTITY",
    "CreditNoteWire",
    "CustomerWire",
    "ErrorWire",
    "EventWire",
    "InvoiceLineWire",
    "InvoiceWire",
    "ListWire",
    "PaymentIntentWire",
    "PriceWire",
    "ProductWire",
    "SearchResultWire",
    "SubscriptionWire",
    "TestClock",
    "TestClockWire",
    "WebhookEndpoint",
    "WebhookEndpointWire",
    "customer_id_of",
    "from_credit_note_create",
    "from_customer_create",
    "from_customer_patch",
    "from_price",
    "from_product",
    "from_subscription_create",
    "from_subscription_patch",
    "from_tax_rate",
    "to_credit_note",
    "to_customer",
    "to_event",
    "to_invoice",
    "to_invoice_line",
    "to_minor_units",
    "to_payment",
    "to_price",
    "to_product",
    "to_stripe_amount",
    "to_subscription",
    "to_tax_rate",
    "to_test_clock",
    "to_webhook_endpoint",
]
