"""Signed webhook delivery: every event POSTed to each endpoint that wants it, in the background.

Deliveries run as asyncio tasks so an API answer never waits for a receiver; a non-2xx answer or
a connection error is retried after each of `retry_delays` (Stripe retries for days with
exponential backoff; the sandbox keeps it to a few short attempts). Each attempt is signed
afresh, as Stripe does, with the endpoint's secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

import httpx
import msgspec

from sandbox.credentials import STRIPE
from sandbox.stripe.store import Obj, Store

__all__ = ["DeliveryAttempt", "WebhookDispatcher", "sign_webhook"]

_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


class DeliveryAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """One POST of one event to one endpoint, as the sandbox recorded it."""

    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    attempt: int
    status: int | None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookDispatcher:
    """Listens to the store's events and delivers them to the matching endpoints."""

    def __init__(
        self,
        store: Store,
        *,
        http: httpx.AsyncClient | None,
        retry_delays: Sequence[float],
        timeout: float,
    ) -> None:
        self._store = store
        self._http = http
        self._retry_delays = tuple(retry_delays)
        self._timeout = timeout
        self._lazy: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.attempts: list[DeliveryAttempt] = []

    def __call__(self, event: Obj) -> None:
        endpoints = [ep for ep in self._store.oldest_first("webhook_endpoint") if _wants(ep, event)]
        event["pending_webhooks"] = len(endpoints)
        if not endpoints:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (a synchronous caller): nothing can deliver
        body = json.dumps(event, separators=(",", ":")).encode()
        for endpoint in endpoints:
            task = loop.create_task(self._deliver(event, endpoint["id"], endpoint["url"], body))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def drain(self, *, max_wait: float = 30.0) -> None:
        """Wait until every delivery started so far has finished (succeeded or given up)."""
        deadline = time.monotonic() + max_wait
        while any(not task.done() for task in list(self._pending)):
            if time.monotonic() > deadline:
                raise TimeoutError("webhook deliveries still pending")
            await asyncio.sleep(0.01)

    def cancel_all(self) -> None:
        for task in list(self._pending):
            task.get_loop().call_soon_threadsafe(task.cancel)
        self._pending.clear()

    async def aclose(self) -> None:
        self.cancel_all()
        if self._lazy is not None and self._lazy[0] is asyncio.get_running_loop():
            await self._lazy[1].aclose()
        self._lazy = None

    async def _deliver(self, event: Obj, endpoint_id: str, url: str, body: bytes) -> None:
        for attempt, delay in enumerate((0.0, *self._retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            status, error = await self._post(url, body)
            self.attempts.append(
                DeliveryAttempt(
                    event_id=event["id"],
                    event_type=event["type"],
                    endpoint_id=endpoint_id,
                    url=url,
                    attempt=attempt,
                    status=status,
                    error=error,
                )
            )
            if status is not None and 200 <= status < 300:
                event["pending_webhooks"] = max(0, int(event["pending_webhooks"]) - 1)
                return

    async def _post(self, url: str, body: bytes) -> tuple[int | None, str | None]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": _USER_AGENT,
            "Stripe-Signature": sign_webhook(body, STRIPE.webhook_secret, int(time.time())),
        }
        try:
            response = await self._client().post(
                url, content=body, headers=headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, None

    def _client(self) -> httpx.AsyncClient:
        if self._http is not None:
            return self._http
        loop = asyncio.get_running_loop()
        if self._lazy is None or self._lazy[0] is not loop:
            self._lazy = (loop, httpx.AsyncClient())
        return self._lazy[1]


def _wants(endpoint: Obj, event: Obj) -> bool:
    enabled: list[Any] = endpoint["enabled_events"]
    return endpoint["status"] == "enabled" and ("*" in enabled or event["type"] in enabled)


def sign_webhook(payload: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header Stripe sends: `t=<unix>,v1=<hex>`, the v1 being the
    HMAC-SHA256 of `"{t}.{raw_body}"` keyed by the endpoint's secret
    (https://docs.stripe.com/webhooks#verify-manually)."""
    signed = str(timestamp).encode() + b"." + payload
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"
