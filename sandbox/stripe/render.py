"""Turn stored objects into answers: references expanded, links filled, lists paged.

Stored objects hold references as ids; a rendered object embeds what Stripe embeds by default
(the price of a subscription item or line) and whatever `expand[]` asks for. Absolute links
(hosted invoice page, PDFs) are built from the URL the request came in on, so they carry a
mount prefix when there is one; list `url` fields stay relative to the API base (`/v1/...`),
as Stripe's are.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sandbox.stripe.context import current_request
from sandbox.stripe.errors import invalid_request
from sandbox.stripe.params import Params
from sandbox.stripe.store import Obj, Store

__all__ = [
    "MAX_LIMIT",
    "created_filter",
    "limit_of",
    "list_object",
    "page",
    "page_of",
    "render",
    "render_lines",
]

MAX_LIMIT = 100
"""Stripe's list `limit` ranges over 1..100, default 10."""
DEFAULT_LIMIT = 10
EMBEDDED_LINES = 10
_MAX_EXPAND_DEPTH = 4


def render(store: Store, obj: Obj, expand: Sequence[str] = ()) -> Obj:
    """A deep copy of `obj` as Stripe would answer it, with `expand` paths resolved.

    Keys starting with `_` are the emulator's own bookkeeping and never leave it."""
    out = {key: copy.deepcopy(value) for key, value in obj.items() if not key.startswith("_")}
    _embed_defaults(store, out)
    _fill_links(out)
    for path in expand:
        if path == "tiers" and out.get("object") == "price":
            continue  # handled below; a per-unit price simply has none
        parts = path.split(".")
        if len(parts) > _MAX_EXPAND_DEPTH:
            raise invalid_request(
                f"You cannot expand more than {_MAX_EXPAND_DEPTH} levels of a property. "
                f"Property: {path}",
                param="expand",
            )
        _expand(store, out, parts, path)
    if out.get("object") == "price" and "tiers" not in expand:
        # Stripe leaves `tiers` out unless it is expanded (https://docs.stripe.com/api/prices/object).
        out.pop("tiers", None)
    return out


def list_object(
    store: Store, objects: Iterable[Obj], url: str, expand: Sequence[str], *, has_more: bool
) -> Obj:
    inner = [path.removeprefix("data.") for path in expand if path.startswith("data.")]
    return {
        "object": "list",
        "data": [render(store, obj, inner) for obj in objects],
        "has_more": has_more,
        "url": url,
    }


def page(store: Store, candidates: list[Obj], params: Params, url: str) -> Obj:
    """One page of `candidates` (newest first) by `limit`, `starting_after`, `ending_before`."""
    limit = limit_of(params)
    after, before = params.text("starting_after"), params.text("ending_before")
    if after and before:
        raise invalid_request(
            "You may only specify one of these parameters: ending_before, starting_after.",
            param="ending_before",
        )
    window, has_more = _window(store, candidates, limit, after, before)
    return list_object(store, window, url, params.texts("expand"), has_more=has_more)


def render_lines(store: Store, obj: Obj) -> list[Obj]:
    """Every line of an invoice or credit note, rendered (not just the embedded first page)."""
    lines: list[Obj] = copy.deepcopy(obj["lines"]["data"])
    for line in lines:
        _embed_defaults(store, line)
    return lines


def page_of(rendered: list[Obj], params: Params, url: str) -> Obj:
    """One page of already rendered sub-objects (invoice lines), cursors by position."""
    limit = limit_of(params)
    positions = {obj["id"]: index for index, obj in enumerate(rendered)}
    after, before = params.text("starting_after"), params.text("ending_before")
    start, stop = 0, len(rendered)
    for cursor, param in ((after, "starting_after"), (before, "ending_before")):
        if cursor and cursor not in positions:
            raise invalid_request(
                f"No such object: '{cursor}'", param=param, code="resource_missing"
            )
    if after:
        start = positions[after] + 1
    if before:
        stop = positions[before]
        start = max(0, stop - limit)
    window = rendered[start : min(stop, start + limit)]
    has_more = start + limit < stop if not before else start > 0
    return {"object": "list", "data": window, "has_more": has_more, "url": url}


def created_filter(params: Params, key: str = "created") -> Callable[[Obj], bool]:
    """`created=123` or `created[gte|gt|lte|lt]=123` as a predicate over objects."""
    exact = params.data.get(key)
    if isinstance(exact, str):
        value = params.integer(key)
        return lambda obj: obj.get(key) == value
    bounds = params.nested(key)
    if bounds is None:
        return lambda obj: True
    bounds.only(("gt", "gte", "lt", "lte"))
    gt, gte = bounds.integer("gt"), bounds.integer("gte")
    lt, lte = bounds.integer("lt"), bounds.integer("lte")

    def matches(obj: Obj) -> bool:
        stamp = obj.get(key)
        if not isinstance(stamp, int):
            return False
        return not (
            (gt is not None and stamp <= gt)
            or (gte is not None and stamp < gte)
            or (lt is not None and stamp >= lt)
            or (lte is not None and stamp > lte)
        )

    return matches


def limit_of(params: Params) -> int:
    """`limit`: 1..100, 10 when absent."""
    limit = params.integer("limit")
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid_request(
            f"Invalid integer: limit must be between 1 and {MAX_LIMIT}", param="limit"
        )
    return limit


def _window(
    store: Store, candidates: list[Obj], limit: int, after: str | None, before: str | None
) -> tuple[list[Obj], bool]:
    if after:
        mark = _cursor(store, after, "starting_after")
        older = [obj for obj in candidates if _seq(store, obj) < mark]
        return older[:limit], len(older) > limit
    if before:
        mark = _cursor(store, before, "ending_before")
        newer = [obj for obj in candidates if _seq(store, obj) > mark]
        return newer[-limit:], len(newer) > limit
    return candidates[:limit], len(candidates) > limit


def _cursor(store: Store, object_id: str, param: str) -> int:
    mark = store.sequence(object_id)
    if mark is None:
        raise invalid_request(
            f"No such object: '{object_id}'", param=param, code="resource_missing"
        )
    return mark


def _seq(store: Store, obj: Obj) -> int:
    return store.sequence(obj["id"]) or 0


def _embed_defaults(store: Store, out: Obj) -> None:
    """Stripe embeds the price object in subscription items, lines and invoice items."""
    kind = out.get("object")
    if kind in ("subscription_item", "line_item", "invoiceitem"):
        _embed_price(store, out)
    if kind == "subscription":
        items = [
            item
            for item in store.oldest_first("subscription_item")
            if item["subscription"] == out["id"]
        ]
        out["items"] = {
            "object": "list",
            "data": [render(store, item) for item in items],
            "has_more": False,
            "total_count": len(items),
            "url": f"/v1/subscription_items?subscription={out['id']}",
        }
    if kind in ("invoice", "credit_note"):
        lines = out["lines"]["data"]
        for line in lines:
            _embed_defaults(store, line)
        # Stripe embeds the first page of lines; the rest come from the lines endpoint.
        out["lines"].update(
            data=lines[:EMBEDDED_LINES],
            has_more=len(lines) > EMBEDDED_LINES,
            total_count=len(lines),
        )


def _embed_price(store: Store, out: Obj) -> None:
    price_id = out.get("price")
    if isinstance(price_id, str):
        price = store.find("price", price_id)
        out["price"] = render(store, price) if price is not None else None


def _fill_links(out: Obj) -> None:
    base = current_request().base_url
    kind = out.get("object")
    if kind == "invoice":
        out["lines"]["url"] = f"/v1/invoices/{out['id']}/lines"
        if out.get("status") != "draft":
            out["hosted_invoice_url"] = f"{base}/hosted/invoices/{out['id']}"
            out["invoice_pdf"] = f"{base}/hosted/invoices/{out['id']}/pdf"
    elif kind == "credit_note":
        out["lines"]["url"] = f"/v1/credit_notes/{out['id']}/lines"
        out["pdf"] = f"{base}/hosted/credit_notes/{out['id']}/pdf"


def _expand(store: Store, node: Any, parts: list[str], path: str) -> Any:
    if not parts:
        return node
    if isinstance(node, list):
        return [_expand(store, element, parts, path) for element in node]
    if not isinstance(node, dict):
        raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
    head, rest = parts[0], parts[1:]
    if head not in node:
        raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
    value = node[head]
    if isinstance(value, str):
        target = store.find_any(value)
        if target is None:
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
        value = render(store, target)
    node[head] = _expand(store, value, rest, path) if value is not None else None
    return node
