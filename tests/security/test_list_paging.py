"""A limited caller's list pages hold only its records, full pages first, and its cursors name
nothing: they are opaque, and refused for another caller or another list."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from contracts.v1 import CustomerCreate
from tests.experience_apis import seed
from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)

CUSTOMERS = "/system/billing/v1/customers"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AppClient]:
    """A sandbox gateway whose billing holds 6 DE01 customers made before 2 US01 ones (Stripe
    lists newest first: the US01 ones come first, then the DE01 ones)."""
    app = gateway_app(settings_for(tmp_path, emulated=True))
    async with app_client(app) as test_client:
        billing = app.state.gateway.platforms.vendors["stripe"].client
        for index, entity in enumerate(["DE01"] * 6 + ["US01"] * 2):
            await billing.create_customer(
                CustomerCreate(
                    legal_name=f"{entity} customer {index}",
                    legal_entity=entity,
                    currency="EUR" if entity == "DE01" else "USD",
                ),
                crm_account_id=f"001{index:012d}",
                idempotency_key=f"paging-customer-{index}",
            )
        yield test_client


async def _pages(client: AppClient, token: str, limit: int) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await client.get(CUSTOMERS, params=params, headers=bearer(token))
        assert response.status_code == 200, response.text
        pages.append(response.json())
        if pages[-1]["next_cursor"] is None:
            return pages
        params = {"limit": limit, "cursor": pages[-1]["next_cursor"]}


def _decodes_to(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


async def test_a_limited_caller_gets_full_pages_of_its_own_records(client: AppClient) -> None:
    _, germany = await new_client_token(client, ["billing:read"], entities=["DE01"])
    _, everything = await new_client_token(client, ["billing:read"])

    pages = await _pages(client, germany, limit=2)
    entities = [c["legal_entity"] for page in pages for c in page["data"]]
    assert entities == ["DE01"] * 6
    # Every page but the last is full: the 2 US01 customers Stripe lists first are skipped
    # before paging, not handed back as an empty page.
    assert [len(page["data"]) for page in pages] == [2, 2, 2]

    # Control: a caller of every entity sees all 8, newest (US01) first.
    everyone = [c["legal_entity"] for p in await _pages(client, everything, 3) for c in p["data"]]
    assert everyone == ["US01"] * 2 + ["DE01"] * 6


async def test_a_cursor_names_no_record_of_another_entity(client: AppClient) -> None:
    _, america = await new_client_token(client, ["billing:read"], entities=["US01"])
    _, everything = await new_client_token(client, ["billing:read"])
    hidden = {
        c["id"] for page in await _pages(client, everything, 100) for c in page["data"]
        if c["legal_entity"] == "DE01"
    }
    assert len(hidden) == 6

    first = await client.get(CUSTOMERS, params={"limit": 1}, headers=bearer(america))
    body = first.json()
    assert [c["legal_entity"] for c in body["data"]] == ["US01"]
    assert body["next_cursor"] is not None
    cursor = body["next_cursor"]
    raw = _decodes_to(cursor)
    for name in (b"cus_", b"stripe", b"customers", *(i.encode() for i in hidden)):
        assert name not in raw and name.decode() not in cursor

    second = await client.get(
        CUSTOMERS, params={"limit": 1, "cursor": cursor}, headers=bearer(america)
    )
    assert [c["legal_entity"] for c in second.json()["data"]] == ["US01"]
    # The last US01 customer ends the list: no page promises the 6 hidden ones.
    assert second.json()["next_cursor"] is None


async def test_a_cursor_is_refused_to_another_caller_and_on_another_list(
    client: AppClient,
) -> None:
    _, mine = await new_client_token(client, ["billing:read"], entities=["DE01"])
    _, theirs = await new_client_token(client, ["billing:read"], entities=["DE01"])
    cursor = (await client.get(CUSTOMERS, params={"limit": 1}, headers=bearer(mine))).json()[
        "next_cursor"
    ]
    assert cursor

    # Control: its own caller follows it.
    own = await client.get(CUSTOMERS, params={"limit": 1, "cursor": cursor}, headers=bearer(mine))
    assert own.status_code == 200

    for token, path in ((theirs, CUSTOMERS), (mine, "/system/billing/v1/invoices")):
        refused = await client.get(path, params={"cursor": cursor}, headers=bearer(token))
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["errors"][0]["pointer"] == "cursor"

    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    tampered = await client.get(
        CUSTOMERS, params={"cursor": flipped}, headers=bearer(mine)
    )
    assert tampered.status_code == 400


async def test_process_list_cursors_are_opaque_and_the_callers_own(tmp_path: Path) -> None:
    app = gateway_app(settings_for(tmp_path))
    async with app_client(app) as gateway:
        engine = app.state.gateway.engine
        for index in range(3):
            await seed.flow(engine, f"q2c:paging-us-{index}", legal_entity="US01")
            await seed.flow(engine, f"q2c:paging-de-{index}", legal_entity="DE01")
        _, mine = await new_client_token(gateway, ["process:read"], entities=["US01"])
        _, theirs = await new_client_token(gateway, ["process:read"], entities=["US01"])

        first = await gateway.get("/process/v1/flows", params={"limit": 2}, headers=bearer(mine))
        body = first.json()
        assert [f["legal_entity"] for f in body["data"]] == ["US01", "US01"]
        cursor = body["next_cursor"]
        assert cursor
        assert b"paging" not in _decodes_to(cursor) and b"process" not in _decodes_to(cursor)

        # Control: its caller follows it to the last US01 flow, and the list ends there.
        rest = await gateway.get(
            "/process/v1/flows", params={"limit": 2, "cursor": cursor}, headers=bearer(mine)
        )
        assert [f["id"] for f in rest.json()["data"]] == ["q2c:paging-us-0"]
        assert rest.json()["next_cursor"] is None

        for token, params in (
            (theirs, {"cursor": cursor}),
            (mine, {"cursor": cursor, "status": "failed"}),
        ):
            refused = await gateway.get("/process/v1/flows", params=params, headers=bearer(token))
            assert refused.status_code == 400, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
