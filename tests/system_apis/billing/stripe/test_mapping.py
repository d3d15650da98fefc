"""Mapping round trips: contract -> Stripe wire -> contract keeps what Stripe carries.

The round trips go through the emulator (in process), so the form encoding, the emulator's
storage and the decoding all take part; money conversions are checked on their own too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.v1 import (
    AddressInput,
    CreditNoteCreate,
    CustomerCreate,
    Price,
    PriceTier,
    RecurringInterval,
    SubscriptionCreate,
    SubscriptionItemInput,
)
from gateway.sandbox_wiring import stripe_sandbox_credentials as sandbox_credentials
from sandbox.stripe import StripeEmulator
from sandbox.stripe.emulator import price_id_for, product_id_for
from sandbox.stripe.forms import parse_form
from system_apis.billing.stripe import StripeClient
from system_apis.billing.stripe._form import encode_form
from system_apis.billing.stripe.mapping import to_minor_units, to_stripe_amount

ROUND_TRIPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EMULATOR = StripeEmulator(rate_limit_per_second=None)

text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(lambda value: value.strip() == value and value != "")
emails = st.builds(
    lambda user, domain: f"{user}@{domain}.test",
    st.from_regex(r"[a-z0-9.]{1,12}", fullmatch=True),
    st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
)
countries = st.sampled_from(["US", "DE", "NL", "JP", "GB"])
addresses = st.builds(
    AddressInput,
    line1=st.none() | text,
    line2=st.none() | text,
    city=st.none() | text,
    region=st.none() | text,
    postal_code=st.none() | text,
    country=st.none() | countries,
)


@asynccontextmanager
async def sandbox() -> AsyncIterator[StripeClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=EMULATOR.vendor)) as http:
        yield StripeClient(http, credentials=sandbox_credentials("http://stripe.test"))


# money --------------------------------------------------------------------------------------


@given(
    minor=st.integers(min_value=-(10**12), max_value=10**12),
    currency=st.sampled_from(["USD", "EUR", "JPY", "KWD", "ISK", "UGX", "HUF", "CLF"]),
)
def test_amounts_round_trip_exactly(minor: int, currency: str) -> None:
    assert to_minor_units(to_stripe_amount(minor, currency), currency) == minor


def test_stripe_counts_isk_in_hundredths() -> None:
    assert to_stripe_amount(5, "ISK") == 500
    assert to_stripe_amount(5, "JPY") == 5
    assert to_stripe_amount(1_250, "KWD") == 1_250
    with pytest.raises(ValueError):
        to_minor_units(150, "ISK")


# form encoding ------------------------------------------------------------------------------

leaf = st.text(max_size=10) | st.integers(min_value=0, max_value=10**9).map(str)
keys = st.from_regex(r"[a-z_]{1,8}", fullmatch=True)
nested = st.recursive(
    leaf,
    lambda inner: (
        st.dictionaries(keys, inner, min_size=1, max_size=3)
        | st.lists(st.dictionaries(keys, leaf, min_size=1, max_size=2), min_size=1, max_size=3)
    ),
    max_leaves=8,
)


def _as_lists(value: Any) -> Any:
    if isinstance(value, dict):
        if value and all(key.isdigit() for key in value):
            return [_as_lists(value[key]) for key in sorted(value, key=int)]
        return {key: _as_lists(inner) for key, inner in value.items()}
    return value


@given(params=st.dictionaries(keys, nested, min_size=1, max_size=4))
def test_bracket_form_encoding_round_trips(params: dict[str, Any]) -> None:
    encoded = urlencode(encode_form(params))
    assert _as_lists(parse_form(encoded)) == params


# customers ----------------------------------------------------------------------------------

customers = st.builds(
    CustomerCreate,
    legal_name=text,
    legal_entity=st.sampled_from(["US01", "DE01"]),
    currency=st.sampled_from(["USD", "EUR"]),
    country=st.none() | countries,
    billing_address=st.none() | addresses,
    shipping_address=st.none() | addresses,
    tax_id=st.none() | text,
    email=st.none() | emails,
    phone=st.none() | text,
    website=st.none() | text,
    payment_terms_days=st.none() | st.integers(min_value=0, max_value=365),
)


def _address_fields(address: Any) -> tuple[Any, ...] | None:
    if address is None:
        return None
    fields = (
        address.line1,
        address.line2,
        address.city,
        address.region,
        address.postal_code,
        address.country,
    )
    return fields if any(fields) else None


@ROUND_TRIPS
@given(create=customers)
async def test_customer_round_trips(create: CustomerCreate) -> None:
    async with sandbox() as stripe:
        customer = await stripe.create_customer(create, crm_account_id="001RT")

    billing = create.billing_address
    country = (billing.country if billing and billing.country else None) or create.country
    assert (customer.legal_name, customer.legal_entity, customer.currency) == (
        create.legal_name,
        create.legal_entity,
        create.currency,
    )
    assert (customer.email, customer.phone, customer.website, customer.tax_id) == (
        create.email,
        create.phone,
        create.website,
        create.tax_id,
    )
    assert customer.payment_terms_days == create.payment_terms_days
    assert customer.country == country
    if _address_fields(billing) is not None:
        assert customer.billing_address is not None
        assert _address_fields(customer.billing_address)[:5] == _address_fields(billing)[:5]  # type: ignore[index]
    assert _address_fields(customer.shipping_address) == _address_fields(create.shipping_address)
    assert customer.refs["salesforce"] == "001RT"


# prices -------------------------------------------------------------------------------------


@st.composite
def prices(draw: st.DrawFn) -> Price:
    currency = draw(st.sampled_from(["USD", "EUR", "JPY", "KWD", "ISK"]))
    intervals: list[RecurringInterval | None] = [None, "day", "week", "month", "year"]
    interval = draw(st.sampled_from(intervals))
    limit = {"day": 365, "week": 52, "month": 12, "year": 1}.get(interval or "", 1)
    count = draw(st.integers(min_value=1, max_value=limit))
    amount = st.integers(min_value=0, max_value=10**8)
    if draw(st.booleans()):
        bounds = sorted(draw(st.sets(st.integers(min_value=1, max_value=10**6), max_size=3)))
        tiers = [
            PriceTier(up_to=bound, unit_amount=draw(amount), flat_amount=draw(st.none() | amount))
            for bound in [*bounds, None]
        ]
        return Price(
            id="",
            product_id="",
            currency=currency,
            billing_scheme="tiered",
            tiers=tiers,
            tiers_mode=draw(st.sampled_from(["graduated", "volume"])),
            recurring_interval=interval,
            interval_count=count,
            product_code="SEAT",
        )
    return Price(
        id="",
        product_id="",
        currency=currency,
        unit_amount=draw(amount),
        recurring_interval=interval,
        interval_count=count,
        product_code="SEAT",
        active=draw(st.booleans()),
    )


@ROUND_TRIPS
@given(price=prices())
async def test_price_round_trips(price: Price) -> None:
    price = Price(**{**_fields(price), "product_id": product_id_for("SEAT")})
    async with sandbox() as stripe:
        created = await stripe.create_price(price)
    assert _fields(created) == {**_fields(price), "id": created.id, "refs": created.refs}


def _fields(struct: Any) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in struct.__struct_fields__}


# subscriptions ------------------------------------------------------------------------------


@st.composite
def subscriptions(draw: st.DrawFn) -> tuple[str, list[SubscriptionItemInput], dict[str, Any]]:
    currency = draw(st.sampled_from(["USD", "EUR"]))
    codes = draw(
        st.lists(st.sampled_from(["PLAT-STD", "SEAT"]), min_size=1, max_size=2, unique=True)
    )
    items = [
        SubscriptionItemInput(
            price_id=price_id_for(code, currency),
            quantity=draw(st.integers(min_value=1, max_value=500)),
        )
        for code in codes
    ]
    invoiced = draw(st.booleans())
    terms = {
        "collection_method": "send_invoice" if invoiced else "charge_automatically",
        "days_until_due": draw(st.integers(min_value=0, max_value=365)) if invoiced else None,
        "deal_id": draw(st.none() | st.from_regex(r"006[A-Za-z0-9]{12}", fullmatch=True)),
        "legal_entity": draw(st.sampled_from(["US01", "DE01"])),
    }
    return currency, items, terms


@ROUND_TRIPS
@given(case=subscriptions())
async def test_subscription_round_trips(
    case: tuple[str, list[SubscriptionItemInput], dict[str, Any]],
) -> None:
    currency, items, terms = case
    async with sandbox() as stripe:
        customer = await stripe.create_customer(
            CustomerCreate(legal_name="RT", legal_entity=terms["legal_entity"], currency=currency)
        )
        create = SubscriptionCreate(
            customer_id=customer.id, currency=currency, items=items, **terms
        )
        subscription = await stripe.create_subscription(create)

    assert subscription.customer_id == customer.id and subscription.currency == currency
    assert [(i.price_id, i.quantity) for i in subscription.items] == [
        (i.price_id, i.quantity) for i in items
    ]
    assert (subscription.collection_method, subscription.days_until_due) == (
        terms["collection_method"],
        terms["days_until_due"],
    )
    assert (subscription.deal_id, subscription.legal_entity) == (
        terms["deal_id"],
        terms["legal_entity"],
    )


# credit notes -------------------------------------------------------------------------------


@ROUND_TRIPS
@given(
    amount=st.integers(min_value=1, max_value=230_000),  # the EUR onboarding invoice
    reason=st.none()
    | st.sampled_from(
        ["duplicate", "fraudulent", "order_change", "product_unsatisfactory", "service_credit"]
    ),
    memo=st.none() | text,
)
async def test_credit_note_round_trips(amount: int, reason: Any, memo: str | None) -> None:
    async with sandbox() as stripe:
        customer = await stripe.create_customer(
            CustomerCreate(legal_name="RT", legal_entity="DE01", currency="EUR")
        )
        await stripe.create_invoice_item(
            customer_id=customer.id, price_id=price_id_for("ONBOARD", "EUR")
        )
        invoice = await stripe.finalize_invoice(
            (await stripe.create_invoice(customer_id=customer.id)).id
        )
        note = await stripe.create_credit_note(
            CreditNoteCreate(
                invoice_id=invoice.id, currency="EUR", amount=amount, reason=reason, memo=memo
            )
        )

    assert (note.invoice_id, note.customer_id, note.currency) == (invoice.id, customer.id, "EUR")
    assert (note.amount, note.reason, note.memo) == (amount, reason, memo)
    assert note.legal_entity == "DE01"
