"""All of a gateway's state follows `ERPGW_DATABASE_URL`: two gateways sharing a var folder
but each on its own SQLite database book the same deal, each in full."""

from __future__ import annotations

from pathlib import Path

from process_apis.customer_master.flow import canonical_customer_id
from tests.process_apis.q2c_harness import harness
from tests.process_apis.sandbox import seeded_id

TOTAL = 50_000 + 20 * 2_500 + 250_000
"""The seeded Acme platform deal: PLAT-STD, 20 seats and onboarding, in USD cents."""


async def test_two_databases_sharing_a_var_folder_each_book_the_same_deal(
    tmp_path: Path,
) -> None:
    opportunity = seeded_id("Opportunity", "acme-platform")
    account = seeded_id("Account", "acme")
    flow_id = f"q2c:{opportunity}"

    for name in ("first", "second"):
        url = f"sqlite+aiosqlite:///{tmp_path}/{name}.db"
        async with harness(tmp_path, ERPGW_DATABASE_URL=url) as q2c:
            response = await q2c.book(opportunity)
            assert response.status_code == 202, response.text
            flow = await q2c.wait(flow_id, "succeeded", "failed")
            assert flow["status"] == "succeeded", (name, flow)

            # Billing: the customer, subscribed, with the one-time services invoiced.
            [customer] = await q2c.stripe.customers_of(account)
            [subscription] = await q2c.stripe.objects(
                "/v1/subscriptions", customer=customer["id"]
            )
            assert subscription["metadata"]["deal_id"] == opportunity
            [invoice] = await q2c.stripe.objects("/v1/invoices", customer=customer["id"])
            charges = await q2c.stripe.objects("/v1/invoiceitems", customer=customer["id"])
            assert {c["invoice"] for c in charges} == {invoice["id"]}

            # ERP: the sales order of the deal, for the deal's whole amount.
            steps = {step["name"]: step for step in flow["steps"]}
            number = steps["book_sales_order"]["external_ids"]["netsuite_tran_id"]
            [order] = await q2c.sales_orders(number)
            erp_customer = await q2c.port("netsuite").find_customer(
                external_id=canonical_customer_id(account)
            )
            assert erp_customer is not None
            assert order["customer_id"] == erp_customer.id
            assert order["external_id"] == flow_id
            assert (order["currency"], order["total"]) == ("USD", TOTAL)

    assert (tmp_path / "first.dbos.sqlite").exists()
    assert (tmp_path / "second.dbos.sqlite").exists()
    assert not (tmp_path / "dbos.sqlite").exists()
