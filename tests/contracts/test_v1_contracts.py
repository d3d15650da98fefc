"""The v1 Structs: shapes, invariants and wire behaviour every layer relies on."""

from __future__ import annotations

import importlib
import inspect
import re
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

import msgspec
import msgspec.inspect as mi
import pytest

from contracts import v1
from contracts.schema import entities, published
from tests.contracts.samples import SAMPLES

ENTITY_NAMES = (
    "LegalEntity", "Customer", "Contact", "Product", "Price", "Deal", "DealLine", "Contract",
    "ContractLine", "Subscription", "SubscriptionItem", "Invoice", "InvoiceLine", "Payment",
    "CreditNote", "CreditNoteLine", "SupportCase", "Entitlement", "SalesOrder", "CreditMemo",
    "JournalEntry", "ApprovalTask",
)
LEGAL_ENTITY_REQUIRED = (
    "Customer", "SalesOrder", "Invoice", "CreditMemo", "JournalEntry", "Payment",
)
INPUTS = tuple(name for name in published("v1") if name.endswith(("Create", "Patch", "Input")))
V1_MODULES = ("base", "party", "catalog", "sales", "billing", "support", "erp", "events",
              "problem", "page")


def _fields(struct: type[msgspec.Struct]) -> dict[str, mi.Field]:
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    return {field.name: field for field in info.fields}


def _plain(node: mi.Type) -> mi.Type:
    """The type under any Annotated constraints."""
    while isinstance(node, mi.Metadata):
        node = node.type
    return node


def _walk(node: mi.Type, seen: set[type]) -> Iterator[mi.Type]:
    """Yield every msgspec type node reachable from `node`."""
    node = _plain(node)
    yield node
    if isinstance(node, mi.StructType):
        if node.cls in seen:
            return
        seen.add(node.cls)
        for field in node.fields:
            yield from _walk(field.type, seen)
    elif isinstance(node, mi.UnionType):
        for member in node.types:
            yield from _walk(member, seen)
    elif isinstance(node, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        yield from _walk(node.item_type, seen)
    elif isinstance(node, mi.DictType):
        yield from _walk(node.key_type, seen)
        yield from _walk(node.value_type, seen)
    elif isinstance(node, mi.TupleType):
        for item in node.item_types:
            yield from _walk(item, seen)


def _all_v1_structs() -> Iterator[Any]:
    for module_name in V1_MODULES:
        module = importlib.import_module(f"contracts.v1.{module_name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, msgspec.Struct):
                yield value
    yield v1.Page[v1.Customer]


def test_exports_match_all():
    exported = {name for name in dir(v1) if not name.startswith("_")}
    assert set(v1.__all__) <= exported
    for name in published("v1"):
        assert name in v1.__all__
    assert {"Money", "Page", *ENTITY_NAMES, "EventEnvelope", "Problem"} <= set(v1.__all__)


@pytest.mark.parametrize("name", ENTITY_NAMES)
def test_every_entity_has_canonical_id_and_refs(name):
    struct = getattr(v1, name)
    assert name in entities("v1")
    fields = _fields(struct)
    assert isinstance(_plain(fields["id"].type), mi.StrType) and fields["id"].required
    refs = _plain(fields["refs"].type)
    assert isinstance(refs, mi.DictType)
    assert isinstance(refs.key_type, mi.StrType) and isinstance(refs.value_type, mi.StrType)


def test_every_published_struct_with_an_id_is_an_entity_with_refs():
    for name, struct in published("v1").items():
        if "id" in struct.__struct_fields__ and name != "EventEnvelope":
            assert "refs" in struct.__struct_fields__, name


@pytest.mark.parametrize("name", LEGAL_ENTITY_REQUIRED)
def test_legal_entity_is_explicit_and_required(name):
    field = _fields(getattr(v1, name))["legal_entity"]
    assert field.required and isinstance(_plain(field.type), mi.StrType)


def test_legal_entity_is_optional_on_deals():
    field = _fields(v1.Deal)["legal_entity"]
    assert not field.required and field.default is None


def test_no_field_anywhere_is_a_float():
    offenders = []
    for struct in _all_v1_structs():
        for node in _walk(mi.type_info(struct), set()):
            if isinstance(node, mi.FloatType | mi.DecimalType):
                offenders.append(struct.__name__)
    assert offenders == []


class _Leaf(msgspec.Struct):
    rate: Annotated[float, msgspec.Meta(ge=0)] | None = None


class _Tree(msgspec.Struct):
    leaves: dict[str, list[_Leaf]]


def test_the_float_walk_sees_nested_floats():
    nodes = list(_walk(mi.type_info(_Tree), set()))
    assert any(isinstance(node, mi.FloatType) for node in nodes)


def test_every_struct_is_frozen_and_keyword_only():
    for alias in _all_v1_structs():
        struct = typing.get_origin(alias) or alias
        assert struct.__struct_config__.frozen, struct.__name__
        parameters = inspect.signature(struct).parameters.values()
        assert all(p.kind is p.KEYWORD_ONLY for p in parameters), struct.__name__


def test_field_names_are_snake_case_on_the_wire():
    for struct in _all_v1_structs():
        for field in _fields(typing.get_origin(struct) or struct).values():
            name = field.encode_name
            assert re.fullmatch("[a-z][a-z0-9_]*", name), (struct, name)


@pytest.mark.parametrize("name", INPUTS)
def test_input_structs_refuse_unknown_fields(name):
    struct = published("v1")[name]
    assert struct.__struct_config__.forbid_unknown_fields
    with pytest.raises(msgspec.ValidationError, match="unknown field `legal_nmae`"):
        msgspec.json.decode(b'{"legal_nmae": "typo"}', type=struct)


def test_customer_patch_keeps_absent_distinct_from_null():
    patch = msgspec.json.decode(b'{"phone": null, "risk_level": "high"}', type=v1.CustomerPatch)
    assert patch.fields_set() == ("phone", "risk_level")
    assert patch.phone is None and patch.website is msgspec.UNSET
    assert msgspec.json.encode(patch) == b'{"phone":null,"risk_level":"high"}'


def test_customer_patch_refuses_bad_values():
    for body in (
        b'{"risk_level": "extreme"}',
        b'{"payment_status": "paid_up"}',
        b'{"billing_address": {"country": "USA"}}',
        b'{"billing_address": {"zip": "94105"}}',
        b'{"legal_name": ""}',
        b'{"email": "not-an-email"}',
    ):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(body, type=v1.CustomerPatch)


def test_entity_refuses_unknown_currency_and_float_amounts():
    body = msgspec.json.encode(SAMPLES["Invoice"])
    assert msgspec.json.decode(body, type=v1.Invoice) == SAMPLES["Invoice"]
    unknown_currency = body.replace(b'"USD"', b'"XYZ"')
    float_total = body.replace(b'"total":54125', b'"total":541.25')
    for bad in (unknown_currency, float_total):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(bad, type=v1.Invoice)


def test_timestamps_must_carry_a_timezone():
    body = msgspec.json.encode(SAMPLES["SupportCase"]).replace(b"+00:00", b"").replace(b"Z", b"")
    with pytest.raises(msgspec.ValidationError, match="timezone"):
        msgspec.json.decode(body, type=v1.SupportCase)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_round_trip_through_json(name):
    sample = SAMPLES[name]
    assert msgspec.json.decode(msgspec.json.encode(sample), type=type(sample)) == sample


@pytest.mark.parametrize(
    ("priority", "severity"),
    [("urgent", "sev1"), ("high", "sev2"), ("normal", "sev3"), ("low", "sev4")],
)
def test_case_severity_follows_priority(priority, severity):
    case = v1.SupportCase(
        id="c", subject="s", priority=priority, status="new", created_at=datetime.now(UTC)
    )
    assert case.severity == severity == v1.severity_for(priority)
    decoded = msgspec.json.decode(
        msgspec.json.encode({"id": "c", "subject": "s", "priority": priority, "status": "new",
                             "created_at": "2026-01-01T00:00:00Z"}),
        type=v1.SupportCase,
    )
    assert decoded.severity == severity


def test_event_envelope_speaks_cloudevents_json():
    encoded = msgspec.json.decode(msgspec.json.encode(SAMPLES["EventEnvelope"]))
    assert encoded == {
        "specversion": "1.0", "id": "evt_1", "source": "/process/v1/flows",
        "type": "invoice.paid", "time": "2026-11-02T09:30:00Z", "correlationid": "c0ffee",
        "data": {"invoice_id": "inv_1"},
    }
    with pytest.raises(msgspec.ValidationError, match="specversion"):
        msgspec.json.decode(b'{"id": "1", "source": "s", "type": "t"}', type=v1.EventEnvelope)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(
            b'{"specversion": "0.3", "id": "1", "source": "s", "type": "t"}',
            type=v1.EventEnvelope,
        )


def test_problem_omits_absent_members():
    assert msgspec.json.encode(v1.Problem(title="Not found", status=404)) == (
        b'{"title":"Not found","status":404}'
    )
    assert msgspec.json.decode(msgspec.json.encode(SAMPLES["Problem"])) == {
        "type": "https://erp-gateway.dev/problems/validation", "title": "Invalid request",
        "status": 422, "errors": [{"pointer": "/email", "detail": "not an email"}],
        "correlation_id": "c0ffee",
    }


def test_page_is_generic_and_encodes():
    customer = SAMPLES["Customer"]
    assert isinstance(customer, v1.Customer)
    page = v1.Page[v1.Customer](data=[customer], next_cursor="abc")
    body = msgspec.json.encode(page)
    assert msgspec.json.decode(body, type=v1.Page[v1.Customer]) == page
    assert msgspec.json.decode(body)["next_cursor"] == "abc"
    last = msgspec.json.decode(b'{"data": []}', type=v1.Page[v1.Invoice])
    assert last.data == [] and last.next_cursor is None
    schema = msgspec.json.schema(v1.Page[v1.Customer])
    page_def = schema["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    assert page_def["required"] == ["data"]
    assert page_def["properties"]["data"]["items"] == {"$ref": "#/$defs/Customer"}


def test_journal_entry_input_must_balance():
    lines = [{"account": "4000", "credit": 100}, {"account": "1200", "debit": 90}]
    body = {"legal_entity": "US01", "currency": "USD", "date": "2026-11-30", "lines": lines,
            "external_id": "je:1"}
    with pytest.raises(msgspec.ValidationError, match="does not balance"):
        msgspec.json.decode(msgspec.json.encode(body), type=v1.JournalEntryCreate)
    lines[1]["debit"] = 100
    entry = msgspec.json.decode(msgspec.json.encode(body), type=v1.JournalEntryCreate)
    assert sum(line.debit for line in entry.lines) == 100


def test_credit_note_input_takes_amount_or_lines():
    base = {"invoice_id": "inv_1", "currency": "USD"}
    for extra in ({}, {"amount": 100, "lines": [{"amount": 100}]}):
        with pytest.raises(msgspec.ValidationError, match="either amount or lines"):
            msgspec.json.decode(msgspec.json.encode({**base, **extra}), type=v1.CreditNoteCreate)
    body = msgspec.json.encode({**base, "amount": 100})
    note = msgspec.json.decode(body, type=v1.CreditNoteCreate)
    assert note.amount == 100


def test_approval_rejection_needs_a_reason():
    with pytest.raises(msgspec.ValidationError, match="reason"):
        msgspec.json.decode(b'{"decision": "rejected"}', type=v1.ApprovalDecision)
    decision = msgspec.json.decode(b'{"decision": "approved"}', type=v1.ApprovalDecision)
    assert decision.reason is None


def test_timestamps_are_held_in_utc_whatever_offset_they_came_with():
    body = (
        b'{"id": "c", "subject": "s", "status": "open", "created_at": "2026-01-01T10:00:00+02:00",'
        b' "updated_at": "2026-01-01T08:30:00Z"}'
    )
    case = msgspec.json.decode(body, type=v1.SupportCase)
    assert case.created_at == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    assert case.created_at.tzinfo is UTC
    assert msgspec.json.decode(msgspec.json.encode(case))["created_at"] == "2026-01-01T08:00:00Z"
    event = v1.EventEnvelope(
        specversion="1.0", id="1", source="s", type="t",
        time=datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=-5))),
    )
    assert event.time == datetime(2026, 1, 1, 6, 0, tzinfo=UTC) and event.time.tzinfo is UTC


def test_naive_timestamps_are_refused_in_code_too():
    with pytest.raises(ValueError, match="timezone-aware"):
        v1.SupportCase(id="c", subject="s", status="new", created_at=datetime(2026, 1, 1))
