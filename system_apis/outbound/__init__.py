"""The one vendor-call helper: the outbound HTTP policy every vendor client's requests go
through, the error table, the Retry-After reader, and the cursor codec and paginator.

Vendor clients receive an `httpx.AsyncClient` from `build_vendor_http`; its transport is a
`PolicyTransport` that adds, generically for every platform: correlation headers
(`traceparent`, `X-Correlation-ID`), a total deadline per request, retries with backoff for
idempotent requests only (honouring `Retry-After`), a circuit breaker per platform, quota
budgets (in Redis when given, else in process) that serve interactive callers first, a record
of every attempt and Prometheus metrics. Clients mark a request that is safe to repeat despite
its method with `extensions={"erpgw_idempotent": True}`, and may name its path template with
`extensions={"erpgw_path_template": "/v1/things/{id}"}`.

Besides the last response or httpx error, a request may end in
`contracts.errors.UpstreamUnavailable` with `code="circuit_open"` or `code="quota_exhausted"`
(and `retry_after`), raised before the network is touched.

Wiring, once per platform in the app factory (one `OutboundMetrics` per registry for all)::

    policy = default_policy("salesforce")
    quota = build_quota(policy, redis=redis)  # None: in-process budget
    http = build_vendor_http(
        "salesforce", base_url=url, auth=auth, policy=policy, quota=quota,
        recorder=recorder, metrics=metrics,
        observe=usage_hook,  # the vendor package reads its usage header, calls quota.report_usage
    )

Emulated runs pass `transport=httpx.ASGITransport(app=emulator.vendor)`.

Lists hand out `encode_cursor(position, list_name=...)` and read them back with
`decode_cursor` (a cursor of another list is an `InvalidRequest` naming the parameter);
`CursorSeal` turns those into what a caller is handed (encrypted, bound to the caller and the
list); `paginate(fetch, next_token, ...)` walks a vendor's pages with loop detection.

A vendor package turns an error answer into a contracts error through its `ErrorTable` (its
wire reader and its rows before `DEFAULT_ERRORS`): `raise ERRORS.error_for(response, ...)`,
and a transport failure through `raise ERRORS.unavailable(exc, what) from exc`.
"""

from __future__ import annotations

from system_apis.outbound._breaker import BreakerState, CircuitBreaker
from system_apis.outbound._clients import (
    DEFAULT_LIMITS,
    DEFAULT_TRANSPORT,
    TransportKind,
    build_transport,
    build_vendor_http,
)
from system_apis.outbound._cursor import (
    CURSOR_VERSION,
    CursorSeal,
    Offset,
    decode_cursor,
    encode_cursor,
    invalid_cursor,
)
from system_apis.outbound._errors import (
    DEFAULT_ERRORS,
    TRANSPORT_ERROR_CODE,
    ErrorRule,
    ErrorTable,
    Fault,
)
from system_apis.outbound._metrics import OutboundMetrics
from system_apis.outbound._paging import PAGINATION_LOOP, paginate
from system_apis.outbound._policy import (
    BreakerSettings,
    ConcurrencyQuota,
    DailyQuota,
    Platform,
    PlatformPolicy,
    Priority,
    QuotaSettings,
    RateQuota,
    RetrySettings,
    Timeouts,
    default_policy,
)
from system_apis.outbound._quota import (
    LocalConcurrencyBudget,
    LocalDailyBudget,
    LocalRateBudget,
    QuotaBudget,
    QuotaExhaustedError,
    QuotaPermit,
    build_quota,
)
from system_apis.outbound._recording import (
    CallRecorder,
    InMemoryCallRecorder,
    VendorCall,
    path_template,
)
from system_apis.outbound._retry import IDEMPOTENT_EXTENSION, is_idempotent
from system_apis.outbound._retry_after import MAX_RETRY_AFTER, retry_after_of, retry_after_seconds
from system_apis.outbound._transport import (
    CORRELATION_HEADER,
    PATH_TEMPLATE_EXTENSION,
    PolicyTransport,
)

__all__ = [
    "CORRELATION_HEADER",
    "CURSOR_VERSION",
    "DEFAULT_ERRORS",
    "DEFAULT_LIMITS",
    "DEFAULT_TRANSPORT",
    "IDEMPOTENT_EXTENSION",
    "MAX_RETRY_AFTER",
    "PAGINATION_LOOP",
    "PATH_TEMPLATE_EXTENSION",
    "TRANSPORT_ERROR_CODE",
    "BreakerSettings",
    "BreakerState",
    "CallRecorder",
    "CircuitBreaker",
    "ConcurrencyQuota",
    "CursorSeal",
    "DailyQuota",
    "ErrorRule",
    "ErrorTable",
    "Fault",
    "InMemoryCallRecorder",
    "LocalConcurrencyBudget",
    "LocalDailyBudget",
    "LocalRateBudget",
    "Offset",
    "OutboundMetrics",
    "Platform",
    "PlatformPolicy",
    "PolicyTransport",
    "Priority",
    "QuotaBudget",
    "QuotaExhaustedError",
    "QuotaPermit",
    "QuotaSettings",
    "RateQuota",
    "RetrySettings",
    "Timeouts",
    "TransportKind",
    "VendorCall",
    "build_quota",
    "build_transport",
    "build_vendor_http",
    "decode_cursor",
    "default_policy",
    "encode_cursor",
    "invalid_cursor",
    "is_idempotent",
    "paginate",
    "path_template",
    "retry_after_of",
    "retry_after_seconds",
]
