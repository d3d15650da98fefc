"""The reconciliation routes: a caller limited to legal entities reconciles and sees only its
entities; bad bodies and unknown ids are problem+json 4xx; scopes and Idempotency-Key hold."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.process_apis.reconciliation.world import demo_world

PROBLEM = "application/problem+json"


async def test_a_caller_limited_to_an_entity_reconciles_and_sees_only_that_entity(
    tmp_path: Path,
) -> None:
    async with demo_world(tmp_path) as world:
        german = await world.token(["process:write", "process:read", "ops:replay"], ["DE01"])
        everything = await world.reconcile()
        own = await world.reconcile(german)
        other_entity = await world.start(german, legal_entity="US01")
        unknown_entity = await world.start(german, legal_entity="FR01")
        hidden = await world.http.get(
            f"/process/v1/reconciliations/{everything['id']}", headers=german
        )
        listed = await world.http.get("/process/v1/reconciliations", headers=german)
        listed_all = await world.http.get("/process/v1/reconciliations", headers=world.headers)
        first_page = await world.http.get(
            "/process/v1/reconciliations", params={"limit": "1"}, headers=world.headers
        )
        second_page = await world.http.get(
            "/process/v1/reconciliations",
            params={"limit": "1", "cursor": first_page.json()["next_cursor"]},
            headers=world.headers,
        )

    assert own["legal_entities"] == ["DE01"]
    assert {t["legal_entity"] for t in own["totals"]} == {"DE01"}
    assert {t["currency"] for t in own["totals"]} == {"EUR"}
    assert own["checked"]["deals"] == 2  # Globex and Umbrella; Acme is US01
    # Another entity's answer is an unknown entity's, and names no entity but the caller's.
    assert other_entity.status_code == unknown_entity.status_code == 422
    assert other_entity.headers["content-type"].startswith(PROBLEM)
    assert other_entity.json()["errors"] == [
        {**unknown_entity.json()["errors"][0],
         "detail": unknown_entity.json()["errors"][0]["detail"].replace("FR01", "US01")}
    ]
    assert "US01" not in other_entity.json()["errors"][0]["detail"].split(":")[-1]
    assert hidden.status_code == 404 and hidden.headers["content-type"].startswith(PROBLEM)
    assert [r["id"] for r in listed.json()["data"]] == [own["id"]]
    assert [r["id"] for r in listed_all.json()["data"]] == [own["id"], everything["id"]]
    pages = [first_page.json(), second_page.json()]
    assert [r["id"] for page in pages for r in page["data"]] == [own["id"], everything["id"]]
    assert pages[1]["next_cursor"] is None


async def test_bad_requests_are_problems(tmp_path: Path) -> None:
    async with demo_world(tmp_path, book=False) as world:
        reader = await world.token(["process:read"])
        bad: dict[str, dict[str, Any]] = {
            "unknown kind": {"kinds": ["orders"]},
            "no kinds": {"kinds": []},
            "negative settle": {"settle_seconds": -1},
            "fractional settle": {"settle_seconds": "soon"},
            "bad entity": {"legal_entity": "us01"},
            "unknown field": {"kind": ["deals"]},
        }
        answers = {name: await world.start(None, **body) for name, body in bad.items()}
        no_key = await world.http.post(
            "/process/v1/reconciliations", json={}, headers=world.headers
        )
        not_json = await world.http.post(
            "/process/v1/reconciliations",
            content=b"{",
            headers={
                **world.headers,
                "Idempotency-Key": uuid.uuid4().hex,
                "Content-Type": "application/json",
            },
        )
        no_scope = await world.start(reader)
        unknown_run = await world.http.get(
            "/process/v1/reconciliations/reconcile:nope", headers=world.headers
        )
        unknown_mismatch = await world.http.post(
            "/process/v1/reconciliations/reconcile:nope/mismatches/abc/repair",
            headers={**world.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        run = await world.reconcile(kinds=["customers", "invoices", "customers"])

    for name, answer in answers.items():
        assert answer.status_code in (400, 422), (name, answer.text)
        assert answer.headers["content-type"].startswith(PROBLEM), name
    assert no_key.status_code == 400 and no_key.headers["content-type"].startswith(PROBLEM)
    assert not_json.status_code == 400
    assert no_scope.status_code == 403
    assert unknown_run.status_code == 404
    assert unknown_mismatch.status_code == 404
    assert run["kinds"] == ["invoices", "customers"] and run["summary"]["mismatches"] == 0
