"""Which platform owns which field of which canonical entity: the system-of-record table.

The owner is the only platform a field may be written to. A mirror is a copy of the field
kept in another platform so its users see it (the CRM shows the billing payment status on the
account); only the gateway's own flows write mirrors, passing `mirror=True` to `check_write`.
A caller's direct write of a field to a platform that does not own it is refused with
`OwnershipViolation`, whose field errors name the owner.

Policy in one paragraph: the ERP (netsuite) is the financial system of record: invoices,
payments, credit memos, sales orders, journals, legal entity, tax id, payment terms, currency
and the item master. The CRM (salesforce) owns the account master (name, addresses, phone,
website, risk level), contacts, deals with their stage and lines, and contracts. Billing
(stripe) owns prices, subscriptions, credit notes, the billing-side invoice status and the
customer's payment status. Support (zendesk) owns cases and entitlements. The gateway itself
owns canonical ids, cross-references and the integration status it reports back to the CRM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

import msgspec

from contracts.errors import FieldError, OwnershipViolation

__all__ = [
    "GATEWAY",
    "OWNERS",
    "OWNERSHIP",
    "WRITABLE_SYSTEMS",
    "EntityOwnership",
    "FieldRule",
    "check_write",
    "mirrors_of",
    "owner_of",
]

GATEWAY: Final = "gateway"
"""Owner of what the gateway itself mints: canonical ids, cross-references, integration status."""

WRITABLE_SYSTEMS: tuple[str, ...] = ("salesforce", "stripe", "zendesk", "netsuite")
"""The platforms a write can go to."""

OWNERS: tuple[str, ...] = (*WRITABLE_SYSTEMS, GATEWAY)


class FieldRule(msgspec.Struct, frozen=True):
    """Who owns a field, and which other platforms keep a flow-maintained mirror of it."""

    owner: str
    mirrored_to: tuple[str, ...] = ()


class EntityOwnership(msgspec.Struct, frozen=True, kw_only=True):
    """Ownership of one entity: a default rule plus the fields that differ from it."""

    default: FieldRule
    fields: Mapping[str, FieldRule] = {}


_SF, _ST, _ZD, _NS = WRITABLE_SYSTEMS
_ALL = WRITABLE_SYSTEMS

# Every platform stores the canonical id (as its external id) and others' ids in
# cross-reference fields; only the gateway assigns them.
_IDENTITY = {
    "id": FieldRule(GATEWAY, _ALL),
    "refs": FieldRule(GATEWAY, _ALL),
}


def _entity(default: FieldRule, **fields: FieldRule) -> EntityOwnership:
    return EntityOwnership(default=default, fields=MappingProxyType({**_IDENTITY, **fields}))


OWNERSHIP: Mapping[str, EntityOwnership] = MappingProxyType(
    {
        "LegalEntity": _entity(FieldRule(_NS, (_SF, _ST))),
        "Customer": _entity(
            # Account master data is the CRM's; the customer master flow copies it out.
            FieldRule(_SF, (_NS, _ST, _ZD)),
            risk_level=FieldRule(_SF),
            legal_entity=FieldRule(_NS, (_SF, _ST)),
            tax_id=FieldRule(_NS, (_SF, _ST)),
            payment_terms_days=FieldRule(_NS, (_SF, _ST)),
            currency=FieldRule(_NS, (_SF, _ST)),
            # Payment_Status__c on the CRM account is a mirror the payment flows maintain.
            payment_status=FieldRule(_ST, (_SF,)),
        ),
        "Contact": _entity(FieldRule(_SF, (_ZD, _ST, _NS))),
        "Product": _entity(FieldRule(_NS, (_SF, _ST))),
        "Price": _entity(FieldRule(_ST, (_SF, _NS))),
        "Deal": _entity(
            FieldRule(_SF),
            legal_entity=FieldRule(_NS, (_SF,)),
            erp_order_number=FieldRule(_NS, (_SF,)),
            billing_subscription_id=FieldRule(_ST, (_SF,)),
            contract_amount=FieldRule(_NS, (_SF,)),
            integration_status=FieldRule(GATEWAY, (_SF,)),
        ),
        "DealLine": _entity(FieldRule(_SF)),
        "Contract": _entity(FieldRule(_SF, (_NS,))),
        "ContractLine": _entity(FieldRule(_SF, (_NS,))),
        "Subscription": _entity(FieldRule(_ST), deal_id=FieldRule(_SF, (_ST,))),
        "SubscriptionItem": _entity(FieldRule(_ST)),
        "Invoice": _entity(
            FieldRule(_NS, (_ST,)),
            # The billing platform collects: its view of the invoice's state wins.
            status=FieldRule(_ST, (_NS, _SF)),
            amount_paid=FieldRule(_ST, (_NS,)),
            amount_remaining=FieldRule(_ST, (_NS,)),
            paid_at=FieldRule(_ST, (_NS,)),
            subscription_id=FieldRule(_ST, (_NS,)),
        ),
        "InvoiceLine": _entity(FieldRule(_NS, (_ST,))),
        "Payment": _entity(FieldRule(_NS)),
        "TaxRate": _entity(FieldRule(_ST)),
        "CreditNote": _entity(FieldRule(_ST)),
        "CreditNoteLine": _entity(FieldRule(_ST)),
        "SupportCase": _entity(FieldRule(_ZD)),
        "Entitlement": _entity(FieldRule(_ZD, (_SF,))),
        "SalesOrder": _entity(FieldRule(_NS)),
        "SalesOrderLine": _entity(FieldRule(_NS)),
        "CreditMemo": _entity(FieldRule(_NS)),
        "JournalEntry": _entity(FieldRule(_NS)),
        "JournalLine": _entity(FieldRule(_NS)),
        "ApprovalTask": _entity(FieldRule(_NS)),
    }
)

_BY_KEY: Mapping[str, str] = MappingProxyType(
    {name.lower(): name for name in OWNERSHIP}
)


def owner_of(entity: str, field: str) -> str:
    """The platform that owns `field` of `entity` (`"gateway"` for ids and cross-references).

    `entity` is the contract name in any case, with or without underscores ("Customer",
    "sales_order"); a dotted `field` ("billing_address.city") is owned with its top field.
    Raises KeyError for an entity the table does not know.
    """
    return _rule(entity, field).owner


def mirrors_of(entity: str, field: str) -> tuple[str, ...]:
    """The platforms that keep a flow-maintained mirror of `field` of `entity`."""
    return _rule(entity, field).mirrored_to


def check_write(
    entity: str, system: str, fields: Iterable[str], *, mirror: bool = False
) -> None:
    """Refuse writing `fields` of `entity` to `system` unless `system` owns every one.

    With `mirror=True` (the gateway's own flows writing a copy back), a platform listed as a
    mirror of a field may receive it too. Raises OwnershipViolation listing each refused field
    with its owner, or ValueError for an unknown system.
    """
    if system not in WRITABLE_SYSTEMS:
        raise ValueError(f"unknown system {system!r}; expected one of {WRITABLE_SYSTEMS}")
    name = _canonical_name(entity)
    refused = {
        field: rule
        for field in fields
        if not _may_write(rule := _rule(name, field), system, mirror=mirror)
    }
    if refused:
        owners = sorted({rule.owner for rule in refused.values()})
        raise OwnershipViolation(
            f"{system} does not own {name} field(s) {', '.join(refused)} "
            f"(owned by {', '.join(owners)})",
            errors=[_refusal(name, system, field, rule) for field, rule in refused.items()],
            code="ownership_violation",
        )


def _may_write(rule: FieldRule, system: str, *, mirror: bool) -> bool:
    return rule.owner == system or (mirror and system in rule.mirrored_to)


def _refusal(entity: str, system: str, field: str, rule: FieldRule) -> FieldError:
    detail = f"{entity}.{field} is owned by {rule.owner}"
    if system in rule.mirrored_to:
        detail += f"; {system} holds a copy that only the gateway's flows update"
    else:
        detail += f"; it cannot be written to {system}"
    return FieldError(pointer=f"/{field.replace('.', '/')}", detail=detail)


def _rule(entity: str, field: str) -> FieldRule:
    table = OWNERSHIP[_canonical_name(entity)]
    top = field.split(".", 1)[0].split("/", 1)[0]
    return table.fields.get(top, table.default)


def _canonical_name(entity: str) -> str:
    try:
        return _BY_KEY[entity.replace("_", "").lower()]
    except KeyError:
        raise KeyError(f"no ownership rules for entity {entity!r}") from None
