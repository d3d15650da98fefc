"""The finance workspace and the ops console show the latest reconciliation per legal entity
and currency: open mismatches, their drift in minor units and the oldest of them, with links
into the run's mismatches; a caller limited to US01 sees none of DE01's."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from gateway import storage
from gateway.clients import ClientRegistry
from sandbox.salesforce.ids import seeded_id
from tests.process_apis.reconciliation.test_drift import _delete_erp_invoice
from tests.process_apis.reconciliation.world import World, demo_world

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _spread(values: dict[str, Any]) -> int:
    amounts = [v for v in values.values() if not isinstance(v, str)]
    if not any(isinstance(v, int) for v in amounts):
        return 0
    present = [v or 0 for v in amounts]
    return max(present) - min(present)


async def _delete_first_erp_invoice(world: World, account_key: str) -> tuple[str, int]:
    """Deletes in NetSuite the ERP invoice of the account's first billing invoice."""
    account = seeded_id("Account", account_key)
    customers = (await world.stripe.list_customers(limit=100)).data
    customer = next(c for c in customers if c.refs.get("salesforce") == account)
    invoice = next(
        i
        for i in (await world.stripe.list_invoices(limit=100)).data
        if i.customer_id == customer.id
    )
    erp = next(
        i
        for i in (await world.netsuite.list_invoices(limit=100)).data
        if i.external_id == invoice.id
    )
    await _delete_erp_invoice(world, erp.id)
    return invoice.id, invoice.total


async def _client(world: World, scopes: list[str], entities: list[str] | None) -> tuple[str, str]:
    engine = storage.create_engine(world.database_url)
    try:
        created = await ClientRegistry(engine).create(
            name=f"recon-view-{uuid.uuid4().hex[:6]}", scopes=scopes, tier="gold", entities=entities
        )
    finally:
        await engine.dispose()
    return created.client.client_id, created.client_secret


def _expected(run: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int]]:
    """(open mismatches, drift) per entity and currency, from the run's own API answer."""
    found: dict[tuple[str, str], tuple[int, int]] = {}
    for mismatch in run["mismatches"]:
        if mismatch["status"] != "open" or not mismatch["currency"]:
            continue
        label = (mismatch["legal_entity"], mismatch["currency"])
        count, amount = found.get(label, (0, 0))
        found[label] = (count + 1, amount + _spread(mismatch["values"]))
    return found


async def test_finance_and_console_show_the_latest_runs_drift_per_entity(tmp_path: Path) -> None:
    async with demo_world(tmp_path) as world:
        acme_invoice, acme_total = await _delete_first_erp_invoice(world, "acme")
        globex_invoice, globex_total = await _delete_first_erp_invoice(world, "globex")
        run = await world.reconcile()
        expected = _expected(run)
        assert expected[("US01", "USD")][1] >= acme_total > 0
        assert expected[("DE01", "EUR")][1] >= globex_total > 0

        finance_all = await world.token(["experience:finance"])
        body = (
            await world.http.get("/experience/finance/v1/workspace", headers=finance_all)
        ).json()
        rows = {(r["legal_entity"], r["currency"]): r for r in body["reconciliation"]}
        for label, (count, amount) in expected.items():
            assert rows[label]["run_id"] == run["id"]
            assert rows[label]["open"] == count
            assert rows[label]["amount"] == amount
            assert rows[label]["link"] == f"/process/v1/reconciliations/{run['id']}"
            assert rows[label]["oldest_open_id"] in {m["id"] for m in run["mismatches"]}
        assert rows[("US01", "USD")]["oldest_open_since"] is not None

        finance_us = await world.token(["experience:finance"], entities=["US01"])
        limited = await world.http.get("/experience/finance/v1/workspace", headers=finance_us)
        assert limited.status_code == 200, limited.text
        limited_rows = limited.json()["reconciliation"]
        assert {r["legal_entity"] for r in limited_rows} == {"US01"}
        us = next(r for r in limited_rows if r["currency"] == "USD")
        assert (us["open"], us["amount"]) == expected[("US01", "USD")]
        # The run compared every entity, so the API does not show it to a US01 caller: no link.
        assert us["link"] is None
        assert us["run_entities"] is None
        own = await world.token(["process:read", "process:write"], entities=["US01"])
        us_run = await world.reconcile(headers=own, legal_entity="US01")
        own_rows = (
            await world.http.get(
                "/experience/finance/v1/workspace",
                headers={**finance_us, "Cache-Control": "no-cache"},
            )
        ).json()["reconciliation"]
        assert [(r["legal_entity"], r["run_id"]) for r in own_rows] == [("US01", us_run["id"])]
        followed = await world.http.get(own_rows[0]["link"], headers=own)
        assert followed.status_code == 200
        assert {m["id"] for m in followed.json()["mismatches"]} >= {own_rows[0]["oldest_open_id"]}

        # The console, signed in as a US01 operator: US01's latest run is its own one.
        client_id, secret = await _client(world, ["ops:read"], ["US01"])
        form = await world.http.get("/ops/sign-in")
        token = CSRF.search(form.text)
        assert token is not None
        signed_in = await world.http.post(
            "/ops/sign-in",
            data={"client_id": client_id, "client_secret": secret, "csrf_token": token.group(1)},
        )
        assert signed_in.status_code == 303, signed_in.text
        overview = await world.http.get("/ops/reconciliation")
        assert overview.status_code == 200
        assert 'data-entity="US01" data-currency="USD"' in overview.text
        assert 'data-entity="DE01"' not in overview.text
        assert f'data-minor="{_expected(us_run)[("US01", "USD")][1]}"' in overview.text
        assert f'href="/ops/reconciliation/{us_run["id"]}"' in overview.text

        page = await world.http.get(f"/ops/reconciliation/{us_run['id']}")
        assert page.status_code == 200
        us_mismatches = [m for m in us_run["mismatches"] if m["legal_entity"] == "US01"]
        for mismatch in us_mismatches:
            assert f'data-mismatch="{mismatch["id"]}"' in page.text
            assert mismatch["reason"].replace("'", "&#39;") in page.text
            assert f'href="/ops/exceptions/{mismatch["exception_id"]}"' in page.text
        assert any(acme_invoice in m["key"] or acme_invoice in m["reason"] for m in us_mismatches)
        assert us_mismatches
        assert globex_invoice not in page.text
        everything = await world.http.get(f"/ops/reconciliation/{run['id']}")
        assert everything.status_code == 200
        assert acme_invoice in everything.text
        assert globex_invoice not in everything.text
        assert (await world.http.get("/ops/reconciliation/no-such-run")).status_code == 404


async def test_a_duplicate_customer_counts_in_its_entitys_drift_with_no_amount(
    tmp_path: Path,
) -> None:
    async with demo_world(tmp_path) as world:
        acme = seeded_id("Account", "acme")
        duplicate = await world.vendor(
            "POST",
            "stripe",
            "/v1/customers",
            data={
                "name": "Acme (copy)",
                "metadata[crm_account_id]": acme,
                "metadata[legal_entity]": "US01",
                "metadata[currency]": "USD",
            },
        )
        assert duplicate.status_code == 200, duplicate.text
        run = await world.reconcile()
        finance = await world.token(["experience:finance"])
        body = (await world.http.get("/experience/finance/v1/workspace", headers=finance)).json()

    [mismatch] = run["mismatches"]
    assert (mismatch["kind"], mismatch["legal_entity"], mismatch["currency"]) == (
        "customers",
        "US01",
        "USD",
    )
    rows = {(r["legal_entity"], r["currency"]): r for r in body["reconciliation"]}
    assert (rows[("US01", "USD")]["open"], rows[("US01", "USD")]["amount"]) == (1, 0)
    assert rows[("US01", "USD")]["oldest_open_id"] == mismatch["id"]
    assert rows[("DE01", "EUR")]["open"] == 0
