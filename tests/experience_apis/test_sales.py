"""The sales console's account overview: composed from the four platforms and the flows, with
partial failure, the short-lived cache, stale-if-error and conditional requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.v1 import SubscriptionCreate, SubscriptionItemInput
from tests.experience_apis import seed
from tests.experience_apis.conftest import World


def overview_path(customer: seed.Customer) -> str:
    return f"/experience/sales/v1/accounts/{customer.crm_account}/overview"


async def onboarded_acme(world: World) -> seed.Customer:
    acme = await seed.demo_customer(world, "Acme")
    # Monthly: Platform Standard + 20 seats (500.00 + 20 x 25.00); yearly: Enterprise 12,000.00.
    return await seed.onboard(
        world, acme, plans=((("PLAT-STD", 1), ("SEAT", 20)), (("PLAT-ENT", 1),))
    )


async def test_overview_composes_every_platform_and_the_flows(world: World) -> None:
    acme = await onboarded_acme(world)
    await seed.flow(world.engine, "q2c:opp-acme-1", status="running", crm_account=acme.crm_account)
    await seed.flow(world.engine, "q2c:opp-acme-0", status="failed", crm_account=acme.crm_account)
    await seed.exception(world.engine, "q2c:opp-acme-0")
    await seed.flow(world.engine, "q2c:opp-other", status="running", crm_account="001other")

    response = await world.http.get(overview_path(acme))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sources"] == {
        "crm": "ok", "billing": "ok", "support": "ok", "erp": "ok", "process": "ok",
    }
    assert body["account"]["legal_name"] == "Acme Robotics Inc."
    assert {c["email"] for c in body["contacts"]} == {"ada@acme.test", "ben@acme.test"}
    billing = body["billing"]
    assert billing["customer_id"] == acme.stripe
    # 50,000 + 20 x 2,500 monthly, plus 1,200,000 yearly / 12, in cents.
    assert billing["mrr"] == {"amount": 200_000, "currency": "USD"}
    assert billing["arr"] == {"amount": 2_400_000, "currency": "USD"}
    assert sorted(s["mrr"]["amount"] for s in billing["subscriptions"]) == [100_000, 100_000]
    assert len(billing["open_invoices"]) == 2
    assert billing["balance"] == {"amount": 1_300_000, "currency": "USD"}
    assert billing["overdue_invoices"] == 0
    support = body["support"]
    assert support["organization_id"] == acme.zendesk_org
    assert support["entitlement"]["plan"] == "enterprise"
    assert support["entitlement"]["sla_first_response_minutes"] == 60
    assert support["open_cases_by_priority"] == {"urgent": 1, "high": 1, "normal": 0, "low": 0}
    assert support["sev1_cases_90d"] == 1
    assert body["erp"]["customer_id"] == acme.netsuite
    assert body["erp"]["ar_balance"] == {"amount": 0, "currency": "USD"}
    assert [f["id"] for f in body["process"]["flows_in_progress"]] == ["q2c:opp-acme-1"]
    assert [e["flow_id"] for e in body["process"]["open_exceptions"]] == ["q2c:opp-acme-0"]
    # 100 - 10 (one sev-1 case) - 5 (one open exception).
    assert body["health"]["score"] == 85
    factors = {f["name"]: f for f in body["health"]["factors"]}
    assert factors["sev1_cases_90d"] == {
        "name": "sev1_cases_90d", "value": 1, "points": 10, "known": True,
    }
    assert factors["payment_status"]["value"] == "current"


async def test_overdue_invoices_lower_the_health_score(world: World) -> None:
    acme = await onboarded_acme(world)
    world.at(datetime.now(UTC) + timedelta(days=45))

    body = (await world.http.get(overview_path(acme))).json()

    assert body["billing"]["overdue_invoices"] == 2
    assert body["billing"]["overdue_balance"] == {"amount": 1_300_000, "currency": "USD"}
    # 100 - 2 x 15 (overdue) - 10 (sev-1).
    assert body["health"]["score"] == 60


async def test_billing_in_outage_leaves_its_section_null(world: World) -> None:
    acme = await onboarded_acme(world)
    await world.faults("stripe", outage=True)

    response = await world.http.get(overview_path(acme))

    assert response.status_code == 200
    body = response.json()
    assert body["billing"] is None
    assert body["sources"]["billing"] == "error"
    assert body["sources"]["support"] == "ok"
    assert body["support"]["organization_id"] == acme.zendesk_org
    factors = {f["name"]: f for f in body["health"]["factors"]}
    assert factors["overdue_invoices"]["known"] is False


async def test_support_slower_than_its_budget_times_out(world: World) -> None:
    acme = await onboarded_acme(world)
    await world.faults("zendesk", latency_ms=2500)

    response = await world.http.get(overview_path(acme))

    assert response.status_code == 200
    body = response.json()
    assert body["support"] is None
    assert body["sources"]["support"] == "timeout"
    assert body["billing"]["mrr"]["amount"] == 200_000


async def test_crm_down_answers_502_naming_it(world: World) -> None:
    acme = await onboarded_acme(world)
    await world.faults("salesforce", outage=True)

    response = await world.http.get(overview_path(acme))

    assert response.status_code == 502
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["vendor"] == "crm"
    assert "crm" in problem["detail"]


async def test_crm_slower_than_its_budget_answers_504(world: World) -> None:
    acme = await onboarded_acme(world)
    world.views.budgets = {**world.views.budgets, "crm": 0.5}
    await world.faults("salesforce", latency_ms=2000)

    response = await world.http.get(overview_path(acme))

    assert response.status_code == 504
    problem = response.json()
    assert problem["vendor"] == "crm"
    assert "did not answer within 0.5 s" in problem["detail"]


async def test_fresh_answers_come_from_the_cache_and_stale_ones_stand_in_for_errors(
    world: World,
) -> None:
    acme = await onboarded_acme(world)
    first = (await world.http.get(overview_path(acme))).json()
    await world.faults("stripe", outage=True)

    cached = (await world.http.get(overview_path(acme))).json()
    bypassed = await world.http.get(overview_path(acme), headers={"Cache-Control": "no-cache"})
    world.views.composer.fresh_seconds = 0  # the cached answer is no longer fresh
    stale = (await world.http.get(overview_path(acme))).json()

    assert cached["sources"]["billing"] == "ok"
    assert cached["billing"] == first["billing"]
    assert bypassed.json()["sources"]["billing"] == "error"
    assert bypassed.json()["billing"] is None
    assert stale["sources"]["billing"] == "stale"
    assert stale["billing"] == first["billing"]


async def test_required_source_is_never_served_stale(world: World) -> None:
    acme = await onboarded_acme(world)
    assert (await world.http.get(overview_path(acme))).status_code == 200
    world.views.composer.fresh_seconds = 0
    await world.faults("salesforce", outage=True)

    response = await world.http.get(overview_path(acme))

    assert response.status_code == 502


async def test_no_cache_shows_a_change_the_cache_still_hides(world: World) -> None:
    acme = await onboarded_acme(world)
    before = (await world.http.get(overview_path(acme))).json()
    price = await world.billing.find_price(product_code="SEAT", currency="USD")
    assert acme.stripe is not None
    await world.billing.create_subscription(
        SubscriptionCreate(
            customer_id=acme.stripe,
            currency="USD",
            items=[SubscriptionItemInput(price_id=price.id, quantity=4)],
            collection_method="send_invoice",
            days_until_due=30,
        )
    )

    cached = (await world.http.get(overview_path(acme))).json()
    fresh = (await world.http.get(overview_path(acme), headers={"Cache-Control": "no-cache"}))

    assert before["billing"]["mrr"]["amount"] == 200_000
    assert cached["billing"]["mrr"]["amount"] == 200_000
    assert fresh.json()["billing"]["mrr"]["amount"] == 210_000


async def test_if_none_match_answers_304_until_the_data_changes(world: World) -> None:
    acme = await onboarded_acme(world)
    first = await world.http.get(overview_path(acme))
    etag = first.headers["etag"]

    again = await world.http.get(overview_path(acme), headers={"If-None-Match": etag})
    await world.faults("stripe", outage=True)
    changed = await world.http.get(
        overview_path(acme), headers={"If-None-Match": etag, "Cache-Control": "no-cache"}
    )

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


async def test_the_etag_covers_the_data_only(world: World) -> None:
    acme = await onboarded_acme(world)
    first = await world.http.get(overview_path(acme), headers={"X-Correlation-ID": "a-1"})
    second = await world.http.get(
        overview_path(acme), headers={"X-Correlation-ID": "b-2", "Cache-Control": "no-cache"}
    )

    assert first.headers["etag"] == second.headers["etag"]
    assert "correlation_id" not in first.json()


async def test_an_account_of_another_legal_entity_is_not_found(world: World) -> None:
    acme = await onboarded_acme(world)
    world.caller.become(entities=frozenset({"DE01"}))

    hidden = await world.http.get(overview_path(acme))
    missing = await world.http.get("/experience/sales/v1/accounts/001000000000000AAA/overview")

    assert hidden.status_code == 404
    assert missing.status_code == 404
    assert hidden.json()["title"] == missing.json()["title"] == "Not found"


async def test_a_customer_not_yet_cross_referenced_is_found_by_its_crm_link(world: World) -> None:
    initech = await seed.demo_customer(world, "Initech")
    await seed.onboard(world, initech, erp=False, link_billing=False)

    body = (await world.http.get(overview_path(initech))).json()

    assert body["billing"]["customer_id"] == initech.stripe
    assert body["billing"]["mrr"] == {"amount": 100_000, "currency": "USD"}
    assert body["erp"]["customer_id"] is None


async def test_account_list_shows_only_the_callers_entities(world: World) -> None:
    world.caller.become(entities=frozenset({"DE01"}))

    body = (await world.http.get("/experience/sales/v1/accounts")).json()

    assert {a["legal_entity"] for a in body["data"]} == {"DE01"}
    assert {a["legal_name"] for a in body["data"]} == {
        "Globex Logistik GmbH", "Umbrella Pharma B.V.",
    }


async def test_a_declined_renewal_shows_as_past_due_in_the_health(world: World) -> None:
    acme = await onboarded_acme(world)
    await seed.failed_payment(world, acme)

    body = (await world.http.get(overview_path(acme))).json()

    assert body["billing"]["payment_status"] == "past_due"
    factors = {f["name"]: f for f in body["health"]["factors"]}
    assert factors["payment_status"] == {
        "name": "payment_status", "value": "past_due", "points": 15, "known": True,
    }
    # 100 - 10 (sev-1) - 15 (past due).
    assert body["health"]["score"] == 75
