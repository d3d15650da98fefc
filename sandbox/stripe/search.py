"""Stripe's search query language, the part the gateway uses, and `search_result` pages.

Supported: clauses `field:'value'` (equality, case-insensitive for text fields),
`field~'value'` (substring), `-field:'value'` (negation), `metadata['key']:'value'`, and
numeric comparisons on `created` (`created>123`), joined by all-`AND` or all-`OR`
(https://docs.stripe.com/search#search-query-language). The page token is opaque.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence

from sandbox.stripe.errors import invalid_request
from sandbox.stripe.params import Params
from sandbox.stripe.render import limit_of, render
from sandbox.stripe.store import Obj, Store

__all__ = ["search_page"]

Predicate = Callable[[Obj], bool]

_CLAUSE = re.compile(
    r"""^(?P<negate>-)?
        (?:metadata\[(?P<mq>['"])(?P<mkey>.+?)(?P=mq)\]|(?P<field>[a-z_]+))
        (?P<op>:|~|>=|<=|>|<)
        (?:'(?P<sq>(?:[^'\\]|\\.)*)'|"(?P<dq>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s'"]+))$""",
    re.VERBOSE,
)
_JOIN = re.compile(r"\s+(AND|OR)\s+")


def search_page(store: Store, kind: str, params: Params, url: str, *, fields: Sequence[str]) -> Obj:
    """One `search_result` page of `kind` objects matching `query`."""
    params.only(("query", "limit", "page"))
    query = params.required_text("query")
    matches = _compile(query, fields)
    limit = limit_of(params)
    offset = _decode_page(params.text("page"))
    found = [obj for obj in store.newest_first(kind) if matches(obj)]
    window = found[offset : offset + limit]
    has_more = offset + limit < len(found)
    expand = [path.removeprefix("data.") for path in params.texts("expand")]
    result: Obj = {
        "object": "search_result",
        "data": [render(store, obj, [p for p in expand if p != "total_count"]) for obj in window],
        "has_more": has_more,
        "next_page": _encode_page(offset + limit) if has_more else None,
        "url": url,
    }
    if "total_count" in params.texts("expand"):
        result["total_count"] = len(found)
    return result


def _compile(query: str, fields: Sequence[str]) -> Predicate:
    parts = _JOIN.split(query.strip())
    clauses = parts[0::2]
    joins = set(parts[1::2])
    if len(joins) > 1:
        raise invalid_request(
            "Search queries cannot mix AND and OR; use one of them.", param="query"
        )
    predicates = [_clause(clause, fields) for clause in clauses]
    if joins == {"OR"}:
        return lambda obj: any(predicate(obj) for predicate in predicates)
    return lambda obj: all(predicate(obj) for predicate in predicates)


def _clause(text: str, fields: Sequence[str]) -> Predicate:
    match = _CLAUSE.match(text.strip())
    if match is None:
        raise invalid_request(f"Invalid query: could not parse `{text}`.", param="query")
    value = next(v for v in (match["sq"], match["dq"], match["bare"]) if v is not None)
    value = re.sub(r"\\(.)", r"\1", value)
    predicate = _field_predicate(match, value, fields)
    if match["negate"]:
        return lambda obj: not predicate(obj)
    return predicate


def _field_predicate(match: re.Match[str], value: str, fields: Sequence[str]) -> Predicate:
    op, mkey, field = match["op"], match["mkey"], match["field"]
    if mkey is not None:
        if op != ":":
            raise invalid_request("metadata supports only `:` in search queries.", param="query")
        return lambda obj: (obj.get("metadata") or {}).get(mkey) == value
    if field not in fields:
        raise invalid_request(f"Field `{field}` is an unsupported search field.", param="query")
    if op in (">", ">=", "<", "<="):
        return _compare(field, op, value)
    if op == "~":
        return lambda obj: value.lower() in str(obj.get(field) or "").lower()
    return lambda obj: str(_text(obj.get(field))).lower() == value.lower()


def _compare(field: str, op: str, value: str) -> Predicate:
    try:
        bound = int(value)
    except ValueError:
        raise invalid_request(f"`{field}` needs a number in `{op}`.", param="query") from None
    checks: dict[str, Callable[[int], bool]] = {
        ">": lambda n: n > bound,
        ">=": lambda n: n >= bound,
        "<": lambda n: n < bound,
        "<=": lambda n: n <= bound,
    }
    return lambda obj: isinstance(obj.get(field), int) and checks[op](obj[field])


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _encode_page(offset: int) -> str:
    return "page_" + base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode_page(token: str | None) -> int:
    if not token:
        return 0
    try:
        raw = token.removeprefix("page_")
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        return int(decoded.removeprefix("o:"))
    except (ValueError, UnicodeDecodeError):
        raise invalid_request("Invalid page token.", param="page") from None
