"""Prometheus metrics of the gateway itself: requests by route template, status and tier,
latency, rate-limit refusals and authentication failures, and the business series
(`gateway.business_metrics`), served at `GET /metrics`.

Several worker processes (`erp-gateway serve --workers N`) share their counters through
prometheus-client's multiprocess mode: with `PROMETHEUS_MULTIPROC_DIR` set, every process
writes its values to files there and a scrape of any worker answers them all, summed. Series
read from the database (open exceptions, the latest reconciliation's mismatches) are refreshed
just before each scrape instead, so no worker answers a stale copy of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from litestar import Response, get
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from gateway.settings import shared_metrics_dir

__all__ = [
    "GatewayMetrics",
    "enable_multiprocess",
    "metrics_route",
    "prepare_multiprocess_dir",
]

"""prometheus-client's own variable (not a gateway setting): where worker processes keep
their series."""

log = structlog.get_logger("gateway.metrics")

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
        self._scrape_collectors: list[Collector] = []
        self._before_scrape: list[Callable[[], Awaitable[None]]] = []

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

    def add_scrape_collector(
        self, collector: Collector, refresh: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Answer `collector`'s series on every scrape, after `refresh` (a database read)."""
        self.registry.register(collector)
        self._scrape_collectors.append(collector)
        if refresh is not None:
            self._before_scrape.append(refresh)

    def before_scrape(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Run `refresh` before each scrape (e.g. set gauges from the database)."""
        self._before_scrape.append(refresh)

    async def refresh(self) -> None:
        """Bring the series read from the database up to date; one that cannot be read keeps
        its last values (the scrape still answers, `erpgw_dependency_up` tells why)."""
        for refresh in self._before_scrape:
            try:
                await refresh()
            except Exception as exc:
                log.warning("metrics_refresh_failed", refresh=_name(refresh), error=str(exc))

    def render(self) -> bytes:
        directory = shared_metrics_dir()
        if directory is None:
            return generate_latest(self.registry)
        # Every process's files, summed, plus the series read from the database here.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
        for collector in self._scrape_collectors:
            registry.register(collector)
        return generate_latest(registry)


def enable_multiprocess() -> bool:
    """In a worker process: keep series in `PROMETHEUS_MULTIPROC_DIR` when it is set (True),
    whatever this process imported before the variable was set."""
    if shared_metrics_dir() is None:
        return False
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return True


def prepare_multiprocess_dir(directory: Path) -> None:
    """An empty directory for the workers' series: files left by an earlier run would be
    added to this run's counters."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def _name(refresh: Callable[..., Any]) -> str:
    return getattr(refresh, "__qualname__", type(refresh).__name__)


@get(
    "/metrics",
    opt={"public": True, "rate_limit": False},
    include_in_schema=False,
)
async def metrics_route(metrics: GatewayMetrics) -> Response[bytes]:
    await metrics.refresh()
    return Response(content=metrics.render(), media_type=CONTENT_TYPE_LATEST)
