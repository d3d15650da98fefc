"""The schedule: at each interval's start (not at start-up) the interval's run, one whoever
asks (replicas ask for the same run id); a later scheduled run reads from the previous one's
start (its watermark)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from process_apis.reconciliation.store import runs
from tests.support.apps import app_client, gateway_app, settings_for
from tests.support.waiting import eventually

INTERVAL = 2


async def test_each_interval_runs_once_and_reads_from_the_last_run(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        emulated=True,
        ERPGW_RECONCILE_INTERVAL_SECONDS=str(INTERVAL),
        ERPGW_RECONCILE_SETTLE_SECONDS="0",
    )
    async with app_client(gateway_app(settings)) as client:
        gateway = client.app.state.gateway
        booted = datetime.now(UTC)

        async def scheduled() -> list[Any]:
            async with gateway.engine.connect() as conn:
                rows = await conn.execute(
                    sa.select(runs)
                    .where(runs.c.scheduled.is_(True), runs.c.status == "completed")
                    .order_by(runs.c.started_at)
                )
                return list(rows)

        done = await eventually(
            scheduled, lambda rows: len(rows) >= 2, timeout=30, what="two scheduled runs"
        )
        first, second = done[0], done[1]
        interval_start = datetime.strptime(first.id, "reconcile:%Y-%m-%dT%H:%M:%SZ")
        again = await gateway.reconciliation.service.start_scheduled(
            interval_start.replace(tzinfo=UTC)
        )

    started = [datetime.strptime(r.id, "reconcile:%Y-%m-%dT%H:%M:%SZ") for r in (first, second)]
    # Not at start-up: the first run is the next interval's.
    assert started[0].replace(tzinfo=UTC) > booted
    assert started[1] - started[0] == timedelta(seconds=INTERVAL)
    assert started[0].second % INTERVAL == 0
    assert again is False  # another replica asking for the same interval: the same run
    assert first.watermark is None
    assert abs(second.watermark.replace(tzinfo=UTC) - first.started_at.replace(tzinfo=UTC)) < (
        timedelta(seconds=1)
    )
