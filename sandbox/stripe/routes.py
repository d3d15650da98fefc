"""The Stripe endpoints the sandbox serves, as (method, path, operation) rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from sandbox.stripe import routes_catalog as catalog
from sandbox.stripe import routes_clocks as clocks
from sandbox.stripe import routes_credit_notes as credit_notes
from sandbox.stripe import routes_customers as customers
from sandbox.stripe import routes_events as events
from sandbox.stripe import routes_invoices as invoices
from sandbox.stripe import routes_schedules as schedules
from sandbox.stripe import routes_subscriptions as subscriptions
from sandbox.stripe import routes_tax_rates as tax_rates
from sandbox.stripe import usage
from sandbox.stripe.params import Params
from sandbox.stripe.store import Obj, Store

__all__ = ["ROUTES", "Method", "Operation"]

Operation = Callable[[Store, Params, dict[str, str]], Obj]
Method = Literal["GET", "POST", "DELETE"]

_CLOCKS = "/v1/test_helpers/test_clocks"

ROUTES: tuple[tuple[Method, str, Operation], ...] = (
    ("POST", "/v1/customers", customers.create_customer),
    ("GET", "/v1/customers", customers.list_customers),
    ("GET", "/v1/customers/search", customers.search_customers),
    ("GET", "/v1/customers/{customer:str}", customers.get_customer),
    ("POST", "/v1/customers/{customer:str}", customers.update_customer),
    ("DELETE", "/v1/customers/{customer:str}", customers.delete_customer),
    ("POST", "/v1/products", catalog.create_product),
    ("GET", "/v1/products", catalog.list_products),
    ("GET", "/v1/products/search", catalog.search_products),
    ("GET", "/v1/products/{id:str}", catalog.get_product),
    ("POST", "/v1/products/{id:str}", catalog.update_product),
    ("POST", "/v1/prices", catalog.create_price),
    ("GET", "/v1/prices", catalog.list_prices),
    ("GET", "/v1/prices/{price:str}", catalog.get_price),
    ("POST", "/v1/prices/{price:str}", catalog.update_price),
    ("POST", "/v1/subscriptions", subscriptions.create_subscription),
    ("GET", "/v1/subscriptions", subscriptions.list_subscriptions),
    ("GET", "/v1/subscriptions/{subscription:str}", subscriptions.get_subscription),
    ("POST", "/v1/subscriptions/{subscription:str}", subscriptions.update_subscription),
    ("DELETE", "/v1/subscriptions/{subscription:str}", subscriptions.cancel_subscription),
    ("POST", "/v1/subscription_schedules", schedules.create_schedule),
    ("GET", "/v1/subscription_schedules/{schedule:str}", schedules.get_schedule),
    ("POST", "/v1/subscription_schedules/{schedule:str}", schedules.update_schedule),
    ("GET", "/v1/subscription_items", subscriptions.list_subscription_items),
    ("POST", "/v1/subscription_items", subscriptions.create_subscription_item),
    ("GET", "/v1/subscription_items/{item:str}", subscriptions.get_subscription_item),
    ("POST", "/v1/subscription_items/{item:str}", subscriptions.update_subscription_item),
    ("DELETE", "/v1/subscription_items/{item:str}", subscriptions.delete_subscription_item),
    ("POST", "/v1/subscription_items/{item:str}/usage_records", usage.create_usage_record),
    (
        "GET",
        "/v1/subscription_items/{item:str}/usage_record_summaries",
        usage.list_usage_record_summaries,
    ),
    ("POST", "/v1/invoiceitems", invoices.create_invoice_item),
    ("GET", "/v1/invoiceitems", invoices.list_invoice_items),
    ("GET", "/v1/invoiceitems/{invoiceitem:str}", invoices.get_invoice_item),
    ("DELETE", "/v1/invoiceitems/{invoiceitem:str}", invoices.delete_invoice_item),
    ("POST", "/v1/invoices", invoices.create_invoice),
    ("GET", "/v1/invoices", invoices.list_invoices),
    ("GET", "/v1/invoices/{invoice:str}", invoices.get_invoice),
    ("POST", "/v1/invoices/{invoice:str}", invoices.update_invoice),
    ("DELETE", "/v1/invoices/{invoice:str}", invoices.delete_invoice),
    ("GET", "/v1/invoices/{invoice:str}/lines", invoices.invoice_lines),
    ("POST", "/v1/invoices/{invoice:str}/finalize", invoices.finalize_invoice),
    ("POST", "/v1/invoices/{invoice:str}/pay", invoices.pay_invoice),
    ("POST", "/v1/invoices/{invoice:str}/void", invoices.void_invoice),
    ("POST", "/v1/invoices/{invoice:str}/mark_uncollectible", invoices.mark_uncollectible),
    ("POST", "/v1/invoices/{invoice:str}/send", invoices.send_invoice),
    ("GET", "/v1/payment_intents/{intent:str}", invoices.get_payment_intent),
    ("POST", "/v1/credit_notes", credit_notes.create_credit_note),
    ("GET", "/v1/credit_notes", credit_notes.list_credit_notes),
    ("GET", "/v1/credit_notes/{id:str}", credit_notes.get_credit_note),
    ("GET", "/v1/credit_notes/{id:str}/lines", credit_notes.credit_note_lines),
    ("POST", "/v1/credit_notes/{id:str}/void", credit_notes.void_credit_note),
    ("POST", "/v1/tax_rates", tax_rates.create_tax_rate),
    ("GET", "/v1/tax_rates", tax_rates.list_tax_rates),
    ("GET", "/v1/tax_rates/{tax_rate:str}", tax_rates.get_tax_rate),
    ("POST", "/v1/tax_rates/{tax_rate:str}", tax_rates.update_tax_rate),
    ("GET", "/v1/events", events.list_events),
    ("GET", "/v1/events/{id:str}", events.get_event),
    ("POST", "/v1/webhook_endpoints", events.create_webhook_endpoint),
    ("GET", "/v1/webhook_endpoints", events.list_webhook_endpoints),
    ("GET", "/v1/webhook_endpoints/{endpoint:str}", events.get_webhook_endpoint),
    ("POST", "/v1/webhook_endpoints/{endpoint:str}", events.update_webhook_endpoint),
    ("DELETE", "/v1/webhook_endpoints/{endpoint:str}", events.delete_webhook_endpoint),
    ("POST", _CLOCKS, clocks.create_test_clock),
    ("GET", _CLOCKS, clocks.list_test_clocks),
    ("GET", _CLOCKS + "/{clock:str}", clocks.get_test_clock),
    ("DELETE", _CLOCKS + "/{clock:str}", clocks.delete_test_clock),
    ("POST", _CLOCKS + "/{clock:str}/advance", clocks.advance_test_clock),
)
