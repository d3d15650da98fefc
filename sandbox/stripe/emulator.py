"""The Stripe Billing sandbox: Stripe's HTTP API (version 2023-08-16) in memory.

It speaks Stripe's wire format: form-encoded bracket-notation bodies, `Bearer sk_...` (or
Basic) auth, `{"object": "list", ...}` pages with `starting_after` / `ending_before`, search
with `next_page`, Stripe's error object, `Request-Id` headers, `Idempotency-Key` replay, a per
second rate limit, events with signed webhook deliveries, and test clocks that renew
subscriptions. It starts with the demo catalog and no customers.

Serve `StripeEmulator().vendor` (the app behind the control and fault-injection API), alone or
mounted under a prefix such as `/_sandbox/stripe`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from litestar import Litestar

from sandbox.control import EmulatedVendor, FaultResponse
from sandbox.credentials import STRIPE
from sandbox.stripe.app import build_app
from sandbox.stripe.errors import StripeApiError, error_body, rate_limited
from sandbox.stripe.front import StripeFront
from sandbox.stripe.ids import IdMinter
from sandbox.stripe.seed import price_id_for, product_id_for, seed_catalog
from sandbox.stripe.store import API_VERSION, Store
from sandbox.stripe.webhooks import DeliveryAttempt, WebhookDispatcher

__all__ = [
    "API_VERSION",
    "DEFAULT_RATE_LIMIT",
    "DeliveryAttempt",
    "StripeEmulator",
    "create_emulator",
    "price_id_for",
    "product_id_for",
]

DEFAULT_RATE_LIMIT = 25
"""Stripe's test-mode limit: about 25 requests per second for most endpoints."""
DEFAULT_WEBHOOK_RETRY_DELAYS = (0.5, 2.0, 5.0)
_FAULT_MESSAGES = {
    400: ("invalid_request_error", "Invalid request (injected fault)."),
    401: ("invalid_request_error", "Invalid API Key provided (injected fault)."),
    402: ("card_error", "Your card was declined (injected fault)."),
    403: ("invalid_request_error", "The provided key does not have access (injected fault)."),
    404: ("invalid_request_error", "No such object (injected fault)."),
    409: ("invalid_request_error", "Lock timeout on a concurrent request (injected fault)."),
}


class StripeEmulator:
    """Stripe in memory: `app` is the Litestar endpoint app, `vendor` what gets served."""

    def __init__(
        self,
        *,
        seed: bool = True,
        rate_limit_per_second: int | None = DEFAULT_RATE_LIMIT,
        webhook_http: httpx.AsyncClient | None = None,
        webhook_retry_delays: Sequence[float] = DEFAULT_WEBHOOK_RETRY_DELAYS,
        webhook_timeout: float = 5.0,
        secret_key: str = STRIPE.secret_key,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._seed = seed
        self._request_ids = IdMinter()
        self.store = Store(clock=clock)
        self.webhooks = WebhookDispatcher(
            self.store,
            http=webhook_http,
            retry_delays=webhook_retry_delays,
            timeout=webhook_timeout,
        )
        self.store.listeners.append(self.webhooks)
        self.app: Litestar = build_app(self.store)
        self._front = StripeFront(
            self.app,
            secret_key=secret_key,
            rate_limit_per_second=rate_limit_per_second,
            request_ids=self._next_request_id,
        )
        self.vendor = EmulatedVendor(
            self._front, render_fault=self.render_fault, reset=self._restore
        )
        self._restore()

    def reset(self) -> None:
        """Back to the seeded state, with no faults and no pending webhook deliveries."""
        self.vendor.reset()

    @property
    def webhook_attempts(self) -> list[DeliveryAttempt]:
        """Every webhook POST made since the last reset, in order."""
        return self.webhooks.attempts

    async def drain_webhooks(self, *, max_wait: float = 30.0) -> None:
        """Wait for every webhook delivery started so far to succeed or give up."""
        await self.webhooks.drain(max_wait=max_wait)

    async def aclose(self) -> None:
        """Stop deliveries and close the webhook HTTP client the emulator made itself."""
        await self.webhooks.aclose()

    def render_fault(self, status: int, retry_after: int | None) -> FaultResponse:
        """Stripe's own answer for an injected fault of `status`."""
        request_id = self._next_request_id()
        headers: list[tuple[str, str]] = [
            ("Request-Id", request_id),
            ("Stripe-Version", API_VERSION),
        ]
        if status == 429:
            error = rate_limited(retry_after if retry_after is not None else 1)
        elif status >= 500:
            error = StripeApiError(
                status,
                "An error occurred with our connection to Stripe (injected fault).",
                type_="api_error",
                headers={"Stripe-Should-Retry": "true"},
            )
            if retry_after is not None:
                error.headers["Retry-After"] = str(retry_after)
        else:
            kind, message = _FAULT_MESSAGES.get(
                status, ("invalid_request_error", "Invalid request (injected fault).")
            )
            error = StripeApiError(status, message, type_=kind)
        headers.extend(error.headers.items())
        body = json.dumps(error_body(error, request_id)).encode()
        return FaultResponse(status=status, body=body, headers=tuple(headers))

    def _restore(self) -> None:
        self.webhooks.cancel_all()
        self.webhooks.attempts.clear()
        self.store.clear()
        self._request_ids.reset()
        self._front.reset()
        if self._seed:
            seed_catalog(self.store)

    def _next_request_id(self) -> str:
        return self._request_ids.mint("req")


def create_emulator(**kwargs: Any) -> StripeEmulator:
    """A Stripe sandbox; keyword arguments go to `StripeEmulator`."""
    return StripeEmulator(**kwargs)
