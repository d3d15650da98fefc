"""Per-record-type rules of the emulator: required fields, references, sublists, totals.

Each `normalize_*` checks one request body merged over the stored record and fills what
NetSuite fills (document numbers, defaults, line amounts); computed fields (totals, remaining
amounts, balances, statuses) are derived on every read in `store.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sandbox.netsuite.errors import WireError
from sandbox.netsuite.fields import (
    as_date,
    as_decimal,
    as_text,
    invalid,
    missing,
    ref_id,
)

if TYPE_CHECKING:
    from sandbox.netsuite.store import RecordStore

__all__ = ["APPROVAL", "TRANSACTIONS", "TYPES", "TypeSpec"]

APPROVAL = "customrecord_erpgw_approval"
APPROVAL_STATUSES = ("pending", "approved", "rejected", "expired")
TRANSACTIONS = ("salesOrder", "invoice", "creditMemo", "customerPayment", "journalEntry")

Normalizer = Callable[["RecordStore", dict[str, Any], "str | None"], None]


@dataclass(frozen=True)
class TypeSpec:
    """How one record type behaves."""

    name: str
    normalize: Normalizer
    id_group: str
    """Types in one group share an id sequence (all transactions do in NetSuite)."""
    refs: dict[str, str] = field(default_factory=dict)
    """Body field -> referenced record type (rendered with links and refName)."""
    sublist: str | None = None
    line_refs: dict[str, str] = field(default_factory=dict)
    tran_prefix: str | None = None
    created: str = "dateCreated"
    modified: str = "lastModifiedDate"
    fields: frozenset[str] = frozenset()
    """Every body field a `q` filter may name (besides id, externalId and refs)."""


def _required_ref(
    store: RecordStore, record: dict[str, Any], name: str, target: str, label: str
) -> str:
    if record.get(name) is None:
        raise missing(name, label)
    return _ref(store, record, name, target)


def _ref(store: RecordStore, record: dict[str, Any], name: str, target: str) -> str:
    rid = ref_id(record[name], name)
    if isinstance(record[name], dict) and "externalId" in record[name] and "id" not in record[name]:
        rid = store.id_for_external(target, str(record[name]["externalId"]), path=name)
    if not store.exists(target, rid):
        raise invalid(name, rid)
    record[name] = {"id": rid}
    return rid


def _optional_ref(store: RecordStore, record: dict[str, Any], name: str, target: str) -> None:
    if record.get(name) is not None:
        _ref(store, record, name, target)
    else:
        record.pop(name, None)


def _texts(record: dict[str, Any], *names: str) -> None:
    for name in names:
        if name in record:
            record[name] = as_text(record[name], name)


def _check_currency(store: RecordStore, record: dict[str, Any]) -> None:
    subsidiary = store.record("subsidiary", record["subsidiary"]["id"])
    currency = record["currency"]["id"]
    if currency not in subsidiary.get("_allowedCurrencies", []):
        raise WireError(
            400, "USER_ERROR",
            f"Currency {store.record('currency', currency)['symbol']} is not allowed for "
            f"subsidiary {subsidiary['name']}.",
            path="currency",
        )


def _party(store: RecordStore, record: dict[str, Any], name: str) -> dict[str, Any]:
    """Resolve the customer of a transaction and default subsidiary and currency from it."""
    customer_id = _required_ref(store, record, name, "customer", "Customer")
    customer = store.record("customer", customer_id)
    record.setdefault("subsidiary", dict(customer["subsidiary"]))
    record.setdefault("currency", dict(customer["currency"]))
    _required_ref(store, record, "subsidiary", "subsidiary", "Subsidiary")
    _required_ref(store, record, "currency", "currency", "Currency")
    if record["subsidiary"]["id"] != customer["subsidiary"]["id"]:
        raise WireError(
            400, "USER_ERROR",
            "The customer does not belong to the subsidiary of this transaction.",
            path="subsidiary",
        )
    _check_currency(store, record)
    return customer


def _tran_date(store: RecordStore, record: dict[str, Any]) -> None:
    record["tranDate"] = as_date(record.get("tranDate") or store.today().isoformat(), "tranDate")


def _item_lines(
    store: RecordStore, record: dict[str, Any], *, required: bool, taxed: bool = False
) -> None:
    lines = _sublist_items(record, "item")
    if not lines:
        if required:
            raise WireError(
                400, "USER_ERROR", "You must enter at least one line item for this transaction.",
                path="item",
            )
        record["item"] = []
        return
    currency = record["currency"]["id"]
    normalized = [
        _item_line(store, line, index, currency, taxed=taxed) for index, line in enumerate(lines)
    ]
    record["item"] = normalized


def _item_line(
    store: RecordStore, line: Any, index: int, currency: str, *, taxed: bool
) -> dict[str, Any]:
    path = f"item.items[{index}]"
    if not isinstance(line, dict):
        raise invalid(path, line)
    if line.get("item") is None:
        raise missing(f"{path}.item", "Item")
    item_id = ref_id(line["item"], f"{path}.item")
    if not store.exists("serviceSaleItem", item_id):
        raise invalid(f"{path}.item", item_id, "item")
    item = store.record("serviceSaleItem", item_id)
    quantity = as_decimal(line.get("quantity", 1), f"{path}.quantity")
    if line.get("rate") is not None:
        rate = as_decimal(line["rate"], f"{path}.rate")
        amount = quantity * rate
    elif line.get("amount") is not None:
        amount = as_decimal(line["amount"], f"{path}.amount")
        rate = amount / quantity if quantity else amount
    else:
        rate = _base_price(item, currency, f"{path}.rate")
        amount = quantity * rate
    description = as_text(line.get("description"), f"{path}.description")
    normalized: dict[str, Any] = {
        "line": index + 1,
        "item": {"id": item_id},
        "description": description or item.get("displayName"),
        "quantity": quantity,
        "rate": rate,
        "amount": amount,
    }
    if line.get("taxCode") is not None:
        _line_tax(store, line, normalized, path, taxed=taxed)
    return normalized


def _line_tax(
    store: RecordStore, line: dict[str, Any], normalized: dict[str, Any], path: str,
    *, taxed: bool,
) -> None:
    """A line's tax code and, on invoices and credit memos, its rate (`taxRate1`, percent,
    the code's unless given) and amount (`tax1Amt`: given, else amount x rate rounded half up
    to the cent on the line). Sales orders keep the code only: their tax is invoiced."""
    code_id = ref_id(line["taxCode"], f"{path}.taxCode")
    if not store.exists("salesTaxItem", code_id):
        raise invalid(f"{path}.taxCode", code_id, "taxCode")
    normalized["taxCode"] = {"id": code_id}
    if not taxed:
        return
    code = store.record("salesTaxItem", code_id)
    rate = (
        as_decimal(line["taxRate1"], f"{path}.taxRate1")
        if line.get("taxRate1") is not None
        else Decimal(str(code["rate"]))
    )
    if line.get("tax1Amt") is not None:
        tax = Decimal(str(line["tax1Amt"]))
        if not tax.is_finite():
            raise invalid(f"{path}.tax1Amt", line["tax1Amt"])
    else:
        tax = (normalized["amount"] * rate / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
    normalized["taxRate1"] = rate
    normalized["tax1Amt"] = tax


def _base_price(item: dict[str, Any], currency: str, path: str) -> Decimal:
    for price in item.get("price", []):
        if price["currency"]["id"] == currency:
            return Decimal(price["price"])
    raise WireError(400, "USER_ERROR", "The item has no price in this currency.", path=path)


def _sublist_items(record: dict[str, Any], name: str) -> list[Any]:
    value = record.get(name)
    if value is None:
        return []
    if isinstance(value, dict):
        value = value.get("items", [])
    if not isinstance(value, list):
        raise invalid(name, value)
    return value


def _tran_id(store: RecordStore, record: dict[str, Any], spec_prefix: str) -> None:
    if not record.get("tranId"):
        record["tranId"] = store.next_tran_id(spec_prefix)


def _created_from(
    store: RecordStore, record: dict[str, Any], target: str, customer_id: str
) -> dict[str, Any] | None:
    if record.get("createdFrom") is None:
        record.pop("createdFrom", None)
        return None
    source_id = _ref(store, record, "createdFrom", target)
    source = store.record(target, source_id)
    if source["entity"]["id"] != customer_id:
        raise WireError(
            400, "USER_ERROR", "The source transaction belongs to another customer.",
            path="createdFrom",
        )
    return source


def normalize_customer(store: RecordStore, record: dict[str, Any], rid: str | None) -> None:
    if not record.get("companyName"):
        raise missing("companyName", "Company Name")
    _texts(record, "companyName", "entityId", "email", "phone", "url", "defaultAddress",
           "custentity_collections_status", "custentity_tax_id", "custentity_risk_level")
    _required_ref(store, record, "subsidiary", "subsidiary", "Primary Subsidiary")
    if record.get("currency") is None:
        subsidiary = store.record("subsidiary", record["subsidiary"]["id"])
        record["currency"] = dict(subsidiary["currency"])
    _ref(store, record, "currency", "currency")
    _check_currency(store, record)
    _optional_ref(store, record, "terms", "term")
    record.setdefault("entityId", record["companyName"])
    record["creditHoldOverride"] = _credit_hold(record.get("creditHoldOverride"))
    record.setdefault("isPerson", False)
    record.setdefault("isInactive", False)


_CREDIT_HOLD = {"AUTO": "Auto", "ON": "On", "OFF": "Off"}


def _credit_hold(value: Any) -> dict[str, str]:
    raw = value.get("id") if isinstance(value, dict) else value
    key = "AUTO" if raw is None else str(raw).upper()
    if key not in _CREDIT_HOLD:
        raise invalid("creditHoldOverride", raw)
    return {"id": key, "refName": _CREDIT_HOLD[key]}


def normalize_item(store: RecordStore, record: dict[str, Any], rid: str | None) -> None:
    if not record.get("itemId"):
        raise missing("itemId", "Item Name/Number")
    _texts(record, "itemId", "displayName", "salesDescription",
           "custitem_erpgw_billing_interval")
    prices = []
    for index, price in enumerate(_sublist_items(record, "price")):
        path = f"price.items[{index}]"
        if not isinstance(price, dict) or price.get("currency") is None:
            raise missing(f"{path}.currency", "Currency")
        currency = ref_id(price["currency"], f"{path}.currency")
        if not store.exists("currency", currency):
            raise invalid(f"{path}.currency", currency, "currency")
        amount = as_decimal(price.get("price"), f"{path}.price")
        prices.append({"currency": {"id": currency}, "priceLevel": {"id": "1"}, "price": amount})
    record["price"] = prices
    record.setdefault("displayName", record["itemId"])
    record.setdefault("isInactive", False)


def normalize_sales_order(store: RecordStore, record: dict[str, Any], rid: str | None) -> None:
    _party(store, record, "entity")
    _tran_date(store, record)
    _texts(record, "memo", "otherRefNum")
    _item_lines(store, record, required=True)
    _tran_id(store, record, "SO")


def normalize_invoice(store: RecordStore, record: dict[str, Any], rid: str | None) -> None:
    customer = _party(store, record, "entity")
    order = _created_from(store, record, "salesOrder", customer_id=record["entity"]["id"])
    if order is not None and not _sublist_items(record, "item"):
        record["item"] = [dict(line) for line in order["item"]]
    _tran_date(store, record)
    if record.get("dueDate"):
        record["dueDate"] = as_date(record["dueDate"], "dueDate")
    else:
        days = store.term_days(customer.get("terms", {}).get("id"))
        due = dt.date.fromisoformat(record["tranDate"]) + dt.timedelta(days=days)
        record["dueDate"] = due.isoformat()
    _texts(record, "memo", "otherRefNum", "custbody_collections_status",
           "custbody_erpgw_tax_note")
    _item_lines(store, record, required=True, taxed=True)
    _tran_id(store, record, "INV")


def normalize_credit_memo(store: RecordStore, record: dict[str, Any], rid: str | None) -> None:
    _party(store, record, "entity")
    invoice = _created_from(store, record, "invoice", customer_id=record["entity"]["id"])
    if invoice is not None and not _sublist_items(record, "item"):
        record["item"] = [dict(line) for line in invoice["item"]]
    _tran_date(store, record)
    _texts(record, "memo", "otherRefNum")
    _item_lines(store, record, required=True, taxed=True)
    _tran_id(store, record, "CM")


def normalize_payment(store: RecordStore, record: dict[str, Any], rid: str | None) -> None:
    _party(store, record, "customer")
    _tran_date(store, record)
    _texts(record, "memo")
    if record.get("payment") is None:
        raise missing("payment", "Payment Amount")
    payment = as_decimal(record["payment"], "payment", positive=True)
    record["payment"] = payment
    left = payment
    lines = []
    for index, line in enumerate(_sublist_items(record, "apply")):
        applied = _apply_line(store, record, line, index, left, rid)
        if applied is not None:
            left -= applied["amount"]
            lines.append(applied)
    record["apply"] = lines
    _tran_id(store, record, "PYMT")


def _apply_line(
    store: RecordStore,
    record: dict[str, Any],
    line: Any,
    index: int,
    left: Decimal,
    payment_id: str | None,
) -> dict[str, Any] | None:
    path = f"apply.items[{index}]"
    if not isinstance(line, dict) or line.get("doc") is None:
        raise missing(f"{path}.doc", "Applied To")
    if line.get("apply") is False:
        return None
    doc_id = ref_id(line["doc"], f"{path}.doc")
    if not store.exists("invoice", doc_id):
        raise invalid(f"{path}.doc", doc_id, "doc")
    invoice = store.record("invoice", doc_id)
    if invoice["entity"]["id"] != record["customer"]["id"]:
        raise invalid(f"{path}.doc", doc_id, "doc")
    remaining = store.invoice_remaining(doc_id, exclude=payment_id)
    amount = (
        as_decimal(line["amount"], f"{path}.amount", positive=True)
        if line.get("amount") is not None
        else min(remaining, left)
    )
    if amount > remaining or amount > left:
        raise WireError(
            400, "USER_ERROR",
            "The amount applied exceeds the amount remaining on the invoice or the payment.",
            path=f"{path}.amount",
        )
    return {"doc": {"id": doc_id}, "apply": True, "amount": amount, "line": index + 1}


def normalize_journal(store: RecordStore, record: dict[str, Any], rid: str | None) -> None:
    _required_ref(store, record, "subsidiary", "subsidiary", "Subsidiary")
    if record.get("currency") is None:
        subsidiary = store.record("subsidiary", record["subsidiary"]["id"])
        record["currency"] = dict(subsidiary["currency"])
    _ref(store, record, "currency", "currency")
    _check_currency(store, record)
    _tran_date(store, record)
    _texts(record, "memo")
    lines = [_journal_line(line, index) for index, line in
             enumerate(_sublist_items(record, "line"))]
    if len(lines) < 2:
        raise WireError(400, "USER_ERROR", "A journal entry needs at least two lines.",
                        path="line")
    debits = sum((line["debit"] for line in lines), Decimal(0))
    credits = sum((line["credit"] for line in lines), Decimal(0))
    if debits != credits:
        raise WireError(400, "USER_ERROR", "The transaction is out of balance.", path="line")
    record["line"] = lines
    _tran_id(store, record, "JE")


def _journal_line(line: Any, index: int) -> dict[str, Any]:
    path = f"line.items[{index}]"
    if not isinstance(line, dict) or line.get("account") is None:
        raise missing(f"{path}.account", "Account")
    account = ref_id(line["account"], f"{path}.account")
    debit = as_decimal(line.get("debit") or 0, f"{path}.debit")
    credit = as_decimal(line.get("credit") or 0, f"{path}.credit")
    if (debit == 0) == (credit == 0):
        raise WireError(400, "USER_ERROR", "Each line needs either a debit or a credit.",
                        path=path)
    return {"line": index + 1, "account": {"id": account}, "debit": debit, "credit": credit,
            "memo": as_text(line.get("memo"), f"{path}.memo")}


def normalize_approval(store: RecordStore, record: dict[str, Any], rid: str | None) -> None:
    for name, label in (("custrecord_kind", "Kind"), ("custrecord_subject", "Subject")):
        if not record.get(name):
            raise missing(name, label)
    record.setdefault("custrecord_status", "pending")
    status = record["custrecord_status"]
    status = status.get("id") if isinstance(status, dict) else status
    if status not in APPROVAL_STATUSES:
        raise invalid("custrecord_status", status)
    record["custrecord_status"] = status
    if record.get("custrecord_amount") is not None:
        record["custrecord_amount"] = as_decimal(record["custrecord_amount"],
                                                 "custrecord_amount")
    _optional_ref(store, record, "custrecord_currency", "currency")
    _optional_ref(store, record, "subsidiary", "subsidiary")
    for name in list(record):
        if name.startswith("custrecord_") and name not in (
            "custrecord_amount", "custrecord_currency"
        ):
            record[name] = as_text(record[name], name)
    record.setdefault("name", record["custrecord_subject"][:80])


def normalize_tax_code(store: RecordStore, record: dict[str, Any], rid: str | None) -> None:
    if not record.get("itemId"):
        raise missing("itemId", "Tax Code")
    _texts(record, "itemId", "description")
    record["rate"] = as_decimal(record.get("rate", 0), "rate")
    record.setdefault("isInactive", False)


def normalize_reference(store: RecordStore, record: dict[str, Any], rid: str | None) -> None:
    if not record.get("name") and not record.get("symbol"):
        raise missing("name", "Name")


_PARTY_REFS = {"subsidiary": "subsidiary", "currency": "currency"}
_LINE_REFS = {"item": "serviceSaleItem", "taxCode": "salesTaxItem"}
_TRAN_FIELDS = frozenset({"trandate", "tranid", "memo", "otherrefnum", "status", "total",
                          "createddate", "lastmodifieddate"})

TYPES: dict[str, TypeSpec] = {
    spec.name: spec
    for spec in (
        TypeSpec("salesTaxItem", normalize_tax_code, "item",
                 fields=frozenset({"itemid", "rate", "description", "isinactive"})),
        TypeSpec("subsidiary", normalize_reference, "subsidiary", refs={"currency": "currency"},
                 fields=frozenset({"name", "country", "isinactive"})),
        TypeSpec("currency", normalize_reference, "currency",
                 fields=frozenset({"name", "symbol", "isbasecurrency"})),
        TypeSpec("term", normalize_reference, "term",
                 fields=frozenset({"name", "daysuntilnetdue"})),
        TypeSpec("customer", normalize_customer, "customer",
                 refs={**_PARTY_REFS, "terms": "term"},
                 fields=frozenset({"companyname", "entityid", "email", "phone", "balance",
                                   "overduebalance", "custentity_collections_status",
                                   "custentity_tax_id", "creditholdoverride", "isinactive",
                                   "datecreated", "lastmodifieddate"})),
        TypeSpec("serviceSaleItem", normalize_item, "item", sublist="price",
                 line_refs={"currency": "currency"},
                 fields=frozenset({"itemid", "displayname", "isinactive",
                                   "custitem_erpgw_billing_interval"})),
        TypeSpec("salesOrder", normalize_sales_order, "transaction",
                 refs={**_PARTY_REFS, "entity": "customer"}, sublist="item",
                 line_refs=_LINE_REFS, tran_prefix="SO",
                 created="createdDate", fields=_TRAN_FIELDS),
        TypeSpec("invoice", normalize_invoice, "transaction",
                 refs={**_PARTY_REFS, "entity": "customer", "createdFrom": "salesOrder"},
                 sublist="item", line_refs=_LINE_REFS, tran_prefix="INV",
                 created="createdDate",
                 fields=_TRAN_FIELDS | {"duedate", "amountremaining", "amountpaid",
                                        "custbody_collections_status"}),
        TypeSpec("creditMemo", normalize_credit_memo, "transaction",
                 refs={**_PARTY_REFS, "entity": "customer", "createdFrom": "invoice"},
                 sublist="item", line_refs=_LINE_REFS, tran_prefix="CM",
                 created="createdDate", fields=_TRAN_FIELDS | {"amountremaining", "applied"}),
        TypeSpec("customerPayment", normalize_payment, "transaction",
                 refs={**_PARTY_REFS, "customer": "customer"}, sublist="apply",
                 line_refs={"doc": "invoice"}, tran_prefix="PYMT", created="createdDate",
                 fields=_TRAN_FIELDS | {"payment", "applied", "unapplied"}),
        TypeSpec("journalEntry", normalize_journal, "transaction", refs=dict(_PARTY_REFS),
                 sublist="line", line_refs={"account": "account"}, tran_prefix="JE",
                 created="createdDate", fields=_TRAN_FIELDS),
        TypeSpec(APPROVAL, normalize_approval, "approval",
                 refs={"subsidiary": "subsidiary", "custrecord_currency": "currency"},
                 created="created", modified="lastModified",
                 fields=frozenset({"name", "custrecord_kind", "custrecord_subject",
                                   "custrecord_status", "custrecord_amount",
                                   "custrecord_decided_by", "custrecord_reason",
                                   "custrecord_flow_id", "custrecord_requested_by",
                                   "created", "lastmodified"})),
    )
}
