"""FakeCrm keeps accounts, notes and deals as Salesforce does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.errors import UpstreamInvalid, UpstreamNotFound
from contracts.v1 import (
    AddressInput,
    ContactCreate,
    Customer,
    CustomerCreate,
    CustomerPatch,
    DealPatch,
)
from tests.fakes import FakeCrm

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FRESH = CustomerCreate(legal_name="Fresh Co", legal_entity="US01", currency="USD",
                       country="US", email="billing@fresh.test")


def _crm() -> tuple[FakeCrm, Customer]:
    crm = FakeCrm(clock=lambda: START)
    crm.seed_product("PLAT-STD", name="Platform Standard", prices={"USD": 50_000})
    crm.seed_product("SEAT", name="User Seat", prices={"USD": 2_500})
    acme = crm.seed_account("Acme Robotics Inc.", legal_entity="US01", currency="USD")
    return crm, acme


async def test_won_deal_amount_is_the_sum_of_its_lines() -> None:
    crm, acme = _crm()
    deal = crm.seed_deal(acme.id, name="Acme - Platform", lines=[("PLAT-STD", 1), ("SEAT", 20)],
                         updated_at=START - timedelta(days=1))
    crm.seed_deal(acme.id, name="Acme - Pilot", stage="Prospecting")
    assert (deal.amount, deal.won, deal.legal_entity) == (100_000, True, "US01")
    won = await crm.list_won_deals(since=START - timedelta(days=2))
    assert [d.id for d in won] == [deal.id]
    assert await crm.list_won_deals(since=START) == []


async def test_writing_back_a_deal_moves_its_modstamp() -> None:
    crm, acme = _crm()
    deal = crm.seed_deal(acme.id, name="Acme - Platform", lines=[("SEAT", 1)],
                         updated_at=START - timedelta(days=1))
    await crm.update_deal(deal.id, DealPatch(integration_status="synced",
                                             erp_order_number="SO1001"))
    written = crm.deals[deal.id]
    assert (written.integration_status, written.erp_order_number, written.updated_at) == (
        "synced", "SO1001", START)
    assert crm.writes == [("update_deal", deal.id)]
    await crm.update_deal(deal.id, DealPatch())  # nothing to write: no call, no write
    assert len(crm.writes) == 1


async def test_account_upsert_by_external_id_creates_once() -> None:
    crm, _ = _crm()
    first = await crm.upsert_account(FRESH, external_id="cus-fresh")
    again = await crm.upsert_account(FRESH, external_id="cus-fresh")
    assert (first[1], again) == (True, (first[0], False))
    account = crm.accounts[first[0]]
    assert (account.country, account.email) == ("US", "billing@fresh.test")
    assert crm.writes == [("upsert_account", "cus-fresh")]
    patched = await crm.update_account(first[0], CustomerPatch(
        billing_address=AddressInput(line1="1 Main St", country="DE")))
    assert (patched.country, patched.billing_address is not None) == ("DE", True)


async def test_a_note_is_keyed_by_its_title() -> None:
    crm, acme = _crm()
    note = await crm.add_account_note(acme.id, title="Credit refused", body="over limit")
    assert await crm.add_account_note(acme.id, title="Credit refused", body="again") == note
    assert [(n.title, n.body) for n in await crm.list_account_notes(acme.id)] == [
        ("Credit refused", "over limit")]
    assert crm.writes == [("add_account_note", note)]


async def test_contacts_are_created_all_or_none() -> None:
    crm, acme = _crm()
    missing = "001ZZ0000000000" + "YYA"
    with pytest.raises(UpstreamInvalid):
        await crm.create_contacts([ContactCreate(customer_id=acme.id, last_name="Reyes"),
                                   ContactCreate(customer_id=missing, last_name="Ghost")])
    assert crm.contacts == {}
    ids = await crm.create_contacts([ContactCreate(customer_id=acme.id, last_name="Reyes"),
                                     ContactCreate(customer_id=acme.id, last_name="Ito")])
    assert [c.id for c in await crm.list_contacts(acme.id)] == [ids[1], ids[0]]


async def test_ids_that_cannot_exist_are_not_found() -> None:
    crm, acme = _crm()
    with pytest.raises(UpstreamNotFound):
        await crm.get_account("not-an-id")
    with pytest.raises(UpstreamNotFound):
        await crm.get_deal(acme.id.replace("001", "006"))
    assert (await crm.get_account(acme.id[:15])).id == acme.id
