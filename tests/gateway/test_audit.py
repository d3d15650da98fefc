"""The audit trail's hash chain: appends from two replicas at once never fork it (PostgreSQL
and SQLite), a changed, removed or inserted record makes `erp-gateway audit verify` fail
naming the first bad record, and pruning keeps the rest verifiable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from contracts.audit import AuditEvent, AuditTarget, gateway_target, system_actor
from gateway import storage
from gateway.audit import AuditLog
from gateway.cli import main

pytestmark = pytest.mark.timeout(120)


def event(n: int, *, entity: str | None = "US01") -> AuditEvent:
    return AuditEvent(
        action="crm.account.update",
        actor=system_actor(f"replica-test-{n % 2}"),
        target=AuditTarget(system="salesforce", id=f"001chain{n:05d}"),
        legal_entity=entity,
        before={"phone": f"+1 555 {n:04d}"},
        after={"phone": f"+1 555 {n + 1:04d}"},
    )


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite+aiosqlite:///{tmp_path}/gateway.db"


@pytest.fixture
async def sqlite_audit(tmp_path: Path) -> AsyncIterator[tuple[AuditLog, sa.Table, str]]:
    url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    await storage.upgrade_async(url)
    engine = storage.create_engine(url)
    yield AuditLog(engine), storage.audit_log, url
    await engine.dispose()


async def test_two_replicas_appending_at_once_keep_one_unbroken_chain(
    database_url: str,
) -> None:
    await storage.upgrade_async(database_url)
    replicas = [storage.create_engine(database_url), storage.create_engine(database_url)]
    try:
        logs = [AuditLog(engine) for engine in replicas]
        written = await asyncio.gather(*(logs[n % 2].record(event(n)) for n in range(60)))
        report = await logs[0].verify()
    finally:
        for engine in replicas:
            await engine.dispose()

    seqs = sorted(record.seq for record in written)
    assert len(set(seqs)) == 60
    by_seq = {record.seq: record for record in written}
    # Each record is chained to the one committed just before it, whoever wrote that one.
    for seq in seqs[1:]:
        if seq - 1 in by_seq:
            assert by_seq[seq].prev_hash == by_seq[seq - 1].hash
    assert report.intact, report.problem
    assert report.checked >= 60


async def test_a_changed_record_breaks_the_chain_at_that_record(
    sqlite_audit: tuple[AuditLog, sa.Table, str],
) -> None:
    audit, table, _ = sqlite_audit
    records = [await audit.record(event(n)) for n in range(5)]
    assert (await audit.verify()).intact

    async with audit._engine.begin() as conn:  # someone with database access edits a record
        await conn.execute(
            sa.update(table)
            .where(table.c.seq == records[2].seq)
            .values(after='{"phone":"+1 555 9999"}')
        )
    report = await audit.verify()

    assert not report.intact
    assert report.first_bad == records[2].seq
    assert report.problem == f"record {records[2].seq} was changed after it was written"
    assert report.checked == 2


async def test_a_removed_or_rechained_record_breaks_the_chain(
    sqlite_audit: tuple[AuditLog, sa.Table, str],
) -> None:
    audit, table, _ = sqlite_audit
    records = [await audit.record(event(n)) for n in range(4)]

    async with audit._engine.begin() as conn:
        await conn.execute(sa.delete(table).where(table.c.seq == records[1].seq))
    removed = await audit.verify()
    async with audit._engine.begin() as conn:
        await conn.execute(sa.delete(table).where(table.c.seq == records[3].seq))
    async with audit._engine.begin() as conn:
        await conn.execute(sa.delete(table))
    everything_gone = await audit.verify()

    assert removed.first_bad == records[2].seq
    assert "missing" in (removed.problem or "")
    assert everything_gone.first_bad == records[0].seq
    assert everything_gone.problem == f"records 1 to {records[3].seq} are missing from the chain"


async def test_pruning_keeps_the_chain_verifiable_from_the_oldest_kept_record(
    sqlite_audit: tuple[AuditLog, sa.Table, str],
) -> None:
    audit, table, _ = sqlite_audit
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        for n in range(6):
            await audit.record(event(n))
            clock.shift(timedelta(days=100))
        removed = await audit.prune(older_than=timedelta(days=400))
    async with audit._engine.connect() as conn:
        kept = [row.seq for row in await conn.execute(sa.select(table.c.seq).order_by("seq"))]
    report = await audit.verify()

    assert removed == 2  # written on day 0 and day 100; "now" is day 600
    assert kept == [3, 4, 5, 6]
    assert report.intact and report.checked == 4
    async with audit._engine.begin() as conn:  # the oldest kept record cannot be swapped out
        await conn.execute(sa.delete(table).where(table.c.seq == 3))
    assert (await audit.verify()).first_bad == 4


def test_audit_verify_exits_non_zero_naming_the_first_bad_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    monkeypatch.setenv("ERPGW_DATABASE_URL", url)
    monkeypatch.setenv("ERPGW_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("ERPGW_SIGNING_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("ERPGW_LOG_FORMAT", "json")

    assert (
        main(["clients", "create", "--name", "nightly job", "--scopes", "crm:read", "--json"]) == 0
    )
    client_id = json.loads(capsys.readouterr().out)["client_id"]
    assert main(["clients", "revoke", client_id]) == 0
    assert main(["keys", "rotate"]) == 0
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0
    assert "audit chain intact: 3 records checked" in capsys.readouterr().err

    async def tamper() -> list[tuple[int, str, str, str]]:
        engine = storage.create_engine(url)
        try:
            async with engine.begin() as conn:
                rows = [
                    (row.seq, row.action, row.actor_id, row.target_id)
                    for row in await conn.execute(
                        sa.select(storage.audit_log).order_by(storage.audit_log.c.seq)
                    )
                ]
                await conn.execute(
                    sa.update(storage.audit_log)
                    .where(storage.audit_log.c.seq == 1)
                    .values(actor_id="cli:someone-else@elsewhere")
                )
            return rows
        finally:
            await engine.dispose()

    rows = asyncio.run(tamper())
    assert [action for _, action, _, _ in rows] == ["client.create", "client.revoke", "keys.rotate"]
    assert [target for _, _, _, target in rows][:2] == [client_id, client_id]
    assert all(actor.startswith("cli:") for _, _, actor, _ in rows)
    assert main(["audit", "verify"]) == 1
    assert (
        "audit chain broken at record 1: record 1 was changed after it was written"
        in capsys.readouterr().err
    )


async def test_records_hold_what_was_recorded(
    sqlite_audit: tuple[AuditLog, sa.Table, str],
) -> None:
    audit, _, _ = sqlite_audit
    written = await audit.record(
        AuditEvent(
            action="flow.start",
            actor=system_actor("crm-poller"),
            target=gateway_target("q2c:006chain"),
            legal_entity="DE01",
            correlation_id="corr-chain-1",
            detail={"source": "poller", "created": True},
        )
    )

    assert written.seq == 1
    assert written.prev_hash == "0" * 64
    assert written.actor.kind == "system" and written.actor.id == "crm-poller"
    assert written.detail == {"created": True, "source": "poller"}
    assert written.correlation_id == "corr-chain-1"
