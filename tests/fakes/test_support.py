"""FakeSupport keeps organizations and tickets as Zendesk does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from contracts.errors import (
    UpstreamConflict,
    UpstreamInvalid,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from contracts.v1 import Customer, Entitlement, SupportCaseCreate, SupportCasePatch
from tests.fakes import FakeSupport

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
GOLD = Entitlement(id="", plan="enterprise", sla_first_response_minutes=60,
                   credit_percent_per_breach=5, credit_cap_percent=20)
CASE = SupportCaseCreate(customer_id="cus-acme", subject="Down", description="API is down",
                         priority="urgent", requester_email="ada@acme.test")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


async def test_first_response_is_the_first_public_staff_reply_in_whole_minutes() -> None:
    clock = Clock()
    support = FakeSupport(clock=clock)
    org = support.seed_organization("Acme", legal_entity="US01", currency="USD",
                                    external_id="cus-acme", entitlement=GOLD)
    case = await support.create_case(CASE)
    assert (case.status, case.severity, case.organization_id) == ("new", "sev1", org)
    clock.now = START + timedelta(minutes=10)
    await support.add_internal_comment(case.id, "Looking")
    assert await support.get_first_response_at(case.id) is None
    support.reply_publicly(case.id, "We are on it", at=START + timedelta(minutes=61, seconds=59))
    assert await support.get_first_response_at(case.id) == START + timedelta(minutes=61)
    assert [(c.body, c.public) for c in await support.list_comments(case.id)] == [
        ("API is down", True), ("Looking", False), ("We are on it", True)]
    entitlement = await support.get_entitlement(org)
    assert entitlement is not None and entitlement.sla_first_response_minutes == 60


async def test_case_creation_is_idempotent_by_key() -> None:
    support = FakeSupport()
    support.seed_organization("Acme", legal_entity="US01", currency="USD",
                              external_id="cus-acme")
    support.fail_next("create_case", support.unavailable(), applied=True)
    with pytest.raises(UpstreamUnavailable):
        await support.create_case(CASE, idempotency_key="esc:1")
    case = await support.create_case(CASE, idempotency_key="esc:1")
    assert list(support.cases) == [case.id] == ["1"]
    with pytest.raises(UpstreamConflict):
        await support.create_case(msgspec.structs.replace(CASE, priority="low"),
                                  idempotency_key="esc:1")
    with pytest.raises(UpstreamNotFound):
        await support.create_case(msgspec.structs.replace(CASE, customer_id="cus-unlinked"))


async def test_organization_upsert_and_refusals() -> None:
    support = FakeSupport()
    acme = Customer(id="cus-acme", legal_name="Acme", legal_entity="US01", currency="USD")
    created = await support.upsert_organization(acme, external_id="cus-acme")
    updated = await support.upsert_organization(
        msgspec.structs.replace(acme, legal_name="Acme Inc."), external_id="CUS-ACME")
    assert created.id == updated.id and updated.legal_name == "Acme Inc."
    with pytest.raises(UpstreamInvalid) as taken:
        await support.upsert_organization(msgspec.structs.replace(acme, legal_name="Acme Inc."),
                                          external_id="cus-other")
    assert taken.value.errors[0].pointer == "name"
    unmapped = support.seed_organization("No Entity")
    assert unmapped not in support.organizations
    assert [c.id for c in (await support.list_organizations()).data] == [created.id]


async def test_closed_ticket_refuses_updates() -> None:
    support = FakeSupport()
    support.seed_organization("Acme", legal_entity="US01", currency="USD",
                              external_id="cus-acme")
    case = await support.create_case(CASE)
    closed = await support.update_case(case.id, SupportCasePatch(status="closed"))
    assert closed.status == "closed"
    with pytest.raises(UpstreamInvalid):
        await support.add_internal_comment(case.id, "too late")
    with pytest.raises(UpstreamNotFound):
        await support.get_case("not-a-number")
