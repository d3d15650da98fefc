"""The error table: each vendor's refusals and transport failures as our typed errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from contracts.errors import (
    UpstreamAuthFailed,
    UpstreamConflict,
    UpstreamError,
    UpstreamInvalid,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from system_apis.billing.stripe._client_http import ERRORS as STRIPE
from system_apis.crm.salesforce._client_http import ERRORS as SALESFORCE
from system_apis.erp.netsuite._client_http import ERRORS as NETSUITE
from system_apis.outbound import DEFAULT_ERRORS, ErrorRule, ErrorTable, Fault
from system_apis.support.zendesk._client_http import ERRORS as ZENDESK

REQUEST = httpx.Request("POST", "https://vendor.test/things")


def plain(response: httpx.Response) -> Fault:
    code = response.headers.get("x-code")
    return Fault(message=f"vendor answered {response.status_code}", code=code)


TABLE = ErrorTable("vendor", name="Vendor", read=plain)


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers, request=REQUEST)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, UpstreamUnavailable), (500, UpstreamUnavailable), (503, UpstreamUnavailable),
        (401, UpstreamAuthFailed), (403, UpstreamAuthFailed), (404, UpstreamNotFound),
        (409, UpstreamConflict), (400, UpstreamInvalid), (422, UpstreamInvalid),
        (405, UpstreamRejected), (410, UpstreamRejected),
    ],
)
def test_default_table(status: int, error: type[UpstreamError]) -> None:
    raised = TABLE.error_for(answer(status, **{"x-code": "E1", "x-request-id": "r"}))
    assert type(raised) is error
    assert (raised.vendor, raised.status, raised.code) == ("vendor", status, "E1")
    assert TABLE.rule_for(status, Fault(message="")).action == (
        "retry" if error is UpstreamUnavailable else "fail"
    )


def test_retry_after_comes_from_the_header_or_the_rule() -> None:
    raised = TABLE.error_for(answer(503, **{"Retry-After": "12"}))
    assert isinstance(raised, UpstreamUnavailable) and raised.retry_after == 12.0
    waiting = ErrorTable("vendor", name="Vendor", read=plain,
                         overrides=[ErrorRule(409, UpstreamUnavailable, retry_after=lambda: 3.0)])
    raised = waiting.error_for(answer(409))
    assert isinstance(raised, UpstreamUnavailable) and raised.retry_after == 3.0


def test_vendor_rows_come_before_the_default_ones() -> None:
    table = ErrorTable("vendor", name="Vendor", read=plain,
                       overrides=[ErrorRule(403, UpstreamUnavailable, code="BUSY")])
    assert isinstance(table.error_for(answer(403, **{"x-code": "BUSY"})), UpstreamUnavailable)
    assert isinstance(table.error_for(answer(403, **{"x-code": "NO"})), UpstreamAuthFailed)
    assert table.rules[-len(DEFAULT_ERRORS) - 1 : -1] == DEFAULT_ERRORS


@pytest.mark.parametrize(
    ("exc", "timeout"),
    [(httpx.ReadTimeout("slow"), True), (httpx.ConnectError("refused"), False)],
)
def test_a_transport_failure_is_unavailable(exc: httpx.HTTPError, timeout: bool) -> None:
    error = TABLE.unavailable(exc, "GET /things")
    assert (error.vendor, error.timeout, error.code) == ("vendor", timeout, "transport_error")
    assert error.message.startswith("Vendor GET /things ")


SF_QUOTA = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
SF_FORBIDDEN = [{"errorCode": "INSUFFICIENT_ACCESS", "message": "no"}]
NS_BUSY = {"o:errorDetails": [{"detail": "busy", "o:errorCode": "CONCURRENCY_LIMIT_EXCEEDED"}]}
NS_LOGIN = {"o:errorDetails": [{"detail": "who?", "o:errorCode": "INVALID_LOGIN"}]}
NS_MISSING = {"o:errorDetails": [{"detail": "gone", "o:errorCode": "NONEXISTENT_ID"}]}
STRIPE_IN_FLIGHT = {"error": {"type": "idempotency_error", "code": "idempotency_key_in_use",
                              "message": "in progress"}}
STRIPE_REUSED = {"error": {"type": "idempotency_error", "message": "other parameters"}}
STRIPE_DECLINED = {"error": {"type": "card_error", "code": "card_declined",
                             "decline_code": "insufficient_funds", "message": "declined"}}
ZD_REUSED = {"errors": [{"code": "IdempotentRequestError", "title": "reused key"}]}


@pytest.mark.parametrize(
    ("table", "args", "status", "body", "error", "code"),
    [
        (SALESFORCE, {}, 403, SF_QUOTA, UpstreamUnavailable, "REQUEST_LIMIT_EXCEEDED"),
        (SALESFORCE, {}, 403, SF_FORBIDDEN, UpstreamAuthFailed, "INSUFFICIENT_ACCESS"),
        (SALESFORCE, {}, 300, [], UpstreamConflict, None),
        (SALESFORCE, {}, 405, [], UpstreamInvalid, None),
        (STRIPE, {"what": "POST /v1/customers"}, 409, STRIPE_IN_FLIGHT, UpstreamUnavailable,
         "idempotency_key_in_use"),
        (STRIPE, {"what": "POST /v1/customers"}, 400, STRIPE_REUSED, UpstreamConflict,
         "idempotency_error"),
        (STRIPE, {"what": "POST /v1/invoices/in_1/pay"}, 402, STRIPE_DECLINED, UpstreamInvalid,
         "insufficient_funds"),
        (ZENDESK, {}, 400, ZD_REUSED, UpstreamConflict, "IdempotentRequestError"),
        (ZENDESK, {}, 405, {}, UpstreamRejected, None),
        (NETSUITE, {"what": "read"}, 400, NS_BUSY, UpstreamUnavailable,
         "CONCURRENCY_LIMIT_EXCEEDED"),
        (NETSUITE, {"what": "read"}, 400, NS_LOGIN, UpstreamAuthFailed, "INVALID_LOGIN"),
        (NETSUITE, {"what": "read"}, 400, NS_MISSING, UpstreamNotFound, "NONEXISTENT_ID"),
        (NETSUITE, {"what": "read"}, 503, NS_LOGIN, UpstreamUnavailable, "INVALID_LOGIN"),
        (NETSUITE, {"what": "read"}, 405, {}, UpstreamInvalid, None),
    ],
)
def test_vendor_rows(table: ErrorTable[Any], args: dict[str, str], status: int, body: Any,
                     error: type[UpstreamError], code: str | None) -> None:
    raised = table.error_for(answer(status, body), **args)
    assert type(raised) is error
    assert (raised.vendor, raised.status, raised.code) == (table.vendor, status, code)


def test_waits_vendors_ask_for_without_a_header() -> None:
    quota = SALESFORCE.error_for(answer(403, SF_QUOTA))
    assert isinstance(quota, UpstreamUnavailable)
    assert quota.retry_after is not None and 0 < quota.retry_after <= 86_400
    busy = NETSUITE.error_for(answer(400, NS_BUSY), what="read")
    assert isinstance(busy, UpstreamUnavailable) and busy.retry_after == 1.0
    in_flight = STRIPE.error_for(answer(409, STRIPE_IN_FLIGHT), what="POST /v1/customers")
    assert isinstance(in_flight, UpstreamUnavailable) and in_flight.retry_after == 1.0
