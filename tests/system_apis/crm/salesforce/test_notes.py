"""Account notes: the Note sObject at the wire, and the client's create, list and repeat."""

from __future__ import annotations

import httpx
import pytest

from contracts.errors import UpstreamInvalid, UpstreamNotFound
from sandbox.salesforce.ids import seeded_id
from system_apis.crm.port import AccountNote
from system_apis.crm.salesforce import SalesforceClient
from tests.system_apis.crm.salesforce.conftest import Served, token_for

DATA = "/services/data/v62.0"
ACME = seeded_id("Account", "acme")
GLOBEX = seeded_id("Account", "globex")
NOT_AN_ACCOUNT = seeded_id("Contact", "jane@acme.example")
"""An id of another sObject type (key prefix 003)."""


async def _auth(http: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await token_for(http)}"}


# -- the emulator ------------------------------------------------------------------------------


async def test_note_is_created_and_queried_like_any_sobject(
    served: Served, http: httpx.AsyncClient
) -> None:
    headers = await _auth(http)

    created = await http.post(
        f"{DATA}/sobjects/Note",
        json={"ParentId": ACME[:15], "Title": "Call notes", "Body": "Renewal in Q1"},
        headers=headers,
    )

    assert created.status_code == 201, created.text
    note_id = created.json()["id"]
    assert note_id.startswith("002") and len(note_id) == 18
    assert created.headers["Location"].endswith(f"/sobjects/Note/{note_id}")
    row = (await http.get(f"{DATA}/sobjects/Note/{note_id}", headers=headers)).json()
    assert (row["ParentId"], row["IsPrivate"]) == (ACME, False)
    assert row["CreatedDate"] is not None
    soql = f"SELECT Id, Title, Body FROM Note WHERE ParentId = '{ACME}'"
    queried = (await http.get(f"{DATA}/query", params={"q": soql}, headers=headers)).json()
    assert [(r["Id"], r["Title"], r["Body"]) for r in queried["records"]] == [
        (note_id, "Call notes", "Renewal in Q1")
    ]
    describe = (await http.get(f"{DATA}/sobjects/Note/describe", headers=headers)).json()
    assert describe["keyPrefix"] == "002"
    assert {f["name"] for f in describe["fields"]} >= {
        "ParentId", "Title", "Body", "IsPrivate", "CreatedDate"
    }


async def test_note_write_rules(served: Served, http: httpx.AsyncClient) -> None:
    headers = await _auth(http)

    untitled = await http.post(
        f"{DATA}/sobjects/Note", json={"ParentId": ACME, "Body": "x"}, headers=headers
    )
    orphan = await http.post(f"{DATA}/sobjects/Note", json={"Title": "x"}, headers=headers)
    created = await http.post(
        f"{DATA}/sobjects/Note", json={"ParentId": ACME, "Title": "x"}, headers=headers
    )
    moved = await http.patch(
        f"{DATA}/sobjects/Note/{created.json()['id']}", json={"ParentId": GLOBEX},
        headers=headers,
    )

    assert untitled.status_code == 400
    assert untitled.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert orphan.status_code == 400
    assert moved.status_code == 400
    assert moved.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


async def test_deleting_the_account_deletes_its_notes(served: Served) -> None:
    org = served.emulator.org
    note_id = org.insert("Note", {"ParentId": ACME, "Title": "gone with the account"})

    org.delete("Account", ACME)

    assert note_id not in org.records["Note"]


# -- the client --------------------------------------------------------------------------------


async def test_add_and_list_account_notes(client: SalesforceClient) -> None:
    first = await client.add_account_note(ACME, title="Kick-off", body="Met the CFO")
    second = await client.add_account_note(ACME, title="Renewal", body="Wants a 3-year term")
    third = await client.add_account_note(ACME, title="Escalation", body="Sev-1 on 11-16")
    await client.add_account_note(GLOBEX, title="Kick-off", body="Another account")

    notes = await client.list_account_notes(ACME)

    # Three notes, two to a query batch: the list follows nextRecordsUrl.
    assert notes == [
        AccountNote(id=first, title="Kick-off", body="Met the CFO"),
        AccountNote(id=second, title="Renewal", body="Wants a 3-year term"),
        AccountNote(id=third, title="Escalation", body="Sev-1 on 11-16"),
    ]
    assert all(note.id.startswith("002") for note in notes)
    assert await client.list_account_notes(ACME[:15]) == notes


async def test_add_account_note_is_safe_to_repeat(served: Served, client: SalesforceClient) -> None:
    title = "Service credit rejected (escalation:42:2026-11)"
    first = await client.add_account_note(
        ACME, title=title, body="Reason: customer-side", idempotency_key="escalation:42:a"
    )
    again = await client.add_account_note(
        ACME, title=title, body="Reason: customer-side", idempotency_key="escalation:42:a"
    )
    other_case = await client.add_account_note(ACME, title=title.upper(), body="another note")

    assert again == first
    assert other_case != first
    notes = await client.list_account_notes(ACME)
    assert [note.title for note in notes] == [title, title.upper()]
    assert len(served.emulator.org.records["Note"]) == 2


async def test_account_note_quotes_its_title_and_keeps_a_long_body(
    client: SalesforceClient,
) -> None:
    title = "O'Neil \\ 100%_"
    note_id = await client.add_account_note(ACME, title=title, body="b" * 40000)

    assert await client.add_account_note(ACME, title=title, body="b") == note_id
    [note] = await client.list_account_notes(ACME)
    assert (note.title, len(note.body)) == (title, 32000)


async def test_account_note_errors(client: SalesforceClient) -> None:
    with pytest.raises(UpstreamNotFound):
        await client.add_account_note("../../etc", title="x", body="y")
    with pytest.raises(UpstreamInvalid):
        await client.add_account_note(NOT_AN_ACCOUNT, title="x", body="y")
    with pytest.raises(UpstreamInvalid):
        await client.add_account_note("001ak0000000000AAA", title="x", body="y")
    assert await client.list_account_notes(GLOBEX) == []
