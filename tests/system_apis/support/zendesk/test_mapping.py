"""Mapping round trips: contract -> Zendesk wire -> contract keeps what Zendesk carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.v1 import ContactCreate, Customer, Entitlement, SupportCase
from system_apis.support.zendesk import mapping
from system_apis.support.zendesk._wire import (
    OrganizationWire,
    TicketEventWire,
    TicketMetricWire,
    TicketWire,
    UserWire,
)

zendesk_ids = st.integers(min_value=1, max_value=2**53)
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1,
                max_size=12)
names = st.lists(words, min_size=1, max_size=4).map(" ".join)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0))
tags = st.lists(words.map(str.lower), max_size=4)


@st.composite
def customers(draw: st.DrawFn) -> Customer:
    refs = {"zendesk": str(draw(zendesk_ids))}
    if draw(st.booleans()):
        refs["salesforce"] = "001" + draw(st.text(alphabet="ABC0123456789", min_size=12,
                                                  max_size=15))
    return Customer(
        id=refs["zendesk"], legal_name=draw(names),
        legal_entity=draw(st.sampled_from(["US01", "DE01", "JP01"])),
        currency=draw(st.sampled_from(["USD", "EUR", "JPY", "KWD"])), refs=refs,
    )


@given(customers())
def test_customer_round_trip(customer: Customer) -> None:
    body = mapping.from_customer(customer, external_id="cus_1")
    assert body["external_id"] == "cus_1"
    echoed = msgspec.convert({**body, "id": int(customer.refs["zendesk"])}, OrganizationWire)
    assert mapping.to_customer(echoed) == customer


@given(zendesk_ids, st.sampled_from(["basic", "business", "enterprise"]),
       st.integers(min_value=1, max_value=10_000), st.integers(min_value=0, max_value=100),
       st.integers(min_value=0, max_value=100))
def test_entitlement_round_trip(org: int, plan: str, sla: int, per_breach: int,
                                cap: int) -> None:
    entitlement = Entitlement(id=str(org), organization_id=str(org), customer_id="cus_1",
                              plan=plan, sla_first_response_minutes=sla,
                              credit_percent_per_breach=per_breach, credit_cap_percent=cap,
                              refs={"zendesk": str(org)})
    body = mapping.from_entitlement(entitlement)["organization_fields"]
    echoed = OrganizationWire(id=org, name="x", external_id="cus_1", organization_fields=body)
    assert mapping.to_entitlement(echoed) == entitlement


@st.composite
def cases(draw: st.DrawFn) -> SupportCase:
    ticket = draw(zendesk_ids)
    created = draw(moments)
    return SupportCase(
        id=str(ticket), organization_id=str(draw(zendesk_ids)), subject=draw(names),
        description=draw(names),
        priority=draw(st.sampled_from(["low", "normal", "high", "urgent"])),
        status=draw(st.sampled_from(["new", "open", "pending", "hold", "solved", "closed"])),
        created_at=created, updated_at=created + timedelta(minutes=draw(st.integers(0, 10**6))),
        tags=draw(tags), refs={"zendesk": str(ticket)},
    )


@given(cases())
def test_support_case_round_trip(case: SupportCase) -> None:
    body = mapping.from_support_case(case)
    # What Zendesk adds when it stores the write: id, times, the first comment as description.
    stored = {**body, "id": int(case.id), "created_at": case.created_at.isoformat(),
              "updated_at": case.updated_at.isoformat() if case.updated_at else None,
              "description": body["comment"]["body"]}
    assert mapping.to_support_case(msgspec.convert(stored, TicketWire)) == case


@given(st.lists(words, min_size=1, max_size=3).map(" ".join), words,
       st.emails(), zendesk_ids)
def test_contact_round_trip(first: str, last: str, email: str, user: int) -> None:
    contact = ContactCreate(customer_id="cus_1", first_name=first, last_name=last, email=email)
    body = mapping.from_contact_create(contact, organization_id=7)
    echoed = msgspec.convert({**body, "id": user}, UserWire)
    read = mapping.to_contact(echoed, customer_id="cus_1")
    assert (read.first_name, read.last_name, read.email, read.customer_id) == (
        first, last, email, "cus_1")
    assert read.refs == {"zendesk": str(user)}


def test_first_response_is_creation_plus_reply_minutes() -> None:
    created = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
    metric = msgspec.convert({"ticket_id": 1, "reply_time_in_minutes": {"calendar": 135}},
                             TicketMetricWire)
    assert mapping.first_response_at(created, metric) == created + timedelta(minutes=135)
    unanswered = msgspec.convert({"ticket_id": 1, "reply_time_in_minutes": {"calendar": None}},
                                 TicketMetricWire)
    assert mapping.first_response_at(created, unanswered) is None


def test_ticket_statuses_and_priorities() -> None:
    base = {"id": 9, "created_at": "2026-01-01T00:00:00Z", "subject": "s"}
    deleted = msgspec.convert({**base, "status": "deleted", "priority": None}, TicketWire)
    case = mapping.to_support_case(deleted)
    assert (case.status, case.priority, case.severity) == ("closed", "normal", "sev3")
    with pytest.raises(mapping.MappingError):
        mapping.to_support_case(msgspec.convert({**base, "status": "weird"}, TicketWire))


def test_organization_fields_arrive_as_numbers_or_strings() -> None:
    org = msgspec.convert({"id": 1, "name": "n", "organization_fields": {
        "plan": "gold", "sla_first_response_minutes": "90", "credit_percent_per_breach": 5.0,
        "credit_cap_percent": 20, "legal_entity": "DE01", "currency": "eur"}}, OrganizationWire)
    entitlement = mapping.to_entitlement(org)
    assert entitlement is not None
    assert (entitlement.sla_first_response_minutes, entitlement.credit_percent_per_breach) == (
        90, 5)
    assert mapping.to_customer(org).currency == "EUR"
    no_entity = OrganizationWire(id=2, name="n", organization_fields={})
    with pytest.raises(mapping.MappingError):
        mapping.to_customer(no_entity)
    assert mapping.to_customer(no_entity, default_legal_entity="US01",
                               currency_by_entity={"US01": "USD"}).currency == "USD"


def test_ticket_event_payload_maps_to_a_case() -> None:
    event = msgspec.convert({
        "id": "e-1", "type": "zen:event-type:ticket.status_changed",
        "time": "2026-11-20T10:00:00Z",
        "detail": {"id": "42", "status": "SOLVED", "priority": "HIGH", "subject": "s",
                   "organization_id": "7", "created_at": "2026-11-19T10:00:00Z",
                   "tags": ["a"]},
        "event": {"current": "SOLVED", "previous": "OPEN"}}, TicketEventWire)
    case = mapping.to_support_case_from_event(event)
    assert (case.id, case.status, case.priority, case.organization_id) == ("42", "solved",
                                                                          "high", "7")
