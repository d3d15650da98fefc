"""Bounded waits under a fake clock: a ten-minute NetSuite outage (its breaker open) keeps a
quote-to-cash waiting at its sales order; at the step wait ceiling the integration team gets
one exception, the flow stays `running`, and once NetSuite answers again the flow finishes by
itself at the deal's amounts and the exception resolves itself with a note. A flow record
nobody runs gets its exception from the engine's reaper the same way. At every minute no
flow is running or pending past the ceiling without an open exception."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from contracts.errors import UpstreamUnavailable
from process_apis.engine.records import create_flow
from process_apis.quote_to_cash.flow import FLOW_TYPE
from tests.process_apis.fakes_engine import (  # noqa: F401 (fixtures)
    FlowBench,
    migrated_database,
)
from tests.process_apis.quote_to_cash.test_rules import DEAL_LINES, DEAL_TOTAL, booked_lines, launch
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(90)

CEILING = 300.0
OUTAGE_MINUTES = 10
START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
async def bench(migrated_database: Path, tmp_path: Path) -> AsyncIterator[FlowBench]:  # noqa: F811
    """`flow_bench` with a short step wait ceiling."""
    path = tmp_path / "gateway.db"
    shutil.copyfile(migrated_database, path)
    opened = FlowBench(f"sqlite+aiosqlite:///{path}", step_wait_ceiling_seconds=CEILING)
    try:
        yield opened
    finally:
        await opened.close()


async def _past_ceiling_without_exception(bench: FlowBench, flow_ids: list[str]) -> list[str]:
    """Unfinished flows whose last progress (their own status change, a step's start or
    end, as the flow resource shows them) is older than the ceiling and that have no open
    exception: what must never exist."""
    now = datetime.now(UTC)
    covered = {entry.flow_id for entry in await bench.exceptions()}
    stuck = []
    for flow_id in flow_ids:
        flow = await bench.flow(flow_id)
        if flow.status not in ("running", "pending"):
            continue
        moments = [flow.updated_at] + [
            moment
            for step in flow.steps
            for moment in (step.started_at, step.finished_at)
            if moment is not None
        ]
        if (now - max(moments)).total_seconds() > CEILING and flow_id not in covered:
            stuck.append(flow_id)
    return stuck


async def test_a_ten_minute_outage_opens_an_exception_at_the_ceiling_that_resolves_itself(
    bench: FlowBench,
) -> None:
    with time_machine.travel(START, tick=True) as clock:
        q2c = await launch(bench)
        breaker_open = UpstreamUnavailable(
            "netsuite circuit open", vendor="netsuite", retry_after=0.02, code="circuit_open"
        )
        q2c.erp.fail_next("upsert_sales_order", breaker_open, times=1_000_000)
        handle = await bench.start(FLOW_TYPE, q2c.flow_id, q2c.flows.run, q2c.order)

        async def waiting_at_sales_order() -> bool:
            flow = await bench.flow(q2c.flow_id)
            return any(s.name == "book_sales_order" for s in flow.steps)

        await eventually(waiting_at_sales_order, timeout=10, interval=0.02, what="at the ERP")
        waiting_since = datetime.now(UTC)
        for minute in range(1, OUTAGE_MINUTES + 1):
            clock.shift(timedelta(minutes=1))
            await bench.engine.reap_stalled()  # what the engine runs every heartbeat
            if minute < CEILING / 60:
                assert await bench.exceptions() == [], minute
            elif minute > CEILING / 60:
                # The step itself says why it waits (the reaper may have opened it first).
                (entry,) = await eventually(
                    bench.exceptions,
                    lambda found: len(found) == 1 and "breaker is open" in found[0].cause,
                    what="the wait exception with the step's cause",
                )
                assert (entry.flow_id, entry.owner, entry.system, entry.step) == (
                    q2c.flow_id,
                    "integration",
                    "netsuite",
                    "book_sales_order",
                )
                assert (entry.error_class, entry.occurrences) == ("WaitCeilingExceeded", 1)
                opened_after = (entry.created_at - waiting_since).total_seconds()
                assert CEILING <= opened_after <= CEILING + 60, opened_after
                assert (await bench.flow(q2c.flow_id)).status == "running"
            assert await _past_ceiling_without_exception(bench, [q2c.flow_id]) == [], minute
        assert q2c.erp.sales_orders == {}

        q2c.erp.clear_faults()  # NetSuite is back
        result = await bench.result(handle, within=20)

    assert result is not None
    # Booked once, at the deal's amounts, in the ERP and in billing.
    assert booked_lines(q2c.erp) == DEAL_LINES
    (invoice,) = q2c.billing.invoices.values()
    assert (invoice.currency, invoice.total) == ("USD", DEAL_TOTAL)
    assert (await bench.flow(q2c.flow_id)).status == "succeeded"
    (resolved,) = await eventually(
        lambda: bench.exceptions(status="resolved"), what="the wait exception resolved"
    )
    assert await bench.exceptions() == []
    assert resolved.owner == "integration"
    assert resolved.resolution is not None
    assert resolved.resolution.startswith("Resolved by itself: netsuite answered again"), (
        resolved.resolution
    )


async def test_a_flow_nobody_runs_gets_an_exception_from_the_reaper_and_loses_it_when_run(
    bench: FlowBench,
) -> None:
    with time_machine.travel(START, tick=True) as clock:
        q2c = await launch(bench)
        # A record whose workflow was never enqueued (a process died in between).
        async with bench.database.begin() as conn:
            await create_flow(
                conn,
                flow_id=q2c.flow_id,
                flow_type=FLOW_TYPE,
                correlation_id=None,
                crm_account=None,
                legal_entity="US01",
                now=datetime.now(UTC),
            )
        clock.shift(timedelta(seconds=CEILING - 30))
        assert await bench.engine.reap_stalled() == []
        clock.shift(timedelta(seconds=60))
        assert await bench.engine.reap_stalled() == [q2c.flow_id]
        (entry,) = await bench.exceptions()
        assert (entry.owner, entry.step, entry.legal_entity) == (
            "integration",
            "(not started)",
            "US01",
        )
        assert "pending before its first step" in entry.cause, entry.cause
        assert await _past_ceiling_without_exception(bench, [q2c.flow_id]) == []
        assert await bench.engine.reap_stalled() == []  # one exception, not one a round

        result = await bench.result(
            await bench.start(FLOW_TYPE, q2c.flow_id, q2c.flows.run, q2c.order)
        )
        assert result is not None
        await bench.engine.reap_stalled()

    assert booked_lines(q2c.erp) == DEAL_LINES
    assert await bench.exceptions() == []
    (resolved,) = await bench.exceptions(status="resolved")
    assert resolved.resolution is not None
    assert resolved.resolution.startswith("Resolved by itself"), resolved.resolution
