"""SOQL run against the emulated org, and records rendered the way the REST API renders them.

A parsed query is checked against the schema (INVALID_TYPE, INVALID_FIELD), its literals are
bound to the types of the fields they are compared with (a quoted number or a date compared
with a datetime field is refused, as Salesforce refuses it), then rows are filtered, sorted,
cut by OFFSET/LIMIT and projected, parent relationship fields nested under the relationship.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.ids import is_record_id, normalize_id
from sandbox.salesforce.schema import OBJECTS, FieldSpec, ObjectSpec, object_spec
from sandbox.salesforce.soql import (
    And,
    Comparison,
    Condition,
    ExactText,
    FieldPath,
    Literal,
    Not,
    Or,
    SoqlSyntaxError,
    matches,
    parse,
)
from sandbox.salesforce.store import EmulatedOrg, Record

__all__ = ["UrlFor", "execute", "render_record", "render_value"]

UrlFor = Callable[[str, str], str]
"""(sObject type, id) -> the record's URL path, as carried in `attributes.url`."""

_LITERAL_FOR_KIND = {
    "id": "string",
    "reference": "string",
    "string": "string",
    "boolean": "boolean",
    "double": "number",
    "currency": "number",
    "int": "number",
    "date": "date",
    "datetime": "datetime",
}
_SOAP_TYPE = {"datetime": "dateTime", "currency": "double", "reference": "id", "int": "int"}


@dataclass(frozen=True)
class _Resolved:
    hops: tuple[FieldSpec, ...]
    """Lookup fields followed from the queried object (`AccountId` for `Account.Name`)."""
    field: FieldSpec
    sobject: str


def execute(org: EmulatedOrg, text: str, url_for: UrlFor) -> tuple[str, list[dict[str, Any]]]:
    """Run a SOQL query; returns the queried type and the rendered rows."""
    try:
        query = parse(text)
    except SoqlSyntaxError as exc:
        raise ApiError(400, "MALFORMED_QUERY", str(exc)) from exc
    spec = object_spec(query.sobject)
    if spec is None:
        raise ApiError(
            400,
            "INVALID_TYPE",
            _located(
                text,
                len(text) - len(text.lstrip()) + text.upper().find(" FROM ") + 7,
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use "
                "a custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            ),
        )
    binder = _Binder(spec, text)
    selected = [binder.resolve(path) for path in query.fields]
    where = binder.bind(query.where) if query.where is not None else None
    order = [(binder.resolve(item.field), item) for item in query.order_by]

    def value_of(record: Record, resolved: _Resolved) -> Any:
        current: Record | None = record
        for hop in resolved.hops:
            current = org.parent(current, hop) if current is not None else None
        if current is None:
            return None
        value = current.get(resolved.field.name)
        if resolved.field.kind in ("id", "reference") and isinstance(value, str):
            return ExactText(value)
        return value

    def selected_by_where(record: Record) -> bool:
        if where is None:
            return True
        return matches(where, lambda path: value_of(record, binder.bound[path]))

    rows = [r for r in org.records[spec.name].values() if selected_by_where(r)]
    for resolved, item in reversed(order):
        keys = {
            id(r): _sort_key(value_of(r, resolved), item.descending, item.nulls_last)
            for r in rows
        }
        rows.sort(key=lambda r: keys[id(r)], reverse=item.descending)
    rows = rows[query.offset or 0 :]
    if query.limit is not None:
        rows = rows[: query.limit]
    return spec.name, [_project(org, spec, row, selected, url_for) for row in rows]


def render_value(field: FieldSpec, value: Any) -> Any:
    """A stored value as JSON carries it: dates ISO, datetimes with millis and +0000."""
    if value is None:
        return None
    if field.kind == "datetime":
        stamp = value.astimezone(UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"
    if field.kind == "date":
        return value.isoformat()
    if field.kind == "double" and isinstance(value, Decimal) and value.as_tuple().exponent == 0:
        # Doubles come back with a fractional part (20.0), as Salesforce's JSON does.
        return value.quantize(Decimal("0.0"))
    return value


def render_record(
    spec: ObjectSpec, record: Record, url_for: UrlFor, fields: Sequence[FieldSpec] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"attributes": _attributes(spec.name, record["Id"], url_for)}
    for field in fields if fields is not None else spec.fields:
        body[field.name] = render_value(field, record.get(field.name))
    return body


def _attributes(sobject: str, record_id: str, url_for: UrlFor) -> dict[str, str]:
    return {"type": sobject, "url": url_for(sobject, record_id)}


def _project(
    org: EmulatedOrg,
    spec: ObjectSpec,
    record: Record,
    selected: Sequence[_Resolved],
    url_for: UrlFor,
) -> dict[str, Any]:
    row: dict[str, Any] = {"attributes": _attributes(spec.name, record["Id"], url_for)}
    for resolved in selected:
        _place(org, row, record, resolved, url_for)
    return row


def _place(
    org: EmulatedOrg, row: dict[str, Any], record: Record, resolved: _Resolved, url_for: UrlFor
) -> None:
    """Put one selected field into the row, nesting parent fields under their relationship."""
    target, current = row, record
    for hop in resolved.hops:
        parent = org.parent(current, hop)
        name = hop.relationship or hop.name
        if parent is None:
            # No parent: the relationship is null, as Salesforce renders it.
            target.setdefault(name, None)
            return
        node = target.get(name)
        if not isinstance(node, dict):
            node = {"attributes": _attributes(hop.reference_to or "", parent["Id"], url_for)}
            target[name] = node
        target, current = node, parent
    target[resolved.field.name] = render_value(resolved.field, current.get(resolved.field.name))


def _sort_key(value: Any, descending: bool, nulls_last: bool) -> tuple[int, Any]:
    # The sort is reversed for DESC, so the null group's rank flips with it.
    null_rank = 2 if nulls_last != descending else 0
    if value is None:
        return (null_rank, 0)
    if isinstance(value, str) and not isinstance(value, ExactText):
        return (1, value.casefold())
    return (1, str(value) if isinstance(value, ExactText) else value)


def _located(query: str, column: int, message: str) -> str:
    pointer = " " * max(column - 1, 0) + "^"
    return f"\n{query}\n{pointer}\nERROR at Row:1:Column:{column}\n{message}"


class _Binder:
    def __init__(self, spec: ObjectSpec, text: str) -> None:
        self.spec = spec
        self.text = text
        self.bound: dict[FieldPath, _Resolved] = {}

    def resolve(self, path: FieldPath) -> _Resolved:
        current = self.spec
        hops: list[FieldSpec] = []
        for part in path.parts[:-1]:
            lookup = current.lookup(part)
            if lookup is None or lookup.reference_to is None:
                raise self.invalid(
                    path,
                    f"Didn't understand relationship '{part}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' after "
                    "the custom relationship name.",
                )
            hops.append(lookup)
            current = OBJECTS[lookup.reference_to]
        field = current.field(path.parts[-1])
        if field is None:
            raise self.invalid(
                path,
                f"No such column '{path.parts[-1]}' on entity '{current.name}'. If you are "
                "attempting to use a custom field, be sure to append the '__c' after the custom "
                "field name. Please reference your WSDL or the describe call for the appropriate "
                "names.",
            )
        resolved = _Resolved(tuple(hops), field, current.name)
        self.bound[path] = resolved
        return resolved

    def bind(self, condition: Condition) -> Condition:
        if isinstance(condition, And):
            return And(tuple(self.bind(item) for item in condition.operands))
        if isinstance(condition, Or):
            return Or(tuple(self.bind(item) for item in condition.operands))
        if isinstance(condition, Not):
            return Not(self.bind(condition.operand))
        resolved = self.resolve(condition.field)
        values = tuple(self.literal(condition, resolved.field, v) for v in condition.values)
        return replace(condition, values=values)

    def literal(self, condition: Comparison, field: FieldSpec, literal: Literal) -> Literal:
        path = condition.field
        if literal.kind == "null":
            if condition.op not in ("=", "!=", "IN", "NOT IN"):
                raise self.invalid(path, f"invalid operator on null for field '{field.name}'")
            return literal
        if condition.op in ("LIKE", "NOT LIKE") and field.kind != "string":
            raise ApiError(
                400,
                "INVALID_QUERY_FILTER_OPERATOR",
                _located(self.text, path.column, f"invalid operator on field '{field.name}'"),
            )
        expected = _LITERAL_FOR_KIND[field.kind]
        if literal.kind != expected:
            quoted = "be" if expected == "string" else "not be"
            raise self.invalid(
                path,
                f"value of filter criterion for field '{field.name}' must be of type "
                f"{_SOAP_TYPE.get(field.kind, field.kind)} and should {quoted} enclosed in "
                "quotes",
            )
        if field.kind in ("id", "reference"):
            return self.id_literal(path, literal)
        if isinstance(literal.value, datetime):
            return replace(literal, value=literal.value.astimezone(UTC))
        if field.kind == "date" and not isinstance(literal.value, date):
            raise self.invalid(path, f"invalid date: {literal.raw}")
        return literal

    def id_literal(self, path: FieldPath, literal: Literal) -> Literal:
        value = str(literal.value)
        if not is_record_id(value):
            raise ApiError(
                400,
                "INVALID_QUERY_FILTER_OPERATOR",
                _located(self.text, path.column, f"invalid ID field: {value}"),
            )
        return replace(literal, value=ExactText(normalize_id(value)))

    def invalid(self, path: FieldPath, message: str) -> ApiError:
        return ApiError(400, "INVALID_FIELD", _located(self.text, path.column, message))
