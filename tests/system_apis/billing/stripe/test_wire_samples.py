"""The client parses every recorded Stripe response relevant to what it maps.

Recorded from the real API (see `ERPGW_VENDOR_SPECS/stripe/wire-samples/`), so the client and
the emulator cannot agree on a format Stripe does not speak.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec

from contracts.errors import UpstreamError, UpstreamInvalid, UpstreamNotFound
from system_apis.billing.stripe import mapping
from system_apis.billing.stripe._client_http import ERRORS
from tests.support.vendor_specs import vendor_specs_dir

SKIPPED = {
    "accounts__": "Connect accounts: the gateway does not use Stripe Connect",
    "balance_transactions__": "balance transactions: payouts and fees are not mapped",
    "checkout-sessions__": "Checkout: the gateway does not sell through hosted checkout",
    "financial-account__": "Treasury financial accounts: not used",
    "transaction_entries__": "Treasury transaction entries: not used",
}


def _customers_page(raw: bytes) -> int:
    page = msgspec.json.decode(raw, type=mapping.ListWire[mapping.CustomerWire])
    customers = [mapping.to_customer(wire) for wire in page.data]
    assert all(c.refs["stripe"].startswith("cus_") for c in customers)
    return len(customers)


def _customer(raw: bytes) -> int:
    customer = mapping.to_customer(msgspec.json.decode(raw, type=mapping.CustomerWire))
    assert customer.id.startswith("cus_") and customer.email
    return 1


def _invoices_page(raw: bytes) -> int:
    page = msgspec.json.decode(raw, type=mapping.ListWire[mapping.InvoiceWire])
    invoices = [mapping.to_invoice(wire) for wire in page.data]
    assert all(i.currency == "USD" and i.status in ("draft", "open", "paid") for i in invoices)
    return len(invoices)


def _payment_intent(raw: bytes) -> int:
    payment = mapping.to_payment(msgspec.json.decode(raw, type=mapping.PaymentIntentWire))
    assert payment.status == "succeeded" and payment.amount == 100
    return 1


def _event(raw: bytes) -> int:
    event = mapping.to_event(msgspec.json.decode(raw, type=mapping.EventWire))
    assert event.id.startswith("evt_") and event.subject
    return 1


def _endpoint(raw: bytes) -> int:
    endpoint = mapping.to_webhook_endpoint(
        msgspec.json.decode(raw, type=mapping.WebhookEndpointWire)
    )
    assert endpoint.enabled and endpoint.url.startswith("https://")
    return 1


def _error(status: int, expected: type[UpstreamError]) -> Callable[[bytes], int]:
    def parse(raw: bytes) -> int:
        response = httpx.Response(status, content=raw, headers={"request-id": "req_sample"})
        error = ERRORS.error_for(response, "sample")
        assert isinstance(error, expected) and error.request_id == "req_sample"
        assert error.code
        return 1

    return parse


PARSERS: dict[str, Callable[[bytes], int]] = {
    "customers__1-first-page.json": _customers_page,
    "customers__2-last-page.json": _customers_page,
    "customers__with-metadata.json": _customers_page,
    "write__customers__new.json": _customer,
    "invoices__incremental.json": _invoices_page,
    "read__payment_intents__expand_payment_method_charge.json": _payment_intent,
    "subscribe__setup_intent-created.json": _event,
    "subscribe__webhook-endpoint-response.json": _endpoint,
    "subscribe__webhook-endpoint-updated-response.json": _endpoint,
    "delete__err-not-found.json": _error(404, UpstreamNotFound),
    "general-errors__error-bad-request.json": _error(400, UpstreamInvalid),
    "general-errors__error-setup-payment-intent.json": _error(400, UpstreamInvalid),
}


def samples() -> list[Path]:
    folder = vendor_specs_dir() / "stripe" / "wire-samples"
    return sorted(folder.glob("*.json"))


def test_client_parses_every_relevant_recorded_response() -> None:
    parsed = 0
    for path in samples():
        if any(path.name.startswith(prefix) for prefix in SKIPPED):
            continue
        parser = PARSERS.get(path.name)
        assert parser is not None, f"{path.name} is neither parsed nor skipped with a reason"
        assert parser(path.read_bytes()) >= 1, path.name
        parsed += 1
    assert parsed > 0
    assert parsed == len(PARSERS)


def test_recorded_metadata_survives_mapping() -> None:
    path = vendor_specs_dir() / "stripe" / "wire-samples" / "customers__with-metadata.json"
    page = msgspec.json.decode(path.read_bytes(), type=mapping.ListWire[mapping.CustomerWire])
    assert page.data[0].metadata["internal_ref"] == "REF-2024-001"
    assert mapping.to_customer(page.data[0]).legal_entity == mapping.UNASSIGNED_ENTITY
