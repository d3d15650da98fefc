"""Stripe customers <-> canonical customers."""

from __future__ import annotations

from typing import Any

from contracts.errors import FieldError, InvalidRequest
from contracts.v1 import Address, AddressInput, Customer, CustomerCreate, CustomerPatch
from system_apis.billing.stripe._conventions import (
    DEFAULT_CURRENCY,
    META_CANONICAL_ID,
    META_CRM_ACCOUNT,
    META_CURRENCY,
    META_LEGAL_ENTITY,
    META_NETSUITE_ID,
    META_PAYMENT_TERMS,
    META_TAX_ID,
    META_WEBSITE,
    UNASSIGNED_ENTITY,
    int_or_none,
    refs,
    str_or_none,
)
from system_apis.billing.stripe._form import FormParams
from system_apis.billing.stripe._wire import AddressWire, CustomerWire

__all__ = ["from_customer_create", "from_customer_patch", "to_customer"]


def to_customer(wire: CustomerWire) -> Customer:
    """The canonical customer; legal entity and agreed currency come from metadata.

    `id` is the Stripe id; the gateway's canonical id, when written, is `refs["canonical"]`.
    """
    meta = wire.metadata
    address = _address(wire.address)
    return Customer(
        id=wire.id,
        legal_name=wire.name or wire.email or wire.id,
        legal_entity=meta.get(META_LEGAL_ENTITY) or UNASSIGNED_ENTITY,
        currency=(wire.currency or meta.get(META_CURRENCY) or DEFAULT_CURRENCY).upper(),
        country=address.country if address else None,
        billing_address=address,
        shipping_address=_address(wire.shipping.address) if wire.shipping else None,
        tax_id=meta.get(META_TAX_ID),
        email=wire.email,
        phone=wire.phone,
        website=meta.get(META_WEBSITE),
        payment_terms_days=int_or_none(meta.get(META_PAYMENT_TERMS)),
        payment_status=None
        if wire.delinquent is None
        else ("past_due" if wire.delinquent else "current"),
        refs=refs(
            wire.id,
            salesforce=meta.get(META_CRM_ACCOUNT),
            netsuite=meta.get(META_NETSUITE_ID),
            canonical=meta.get(META_CANONICAL_ID),
        ),
    )


def from_customer_create(
    create: CustomerCreate, *, crm_account_id: str | None = None, canonical_id: str | None = None
) -> FormParams:
    """`POST /v1/customers` parameters for a new customer."""
    metadata = {
        META_LEGAL_ENTITY: create.legal_entity,
        META_CURRENCY: create.currency,
        META_CRM_ACCOUNT: crm_account_id,
        META_CANONICAL_ID: canonical_id,
        META_TAX_ID: create.tax_id,
        META_WEBSITE: create.website,
        META_PAYMENT_TERMS: str_or_none(create.payment_terms_days),
    }
    address = create.billing_address
    return {
        "name": create.legal_name,
        "email": create.email,
        "phone": create.phone,
        "address": _address_params(address, country=create.country),
        "shipping": _shipping_params(create.legal_name, create.shipping_address),
        "metadata": {key: value for key, value in metadata.items() if value is not None},
    }


def from_customer_patch(patch: CustomerPatch, *, current: CustomerWire) -> FormParams:
    """`POST /v1/customers/{id}` parameters writing exactly the fields `patch` sets.

    Stripe replaces a whole address when any of it is sent, so a country-only change is
    merged into the `current` address. `payment_status` is Stripe's own (from its invoices)
    and Stripe holds no risk level: patching either here is refused.
    """
    fields = set(patch.fields_set())
    refused = sorted(fields & {"payment_status", "risk_level"})
    if refused:
        raise InvalidRequest(
            "Stripe does not take these customer fields",
            errors=[
                FieldError(pointer=f"/{name}", detail="not writable in Stripe") for name in refused
            ],
        )
    params: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for field, key in (("name", "legal_name"), ("phone", "phone"), ("email", "email")):
        if key in fields:
            params[field] = getattr(patch, key) or ""
    for key, meta in (
        ("website", META_WEBSITE),
        ("tax_id", META_TAX_ID),
        ("legal_entity", META_LEGAL_ENTITY),
        ("payment_terms_days", META_PAYMENT_TERMS),
    ):
        if key in fields:
            metadata[meta] = str_or_none(getattr(patch, key)) or ""
    if "billing_address" in fields or "country" in fields:
        params["address"] = _patched_address(patch, fields, current.address) or ""
    if "shipping_address" in fields:
        name = patch.legal_name if "legal_name" in fields else current.name
        shipping = patch.shipping_address
        given = shipping if isinstance(shipping, AddressInput) else None
        params["shipping"] = _shipping_params(str(name or ""), given) or ""
    if metadata:
        params["metadata"] = metadata
    return params


def _patched_address(
    patch: CustomerPatch, fields: set[str], current: AddressWire | None
) -> dict[str, str] | None:
    if "billing_address" in fields:
        given = patch.billing_address
        country = patch.country if isinstance(patch.country, str) else None
        return _address_params(given if isinstance(given, AddressInput) else None, country=country)
    base = _address(current)
    merged = AddressInput(
        line1=base.line1 if base else None,
        line2=base.line2 if base else None,
        city=base.city if base else None,
        region=base.region if base else None,
        postal_code=base.postal_code if base else None,
        country=patch.country if isinstance(patch.country, str) else None,
    )
    return _address_params(merged, country=None)


def _address(wire: AddressWire | None) -> Address | None:
    if wire is None:
        return None
    values = (wire.line1, wire.line2, wire.city, wire.state, wire.postal_code, wire.country)
    if not any(values):
        return None
    return Address(
        line1=wire.line1,
        line2=wire.line2,
        city=wire.city,
        region=wire.state,
        postal_code=wire.postal_code,
        country=wire.country.upper() if wire.country else None,
    )


def _address_params(address: AddressInput | None, *, country: str | None) -> dict[str, str] | None:
    if address is None and country is None:
        return None
    fields = {
        "line1": address.line1 if address else None,
        "line2": address.line2 if address else None,
        "city": address.city if address else None,
        "state": address.region if address else None,
        "postal_code": address.postal_code if address else None,
        "country": (address.country if address and address.country else None) or country,
    }
    return {key: value for key, value in fields.items() if value}


def _shipping_params(name: str, address: AddressInput | None) -> dict[str, Any] | None:
    params = _address_params(address, country=None)
    if not params:
        return None
    return {"name": name, "address": params}
