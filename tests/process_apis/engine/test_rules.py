"""Pure rules of the process layer: who owns a failure, what an edited input must look like,
which executors count as dead."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from contracts.errors import (
    Conflict,
    FlowAborted,
    UpstreamAuthFailed,
    UpstreamInvalid,
    UpstreamRejected,
    UpstreamUnavailable,
    ValidationFailed,
)
from gateway import storage
from process_apis.engine._executors import ExecutorRegistry
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.queue import owner_for
from process_apis.engine.store import executors, utcnow
from tests.process_apis.example_flow import OrderFlows


@pytest.mark.parametrize(
    ("system", "step", "error", "owner"),
    [
        ("netsuite", "post_to_erp", UpstreamRejected, "finance"),
        ("stripe", "issue_credit_note", UpstreamInvalid, "finance"),
        ("salesforce", "sync_price_book", UpstreamRejected, "revenue_ops"),
        ("stripe", "update_catalog_product", FlowAborted, "revenue_ops"),
        ("zendesk", "sync_ticket", UpstreamInvalid, "support_ops"),
        ("netsuite", "post_to_erp", UpstreamAuthFailed, "integration"),
        ("zendesk", "sync_ticket", UpstreamUnavailable, "integration"),
        ("stripe", "create_invoice", UpstreamRejected, "integration"),
        ("stripe", "create_invoice", KeyError, "integration"),
    ],
)
def test_owner_rule(system: str, step: str, error: type[BaseException], owner: str) -> None:
    assert owner_for(system, step, error) == owner


def test_edited_input_is_checked_against_the_declared_struct() -> None:
    ref = f"{OrderFlows.create_invoice.__module__}.{OrderFlows.create_invoice.__qualname__}"

    valid = FlowEngine.validate_input(ref, {"order_id": "o", "amount": 10, "currency": "EUR"})
    with pytest.raises(ValidationFailed) as missing:
        FlowEngine.validate_input(ref, {"order_id": "o", "currency": "EUR"})
    with pytest.raises(ValidationFailed) as wrong:
        FlowEngine.validate_input(ref, {"order_id": "o", "amount": 1.5, "currency": "EUR"})

    assert valid == {"order_id": "o", "amount": 10, "currency": "EUR"}
    assert missing.value.errors[0].pointer == "/input/amount"
    assert wrong.value.errors[0].pointer == "/input/amount"


def test_edited_input_of_a_plain_step_follows_its_signature() -> None:
    ref = f"{OrderFlows.post_to_erp.__module__}.{OrderFlows.post_to_erp.__qualname__}"

    assert FlowEngine.validate_input(ref, {"invoice_id": "in_1"}) == {"invoice_id": "in_1"}
    with pytest.raises(ValidationFailed) as unknown:
        FlowEngine.validate_input(ref, {"invoice_id": "in_1", "extra": 1})
    with pytest.raises(Conflict):
        FlowEngine.validate_input("gone.module.step", {})
    assert unknown.value.errors[0].pointer == "/input/extra"


async def test_only_stale_executors_are_dead(database_url: str) -> None:
    db = storage.create_engine(database_url)
    registry = ExecutorRegistry(db, timeout_seconds=30)
    first = await registry.claim("10.0.0.1:8000")
    second = await registry.claim("10.0.0.1:8000")
    await registry.beat("other:8000/0")
    async with db.begin() as conn:
        await conn.execute(
            sa.update(executors)
            .where(executors.c.id == second)
            .values(heartbeat_at=utcnow() - timedelta(seconds=31))
        )

    dead = await registry.dead(excluding=first)
    lease = await registry.lease(second)
    assert lease is not None
    assert await registry.lease(second) is None  # taken: no other engine recovers it too
    await registry.forget(second, lease=lease)
    third = await registry.claim("10.0.0.1:8000")

    assert (first, second) == ("10.0.0.1:8000/0", "10.0.0.1:8000/1")
    assert dead == [second]
    assert third == second
    await db.dispose()
