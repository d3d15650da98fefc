"""Prometheus metrics of the gateway itself: requests by route template, status and tier,
latency, rate-limit refusals and authentication failures, served at `GET /metrics`."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["GatewayMetrics", "metrics_route"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """The gateway's collectors, in a registry of their own (one per app)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "erpgw_http_requests_total",
            "HTTP requests answered, by route template, method, status and client tier",
            ("route", "method", "status", "tier"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "erpgw_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ("route", "method"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "erpgw_auth_failures_total",
            "Requests refused for a missing or invalid token, by reason",
            ("reason",),
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "erpgw_dependency_up",
            "1 when readiness last found the dependency working, 0 when unreachable or degraded",
            ("dependency",),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, tier: str, seconds: float) -> None:
        """Count one answered request (label children cached: `labels()` costs ~2 us a call)."""
        key = (route, method, status, tier)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status), tier),
                self.latency.labels(route, method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def auth_failed(self, reason: str) -> None:
        self.auth_failures.labels(reason or "missing_token").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


@get(
    "/metrics",
    opt={"public": True, "rate_limit": False},
    include_in_schema=False,
    sync_to_thread=False,
)
def metrics_route(metrics: GatewayMetrics) -> Response[bytes]:
    return Response(content=metrics.render(), media_type=CONTENT_TYPE_LATEST)
