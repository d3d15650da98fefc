"""The schedule: at each interval's start the interval's run, one whoever asks (replicas ask
the same run id); a later scheduled run reads from the previous one's start (its watermark)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from process_apis.reconciliation.store import runs
from tests.support.apps import app_client, bearer, gateway_app, new_client_token, settings_for
from tests.support.waiting import eventually


async def test_each_interval_runs_once_and_reads_from_the_last_run(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        emulated=True,
        ERPGW_RECONCILE_INTERVAL_SECONDS="3600",
        ERPGW_RECONCILE_SETTLE_SECONDS="0",
    )
    async with app_client(gateway_app(settings)) as client:
        _, token = await new_client_token(client, ["process:read"])
        service = client.app.state.gateway.reconciliation.service
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        run_id = "reconcile:" + hour.strftime("%Y-%m-%dT%H:%M:%SZ")

        async def completed(wanted: str) -> dict[str, object] | None:
            response = await client.get(
                f"/process/v1/reconciliations/{wanted}", headers=bearer(token)
            )
            body: dict[str, object] = response.json()
            return body if response.status_code == 200 and body["status"] == "completed" else None

        first = await eventually(lambda: completed(run_id), timeout=60, what="the hour's run")
        again = await service.start_scheduled(hour)  # another replica, the same hour
        later = await service.start_scheduled(hour + timedelta(hours=1))
        next_id = "reconcile:" + (hour + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        await eventually(lambda: completed(next_id), timeout=60, what="the next hour's run")
        async with client.app.state.gateway.engine.connect() as conn:
            rows = {
                row.id: row
                for row in await conn.execute(sa.select(runs).where(runs.c.scheduled.is_(True)))
            }

    assert first["kinds"] == ["deals", "invoices", "payments", "credits", "customers"]
    assert (again, later) == (False, True)
    assert set(rows) == {run_id, next_id}
    assert rows[run_id].watermark is None
    assert rows[next_id].watermark is not None
    read_from = rows[next_id].watermark.replace(tzinfo=UTC)
    assert abs(read_from - rows[run_id].started_at.replace(tzinfo=UTC)) < timedelta(seconds=1)
