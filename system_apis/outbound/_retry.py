"""Which vendor requests may be sent twice, which failures deserve another attempt, and when.

Only a request the vendor handles the same way twice is ever retried: a safe or idempotent
method, or one carrying an `Idempotency-Key` header or the `erpgw_idempotent` extension (an
upsert by external id, a read sent as POST). A plain POST or PATCH is never retried, not even
after a connection error: some transports report a connection dropped after the request was
sent as a connect error, and a duplicated create costs more than a failed call.
"""

from __future__ import annotations

import random

import httpx

from system_apis.outbound._policy import RetrySettings

__all__ = [
    "IDEMPOTENT_EXTENSION",
    "IDEMPOTENT_METHODS",
    "backoff_delay",
    "is_idempotent",
    "is_retryable_error",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
IDEMPOTENT_EXTENSION = "erpgw_idempotent"

# Transport failures that say nothing about the request itself; a broken URL or proxy
# configuration (UnsupportedProtocol, ProxyError, LocalProtocolError) fails again at once.
_RETRYABLE_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


def is_idempotent(request: httpx.Request) -> bool:
    """Whether sending `request` twice has the same effect as sending it once."""
    return (
        request.method.upper() in IDEMPOTENT_METHODS
        or "idempotency-key" in request.headers
        or bool(request.extensions.get(IDEMPOTENT_EXTENSION))
    )


def is_retryable_error(exc: Exception) -> bool:
    """Whether a transport failure may go away on another attempt."""
    return isinstance(exc, _RETRYABLE_ERRORS)


def backoff_delay(settings: RetrySettings, attempt: int, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): full jitter."""
    ceiling = min(settings.backoff_cap, settings.backoff_base * 2 ** (attempt - 1))
    return rng.uniform(0.0, ceiling)
