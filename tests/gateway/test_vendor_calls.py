"""The vendor call recorder: once `flush` returns, every call recorded before it is in the
table, even while another flush (the background one) is still writing its batch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from gateway import storage
from gateway.storage import vendor_calls
from gateway.vendor_calls import DatabaseCallRecorder
from system_apis.outbound import VendorCall


def _call(number: int) -> VendorCall:
    return VendorCall(
        system="stripe",
        method="GET",
        path_template="/v1/invoices/{id}",
        status=200,
        latency_ms=1.0,
        attempt=1,
        correlation_id=None,
        flow_id=None,
        step=None,
        error=None,
        started_at=datetime(2026, 12, 7, 9, 0, number, tzinfo=UTC),
    )


async def test_a_flush_waits_for_the_batch_another_flush_is_writing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    storage.upgrade(url)
    engine = storage.create_engine(url)
    recorder = DatabaseCallRecorder(engine)
    try:
        for number in range(3):
            await recorder.record(_call(number))

        async def flushed_then_counted() -> int:
            await recorder.flush()
            async with engine.connect() as conn:
                count = await conn.execute(sa.select(sa.func.count()).select_from(vendor_calls))
                return int(count.scalar_one())

        # The first flush takes the whole buffer and is still writing when the second starts.
        _, seen = await asyncio.gather(recorder.flush(), flushed_then_counted())
    finally:
        await engine.dispose()

    assert seen == 3
