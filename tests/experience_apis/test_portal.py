"""The customer portal: only the customer bound to the token, whichever id binds it; another
customer's invoice is indistinguishable from a missing one."""

from __future__ import annotations

from tests.experience_apis import seed
from tests.experience_apis.conftest import World

PORTAL = "/experience/portal/v1"


async def two_customers(world: World) -> tuple[seed.Customer, seed.Customer]:
    acme = await seed.onboard(world, await seed.demo_customer(world, "Acme"))
    initech = await seed.onboard(
        world,
        await seed.demo_customer(world, "Initech"),
        plans=((("PLAT-STD", 2),),),
        link_billing=False,
    )
    return acme, initech


async def test_a_customer_bound_by_canonical_id_sees_its_subscription_and_invoices(
    world: World,
) -> None:
    acme, _ = await two_customers(world)
    world.caller.become(scopes=frozenset({"experience:portal"}), customer=acme.canonical)

    subscription = (await world.http.get(f"{PORTAL}/subscription")).json()
    invoices = (await world.http.get(f"{PORTAL}/invoices")).json()
    detail = await world.http.get(f"{PORTAL}/invoices/{invoices['data'][0]['id']}")

    assert subscription["customer_name"] == "Acme Robotics Inc."
    assert [
        (i["product_code"], i["quantity"]) for i in subscription["subscriptions"][0]["items"]
    ] == [("PLAT-STD", 1), ("SEAT", 20)]
    assert [i["total"] for i in invoices["data"]] == [100_000]
    assert detail.status_code == 200
    assert [line["amount"] for line in detail.json()["lines"]] == [50_000, 50_000]
    assert "refs" not in detail.json()


async def test_a_customer_bound_by_crm_account_is_found_without_cross_reference(
    world: World,
) -> None:
    _, initech = await two_customers(world)
    world.caller.become(scopes=frozenset({"experience:portal"}), customer=initech.crm_account)

    invoices = (await world.http.get(f"{PORTAL}/invoices")).json()

    assert [i["total"] for i in invoices["data"]] == [100_000]


async def test_another_customers_invoice_is_indistinguishable_from_a_missing_one(
    world: World,
) -> None:
    acme, initech = await two_customers(world)
    world.caller.become(scopes=frozenset({"experience:portal"}), customer=initech.crm_account)
    theirs = (await world.billing.list_invoices(customer_id=acme.stripe)).data[0].id
    missing_id = "in_" + "Z" * (len(theirs) - 3)

    other = await world.http.get(f"{PORTAL}/invoices/{theirs}")
    missing = await world.http.get(f"{PORTAL}/invoices/{missing_id}")

    assert other.status_code == missing.status_code == 404
    assert other.headers["content-type"] == missing.headers["content-type"]

    def without_ids(response: object, invoice_id: str) -> dict[str, object]:
        body = dict(response.json())  # type: ignore[attr-defined]
        body.pop("correlation_id", None)
        return {k: str(v).replace(invoice_id, "<id>") for k, v in body.items()}

    assert without_ids(other, theirs) == without_ids(missing, missing_id)


async def test_a_client_bound_to_no_customer_is_refused(world: World) -> None:
    world.caller.become(scopes=frozenset({"experience:portal"}))

    response = await world.http.get(f"{PORTAL}/invoices")

    assert response.status_code == 403


async def test_billing_down_fails_the_portal(world: World) -> None:
    acme, _ = await two_customers(world)
    world.caller.become(scopes=frozenset({"experience:portal"}), customer=acme.canonical)
    await world.faults("stripe", outage=True)

    response = await world.http.get(f"{PORTAL}/subscription")

    assert response.status_code == 502
    assert response.json()["vendor"] == "billing"


async def test_an_invoice_page_cursor_serves_only_the_customer_it_was_given_to(
    world: World,
) -> None:
    acme = await seed.onboard(
        world,
        await seed.demo_customer(world, "Acme"),
        plans=((("PLAT-STD", 1),), (("PLAT-STD", 2),)),
    )
    initech = await seed.onboard(world, await seed.demo_customer(world, "Initech"))
    world.caller.become(scopes=frozenset({"experience:portal"}), customer=acme.canonical)
    first = (await world.http.get(f"{PORTAL}/invoices", params={"limit": 1})).json()
    cursor = first["next_cursor"]
    second = await world.http.get(f"{PORTAL}/invoices", params={"limit": 1, "cursor": cursor})

    world.caller.become(scopes=frozenset({"experience:portal"}), customer=initech.crm_account)
    replayed = await world.http.get(f"{PORTAL}/invoices", params={"cursor": cursor})
    invented = await world.http.get(f"{PORTAL}/invoices", params={"cursor": "in_1"})

    assert cursor is not None and not cursor.startswith("in_")
    assert second.status_code == 200
    assert {i["id"] for i in second.json()["data"]}.isdisjoint(i["id"] for i in first["data"])
    for refused in (replayed, invented):
        assert refused.status_code == 400
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "cursor" in refused.text
