"""A circuit breaker per platform that opens only on a sustained failure rate.

Closed: every attempt goes through and its outcome joins a rolling window. Once the window
holds at least `min_calls` attempts of which `failure_ratio` or more failed, the breaker opens
and refuses attempts for `open_seconds`. Then it is half-open: a few probes go through; the
first success closes it, a failure opens it again. Scattered faults never reach the ratio at
low volume, so they are retried rather than refused.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import Enum

from system_apis.outbound._policy import BreakerSettings

__all__ = ["BreakerState", "CircuitBreaker", "CircuitOpenError", "Probe"]


class BreakerState(Enum):
    """The breaker's state; the value is what the metrics gauge shows."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitOpenError(Exception):
    """The breaker refused an attempt; `retry_after` is the seconds until it lets probes in."""

    def __init__(self, platform: str, retry_after: float) -> None:
        super().__init__(f"circuit for {platform} is open; retry in {retry_after:.1f} s")
        self.platform = platform
        self.retry_after = retry_after


class Probe:
    """A permission to make one attempt, handed back through `record` or `cancel`."""

    __slots__ = ("done", "half_open")

    def __init__(self, *, half_open: bool) -> None:
        self.half_open = half_open
        self.done = False


class CircuitBreaker:
    """The breaker of one platform, shared by every client of that platform in this process.

    Not shared across replicas on purpose: each replica judges the vendor from the calls it
    makes, so one replica with a broken network path does not stop the others.
    """

    def __init__(
        self,
        platform: str,
        settings: BreakerSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.platform = platform
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._events: deque[tuple[float, bool]] = deque()
        self._failures = 0
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probes_in_flight = 0

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past `open_seconds` reads as half-open)."""
        if self._state is BreakerState.OPEN and self._open_remaining() <= 0:
            return BreakerState.HALF_OPEN
        return self._state

    def acquire(self) -> Probe:
        """Permission for one attempt, or `CircuitOpenError` without touching the network."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Probe(half_open=False)
        if state is BreakerState.HALF_OPEN:
            self._state = BreakerState.HALF_OPEN
            if self._probes_in_flight < self.settings.half_open_probes:
                self._probes_in_flight += 1
                return Probe(half_open=True)
            # Probes are in flight: their outcome decides soon, so advise a short wait.
            raise CircuitOpenError(self.platform, retry_after=1.0)
        raise CircuitOpenError(self.platform, retry_after=self._open_remaining())

    def record(self, probe: Probe, *, failed: bool) -> None:
        """The outcome of the attempt `probe` allowed."""
        if probe.done:
            return
        probe.done = True
        if probe.half_open:
            self._probes_in_flight -= 1
            if self._state is BreakerState.HALF_OPEN:
                if failed:
                    self._open()
                else:
                    self._close()
                return
        now = self._clock()
        self._events.append((now, failed))
        self._failures += failed
        self._trim(now)
        if self._state is BreakerState.CLOSED and self._tripped():
            self._open()

    def cancel(self, probe: Probe) -> None:
        """Give back a permission whose attempt never ran to an outcome (caller cancelled)."""
        if probe.done:
            return
        probe.done = True
        if probe.half_open:
            self._probes_in_flight -= 1

    def _tripped(self) -> bool:
        calls = len(self._events)
        return (
            calls >= self.settings.min_calls
            and self._failures / calls >= self.settings.failure_ratio
        )

    def _trim(self, now: float) -> None:
        horizon = now - self.settings.window
        while self._events and self._events[0][0] < horizon:
            _, failed = self._events.popleft()
            self._failures -= failed

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()

    def _close(self) -> None:
        self._state = BreakerState.CLOSED
        # A fresh window: the failures that opened the breaker must not reopen it at once.
        self._events.clear()
        self._failures = 0

    def _open_remaining(self) -> float:
        return max(0.0, self._opened_at + self.settings.open_seconds - self._clock())
