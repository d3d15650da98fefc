"""The finance workspace: exception queue by owner and age, credits to approve, failed
payments and AR aging, limited to the legal entities of the caller's token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.experience_apis import seed
from tests.experience_apis.conftest import World

WORKSPACE = "/experience/finance/v1/workspace"


async def two_entities(world: World) -> tuple[seed.Customer, seed.Customer]:
    """Acme (US01, USD) and Globex (DE01, EUR) with ERP invoices, exceptions, credits to
    approve, and a declined renewal for Acme."""
    acme = await seed.onboard(world, await seed.demo_customer(world, "Acme"))
    globex = await seed.onboard(world, await seed.demo_customer(world, "Globex"))
    await seed.erp_invoice(world, acme, key="acme-1", quantity=10)
    await seed.erp_invoice(world, globex, key="globex-1", quantity=5)
    await seed.flow(world.engine, "q2c:acme", status="failed", legal_entity="US01")
    await seed.exception(
        world.engine, "q2c:acme", legal_entity="US01",
        at=datetime.now(UTC) - timedelta(days=2),
    )
    await seed.flow(world.engine, "q2c:globex", status="failed", legal_entity="DE01")
    await seed.exception(
        world.engine, "q2c:globex", owner="integration", system="stripe",
        step="create_subscription", legal_entity="DE01",
    )
    await seed.approval(
        world, key="acme", flow_id="escalation:1:2026-11", legal_entity="US01",
        amount=10_000, currency="USD",
    )
    await seed.approval(
        world, key="globex", flow_id="escalation:2:2026-11", legal_entity="DE01",
        amount=4_600, currency="EUR",
    )
    await seed.failed_payment(world, acme)
    return acme, globex


async def test_workspace_shows_every_entity_to_an_unrestricted_client(world: World) -> None:
    acme, _ = await two_entities(world)

    response = await world.http.get(WORKSPACE)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sources"] == {"process": "ok", "erp": "ok", "billing": "ok"}
    assert body["entities"] is None
    queues = {q["owner"]: q for q in body["exceptions"]}
    assert queues["finance"]["total"] == 1
    assert queues["finance"]["by_age"] == {"<1h": 0, "1-24h": 0, "1-7d": 1, ">7d": 0}
    assert queues["integration"]["by_age"]["<1h"] == 1
    assert {(c["legal_entity"], c["amount"]["amount"]) for c in body["credits_waiting"]} == {
        ("US01", 10_000), ("DE01", 4_600),
    }
    aging = {(row["legal_entity"], row["currency"]): row for row in body["ar_aging"]}
    assert aging[("US01", "USD")]["total"] == 25_000
    assert aging[("DE01", "EUR")]["total"] == 11_500
    assert set(aging[("US01", "USD")]["buckets"]) == {"current", "1-30", "31-60", "61-90", "90+"}
    [failed] = body["failed_payments"]
    assert failed["customer_id"] == acme.stripe
    assert failed["status"] == "past_due"
    assert failed["amount_remaining"] == {"amount": 7_500, "currency": "USD"}


async def test_a_client_of_one_entity_sees_only_that_entity(world: World) -> None:
    await two_entities(world)
    world.caller.become(scopes=frozenset({"experience:finance"}), entities=frozenset({"DE01"}))

    body = (await world.http.get(WORKSPACE)).json()

    assert body["entities"] == ["DE01"]
    assert [q["owner"] for q in body["exceptions"]] == ["integration"]
    assert [c["legal_entity"] for c in body["credits_waiting"]] == ["DE01"]
    assert [(r["legal_entity"], r["currency"]) for r in body["ar_aging"]] == [("DE01", "EUR")]
    assert body["failed_payments"] == []


async def test_ar_aging_moves_invoices_through_the_buckets(world: World) -> None:
    await two_entities(world)
    world.at(datetime.now(UTC) + timedelta(days=200))

    body = (await world.http.get(WORKSPACE)).json()

    for row in body["ar_aging"]:
        assert row["buckets"]["90+"] == row["total"]


async def test_erp_down_leaves_its_sections_null(world: World) -> None:
    await two_entities(world)
    await world.faults("netsuite", outage=True)

    body = (await world.http.get(WORKSPACE, headers={"Cache-Control": "no-cache"})).json()

    assert body["sources"]["erp"] == "error"
    assert body["credits_waiting"] is None
    assert body["ar_aging"] is None
    assert {q["owner"] for q in body["exceptions"]} == {"finance", "integration"}
