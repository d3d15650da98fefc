"""Drift made by hand through the vendors' own APIs is found, one exception each (not again on
a second run), repaired where a machine can repair it or explained by a person through the
exception queue, and the next run is clean."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from gateway.sandbox_wiring import netsuite_sandbox_credentials as netsuite_sandbox
from sandbox.salesforce.ids import seeded_id
from tests.process_apis.reconciliation.world import World, demo_world
from tests.support.waiting import eventually

EXTRA_INVOICE = 350_000
"""USD minor units of the invoice issued while webhooks were off: Acme's order total, so the
invoice posting path can book it on that order."""
CREDIT = 10_000


async def _webhook_endpoint(world: World) -> str:
    listed = await world.vendor("GET", "stripe", "/v1/webhook_endpoints")
    return str(listed.json()["data"][0]["id"])


async def _delete_erp_invoice(world: World, erp_invoice_id: str) -> None:
    async with httpx.AsyncClient(
        base_url=f"{world.base_url}/_sandbox/netsuite",
        auth=netsuite_sandbox(f"{world.base_url}/_sandbox/netsuite").auth(),
    ) as netsuite:
        deleted = await netsuite.delete(f"/services/rest/record/v1/invoice/{erp_invoice_id}")
        assert deleted.status_code == 204, deleted.text


async def _make_drift(world: World) -> dict[str, str]:
    acme = seeded_id("Account", "acme")
    umbrella = seeded_id("Account", "umbrella")
    invoices = (await world.stripe.list_invoices(limit=100)).data
    customers = (await world.stripe.list_customers(limit=100)).data
    acme_customer = next(c for c in customers if c.refs.get("salesforce") == acme)
    umbrella_customer = next(c for c in customers if c.refs.get("salesforce") == umbrella)
    acme_invoice = next(i for i in invoices if i.customer_id == acme_customer.id)
    umbrella_invoice = next(i for i in invoices if i.customer_id == umbrella_customer.id)

    # 1. The ERP invoice of Acme's first invoice deleted in NetSuite.
    erp_invoices = (await world.netsuite.list_invoices(limit=100)).data
    erp_acme = next(i for i in erp_invoices if i.external_id == acme_invoice.id)
    await _delete_erp_invoice(world, erp_acme.id)

    # 2. A second Stripe customer carrying Acme's CRM account.
    duplicate = await world.vendor(
        "POST",
        "stripe",
        "/v1/customers",
        data={
            "name": "Acme Corp (copy)",
            "metadata[crm_account_id]": acme,
            "metadata[legal_entity]": "US01",
            "metadata[currency]": "USD",
        },
    )
    assert duplicate.status_code == 200, duplicate.text

    # 3 and 4, with the webhook endpoint off: an invoice issued (never posted) and a credit
    # note on Umbrella's invoice (its credit memo never booked).
    endpoint = await _webhook_endpoint(world)
    off = await world.vendor(
        "POST", "stripe", f"/v1/webhook_endpoints/{endpoint}", data={"disabled": "true"}
    )
    assert off.status_code == 200, off.text
    item = await world.vendor(
        "POST",
        "stripe",
        "/v1/invoiceitems",
        data={"customer": acme_customer.id, "amount": str(EXTRA_INVOICE), "currency": "usd"},
    )
    assert item.status_code == 200, item.text
    draft = await world.vendor(
        "POST",
        "stripe",
        "/v1/invoices",
        data={
            "customer": acme_customer.id,
            "collection_method": "send_invoice",
            "days_until_due": "30",
            "pending_invoice_items_behavior": "include",
        },
    )
    assert draft.status_code == 200, draft.text
    final = await world.vendor("POST", "stripe", f"/v1/invoices/{draft.json()['id']}/finalize")
    assert final.status_code == 200, final.text
    note = await world.vendor(
        "POST",
        "stripe",
        "/v1/credit_notes",
        data={"invoice": umbrella_invoice.id, "amount": str(CREDIT), "memo": "Goodwill"},
    )
    assert note.status_code == 200, note.text
    on = await world.vendor(
        "POST", "stripe", f"/v1/webhook_endpoints/{endpoint}", data={"disabled": "false"}
    )
    assert on.status_code == 200, on.text
    return {
        "deleted": acme_invoice.id,
        "unposted": str(final.json()["id"]),
        "duplicate": str(duplicate.json()["id"]),
        "credit_note": str(note.json()["id"]),
        "acme": acme,
    }


def _by_key(run: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["kind"], m["key"]): m for m in run["mismatches"]}


async def test_drift_is_found_once_repaired_or_explained_and_the_next_run_is_clean(
    tmp_path: Path,
) -> None:
    async with demo_world(tmp_path) as world:
        drift = await _make_drift(world)
        first = await world.reconcile()
        gauges_found = await world.mismatch_gauges()
        # An operator asks to check the duplicate customer again: the next run still finds it.
        checked_again = _by_key(first)[("customers", drift["acme"])]["exception_id"]
        retried = await world.http.post(
            f"/process/v1/exceptions/{checked_again}/retry",
            json={},
            headers={**world.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        second = await world.reconcile()
        reopened = (
            await world.http.get(f"/process/v1/exceptions/{checked_again}", headers=world.headers)
        ).json()
        reconciliation_exceptions = [
            e for e in await world.exceptions() if e["flow_type"] == "reconciliation"
        ]

        found = _by_key(first)
        repairs = {
            key: await world.http.post(
                f"/process/v1/reconciliations/{first['id']}/mismatches/{found[key]['id']}/repair",
                headers={**world.headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            for key in (
                ("invoices", drift["deleted"]),
                ("invoices", drift["unposted"]),
                ("credits", drift["credit_note"]),
                ("customers", drift["acme"]),
            )
        }
        for response in repairs.values():
            if response.status_code == 202:
                await world.flow_in(response.json()["flow_id"], "succeeded")

        # The duplicate customer needs a person: removed in Stripe, then explained.
        removed = await world.vendor("DELETE", "stripe", f"/v1/customers/{drift['duplicate']}")
        assert removed.status_code == 200, removed.text
        duplicate = found[("customers", drift["acme"])]
        resolved = await world.http.post(
            f"/process/v1/exceptions/{duplicate['exception_id']}/resolve",
            json={"reason": "Duplicate Stripe customer created by hand; deleted"},
            headers={**world.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert resolved.status_code == 200, resolved.text

        async def settled() -> dict[str, Any] | None:
            run = (
                await world.http.get(
                    f"/process/v1/reconciliations/{first['id']}", headers=world.headers
                )
            ).json()
            return run if run["summary"]["unexplained"] == 0 else None

        after = await eventually(settled, timeout=60.0, interval=0.3, what="first run settled")
        third = await world.reconcile()
        gauges_clean = await world.mismatch_gauges()
        erp_invoices = (await world.netsuite.list_invoices(limit=100)).data
        memos = (await world.netsuite.list_credit_memos(limit=100)).data

        queue_after = [e for e in await world.exceptions() if e["flow_type"] == "reconciliation"]
        # Drift after a repair is a new occurrence: found with an exception of its own.
        again = next(i for i in erp_invoices if i.external_id == drift["deleted"])
        await _delete_erp_invoice(world, again.id)
        recurred = await world.reconcile()

    assert set(found) == {
        ("invoices", drift["deleted"]),
        ("invoices", drift["unposted"]),
        ("credits", drift["credit_note"]),
        ("customers", drift["acme"]),
    }, [m["reason"] for m in first["mismatches"]]
    assert found[("invoices", drift["deleted"])]["reason"] == (
        f"invoice {drift['deleted']} (3,500.00 USD) is in billing but not in the ERP"
    )
    assert found[("credits", drift["credit_note"])]["values"] == {
        "crm": None,
        "billing": CREDIT,
        "erp": None,
    }
    assert found[("customers", drift["acme"])]["reason"].endswith("; one must go")
    assert all(m["status"] == "open" and m["exception_id"] for m in first["mismatches"])
    assert first["summary"] == {"mismatches": 4, "unexplained": 4, "repaired": 0, "pending": 0}
    # Found again, the same exceptions: none opened twice.
    assert {m["exception_id"] for m in second["mismatches"]} == {
        m["exception_id"] for m in first["mismatches"]
    }
    assert len(reconciliation_exceptions) == 4
    assert retried.status_code == 202, retried.text
    assert (reopened["status"], reopened["occurrences"]) == ("open", 2)
    # Linked both ways: the mismatch names its exception, the exception its run and mismatch.
    by_id = {e["id"]: e for e in reconciliation_exceptions}
    for mismatch in first["mismatches"]:
        exception = by_id[mismatch["exception_id"]]
        assert exception["flow_id"] == first["id"]
        assert exception["step"] == f"{mismatch['kind']}:" + exception["step"].split(":", 1)[1]
        assert mismatch["key"] in exception["step"]
        assert exception["cause"] == mismatch["reason"]
        assert exception["legal_entity"] == mismatch["legal_entity"]
    owners = {e["id"]: e["owner"] for e in reconciliation_exceptions}
    assert owners[found[("invoices", drift["deleted"])]["exception_id"]] == "finance"
    assert owners[duplicate["exception_id"]] == "integration"

    assert {key: r.status_code for key, r in repairs.items()} == {
        ("invoices", drift["deleted"]): 202,
        ("invoices", drift["unposted"]): 202,
        ("credits", drift["credit_note"]): 202,
        ("customers", drift["acme"]): 409,
    }
    assert (
        repairs[("customers", drift["acme"])]
        .headers["content-type"]
        .startswith("application/problem+json")
    )
    assert {m["status"] for m in after["mismatches"]} == {"repaired", "explained"}
    assert after["summary"] == {"mismatches": 4, "unexplained": 0, "repaired": 3, "pending": 0}
    assert third["summary"] == {"mismatches": 0, "unexplained": 0, "repaired": 0, "pending": 0}
    assert third["mismatches"] == []
    reposted = {i.external_id: i for i in erp_invoices}
    assert reposted[drift["deleted"]].total == 350_000
    assert reposted[drift["unposted"]].total == EXTRA_INVOICE
    assert [m.amount for m in memos if m.external_id == f"recon:{drift['credit_note']}"] == [CREDIT]
    assert {e["status"] for e in queue_after} == {"resolved"}
    assert gauges_found == {
        ("invoices", "US01", "USD", "open"): 2.0,
        ("credits", "DE01", "EUR", "open"): 1.0,
        ("customers", "US01", "USD", "open"): 1.0,
    }
    assert set(gauges_clean.values()) == {0.0}
    [recurrence] = recurred["mismatches"]
    assert (recurrence["key"], recurrence["status"]) == (drift["deleted"], "open")
    assert recurrence["exception_id"] not in {m["exception_id"] for m in first["mismatches"]}
