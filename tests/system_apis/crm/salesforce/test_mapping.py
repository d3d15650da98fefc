"""Mapping round trips: contract -> Salesforce JSON -> contract keeps what Salesforce carries."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.money import CURRENCY_EXPONENTS
from contracts.v1 import (
    Address,
    AddressInput,
    ContactCreate,
    Customer,
    CustomerPatch,
    DealLine,
    DealPatch,
)
from sandbox.salesforce.ids import counter_id
from system_apis.crm.salesforce.mapping import (
    AccountRecord,
    ContactRecord,
    LineRecord,
    MappingError,
    OpportunityRecord,
    from_contact_create,
    from_customer,
    from_customer_patch,
    from_deal_patch,
    to_contact,
    to_customer,
    to_deal,
    to_deal_line,
    to_money_decimal,
)

_encoder = msgspec.json.Encoder(decimal_format="number")

ids = st.integers(min_value=1, max_value=10**9).map(lambda n: counter_id("Account", n))
text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r"),
    min_size=1,
    max_size=30,
)
maybe_text = st.none() | text
countries = st.sampled_from(["US", "DE", "NL", "JP", "KW"])
currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))


@st.composite
def addresses(draw: st.DrawFn) -> Address | None:
    line1 = draw(maybe_text)
    address = Address(
        line1=line1,
        line2=draw(maybe_text) if line1 else None,
        city=draw(maybe_text),
        region=draw(maybe_text),
        postal_code=draw(maybe_text),
        country=draw(st.none() | countries),
    )
    return None if address == Address() else address


@st.composite
def customers(draw: st.DrawFn) -> Customer:
    sf_id = draw(ids)
    billing = draw(addresses())
    refs = {"salesforce": sf_id}
    erp = draw(st.none() | st.from_regex(r"\A[0-9]{1,6}\Z"))
    if erp:
        refs["netsuite"] = erp
    return Customer(
        id=sf_id,
        legal_name=draw(text),
        legal_entity=draw(st.sampled_from(["US01", "DE01"])),
        currency=draw(currencies),
        country=billing.country if billing else None,
        billing_address=billing,
        shipping_address=draw(addresses()),
        tax_id=draw(maybe_text),
        email=draw(st.none() | st.emails()),
        phone=draw(maybe_text),
        website=draw(maybe_text),
        payment_terms_days=draw(st.none() | st.integers(min_value=0, max_value=365)),
        payment_status=draw(st.none() | st.sampled_from(["current", "past_due", "delinquent"])),
        risk_level=draw(st.none() | st.sampled_from(["low", "medium", "high"])),
        refs=refs,
    )


def _over_the_wire(body: dict[str, Any], record_type: type[Any]) -> Any:
    """What the client would decode after Salesforce echoed these fields back as JSON."""
    return msgspec.json.decode(_encoder.encode(body), type=record_type)


@given(customers())
def test_customer_round_trips_through_an_account(customer: Customer) -> None:
    body = {"Id": customer.id, **from_customer(customer)}
    assert to_customer(_over_the_wire(body, AccountRecord)) == customer


@given(customers(), st.data())
def test_customer_patch_lands_on_the_account(customer: Customer, data: st.DataObject) -> None:
    fields: dict[str, Any] = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "legal_name": text,
                "phone": maybe_text,
                "website": maybe_text,
                "tax_id": maybe_text,
                "payment_terms_days": st.none() | st.integers(0, 365),
                "risk_level": st.none() | st.sampled_from(["low", "medium", "high"]),
                "shipping_address": addresses().map(_as_input),
            },
        )
    )
    patch = CustomerPatch(**fields)
    body = {"Id": customer.id, **from_customer(customer), **from_customer_patch(patch)}
    patched = to_customer(_over_the_wire(body, AccountRecord))
    for name in patch.fields_set():
        wanted = getattr(patch, name)
        assert getattr(patched, name) == (
            wanted.to_address() if isinstance(wanted, AddressInput) else wanted
        )


def _as_input(address: Address | None) -> AddressInput | None:
    return None if address is None else AddressInput(**msgspec.structs.asdict(address))


@given(currencies, st.integers(min_value=-(10**12), max_value=10**12))
def test_money_converts_exactly_in_every_currency(currency: str, minor: int) -> None:
    decimal = to_money_decimal(minor, currency)
    assert -decimal.as_tuple().exponent == CURRENCY_EXPONENTS[currency]  # type: ignore[operator]
    line = _over_the_wire(
        {"Id": "00kak0000000001AAA", "Quantity": 1, "UnitPrice": decimal, "TotalPrice": decimal},
        LineRecord,
    )
    mapped = to_deal_line(line, currency)
    assert (mapped.unit_amount, mapped.total_amount) == (minor, minor)


@given(currencies, st.integers(1, 500), st.integers(0, 10**9))
def test_deal_line_round_trips(currency: str, quantity: int, unit: int) -> None:
    line = DealLine(
        id="00kak0000000001AAA",
        product_id="01tak0000000001AAA",
        product_code="SEAT",
        quantity=quantity,
        unit_amount=unit,
        total_amount=quantity * unit,
        refs={"salesforce": "00kak0000000001AAA"},
    )
    wire = {
        "Id": line.id,
        "Product2Id": line.product_id,
        "ProductCode": line.product_code,
        "Quantity": Decimal(quantity).quantize(Decimal("0.0")),
        "UnitPrice": to_money_decimal(unit, currency),
        "TotalPrice": to_money_decimal(quantity * unit, currency),
    }
    assert to_deal_line(_over_the_wire(wire, LineRecord), currency) == line


@given(ids, text, maybe_text, st.none() | st.emails(), maybe_text, maybe_text)
def test_contact_round_trips(
    account: str,
    last: str,
    first: str | None,
    email: str | None,
    phone: str | None,
    title: str | None,
) -> None:
    create = ContactCreate(
        customer_id=account, last_name=last, first_name=first, email=email, phone=phone, title=title
    )
    body = {"Id": "003ak0000000001AAA", **from_contact_create(create)}
    contact = to_contact(_over_the_wire(body, ContactRecord))
    for name in ("customer_id", "last_name", "first_name", "email", "phone", "title"):
        assert getattr(contact, name) == getattr(create, name)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "erp_order_number": maybe_text,
            "billing_subscription_id": maybe_text,
            "integration_status": st.none()
            | st.sampled_from(["pending", "in_progress", "synced", "failed"]),
            "stage": text,
            "close_date": st.none() | st.dates(min_value=date(2000, 1, 1)),
        },
    )
)
def test_deal_patch_lands_on_the_opportunity(fields: dict[str, Any]) -> None:
    patch = DealPatch(**fields)
    base = {
        "Id": "006ak0000000001AAA",
        "AccountId": "001ak0000000001AAA",
        "Name": "Deal",
        "StageName": "Prospecting",
        "CurrencyIsoCode": "USD",
    }
    deal = to_deal(_over_the_wire({**base, **from_deal_patch(patch)}, OpportunityRecord), [])
    for name in patch.fields_set():
        assert getattr(deal, name) == getattr(patch, name)


def test_picklist_labels_map_to_tokens_and_unknowns_to_none() -> None:
    record = AccountRecord(
        id="001ak0000000001AAA",
        name="A",
        legal_entity="US01",
        payment_status="Past Due",
        risk_level="Extreme",
    )
    customer = to_customer(record)
    assert customer.payment_status == "past_due"
    assert customer.risk_level is None


def test_records_salesforce_cannot_map_are_refused() -> None:
    with pytest.raises(MappingError):
        to_customer(AccountRecord(id="001ak0000000001AAA", name="No entity"))
    assert (
        to_customer(
            AccountRecord(id="001ak0000000001AAA", name="Defaulted"), default_legal_entity="US01"
        ).legal_entity
        == "US01"
    )
    with pytest.raises(MappingError):
        to_deal_line(LineRecord(id="00kak0000000001AAA", quantity=Decimal("1.5")), "USD")
    with pytest.raises(MappingError):
        to_deal_line(
            LineRecord(id="00kak0000000001AAA", quantity=Decimal(1), unit_price=Decimal("1.5")),
            "JPY",
        )
