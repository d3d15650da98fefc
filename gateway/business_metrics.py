"""Business series of the gateway: flows started and finished by type and outcome, step latency
by platform, money booked, invoiced, credited and collected by legal entity and currency,
webhook lag, and the exception backlog by owner team and age.

Counters and histograms are counted where things happen (`BusinessMetrics` is the process
layer's `FlowObserver`); with several worker processes they live in prometheus-client's
multiprocess files (`PROMETHEUS_MULTIPROC_DIR`, see `gateway.metrics`), so any worker's
scrape answers the sum of all. The exception backlog is read from the database when scraped
(`ExceptionBacklog`): one truth whichever process answers, never a per-process gauge drifting.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Final, get_args

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from process_apis.engine.observer import MoneyMoved
from process_apis.engine.store import as_utc, exceptions, utcnow
from process_apis.exceptions import OwnerTeam

__all__ = ["AGE_BUCKETS", "BusinessMetrics", "ExceptionBacklog"]

STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
AGE_BUCKETS: Final[tuple[tuple[str, timedelta | None], ...]] = (
    ("lt_15m", timedelta(minutes=15)),
    ("15m_1h", timedelta(hours=1)),
    ("1h_4h", timedelta(hours=4)),
    ("4h_24h", timedelta(hours=24)),
    ("gt_24h", None),
)
"""Age buckets of open exceptions: (label, upper bound), the last unbounded."""
OPEN_STATUSES: Final = ("open", "retrying")


class BusinessMetrics:
    """The process layer's observer, counting into `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.flows = Counter(
            "erpgw_flows_total",
            "Flows by type and outcome: `started` when recorded, then `succeeded`, `failed` "
            "or `cancelled` when they end",
            ("type", "outcome"),
            registry=registry,
        )
        self.step_latency = Histogram(
            "erpgw_step_duration_seconds",
            "Time of one attempt of a flow step, by the platform it calls and its outcome",
            ("system", "outcome"),
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        self.money = Counter(
            "erpgw_money_minor_total",
            "Money booked (sales orders), invoiced, credited and collected, in integer minor "
            "units of the currency, by legal entity",
            ("kind", "legal_entity", "currency"),
            registry=registry,
        )
        self.webhook_processing = Histogram(
            "erpgw_webhook_processing_seconds",
            "From a webhook's receipt to its flows being durably enqueued, by source",
            ("source",),
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.webhook_age = Histogram(
            "erpgw_webhook_event_age_seconds",
            "Age of a vendor event (from the vendor's event time) when it was processed",
            ("source",),
            buckets=LAG_BUCKETS,
            registry=registry,
        )

    def flow_started(self, flow_type: str) -> None:
        self.flows.labels(flow_type, "started").inc()

    def flow_finished(self, flow_type: str, outcome: str) -> None:
        self.flows.labels(flow_type, outcome).inc()

    def step_attempted(self, system: str, outcome: str, seconds: float) -> None:
        self.step_latency.labels(system, outcome).observe(seconds)

    def money_moved(self, money: MoneyMoved) -> None:
        if money.amount > 0:
            # Counters only go up: a negative amount is not money moved in this direction.
            self.money.labels(money.kind, money.legal_entity, money.currency).inc(money.amount)

    def webhook_processed(
        self, source: str, *, processing_seconds: float, event_age_seconds: float | None
    ) -> None:
        self.webhook_processing.labels(source).observe(processing_seconds)
        if event_age_seconds is not None:
            self.webhook_age.labels(source).observe(event_age_seconds)


class ExceptionBacklog(Collector):
    """`erpgw_exceptions_open{owner,age_bucket}`: open (or retrying) exceptions, counted in the
    database by `refresh` just before each scrape; every owner and bucket is answered, zero
    when empty, so an alert sees the series go back to zero."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._counts: dict[tuple[str, str], int] = {}

    async def refresh(self, now: datetime | None = None) -> None:
        statement = sa.select(exceptions.c.owner, exceptions.c.created_at).where(
            exceptions.c.status.in_(OPEN_STATUSES)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        moment = now or utcnow()
        counts = {(owner, label): 0 for owner in get_args(OwnerTeam) for label, _ in AGE_BUCKETS}
        for row in rows:
            created = as_utc(row.created_at) or moment
            key = (row.owner, _bucket(moment - created))
            counts[key] = counts.get(key, 0) + 1
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "erpgw_exceptions_open",
            "Open exceptions by owner team and age (since opened), read from the database",
            labels=("owner", "age_bucket"),
        )
        for (owner, bucket), count in sorted(self._counts.items()):
            family.add_metric((owner, bucket), count)
        yield family


def _bucket(age: timedelta) -> str:
    for label, bound in AGE_BUCKETS:
        if bound is None or age < bound:
            return label
    return AGE_BUCKETS[-1][0]
