"""The demo company's books agree once its won deals are booked: a reconciliation of every
kind finds nothing, and says what it compared."""

from __future__ import annotations

from pathlib import Path

from tests.process_apis.reconciliation.world import demo_world


async def test_demo_company_reconciles_clean(tmp_path: Path) -> None:
    async with demo_world(tmp_path) as world:
        run = await world.reconcile()
        listed = await world.http.get("/process/v1/reconciliations", headers=world.headers)

    print(run)
    assert run["kinds"] == ["deals", "invoices", "payments", "credits", "customers", "usage"]
    assert run["checked"]["invoices"] >= 3 and run["checked"]["deals"] == 3
    assert run["checked"]["customers"] >= 3
    assert run["checked"]["payments"] == 0 and run["checked"]["credits"] == 0
    assert run["checked"]["usage"] == 0  # no usage reported yet
    assert [m["reason"] for m in run["mismatches"]] == []
    assert run["summary"] == {"mismatches": 0, "unexplained": 0, "repaired": 0, "pending": 0}
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()["data"]] == [run["id"]]
