"""Business series on `/metrics`, read as Prometheus reads them (prometheus_client's parser)
after real flows against the emulators: flows by type and outcome, money booked by exactly
the deal's amount, step latency, webhook lag, the exception backlog from the database, and
the sum over several worker processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from process_apis.engine.store import exceptions, utcnow
from process_apis.reconciliation.store import mismatches, runs
from sandbox.stripe.webhooks import sign_webhook
from tests.process_apis.q2c_harness import harness
from tests.process_apis.sandbox import seeded_id
from tests.support.apps import app_client, gateway_app, settings_for
from tests.support.waiting import eventually

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: object) -> Samples:
    response = await client.get("/metrics")  # type: ignore[attr-defined]
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def test_a_booked_deal_counts_one_succeeded_flow_and_its_amount_booked(
    tmp_path: Path,
) -> None:
    opportunity = seeded_id("Opportunity", "acme-platform")
    async with harness(tmp_path) as q2c:
        before = await scrape(q2c.client)
        response = await q2c.book(opportunity)
        assert response.status_code == 202, response.text
        flow = await q2c.wait(f"q2c:{opportunity}", "succeeded", "failed")
        # A duplicate request is the same flow: nothing more is counted.
        assert (await q2c.book(opportunity)).status_code == 202
        after = await scrape(q2c.client)
        deal = await q2c.port("salesforce").get_deal(opportunity)
        number = next(s for s in flow["steps"] if s["name"] == "book_sales_order")["external_ids"][
            "netsuite_tran_id"
        ]
        [order] = await q2c.sales_orders(number)

    assert flow["status"] == "succeeded"

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("erpgw_flows_total", type="quote_to_cash", outcome="started") == 1
    assert delta("erpgw_flows_total", type="quote_to_cash", outcome="succeeded") == 1
    assert delta("erpgw_flows_total", type="quote_to_cash", outcome="failed") == 0
    # Money booked: exactly the deal's amount, in its legal entity and currency, as booked.
    booked = delta("erpgw_money_minor_total", kind="booked", legal_entity="US01", currency="USD")
    assert deal.amount == 350_000
    assert booked == deal.amount == order["total"]
    assert order["legal_entity"] == "US01" and order["currency"] == "USD"
    assert delta("erpgw_money_minor_total", kind="booked", legal_entity="DE01", currency="EUR") == 0
    # Every step's attempt timed under the platform it called.
    steps = {step["system"] for step in flow["steps"]}
    assert steps == {"stripe", "netsuite", "zendesk", "salesforce"}
    for system in steps:
        assert delta("erpgw_step_duration_seconds_count", system=system, outcome="succeeded") >= 1
    booked_steps = [s for s in flow["steps"] if s["system"] == "netsuite"]
    assert delta(
        "erpgw_step_duration_seconds_count", system="netsuite", outcome="succeeded"
    ) == sum(step["attempts"] for step in booked_steps)


async def test_open_exceptions_are_counted_by_owner_and_age_from_the_database(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    async with app_client(gateway_app(settings)) as client:
        engine = client.app.state.gateway.engine
        now = utcnow()
        await _exception(engine, "old", owner="finance", age=timedelta(hours=2), now=now)
        await _exception(engine, "new", owner="finance", age=timedelta(minutes=5), now=now)
        await _exception(engine, "day", owner="integration", age=timedelta(days=2), now=now)
        await _exception(
            engine, "done", owner="finance", age=timedelta(hours=3), now=now, status="resolved"
        )
        first = await scrape(client)
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(exceptions).where(exceptions.c.id == "old").values(status="resolved")
            )
        second = await scrape(client)

    assert value(first, "erpgw_exceptions_open", owner="finance", age_bucket="1h_4h") == 1
    assert value(first, "erpgw_exceptions_open", owner="finance", age_bucket="lt_15m") == 1
    assert value(first, "erpgw_exceptions_open", owner="integration", age_bucket="gt_24h") == 1
    assert (
        "erpgw_exceptions_open",
        frozenset({("owner", "support_ops"), ("age_bucket", "15m_1h")}),
    ) in first  # every owner and bucket is answered, zero when empty
    assert value(first, "erpgw_exceptions_open", owner="support_ops", age_bucket="15m_1h") == 0
    # Resolved in the database: the next scrape says so (no process keeps a stale copy).
    assert value(second, "erpgw_exceptions_open", owner="finance", age_bucket="1h_4h") == 0
    assert value(second, "erpgw_exceptions_open", owner="finance", age_bucket="lt_15m") == 1


async def test_webhook_lag_is_the_event_age_and_the_time_to_enqueue(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, emulated=True)
    event = {
        "id": f"evt_{uuid.uuid4().hex[:14]}",
        "object": "event",
        "type": "customer.created",
        "created": int(time.time()) - 120,
        "data": {"object": {"id": "cus_lag", "object": "customer"}},
    }
    body = json.dumps(event).encode()
    headers = {"Stripe-Signature": sign_webhook(body, "whsec_erpgw_sandbox", int(time.time()))}
    async with app_client(gateway_app(settings)) as client:
        before = await scrape(client)
        delivered = await client.post("/webhooks/stripe", content=body, headers=headers)
        again = await client.post("/webhooks/stripe", content=body, headers=headers)

        async def dispatched() -> Samples | None:
            samples = await scrape(client)
            processed = value(samples, "erpgw_webhook_processing_seconds_count", source="stripe")
            before_count = value(before, "erpgw_webhook_processing_seconds_count", source="stripe")
            return samples if processed > before_count else None

        after = await eventually(dispatched, timeout=20.0, what="the event dispatched")
        # A later look finds no second count: the duplicate delivery was not dispatched again.
        await asyncio.sleep(0.5)
        after = await scrape(client)

    assert delivered.status_code == 200, delivered.text
    assert again.json()["duplicate"] is True

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Counted once, at dispatch (the duplicate delivery was not dispatched again), two
    # minutes old.
    assert delta("erpgw_webhook_event_age_seconds_count", source="stripe") == 1
    assert delta("erpgw_webhook_event_age_seconds_bucket", source="stripe", le="60.0") == 0
    assert delta("erpgw_webhook_event_age_seconds_bucket", source="stripe", le="300.0") == 1
    assert delta("erpgw_webhook_processing_seconds_count", source="stripe") == 1
    assert 0 < delta("erpgw_webhook_processing_seconds_sum", source="stripe") < 60


async def test_drift_found_by_a_run_in_another_process_shows_at_the_next_scrape(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, emulated=True)
    async with app_client(gateway_app(settings)) as client:
        before = await scrape(client)
        # As another worker's run leaves it: completed, one open invoice mismatch in US01 USD.
        await _completed_run(client.app.state.gateway.engine, "run-elsewhere")
        after = await scrape(client)

    labels = {"kind": "invoice", "legal_entity": "US01", "currency": "USD", "status": "open"}
    assert value(before, "erpgw_reconciliation_mismatches", **labels) == 0
    assert value(after, "erpgw_reconciliation_mismatches", **labels) == 1


def test_worker_processes_answer_the_sum_of_their_series(tmp_path: Path) -> None:
    """Two worker processes count into the shared directory; a scrape in a third answers both,
    summed, and the database-read series once."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for amount in (1_250, 3_000):
        subprocess.run(
            [sys.executable, "-c", _WORKER.format(amount=amount)],
            env=env,
            check=True,
            timeout=60,
        )
    scraped = subprocess.run(
        [sys.executable, "-c", _SCRAPER],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    samples = parse(scraped)

    assert (
        value(
            samples,
            "erpgw_money_minor_total",
            kind="collected",
            legal_entity="US01",
            currency="USD",
        )
        == 4_250
    )
    assert value(samples, "erpgw_flows_total", type="quote_to_cash", outcome="succeeded") == 2
    assert value(samples, "erpgw_exceptions_open", owner="finance", age_bucket="lt_15m") == 0
    assert scraped.count("# TYPE erpgw_exceptions_open gauge") == 1


_WORKER = """
from prometheus_client import CollectorRegistry
from gateway.metrics import enable_multiprocess
assert enable_multiprocess()
from gateway.business_metrics import BusinessMetrics
from process_apis.engine.observer import MoneyMoved
metrics = BusinessMetrics(CollectorRegistry())
metrics.flow_finished("quote_to_cash", "succeeded")
metrics.money_moved(MoneyMoved(kind="collected", legal_entity="US01", currency="USD",
                               amount={amount}))
"""

_SCRAPER = """
import sys
from unittest.mock import MagicMock
from gateway.business_metrics import ExceptionBacklog
from gateway.metrics import GatewayMetrics
metrics = GatewayMetrics()
backlog = ExceptionBacklog(MagicMock())
backlog._counts = {("finance", "lt_15m"): 0}
metrics.add_scrape_collector(backlog)
sys.stdout.write(metrics.render().decode())
"""


async def _exception(
    engine: object,
    exception_id: str,
    *,
    owner: str,
    age: timedelta,
    now: object,
    status: str = "open",
) -> None:
    created = now - age  # type: ignore[operator]
    async with engine.begin() as conn:  # type: ignore[attr-defined]
        await conn.execute(
            sa.insert(exceptions).values(
                id=exception_id,
                flow_id=f"flow:{exception_id}",
                flow_type="quote_to_cash",
                step="book_sales_order",
                step_ref="x",
                system="netsuite",
                owner=owner,
                status=status,
                error_class="UpstreamRejected",
                cause="refused",
                occurrences=1,
                created_at=created,
                updated_at=created,
            )
        )


async def _completed_run(engine: object, run_id: str) -> None:
    now = utcnow()
    async with engine.begin() as conn:  # type: ignore[attr-defined]
        await conn.execute(
            sa.insert(runs).values(
                id=run_id,
                status="completed",
                scheduled=False,
                kinds='["invoice"]',
                settle_seconds=0.0,
                started_at=now,
                completed_at=now,
            )
        )
        await conn.execute(
            sa.insert(mismatches).values(
                id="mm1",
                run_id=run_id,
                fingerprint="invoice:in_1",
                kind="invoice",
                code="missing_in_erp",
                key="in_1",
                legal_entity="US01",
                currency="USD",
                values="{}",
                reason="not posted",
                subject="in_1",
                status="open",
                created_at=now,
            )
        )
