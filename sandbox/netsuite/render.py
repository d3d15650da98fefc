"""How the emulator writes records and collections on the wire: HATEOAS links, references
with `refName`, sublists (expanded or as links), and `limit`/`offset` paging links."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from sandbox.netsuite.records import TYPES
from sandbox.netsuite.store import RecordStore

__all__ = ["RECORD_PATH", "collection", "record", "sublist", "suiteql_cell"]

RECORD_PATH = "/services/rest/record/v1"

_REF_NAMES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "customer": lambda r: r.get("entityId") or r.get("companyName"),
    "serviceSaleItem": lambda r: r.get("itemId"),
    "salesTaxItem": lambda r: r.get("itemId"),
    "salesOrder": lambda r: f"Sales Order #{r.get('tranId')}",
    "invoice": lambda r: f"Invoice #{r.get('tranId')}",
}


def record(store: RecordStore, rtype: str, rid: str, base: str, *, expand: bool) -> dict[str, Any]:
    """One record as `GET /{type}/{id}` answers it."""
    spec = TYPES[rtype]
    view = store.view(rtype, rid)
    href = f"{base}{RECORD_PATH}/{rtype}/{rid}"
    out: dict[str, Any] = {"links": [{"rel": "self", "href": href}]}
    for key, value in sorted(view.items()):
        if key == spec.sublist:
            continue
        target = spec.refs.get(key)
        out[key] = _ref(store, target, value, base) if target and isinstance(value, dict) else value
    if spec.sublist:
        out[spec.sublist] = sublist(store, rtype, rid, base, expand=expand)
    return out


def sublist(store: RecordStore, rtype: str, rid: str, base: str, *, expand: bool) -> dict[str, Any]:
    """A sublist: its link only, or (expanded) its lines as a one-page collection."""
    spec = TYPES[rtype]
    name = spec.sublist or ""
    links = [{"rel": "self", "href": f"{base}{RECORD_PATH}/{rtype}/{rid}/{name}"}]
    if not expand:
        return {"links": links}
    lines = store.view(rtype, rid).get(name, [])
    items = []
    for line in lines:
        rendered: dict[str, Any] = {"links": []}
        for key, value in line.items():
            target = spec.line_refs.get(key)
            rendered[key] = _ref(store, target, value, base) if target else value
        items.append(rendered)
    return {"links": links, "items": items, "totalResults": len(items), "count": len(items),
            "hasMore": False, "offset": 0}


def _ref(store: RecordStore, target: str | None, value: Any, base: str) -> Any:
    if not isinstance(value, dict) or target is None or "id" not in value:
        return value
    rid = value["id"]
    out: dict[str, Any] = {
        "links": [{"rel": "self", "href": f"{base}{RECORD_PATH}/{target}/{rid}"}],
        "id": rid,
    }
    referenced = store.records.get(target, {}).get(rid)
    if referenced is not None:
        name = _REF_NAMES.get(target, _plain_name)(referenced)
        if name:
            out["refName"] = name
    return out


def _plain_name(referenced: dict[str, Any]) -> Any:
    return referenced.get("name")


def collection(
    href: str,
    items: list[dict[str, Any]],
    *,
    total: int,
    limit: int,
    offset: int,
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A page with NetSuite's self/first/prev/next/last links (`href` has no query)."""

    def link(rel: str, at: int) -> dict[str, str]:
        query = urlencode({**(params or {}), "limit": limit, "offset": at}, quote_via=quote)
        return {"rel": rel, "href": f"{href}?{query}"}

    last = max(0, ((total - 1) // limit) * limit) if total else 0
    links = [link("self", offset), link("first", 0)]
    if offset > 0:
        links.append(link("prev", max(0, offset - limit)))
    if offset + limit < total:
        links.append(link("next", offset + limit))
    links.append(link("last", last))
    return {"links": links, "count": len(items), "hasMore": offset + len(items) < total,
            "items": items, "offset": offset, "totalResults": total}


def suiteql_cell(value: Any) -> str:
    """A SuiteQL value as it travels: always a string; dates as M/D/YYYY."""
    if isinstance(value, dt.date):
        return f"{value.month}/{value.day}/{value.year}"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value)
