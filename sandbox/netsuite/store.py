"""The emulator's in-memory NetSuite account: records by type, external ids, computed fields.

Stored records hold only what was written (references as `{"id": ...}`); amounts derived from
other records (an invoice's amount remaining, a customer's balance, statuses) are computed on
every read, so deleting or changing a payment can never leave a stale balance behind.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Final

from sandbox.netsuite.errors import WireError
from sandbox.netsuite.query import Filter
from sandbox.netsuite.records import TRANSACTIONS, TYPES, TypeSpec
from sandbox.netsuite.seed import seed_demo, seed_references

__all__ = ["READ_ONLY", "RecordStore"]

READ_ONLY = frozenset({
    "links", "id", "total", "subtotal", "taxTotal", "amountRemaining", "amountPaid", "balance",
    "overdueBalance", "status", "applied", "unapplied", "createdDate", "dateCreated",
    "lastModifiedDate", "created", "lastModified",
})
_ID_START = {"customer": 1001, "item": 201, "transaction": 5001, "approval": 1,
             "subsidiary": 3, "currency": 5, "term": 9}
_STATUS_CODES = {
    "salesOrder": {"Pending Fulfillment": "B", "Billed": "G"},
    "invoice": {"Open": "A", "Paid In Full": "B"},
    "creditMemo": {"Open": "A", "Fully Applied": "B"},
    "customerPayment": {"Not Deposited": "C"},
    "journalEntry": {"Approved for Posting": "B"},
}
SUITEQL_TYPES = {"salesOrder": "SalesOrd", "invoice": "CustInvc", "creditMemo": "CustCred",
                 "customerPayment": "CustPymt", "journalEntry": "Journal"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class RecordStore:
    """Records of one NetSuite account, keyed by record type and internal id."""

    def __init__(self, *, today: Callable[[], dt.date] | None = None) -> None:
        self.today = today or (lambda: dt.datetime.now(dt.UTC).date())
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.external: dict[str, dict[str, str]] = {}
        self.idempotency: dict[tuple[str, str], str] = {}
        self.counters: dict[str, int] = {}
        self.tran_counters: dict[str, int] = {}
        self._billed: frozenset[str] | None = None

    # ------------------------------------------------------------------------- lifecycle

    def reset(self, *, seed: bool) -> None:
        self.records = {name: {} for name in TYPES}
        self.external = {name: {} for name in TYPES}
        self.idempotency = {}
        self.counters = dict(_ID_START)
        self.tran_counters = {}
        seed_references(self)
        if seed:
            seed_demo(self)

    def put(self, rtype: str, rid: str, body: dict[str, Any]) -> None:
        """Store a record as given, under a chosen id (the seed's fixed ids)."""
        spec = TYPES[rtype]
        stamp = _now()
        record = {**body, spec.created: stamp, spec.modified: stamp}
        self.records[rtype][rid] = record
        if body.get("externalId"):
            self.external[rtype][str(body["externalId"])] = rid

    # ------------------------------------------------------------------------------ lookups

    def spec(self, rtype: str) -> TypeSpec:
        if rtype not in TYPES:
            raise WireError(404, "NONEXISTENT_ID", f"Record type '{rtype}' does not exist.")
        return TYPES[rtype]

    def exists(self, rtype: str, rid: str) -> bool:
        return rid in self.records.get(rtype, {})

    def record(self, rtype: str, rid: str) -> dict[str, Any]:
        self.spec(rtype)
        try:
            return self.records[rtype][rid]
        except KeyError:
            raise WireError(
                404, "NONEXISTENT_ID",
                "The record instance does not exist. Provide a valid record instance ID.",
            ) from None

    def id_for_external(self, rtype: str, external_id: str, *, path: str | None = None) -> str:
        rid = self.external.get(rtype, {}).get(external_id)
        if rid is None:
            if path is not None:
                raise WireError(400, "INVALID_CONTENT",
                                f"Invalid external ID {external_id} for field {path}.", path=path)
            raise WireError(
                404, "NONEXISTENT_ID",
                "The record instance does not exist. Provide a valid record instance ID.",
            )
        return rid

    def resolve(self, rtype: str, key: str) -> str:
        """An internal id from a path key: `123` or `eid:<externalId>`."""
        self.spec(rtype)
        if key.startswith("eid:"):
            return self.id_for_external(rtype, key[4:])
        if not key.isdigit():
            raise WireError(400, "INVALID_ID", f"Invalid record instance ID '{key}'.")
        self.record(rtype, key)
        return key

    def ids(self, rtype: str) -> list[str]:
        self.spec(rtype)
        return sorted(self.records[rtype], key=int)

    def term_days(self, term_id: str | None) -> int:
        term = self.records["term"].get(term_id or "")
        return int(term["daysUntilNetDue"]) if term else 30

    def next_tran_id(self, prefix: str) -> str:
        number = self.tran_counters.get(prefix, 1000) + 1
        self.tran_counters[prefix] = number
        return f"{prefix}{number}"

    # ------------------------------------------------------------------------------- writes

    def create(self, rtype: str, body: dict[str, Any], *, idempotency_key: str | None = None,
               external_id: str | None = None) -> str:
        spec = self.spec(rtype)
        if idempotency_key and (rtype, idempotency_key) in self.idempotency:
            return self.idempotency[(rtype, idempotency_key)]
        record = _writable(body)
        if external_id is not None:
            record["externalId"] = external_id
        self._check_external_free(rtype, record.get("externalId"), None)
        spec.normalize(self, record, None)
        rid = str(self.counters[spec.id_group])
        self.counters[spec.id_group] += 1
        stamp = _now()
        record[spec.created] = record[spec.modified] = stamp
        self.records[rtype][rid] = record
        self._touch_settled(rtype, record, stamp)
        if record.get("externalId"):
            self.external[rtype][str(record["externalId"])] = rid
        if idempotency_key:
            self.idempotency[(rtype, idempotency_key)] = rid
        return rid

    def update(self, rtype: str, rid: str, body: dict[str, Any]) -> None:
        spec = self.spec(rtype)
        current = self.record(rtype, rid)
        merged = {**copy.deepcopy(current), **_writable(body)}
        self._check_external_free(rtype, merged.get("externalId"), rid)
        spec.normalize(self, merged, rid)
        merged[spec.modified] = _now()
        old_external = current.get("externalId")
        self.records[rtype][rid] = merged
        self._touch_settled(rtype, current, merged[spec.modified])
        self._touch_settled(rtype, merged, merged[spec.modified])
        if old_external and old_external != merged.get("externalId"):
            self.external[rtype].pop(str(old_external), None)
        if merged.get("externalId"):
            self.external[rtype][str(merged["externalId"])] = rid

    def upsert(self, rtype: str, external_id: str, body: dict[str, Any]) -> tuple[str, bool]:
        """Create or update by external id; returns (id, created)."""
        rid = self.external.get(rtype, {}).get(external_id) if rtype in TYPES else None
        if rid is None:
            return self.create(rtype, body, external_id=external_id), True
        self.update(rtype, rid, {**body, "externalId": external_id})
        return rid, False

    def delete(self, rtype: str, rid: str) -> None:
        record = self.record(rtype, rid)
        if any(True for _ in self._dependents(rtype, rid)):
            raise WireError(400, "USER_ERROR",
                            "This record cannot be deleted because it has dependent records.")
        del self.records[rtype][rid]
        self._touch_settled(rtype, record, _now())
        if record.get("externalId"):
            self.external[rtype].pop(str(record["externalId"]), None)

    def _touch_settled(self, rtype: str, record: dict[str, Any], stamp: str) -> None:
        """A payment or credit memo changes what is left to pay on the invoices it settles,
        and NetSuite stamps those invoices modified too (their `lastmodifieddate` moves)."""
        settled = [line["doc"]["id"] for line in record.get("apply", []) or []
                   if isinstance(line, dict) and isinstance(line.get("doc"), dict)]
        created_from = record.get("createdFrom")
        if rtype == "creditMemo" and isinstance(created_from, dict):
            settled.append(created_from.get("id"))
        invoices = self.records.get("invoice", {})
        for invoice_id in settled:
            if invoice_id in invoices:
                invoices[invoice_id][TYPES["invoice"].modified] = stamp

    def _check_external_free(self, rtype: str, external_id: Any, rid: str | None) -> None:
        if external_id is None:
            return
        holder = self.external[rtype].get(str(external_id))
        if holder is not None and holder != rid:
            raise WireError(400, "USER_ERROR",
                            "A record with this external ID already exists.", path="externalId")

    def _dependents(self, rtype: str, rid: str) -> Iterator[tuple[str, str]]:
        for other_type, spec in TYPES.items():
            for other_id, record in self.records[other_type].items():
                refs = [record.get(name) for name, target in spec.refs.items() if target == rtype]
                lines = record.get(spec.sublist or "", []) or []
                refs += [line.get(name) for line in lines if isinstance(line, dict)
                         for name, target in spec.line_refs.items() if target == rtype]
                if any(isinstance(ref, dict) and ref.get("id") == rid for ref in refs):
                    yield other_type, other_id

    # ---------------------------------------------------------------------- computed fields

    def _settlements(self, invoice_id: str) -> Iterator[tuple[str, str, Decimal]]:
        """(type, id, amount) applied to one invoice, in the order they were recorded."""
        invoice = self.records["invoice"][invoice_id]
        remaining = _total(invoice)
        events: list[tuple[int, str, str]] = []
        for cm_id, memo in self.records["creditMemo"].items():
            if memo.get("createdFrom", {}).get("id") == invoice_id:
                events.append((int(cm_id), "creditMemo", cm_id))
        for pay_id, payment in self.records["customerPayment"].items():
            if any(line["doc"]["id"] == invoice_id for line in payment.get("apply", [])):
                events.append((int(pay_id), "customerPayment", pay_id))
        for _, rtype, rid in sorted(events):
            record = self.records[rtype][rid]
            if rtype == "creditMemo":
                amount = min(_total(record), max(remaining, Decimal(0)))
            else:
                amount = sum((line["amount"] for line in record["apply"]
                              if line["doc"]["id"] == invoice_id), Decimal(0))
            remaining -= amount
            yield rtype, rid, amount

    def invoice_remaining(self, invoice_id: str, *, exclude: str | None = None) -> Decimal:
        invoice = self.records["invoice"][invoice_id]
        applied = sum((amount for _, rid, amount in self._settlements(invoice_id)
                       if rid != exclude), Decimal(0))
        return _total(invoice) - applied

    def credit_applied(self, memo_id: str) -> Decimal:
        invoice_id = self.records["creditMemo"][memo_id].get("createdFrom", {}).get("id")
        if invoice_id is None or invoice_id not in self.records["invoice"]:
            return Decimal(0)
        return sum((amount for _, rid, amount in self._settlements(invoice_id)
                    if rid == memo_id), Decimal(0))

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Views of many records at once (a SuiteQL table): what every view would otherwise
        rescan per record (which orders are billed) is worked out once."""
        self._billed = frozenset(
            invoice.get("createdFrom", {}).get("id") for invoice in
            self.records["invoice"].values()
        )
        try:
            yield
        finally:
            self._billed = None

    def billed(self, order_id: str) -> bool:
        """Whether an invoice was created from the sales order."""
        if self._billed is not None:
            return order_id in self._billed
        return any(invoice.get("createdFrom", {}).get("id") == order_id
                   for invoice in self.records["invoice"].values())

    def matching(self, rtype: str, ids: list[str], condition: Filter) -> list[str]:
        """The ids whose record, as read, meets a parsed `q` condition.

        A condition on stored fields only is tested on the stored record as it is: building
        every record's view (a deep copy plus the computed fields) made a filtered list cost
        O(records) views, and a month-end burst of postings, each looking its order up by
        external id, quadratic."""
        if condition.fields & COMPUTED_FIELDS:
            with self.reading():
                return [rid for rid in ids if condition(_lowered(self.view(rtype, rid)))]
        table = self.records[rtype]
        return [rid for rid in ids if condition(_lowered(table[rid], rid))]

    def view(self, rtype: str, rid: str) -> dict[str, Any]:
        """The record as read: stored fields plus the fields NetSuite computes."""
        record = copy.deepcopy(self.record(rtype, rid))
        record["id"] = rid
        if rtype in TRANSACTIONS:
            _TRANSACTION_VIEWS[rtype](self, rid, record)
        elif rtype == "customer":
            record.update(self._customer_balances(rid))
        return {key: value for key, value in record.items() if not key.startswith("_")}

    def _customer_balances(self, customer_id: str) -> dict[str, Decimal]:
        balance = overdue = Decimal(0)
        today = self.today().isoformat()
        for iid, invoice in self.records["invoice"].items():
            if invoice["entity"]["id"] == customer_id:
                remaining = self.invoice_remaining(iid)
                balance += remaining
                if invoice.get("dueDate", today) < today:
                    overdue += remaining
        for mid, memo in self.records["creditMemo"].items():
            if memo["entity"]["id"] == customer_id:
                balance -= _total(memo) - self.credit_applied(mid)
        for payment in self.records["customerPayment"].values():
            if payment["customer"]["id"] == customer_id:
                balance -= payment["payment"] - _applied(payment)
        return {"balance": balance, "overdueBalance": overdue}

    def status_code(self, rtype: str, status: str) -> str:
        return _STATUS_CODES.get(rtype, {}).get(status, status)


COMPUTED_FIELDS: Final = frozenset({
    "total", "subtotal", "taxtotal", "amountremaining", "amountpaid", "status", "applied",
    "unapplied", "balance", "overduebalance",
})
"""The fields, in lower case, that a record's view computes rather than stores."""


def _lowered(record: dict[str, Any], rid: str | None = None) -> dict[str, Any]:
    row = {key.lower(): value for key, value in record.items() if not key.startswith("_")}
    if rid is not None:
        row["id"] = rid
    return row


def _writable(body: dict[str, Any]) -> dict[str, Any]:
    return {key: copy.deepcopy(value) for key, value in body.items()
            if key not in READ_ONLY and not key.startswith("_")}


def _total(record: dict[str, Any]) -> Decimal:
    """What a transaction comes to: its lines and their tax."""
    return _subtotal(record) + _tax_total(record)


def _subtotal(record: dict[str, Any]) -> Decimal:
    return sum((line["amount"] for line in record.get("item", [])), Decimal(0))


def _tax_total(record: dict[str, Any]) -> Decimal:
    return sum((line.get("tax1Amt", Decimal(0)) for line in record.get("item", [])), Decimal(0))


def _applied(payment: dict[str, Any]) -> Decimal:
    return sum((line["amount"] for line in payment.get("apply", [])), Decimal(0))


def _status(record: dict[str, Any], text: str) -> None:
    record["status"] = {"id": text, "refName": text}


def _view_order(store: RecordStore, rid: str, record: dict[str, Any]) -> None:
    record["total"] = record["subtotal"] = _total(record)
    _status(record, "Billed" if store.billed(rid) else "Pending Fulfillment")


def _view_invoice(store: RecordStore, rid: str, record: dict[str, Any]) -> None:
    total = _total(record)
    remaining = store.invoice_remaining(rid)
    record.update(total=total, subtotal=_subtotal(record), taxTotal=_tax_total(record),
                  amountRemaining=remaining, amountPaid=total - remaining)
    _status(record, "Paid In Full" if remaining <= 0 else "Open")


def _view_credit_memo(store: RecordStore, rid: str, record: dict[str, Any]) -> None:
    total = _total(record)
    applied = store.credit_applied(rid)
    record.update(total=total, subtotal=_subtotal(record), taxTotal=_tax_total(record),
                  applied=applied, amountRemaining=total - applied)
    _status(record, "Fully Applied" if total - applied <= 0 else "Open")


def _view_payment(store: RecordStore, rid: str, record: dict[str, Any]) -> None:
    applied = _applied(record)
    record.update(total=record["payment"], applied=applied, unapplied=record["payment"] - applied)
    _status(record, "Not Deposited")


def _view_journal(store: RecordStore, rid: str, record: dict[str, Any]) -> None:
    _status(record, "Approved for Posting")


_TRANSACTION_VIEWS: dict[str, Callable[[RecordStore, str, dict[str, Any]], None]] = {
    "salesOrder": _view_order,
    "invoice": _view_invoice,
    "creditMemo": _view_credit_memo,
    "customerPayment": _view_payment,
    "journalEntry": _view_journal,
}
