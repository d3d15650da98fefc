"""Prometheus metrics of vendor calls: attempts, latency, retries, breaker state, quota waits.

Labels stay bounded: the path is the templated one, the status is a class (2xx..5xx, or
`none` when no answer came).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from system_apis.outbound._breaker import CircuitBreaker

__all__ = ["OutboundMetrics", "status_class"]

# Vendor calls range from a few ms (emulators) to tens of seconds (batch queries).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def status_class(status: int | None) -> str:
    """`2xx`..`5xx` for a status, `none` when no answer came."""
    return "none" if status is None else f"{status // 100}xx"


class OutboundMetrics:
    """The outbound metrics, registered once in `registry` (default: the process registry)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = REGISTRY if registry is None else registry
        self.calls = Counter(
            "erpgw_outbound_calls",
            "Vendor call attempts by platform, method, path template, status class and outcome.",
            ["platform", "method", "path_template", "status_class", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "erpgw_outbound_latency_seconds",
            "Latency of one vendor call attempt.",
            ["platform", "method", "path_template"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "erpgw_outbound_retries",
            "Vendor call attempts repeated after a retryable failure.",
            ["platform", "reason"],
            registry=registry,
        )
        self.breaker_state = Gauge(
            "erpgw_outbound_breaker_state",
            "Circuit breaker state per platform: 0 closed, 1 half-open, 2 open.",
            ["platform"],
            registry=registry,
        )
        self.breaker_refusals = Counter(
            "erpgw_outbound_breaker_refusals",
            "Vendor requests refused without a call because the breaker was open.",
            ["platform"],
            registry=registry,
        )
        self.quota_waits = Counter(
            "erpgw_outbound_quota_waits",
            "Vendor attempts that waited for quota before being sent.",
            ["platform", "priority"],
            registry=registry,
        )
        self.quota_refusals = Counter(
            "erpgw_outbound_quota_refusals",
            "Vendor requests refused because the quota stayed exhausted until the deadline.",
            ["platform", "priority"],
            registry=registry,
        )

        # Label children by label values: `labels()` takes a lock and builds a key each call.
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}

    def attempt_done(
        self,
        platform: str,
        method: str,
        path_template: str,
        status: int | None,
        outcome: str,
        seconds: float,
    ) -> None:
        """Count one attempt and its latency."""
        key = (platform, method, path_template, status_class(status), outcome)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.calls.labels(*key),
                self.latency.labels(platform, method, path_template),
            )
        children[0].inc()
        children[1].observe(seconds)

    def watch_breaker(self, breaker: CircuitBreaker) -> None:
        """Report `breaker`'s state whenever the metrics are scraped."""
        self.breaker_state.labels(breaker.platform).set_function(lambda: float(breaker.state.value))
