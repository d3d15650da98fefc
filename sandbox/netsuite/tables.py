"""The SuiteQL tables the emulator exposes, projected from the record store.

Columns are lower case and hold what SuiteQL returns: ids, codes, numbers and dates
(`transaction.status` is the one-letter status code, `type` the short type name).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from typing import Any

from sandbox.netsuite.errors import WireError
from sandbox.netsuite.records import APPROVAL, TRANSACTIONS
from sandbox.netsuite.store import SUITEQL_TYPES, RecordStore

__all__ = ["TABLES", "table_rows"]

Row = dict[str, Any]

TABLES: dict[str, tuple[str, ...]] = {
    "customer": ("id", "entityid", "companyname", "email", "phone", "subsidiary", "currency",
                 "externalid", "balance", "overduebalance", "terms", "creditholdoverride",
                 "custentity_collections_status", "custentity_tax_id", "isinactive",
                 "datecreated", "lastmodifieddate"),
    "item": ("id", "itemid", "displayname", "externalid", "itemtype", "isinactive",
             "custitem_erpgw_billing_interval"),
    "transaction": ("id", "tranid", "type", "entity", "subsidiary", "currency", "trandate",
                    "duedate", "status", "foreigntotal", "foreignamountremaining",
                    "taxtotal", "externalid", "memo", "otherrefnum", "createdfrom",
                    "custbody_collections_status", "custbody_erpgw_tax_note", "createddate",
                    "lastmodifieddate"),
    "subsidiary": ("id", "name", "legalname", "country", "currency", "externalid",
                   "isinactive"),
    "currency": ("id", "name", "symbol", "externalid"),
    "term": ("id", "name", "daysuntilnetdue"),
    APPROVAL.lower(): ("id", "name", "externalid", "custrecord_kind", "custrecord_subject",
                       "custrecord_status", "custrecord_amount", "custrecord_currency",
                       "custrecord_decided_by", "custrecord_reason", "custrecord_flow_id",
                       "custrecord_requested_by", "subsidiary", "created", "lastmodified"),
}

_SOURCES = {"customer": ("customer",), "item": ("serviceSaleItem",),
            "transaction": TRANSACTIONS, "subsidiary": ("subsidiary",),
            "currency": ("currency",), "term": ("term",), APPROVAL.lower(): (APPROVAL,)}


def table_rows(
    store: RecordStore, table: str, types: Collection[str] | None = None
) -> tuple[tuple[str, ...], list[Row]]:
    """(columns, rows) of one SuiteQL table; raises WireError(400) for an unknown table.
    `types`: the transaction types (`CustInvc`, ...) a query can match, when it names them;
    the others are left unread, as a database would use its index on type."""
    if table not in TABLES:
        raise WireError(
            400, "INVALID_PARAMETER",
            "Invalid search query. Detailed unprocessed description follows. "
            f"Search error occurred: Record '{table}' was not found.",
            path="q",
        )
    columns = TABLES[table]
    rows: list[tuple[int, Row]] = []
    sources = [rtype for rtype in _SOURCES[table]
               if table != "transaction" or types is None or SUITEQL_TYPES.get(rtype) in types]
    with store.reading():
        for rtype in sources:
            for rid in store.ids(rtype):
                view = store.view(rtype, rid)
                row = _row(store, rtype, view)
                rows.append((int(rid), {column: row.get(column) for column in columns}))
    return columns, [row for _, row in sorted(rows, key=lambda pair: pair[0])]


def _row(store: RecordStore, rtype: str, view: dict[str, Any]) -> Row:
    row: Row = {}
    for key, value in view.items():
        row[key.lower()] = _cell(value)
    for key in ("datecreated", "createddate", "lastmodifieddate", "created", "lastmodified"):
        # A timestamp: filters compare it to the second; the answer shows its date.
        if isinstance(row.get(key), str):
            row[key] = dt.datetime.fromisoformat(row[key].replace("Z", "+00:00"))
    for key in ("trandate", "duedate"):
        if isinstance(row.get(key), str):
            row[key] = dt.date.fromisoformat(row[key])
    _EXTRA.get(rtype, _transaction)(store, rtype, view, row)
    return row


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("id")
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, list):
        return None
    return value


def _transaction(store: RecordStore, rtype: str, view: dict[str, Any], row: Row) -> None:
    if rtype not in SUITEQL_TYPES:
        return
    row["type"] = SUITEQL_TYPES[rtype]
    row["status"] = store.status_code(rtype, view["status"]["id"])
    if "customer" in view:
        row["entity"] = view["customer"]["id"]
    row["foreigntotal"] = view.get("total")
    row["foreignamountremaining"] = view.get("amountRemaining")


def _item(store: RecordStore, rtype: str, view: dict[str, Any], row: Row) -> None:
    row["itemtype"] = "Service"


def _nothing(store: RecordStore, rtype: str, view: dict[str, Any], row: Row) -> None:
    return None


_EXTRA: dict[str, Callable[[RecordStore, str, dict[str, Any], Row], None]] = {
    "serviceSaleItem": _item,
    "customer": _nothing,
    "subsidiary": _nothing,
    "currency": _nothing,
    "term": _nothing,
    APPROVAL: _nothing,
}
