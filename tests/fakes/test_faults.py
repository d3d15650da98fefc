"""Fault injection and the call and write records every fake shares."""

from __future__ import annotations

import pytest

from contracts.errors import UpstreamUnavailable
from contracts.v1 import CustomerCreate
from tests.fakes import FakeErp

ACME = CustomerCreate(legal_name="Acme Robotics Inc.", legal_entity="US01", currency="USD")


async def test_injected_fault_is_raised_once_and_writes_nothing() -> None:
    erp = FakeErp()
    erp.fail_next("upsert_customer", erp.unavailable(retry_after=2.0))
    with pytest.raises(UpstreamUnavailable) as caught:
        await erp.upsert_customer(ACME, external_id="acct-acme")
    assert (caught.value.vendor, caught.value.retry_after) == ("netsuite", 2.0)
    assert erp.customers == {} and erp.writes == []
    customer = await erp.upsert_customer(ACME, external_id="acct-acme")
    assert list(erp.customers) == [customer.id]
    assert erp.calls == ["upsert_customer", "upsert_customer"]


async def test_applied_fault_loses_the_answer_and_the_retry_finds_the_record() -> None:
    erp = FakeErp()
    erp.fail_next("upsert_customer", erp.unavailable(timeout=True), applied=True)
    with pytest.raises(UpstreamUnavailable):
        await erp.upsert_customer(ACME, external_id="acct-acme")
    assert len(erp.customers) == 1
    retried = await erp.upsert_customer(ACME, external_id="acct-acme")
    assert list(erp.customers) == [retried.id]
    assert erp.writes == [("upsert_customer", "acct-acme")]


async def test_fault_repeats_as_often_as_asked_then_clears() -> None:
    erp = FakeErp()
    erp.fail_next("list_legal_entities", erp.unavailable(), times=2)
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await erp.list_legal_entities()
    assert len(await erp.list_legal_entities()) == 2
    erp.fail_next("list_legal_entities", erp.unavailable())
    erp.clear_faults()
    assert len(await erp.list_legal_entities()) == 2


async def test_faults_are_per_method() -> None:
    erp = FakeErp()
    erp.fail_next("get_customer", erp.unavailable())
    customer = await erp.upsert_customer(ACME, external_id="acct-acme")
    with pytest.raises(UpstreamUnavailable):
        await erp.get_customer(customer.id)
    assert (await erp.get_customer(customer.id)).id == customer.id
