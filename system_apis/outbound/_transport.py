"""`PolicyTransport`: the httpx transport every vendor client's requests pass through.

For each request it fixes a total deadline (interactive or batch), then runs attempts: ask
the platform's breaker, take quota, stamp `traceparent` and `X-Correlation-ID`, send through
the real transport with the attempt's time limit, read the body, report the outcome to the
breaker, the recorder, the metrics and the `observe` hook; then retry when the request is
idempotent and the failure transient, honouring `Retry-After` within the deadline. The last
response is returned (the vendor client classifies it) or the last httpx error re-raised.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from contracts.context import CallContext, current_context
from contracts.errors import UpstreamUnavailable
from system_apis.outbound._breaker import CircuitBreaker, CircuitOpenError, Probe
from system_apis.outbound._correlation import child_traceparent, new_correlation_id
from system_apis.outbound._metrics import OutboundMetrics, status_class
from system_apis.outbound._policy import PlatformPolicy
from system_apis.outbound._quota import QuotaBudget, QuotaExhaustedError, QuotaPermit
from system_apis.outbound._recording import CallRecorder, VendorCall, path_template
from system_apis.outbound._retry import (
    backoff_delay,
    is_idempotent,
    is_retryable_error,
)
from system_apis.outbound._retry_after import retry_after_of

__all__ = ["CORRELATION_HEADER", "PATH_TEMPLATE_EXTENSION", "PolicyTransport"]

CORRELATION_HEADER = "X-Correlation-ID"
PATH_TEMPLATE_EXTENSION = "erpgw_path_template"

_log = logging.getLogger(__name__)
# An attempt given less time than this cannot succeed; give up instead of starting it.
_MIN_ATTEMPT_SECONDS = 0.05
_TIMEOUT_KEYS = ("connect", "read", "write", "pool")


@dataclass(kw_only=True)
class _Request:
    """What stays the same across the attempts of one request."""

    request: httpx.Request
    context: CallContext
    priority: str
    correlation_id: str
    template: str
    deadline: float
    idempotent: bool


@dataclass(kw_only=True)
class _Outcome:
    """One attempt's result: a response or a transport error."""

    response: httpx.Response | None = None
    error: httpx.TransportError | None = None
    timed_out_by_deadline: bool = False

    @property
    def status(self) -> int | None:
        return None if self.response is None else self.response.status_code


class PolicyTransport(httpx.AsyncBaseTransport):
    """Wraps `inner` with the outbound policy of one platform."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        policy: PlatformPolicy,
        breaker: CircuitBreaker,
        quota: QuotaBudget | None = None,
        recorder: CallRecorder | None = None,
        metrics: OutboundMetrics | None = None,
        observe: Callable[[httpx.Response], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.policy = policy
        self.breaker = breaker
        self.quota = quota
        self.recorder = recorder
        self.metrics = metrics
        self.observe = observe
        self._rng = rng or random.Random()
        if metrics is not None:
            metrics.watch_breaker(breaker)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Read the body once so every attempt can send it again.
        await request.aread()
        call = self._prepare(request)
        attempt = 1
        while True:
            outcome = await self._attempt(call, attempt)
            delay = self._retry_delay(call, outcome, attempt)
            if delay is None:
                return self._final(outcome)
            if self.metrics is not None:
                reason = status_class(outcome.status) if outcome.error is None else "error"
                self.metrics.retries.labels(self.policy.name, reason).inc()
            await asyncio.sleep(delay)
            attempt += 1

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _prepare(self, request: httpx.Request) -> _Request:
        context = current_context()
        priority = "batch" if context.priority == "batch" else "interactive"
        correlation_id = request.headers.get(CORRELATION_HEADER) or (
            context.correlation_id or new_correlation_id()
        )
        request.headers[CORRELATION_HEADER] = correlation_id
        template = request.extensions.get(PATH_TEMPLATE_EXTENSION) or path_template(
            request.url.path
        )
        deadline = time.monotonic() + self.policy.timeouts.deadline_for(priority)
        return _Request(
            request=request,
            context=context,
            priority=priority,
            correlation_id=correlation_id,
            template=str(template),
            deadline=deadline,
            idempotent=is_idempotent(request),
        )

    async def _attempt(self, call: _Request, attempt: int) -> _Outcome:
        probe = self._admit()
        try:
            permit = await self._take_quota(call)
        except BaseException:
            self.breaker.cancel(probe)
            raise
        try:
            return await self._send_and_report(call, attempt, probe)
        finally:
            if permit is not None and self.quota is not None:
                await self.quota.release(permit)

    def _admit(self) -> Probe:
        try:
            return self.breaker.acquire()
        except CircuitOpenError as exc:
            if self.metrics is not None:
                self.metrics.breaker_refusals.labels(self.policy.name).inc()
            raise UpstreamUnavailable(
                str(exc), vendor=self.policy.name, retry_after=exc.retry_after, code="circuit_open"
            ) from exc

    async def _take_quota(self, call: _Request) -> QuotaPermit | None:
        if self.quota is None:
            return None
        remaining = max(0.0, call.deadline - time.monotonic())
        try:
            permit = await self.quota.acquire(priority=call.priority, max_wait=remaining)
        except QuotaExhaustedError as exc:
            if self.metrics is not None:
                self.metrics.quota_refusals.labels(self.policy.name, call.priority).inc()
            raise UpstreamUnavailable(
                str(exc),
                vendor=self.policy.name,
                retry_after=exc.retry_after,
                code="quota_exhausted",
            ) from exc
        if permit.waited and self.metrics is not None:
            self.metrics.quota_waits.labels(self.policy.name, call.priority).inc()
        return permit

    async def _send_and_report(self, call: _Request, attempt: int, probe: Probe) -> _Outcome:
        request = call.request
        request.headers["traceparent"] = child_traceparent(call.context.traceparent)
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        try:
            outcome = await self._send(call)
        except BaseException:
            # Cancelled by the caller (or a bug): no verdict on the vendor's health.
            self.breaker.cancel(probe)
            raise
        latency = time.perf_counter() - started
        self.breaker.record(probe, failed=self._is_failure(outcome))
        self._observe(outcome)
        self._count(call, outcome, latency)
        await self._record(call, outcome, attempt, latency, started_at)
        return outcome

    async def _send(self, call: _Request) -> _Outcome:
        remaining = call.deadline - time.monotonic()
        limit = min(self.policy.timeouts.attempt, remaining)
        request = call.request
        self._clamp_timeouts(request, limit)
        try:
            async with asyncio.timeout(limit):
                response = await self.inner.handle_async_request(request)
                body = await _read_raw(response)
        except TimeoutError:
            by_deadline = limit >= remaining
            what = "request deadline" if by_deadline else "attempt time limit"
            error = httpx.ReadTimeout(
                f"timeout: no answer from {self.policy.name} within the {what} of {limit:.2f} s",
                request=request,
            )
            return _Outcome(error=error, timed_out_by_deadline=by_deadline)
        except httpx.TransportError as exc:
            return _Outcome(error=exc)
        # The body is read, so the deadline covered it and the connection is free; the client
        # reads the same bytes (still content-encoded, it decodes them) from memory.
        response.stream = httpx.ByteStream(body)
        response.request = request
        return _Outcome(response=response)

    @staticmethod
    def _clamp_timeouts(request: httpx.Request, limit: float) -> None:
        timeouts = dict(request.extensions.get("timeout") or {})
        for key in _TIMEOUT_KEYS:
            value = timeouts.get(key)
            timeouts[key] = limit if value is None else min(float(value), limit)
        request.extensions["timeout"] = timeouts

    def _is_failure(self, outcome: _Outcome) -> bool:
        if outcome.error is not None:
            return is_retryable_error(outcome.error)
        status = outcome.status or 0
        return status >= 500 or status == 429

    def _retry_delay(self, call: _Request, outcome: _Outcome, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to stop here."""
        if not call.idempotent or attempt >= self.policy.retry.max_attempts:
            return None
        if outcome.error is not None:
            if outcome.timed_out_by_deadline or not is_retryable_error(outcome.error):
                return None
            retry_after = None
        elif outcome.status in self.policy.retry.retry_statuses:
            assert outcome.response is not None
            retry_after = retry_after_of(outcome.response)
        else:
            return None
        room = call.deadline - time.monotonic() - _MIN_ATTEMPT_SECONDS
        if retry_after is not None:
            # Waiting past the deadline helps nobody: hand the vendor's Retry-After back now.
            return retry_after if retry_after <= room else None
        if room <= 0:
            return None
        return min(backoff_delay(self.policy.retry, attempt, self._rng), room)

    @staticmethod
    def _final(outcome: _Outcome) -> httpx.Response:
        if outcome.error is not None:
            raise outcome.error
        assert outcome.response is not None
        return outcome.response

    def _observe(self, outcome: _Outcome) -> None:
        if self.observe is None or outcome.response is None:
            return
        try:
            self.observe(outcome.response)
        except Exception:
            # A broken usage report must not fail the vendor call it describes.
            _log.exception("observe hook failed for %s", self.policy.name)

    def _count(self, call: _Request, outcome: _Outcome, latency: float) -> None:
        if self.metrics is None:
            return
        self.metrics.attempt_done(
            self.policy.name,
            call.request.method,
            call.template,
            outcome.status,
            _outcome_label(outcome),
            latency,
        )

    async def _record(
        self,
        call: _Request,
        outcome: _Outcome,
        attempt: int,
        latency: float,
        started_at: datetime,
    ) -> None:
        if self.recorder is None:
            return
        record = VendorCall(
            system=self.policy.name,
            method=call.request.method,
            path_template=call.template,
            status=outcome.status,
            latency_ms=round(latency * 1000, 3),
            attempt=attempt,
            correlation_id=call.correlation_id,
            flow_id=call.context.flow_id,
            step=call.context.step,
            error=None if outcome.error is None else _short_error(outcome.error),
            started_at=started_at,
        )
        try:
            await self.recorder.record(record)
        except Exception:
            # Losing a record is better than failing the call it records.
            _log.exception("recording a %s call failed", self.policy.name)


async def _read_raw(response: httpx.Response) -> bytes:
    """The body as sent (still content-encoded: the client decodes it), connection released."""
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise TypeError("an async transport answered with a sync stream")
    try:
        return b"".join([chunk async for chunk in stream])
    finally:
        await stream.aclose()


def _outcome_label(outcome: _Outcome) -> str:
    if outcome.error is not None:
        return "timeout" if isinstance(outcome.error, httpx.TimeoutException) else "error"
    status = outcome.status or 0
    if status == 429:
        return "throttled"
    if status >= 500:
        return "failed"
    if status >= 400:
        return "rejected"
    return "ok"


def _short_error(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."
