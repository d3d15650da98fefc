"""Contracts and renewal opportunities through `SalesforceClient` against the emulator."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from contracts.errors import UpstreamNotFound
from sandbox.salesforce.ids import seeded_id
from system_apis.crm import CrmContractsPort
from system_apis.crm.port import ContractCreate, RenewalCreate, RenewalLine
from system_apis.crm.salesforce import SalesforceClient
from tests.system_apis.crm.salesforce.conftest import Served

ACME = seeded_id("Account", "acme")
GLOBEX = seeded_id("Account", "globex")
ACME_PLATFORM = seeded_id("Opportunity", "acme-platform")


def _contract(start: date = date(2026, 11, 2), term: int = 12) -> ContractCreate:
    return ContractCreate(
        customer_id=ACME,
        deal_id=ACME_PLATFORM,
        start_date=start,
        term_months=term,
        currency="USD",
    )


def _renewal(close: date) -> RenewalCreate:
    return RenewalCreate(
        customer_id=ACME,
        renews_deal_id=ACME_PLATFORM,
        name="Acme - Renewal",
        close_date=close,
        currency="USD",
        term_months=12,
        legal_entity="US01",
        lines=[
            RenewalLine(product_code="PLAT-STD", quantity=1, unit_amount=49_000),
            RenewalLine(product_code="SEAT", quantity=25, unit_amount=1_150),
        ],
    )


def test_client_implements_the_contracts_port(client: SalesforceClient) -> None:
    assert isinstance(client, CrmContractsPort)


async def test_contract_is_created_once_and_reads_with_the_deals_lines(
    served: Served, client: SalesforceClient
) -> None:
    first = await client.upsert_contract(_contract(), external_id="contract:x")
    again = await client.upsert_contract(_contract(), external_id="contract:x")
    assert first[1] is True and again == (first[0], False)
    contract = await client.get_contract(first[0])
    assert contract.status == "activated"
    assert (contract.start_date, contract.end_date, contract.term_months) == (
        date(2026, 11, 2),
        date(2027, 11, 1),
        12,
    )
    assert contract.customer_id == ACME and contract.deal_id == ACME_PLATFORM
    assert contract.legal_entity == "US01" and contract.currency == "USD"
    assert {(line.product_code, line.quantity) for line in contract.lines} == {
        ("PLAT-STD", 1),
        ("SEAT", 20),
        ("ONBOARD", 1),
    }
    rows = served.emulator.org.records["Contract"]
    assert len(rows) == 1


async def test_contracts_filter_by_account_entity_and_end_date(client: SalesforceClient) -> None:
    made, _ = await client.upsert_contract(_contract(), external_id="contract:a")
    page = await client.list_contracts(customer_id=ACME)
    assert [c.id for c in page.data] == [made]
    assert (await client.list_contracts(customer_id=GLOBEX)).data == []
    assert (await client.list_contracts(legal_entities={"DE01"})).data == []
    assert [c.id for c in (await client.list_contracts(legal_entities={"US01"})).data] == [made]
    window = await client.list_contracts(ending_from=date(2027, 10, 1), ending_to=date(2027, 11, 1))
    assert [c.id for c in window.data] == [made]
    assert (await client.list_contracts(ending_from=date(2027, 11, 2))).data == []
    with pytest.raises(UpstreamNotFound):
        await client.get_contract(seeded_id("Contract", "missing"))


async def test_renewal_opportunity_is_made_once_even_at_once(
    served: Served, client: SalesforceClient
) -> None:
    results = await asyncio.gather(
        client.upsert_renewal(_renewal(date(2027, 11, 1)), external_id="renewal:c1"),
        client.upsert_renewal(_renewal(date(2027, 11, 1)), external_id="renewal:c1"),
    )
    assert results[0][0] == results[1][0]
    assert sorted(created for _, created in results) == [False, True]
    renewals = await client.list_renewals(ACME)
    assert [r.id for r in renewals] == [results[0][0]]
    renewal = renewals[0]
    assert renewal.deal_type == "Renewal" and renewal.stage == "Prospecting"
    assert renewal.renewal_of == ACME_PLATFORM and renewal.close_date == date(2027, 11, 1)
    assert renewal.contract_term_months == 12
    assert sorted((li.product_code, li.quantity, li.unit_amount) for li in renewal.lines) == [
        ("PLAT-STD", 1, 49_000),
        ("SEAT", 25, 1_150),
    ]
    assert renewal.amount == 49_000 + 25 * 1_150


async def test_renewal_assessment_and_churn_are_written(client: SalesforceClient) -> None:
    opportunity, _ = await client.upsert_renewal(
        _renewal(date(2027, 11, 1)), external_id="renewal:c2"
    )
    await client.assess_renewal(opportunity, risk="high", context="2 urgent cases")
    deal = await client.get_deal(opportunity)
    assert (deal.renewal_risk, deal.renewal_context) == ("high", "2 urgent cases")
    await client.mark_churned(ACME)
    assert (await client.get_account(ACME)).status == "churned"
