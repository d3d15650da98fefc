"""Scheduled runs after a full one read only what changed since the last run (billing's events,
the ERP's last-modified dates) and their customers' books, find drift made since, close only the
exceptions of records they compared again, and read everything again when the watermark is older
than billing's event history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from contracts.v1 import CustomerCreate
from gateway import storage
from gateway.sandbox_wiring import netsuite_sandbox_credentials as netsuite_sandbox
from process_apis.reconciliation import books
from process_apis.reconciliation.compare import Link
from process_apis.reconciliation.store import runs
from sandbox.salesforce.ids import seeded_id
from system_apis.billing.port import BillingChanges
from system_apis.erp.port import ErpChanges
from tests.fakes import FakeBilling
from tests.process_apis.reconciliation.world import World, demo_world

EDIT = Decimal("100.00")
"""What an accountant adds to an ERP invoice's first line by hand (major units)."""
GLOBEX_EDITED_BY = 11_900
"""What the edit adds to Globex's invoice total (minor units): 100.00 EUR and its 19% VAT."""
UMBRELLA_EDITED_BY = 10_000
"""And to Umbrella's: 100.00 EUR, reverse charged (no VAT)."""
EXTRA_INVOICE = 120_000
"""USD minor units of an extra Acme invoice, posted, then voided in billing."""
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""Interval starts of the scheduled runs (their ids); each run reads the real clock."""


def _netsuite(world: World) -> httpx.AsyncClient:
    base = f"{world.base_url}/_sandbox/netsuite"
    return httpx.AsyncClient(base_url=base, auth=netsuite_sandbox(base).auth())


async def _edit_erp_invoice(world: World, erp_invoice_id: str, extra: Decimal) -> None:
    """Change the first line's amount of an ERP invoice through NetSuite's record API."""
    path = f"/services/rest/record/v1/invoice/{erp_invoice_id}"
    async with _netsuite(world) as netsuite:
        record = (await netsuite.get(path, params={"expandSubResources": "true"})).json()
        lines = []
        for index, line in enumerate(record["item"]["items"]):
            amount = Decimal(str(line["amount"])) + (extra if index == 0 else 0)
            edited: dict[str, Any] = {
                "item": {"id": line["item"]["id"]},
                "quantity": line["quantity"],
                "amount": float(amount),
            }
            if line.get("taxCode"):
                edited["taxCode"] = {"id": line["taxCode"]["id"]}
                edited["taxRate1"] = line.get("taxRate1")
                if index != 0:
                    edited["tax1Amt"] = line.get("tax1Amt")
            lines.append(edited)
        patched = await netsuite.patch(path, json={"item": {"items": lines}})
        assert patched.status_code == 204, patched.text


async def _count(world: World, vendor: str, path: str) -> None:
    """Start counting the vendor's requests to `path` (a glob), injecting nothing."""
    response = await world.vendor("POST", vendor, "/_emulator/faults", json={"path": path})
    assert response.status_code in (200, 204), response.text


async def _counted(world: World, vendor: str) -> int:
    response = await world.vendor("GET", vendor, "/_emulator/faults")
    return int(response.json()["counters"]["requests"])


async def _issue_posted_invoice(world: World, customer_id: str, amount: int) -> str:
    """A `send_invoice` invoice, finalized with webhooks on (the gateway posts it)."""
    item = await world.vendor(
        "POST",
        "stripe",
        "/v1/invoiceitems",
        data={"customer": customer_id, "amount": str(amount), "currency": "usd"},
    )
    assert item.status_code == 200, item.text
    draft = await world.vendor(
        "POST",
        "stripe",
        "/v1/invoices",
        data={
            "customer": customer_id,
            "collection_method": "send_invoice",
            "days_until_due": "30",
            "pending_invoice_items_behavior": "include",
        },
    )
    assert draft.status_code == 200, draft.text
    final = await world.vendor("POST", "stripe", f"/v1/invoices/{draft.json()['id']}/finalize")
    assert final.status_code == 200, final.text
    await world.posted()
    return str(final.json()["id"])


def _findings(run: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["kind"], m["key"]): m for m in run["mismatches"]}


async def _exception(world: World, exception_id: str) -> dict[str, Any]:
    response = await world.http.get(f"/process/v1/exceptions/{exception_id}", headers=world.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_an_incremental_run_reads_what_changed_and_closes_only_what_it_checked(
    tmp_path: Path,
) -> None:
    async with demo_world(tmp_path, ERPGW_RECONCILE_SETTLE_SECONDS="0") as world:
        customers = {
            c.refs.get("salesforce"): c for c in (await world.stripe.list_customers(limit=100)).data
        }
        acme, globex, umbrella = (
            customers[seeded_id("Account", key)] for key in ("acme", "globex", "umbrella")
        )
        billed = (await world.stripe.list_invoices(limit=100)).data
        erp_of = {i.external_id: i for i in (await world.netsuite.list_invoices(limit=100)).data}
        globex_invoice = next(i for i in billed if i.customer_id == globex.id and i.total > 0)
        umbrella_invoice = next(i for i in billed if i.customer_id == umbrella.id and i.total > 0)
        extra = await _issue_posted_invoice(world, acme.id, EXTRA_INVOICE)
        # Drift before the full run: two ERP invoices edited by hand.
        await _edit_erp_invoice(world, erp_of[globex_invoice.id].id, EDIT)
        await _edit_erp_invoice(world, erp_of[umbrella_invoice.id].id, EDIT)
        # The change feeds count in whole seconds, and a run reads again what changed in the
        # second it started: let that second pass so Umbrella's edit is before it.
        await asyncio.sleep(1.1)

        full = await world.scheduled(START)
        # After it: Globex's invoice put right, Acme's extra invoice voided in billing.
        await _edit_erp_invoice(world, erp_of[globex_invoice.id].id, -EDIT)
        voided = await world.vendor("POST", "stripe", f"/v1/invoices/{extra}/void")
        assert voided.status_code == 200, voided.text
        await _count(world, "stripe", "/v1/invoices*")
        await asyncio.sleep(1.1)  # the void is then before this run's first second
        incremental = await world.scheduled(START + timedelta(hours=1))
        invoice_reads = await _counted(world, "stripe")
        await _count(world, "stripe", "/v1/invoices*")
        quiet = await world.scheduled(START + timedelta(hours=2))
        quiet_reads = await _counted(world, "stripe")
        standing = {k: v for k, v in (await world.mismatch_gauges()).items() if v}

        first = _findings(full)
        globex_exception = await _exception(
            world, first[("invoices", globex_invoice.id)]["exception_id"]
        )
        umbrella_exception = await _exception(
            world, first[("invoices", umbrella_invoice.id)]["exception_id"]
        )
        all_invoices = (await world.stripe.list_invoices(limit=100)).data

    # The full run read everything and found both edits, each with its amounts.
    assert (full["incremental"], full["since"]) == (False, None)
    assert first[("invoices", globex_invoice.id)]["values"] == {
        "crm": None,
        "billing": globex_invoice.total,
        "erp": globex_invoice.total + GLOBEX_EDITED_BY,
    }
    assert first[("invoices", umbrella_invoice.id)]["reason"].startswith(
        f"invoice {umbrella_invoice.id} is "
    )
    assert first[("invoices", umbrella_invoice.id)]["values"]["erp"] == (
        umbrella_invoice.total + UMBRELLA_EDITED_BY
    )
    # Every issued invoice (the extra one was open then, voided since).
    assert full["checked"]["invoices"] == sum(
        1 for i in all_invoices if i.status in ("open", "paid", "void") and i.total > 0
    )

    # The incremental run read from the full run's start (settle 0) ...
    assert incremental["incremental"] is True
    assert datetime.fromisoformat(incremental["since"]) == datetime.fromisoformat(
        full["started_at"]
    )
    # ... only the books of the customers that changed: Acme's and Globex's invoices, one
    # list each, none of Umbrella's.
    assert invoice_reads == 2
    changed_invoices = [
        i
        for i in all_invoices
        if i.customer_id in (acme.id, globex.id)
        and i.status in ("open", "paid", "void")
        and i.total > 0
    ]
    assert incremental["checked"]["invoices"] == len(changed_invoices)
    # It found the voided invoice still booked in the ERP ...
    later = _findings(incremental)
    assert set(later) == {("invoices", extra)}, incremental["mismatches"]
    assert later[("invoices", extra)]["values"] == {
        "crm": None,
        "billing": 0,
        "erp": EXTRA_INVOICE,
    }
    assert later[("invoices", extra)]["reason"].startswith(
        f"invoice {extra} was voided in billing but ERP invoice "
    )
    assert later[("invoices", extra)]["reason"].endswith(" still books 1,200.00 USD")
    # ... closed Globex's exception (compared again, fixed) and left Umbrella's open (not
    # compared: nothing of Umbrella's changed).
    assert globex_exception["status"] == "resolved"
    assert umbrella_exception["status"] == "open"
    assert incremental["summary"]["mismatches"] == 1
    # The gauge shows what stands after the quiet run: Umbrella's edit (found by the full run,
    # not compared since) and the void, not Globex's (fixed).
    assert standing == {
        ("invoices", umbrella_invoice.legal_entity, umbrella_invoice.currency, "open"): 1.0,
        ("invoices", "US01", "USD", "open"): 1.0,
    }, standing

    # Nothing changed since: no invoice read at all, nothing compared.
    assert quiet["incremental"] is True
    assert quiet_reads == 0
    assert quiet["checked"]["invoices"] == 0
    assert quiet["mismatches"] == []


async def test_a_watermark_older_than_the_event_history_reads_everything(
    tmp_path: Path,
) -> None:
    async with demo_world(tmp_path, ERPGW_RECONCILE_SETTLE_SECONDS="0") as world:
        full = await world.scheduled(START)
        engine = storage.create_engine(world.database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.update(runs)
                    .where(runs.c.id == full["id"])
                    .values(started_at=datetime.now(UTC) - timedelta(days=31))
                )
        finally:
            await engine.dispose()
        await _count(world, "stripe", "/v1/invoices*")
        again = await world.scheduled(START + timedelta(hours=1))
        invoice_reads = await _counted(world, "stripe")

    assert again["incremental"] is False
    assert again["since"] is None
    assert again["checked"]["invoices"] == full["checked"]["invoices"] > 0
    assert invoice_reads == 1  # the whole list, one page


async def test_entity_scoped_incremental_reads_leave_other_entities_out() -> None:
    """The incremental reads keep to the run's entities whichever customers changed."""
    billing = FakeBilling()
    since = billing.now()
    us = await billing.create_customer(
        CustomerCreate(legal_name="US Co", legal_entity="US01", currency="USD"),
        crm_account_id="001US",
    )
    de = await billing.create_customer(
        CustomerCreate(legal_name="DE GmbH", legal_entity="DE01", currency="EUR"),
        crm_account_id="001DE",
    )
    changes = await billing.changed_since(since)
    read = await books.read_billing_customers(billing, ["DE01"], changes.customers)

    assert sorted(changes.customers) == sorted([us.id, de.id])
    assert [c.id for c in read.billing_customers] == [de.id]


def test_a_deleted_billing_customer_is_not_read_but_its_account_is_compared() -> None:
    links = [
        Link(canonical_id="cus-001A", system="stripe", legal_entity="US01", external_id="cus_A"),
        Link(canonical_id="cus-001A", system="netsuite", legal_entity="US01", external_id="1001"),
        Link(canonical_id="cus-001B", system="stripe", legal_entity="US01", external_id="cus_B"),
        Link(canonical_id="cus-001B", system="netsuite", legal_entity="US01", external_id="1002"),
    ]
    changes = BillingChanges(customers=["cus_A"], deleted_customers=["cus_A"])
    nothing = ErpChanges()

    read = books.billing_scope(changes, nothing, [], links)
    erp = books.erp_scope(changes, nothing, [], [], links)
    accounts = books.accounts_in_scope(changes, nothing, [], [], links)

    assert read == []
    assert erp == ["1001"]
    assert accounts == {"001A"}
