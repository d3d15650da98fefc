"""The emulated org's records in memory: typed field values, write rules and derived fields.

Writes are checked the way Salesforce checks them (unknown columns, read-only fields, required
fields, lookups of the wrong type) and derived fields are recomputed on every write: `IsWon` and
`IsClosed` from `StageName`, a line's `TotalPrice`, an opportunity's `Amount` from its lines,
a contract's `EndDate`.
"""

from __future__ import annotations

import calendar
import copy
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from contracts.money import CURRENCY_EXPONENTS
from sandbox.salesforce.errors import AmbiguousExternalId, ApiError
from sandbox.salesforce.ids import (
    KEY_PREFIXES,
    counter_id,
    is_record_id,
    key_prefix,
    normalize_id,
)
from sandbox.salesforce.schema import OBJECTS, FieldSpec, ObjectSpec, object_spec

__all__ = ["DEFAULT_CURRENCY", "EmulatedOrg", "Record", "parse_datetime", "quantize_money"]

Record = dict[str, Any]

_Snapshot = tuple[dict[str, dict[str, Record]], set[str], int, int]

DEFAULT_CURRENCY = "USD"
"""The org's corporate currency: records created without `CurrencyIsoCode` get it."""

_CLOSED_STAGES = {"Closed Won": True, "Closed Lost": False}
# Deleting a parent deletes these children, as Salesforce's master-detail cascade does.
_CASCADE = {
    "Account": (
        ("Contact", "AccountId"),
        ("Opportunity", "AccountId"),
        ("Contract", "AccountId"),
        ("Note", "ParentId"),
    ),
    "Opportunity": (("OpportunityLineItem", "OpportunityId"),),
}


class EmulatedOrg:
    """All records of one org, keyed by sObject type and 18-character id."""

    def __init__(self, *, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self.records: dict[str, dict[str, Record]] = {name: {} for name in OBJECTS}
        self.deleted: set[str] = set()
        self._created = 0
        self._contract_number = 100
        self.on_won: Callable[[str, str], None] | None = None
        """Told (opportunity id, modstamp) when an opportunity becomes Closed Won."""

    def clear(self) -> None:
        self.records = {name: {} for name in OBJECTS}
        self.deleted = set()
        self._created = 0
        self._contract_number = 100

    def now(self) -> datetime:
        stamp = self._clock().astimezone(UTC)
        return stamp.replace(microsecond=stamp.microsecond // 1000 * 1000)

    def snapshot(self) -> _Snapshot:
        return copy.deepcopy((self.records, self.deleted, self._created, self._contract_number))

    def restore(self, snapshot: _Snapshot) -> None:
        self.records, self.deleted, self._created, self._contract_number = copy.deepcopy(snapshot)

    # -- lookups --------------------------------------------------------------------------

    def spec(self, sobject: str) -> ObjectSpec:
        spec = object_spec(sobject)
        if spec is None:
            raise ApiError(404, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        return spec

    def get(self, sobject: str, raw_id: str) -> Record:
        spec = self.spec(sobject)
        return self.records[spec.name][self.record_id(spec, raw_id)]

    def record_id(self, spec: ObjectSpec, raw_id: str) -> str:
        """The stored id for `raw_id` (15 or 18 characters) or the error Salesforce gives."""
        if not is_record_id(raw_id):
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {raw_id}",
            )
        record_id = normalize_id(raw_id)
        if record_id in self.deleted:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        if record_id not in self.records[spec.name]:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return record_id

    def parent(self, record: Record, field: FieldSpec) -> Record | None:
        value = record.get(field.name)
        if value is None or field.reference_to is None:
            return None
        return self.records[field.reference_to].get(value)

    def children(self, sobject: str, field: str, parent_id: str) -> list[Record]:
        return [r for r in self.records[sobject].values() if r.get(field) == parent_id]

    def find(self, spec: ObjectSpec, field: FieldSpec, value: str) -> list[str]:
        # External ids compare case-insensitively unless marked case-sensitive.
        wanted = value.casefold()
        return [
            record_id
            for record_id, record in self.records[spec.name].items()
            if isinstance(record.get(field.name), str) and record[field.name].casefold() == wanted
        ]

    def external_id_field(self, spec: ObjectSpec, name: str) -> FieldSpec:
        field = spec.field(name)
        if field is None or not (field.external_id or field.name == "Id"):
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {name}",
            )
        return field

    # -- writes ---------------------------------------------------------------------------

    def insert(
        self,
        sobject: str,
        body: Mapping[str, Any],
        *,
        record_id: str | None = None,
        stamp: datetime | None = None,
    ) -> str:
        """Create a record; returns its id. Nothing is stored when a rule refuses it."""
        spec = self.spec(sobject)
        values = self._coerce_body(spec, body, creating=True)
        if record_id is None:
            self._created += 1
            record_id = counter_id(spec.name, self._created)
        when = stamp or self.now()
        record: Record = {field.name: None for field in spec.fields}
        record.update(values)
        record.update(
            Id=record_id, IsDeleted=False, CreatedDate=when, LastModifiedDate=when,
            SystemModstamp=when,
        )
        self._check_required(spec, record)
        self._derive(spec, record, creating=True)
        self.records[spec.name][record_id] = record
        self._after_write(spec, record, when)
        self._announce_won(spec, record, was_won=False)
        return record_id

    def update(self, sobject: str, raw_id: str, body: Mapping[str, Any]) -> str:
        spec = self.spec(sobject)
        record_id = self.record_id(spec, raw_id)
        body = {k: v for k, v in body.items() if k.lower() != "id"}
        values = self._coerce_body(spec, body, creating=False)
        candidate = dict(self.records[spec.name][record_id])
        candidate.update(values)
        self._check_required(spec, candidate)
        self._derive(spec, candidate, creating=False)
        when = self.now()
        candidate.update(LastModifiedDate=when, SystemModstamp=when)
        was_won = self.records[spec.name][record_id].get("IsWon") is True
        self.records[spec.name][record_id] = candidate
        self._after_write(spec, candidate, when)
        self._announce_won(spec, candidate, was_won=was_won)
        return record_id

    def _announce_won(self, spec: ObjectSpec, record: Record, *, was_won: bool) -> None:
        # A record-triggered Flow's entry condition: IsWon changed to true, once per change.
        won_now = spec.name == "Opportunity" and record.get("IsWon") is True and not was_won
        if won_now and self.on_won is not None:
            self.on_won(record["Id"], record["SystemModstamp"].isoformat())

    def delete(self, sobject: str, raw_id: str) -> None:
        spec = self.spec(sobject)
        record_id = self.record_id(spec, raw_id)
        record = self.records[spec.name].pop(record_id)
        self.deleted.add(record_id)
        for child_type, field in _CASCADE.get(spec.name, ()):
            for child in self.children(child_type, field, record_id):
                self.delete(child_type, child["Id"])
        self._after_write(spec, record, self.now())

    def upsert(
        self, sobject: str, field_name: str, value: str, body: Mapping[str, Any]
    ) -> tuple[str, bool]:
        """Create or update by external id; returns (id, created). Several matches: 300."""
        spec = self.spec(sobject)
        field = self.external_id_field(spec, field_name)
        if field.name == "Id":
            return self.update(spec.name, value, body), False
        body = {k: v for k, v in body.items() if k.lower() != field.name.lower()}
        matches = self.find(spec, field, value)
        if len(matches) > 1:
            raise AmbiguousExternalId(spec.name, matches)
        if matches:
            return self.update(spec.name, matches[0], body), False
        return self.insert(spec.name, {**body, field.name: value}), True

    # -- value rules ----------------------------------------------------------------------

    def _coerce_body(
        self, spec: ObjectSpec, body: Mapping[str, Any], *, creating: bool
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, raw in body.items():
            if key == "attributes":
                continue
            field = spec.field(key)
            if field is None:
                raise ApiError(
                    400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {spec.name}"
                )
            if not (field.createable if creating else field.updateable):
                raise ApiError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {field.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    (field.name,),
                )
            values[field.name] = self._coerce_value(field, raw)
        return values

    def _coerce_value(self, field: FieldSpec, raw: Any) -> Any:
        if raw is None:
            return None
        try:
            value = _COERCE[field.kind](raw)
        except (TypeError, ValueError, InvalidOperation) as exc:
            kind = "string" if field.kind == "reference" else field.kind
            raise ApiError(
                400,
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {kind} from {_token_name(raw)} value {raw} "
                "or request may be missing a required field",
            ) from exc
        if field.picklist is not None and value not in field.picklist:
            raise ApiError(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{field.display}: bad value for restricted picklist field: {value}",
                (field.name,),
            )
        if field.name == "CurrencyIsoCode" and value not in CURRENCY_EXPONENTS:
            raise ApiError(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Currency ISO Code: invalid currency code: {value}",
                (field.name,),
            )
        if field.kind == "reference":
            return self._reference(field, value)
        return value

    def _reference(self, field: FieldSpec, value: str) -> str:
        target = field.reference_to or ""
        if not is_record_id(value) or key_prefix(value) != KEY_PREFIXES[target]:
            raise ApiError(
                400,
                "MALFORMED_ID",
                f"{field.relationship} ID: id value of incorrect type: {value}",
                (field.name,),
            )
        record_id = normalize_id(value)
        if record_id in self.deleted:
            raise ApiError(400, "ENTITY_IS_DELETED", "entity is deleted", (field.name,))
        if record_id not in self.records[target]:
            raise ApiError(
                400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", (field.name,)
            )
        return record_id

    def _check_required(self, spec: ObjectSpec, record: Record) -> None:
        missing = [f.name for f in spec.fields if f.required and record.get(f.name) in (None, "")]
        if missing:
            raise ApiError(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )

    # -- derived fields -------------------------------------------------------------------

    def _derive(self, spec: ObjectSpec, record: Record, *, creating: bool) -> None:
        derive = _DERIVE.get(spec.name)
        if derive is not None:
            derive(self, record, creating)

    def _after_write(self, spec: ObjectSpec, record: Record, when: datetime) -> None:
        if spec.name != "OpportunityLineItem":
            return
        opportunity = self.records["Opportunity"].get(record["OpportunityId"])
        if opportunity is None:
            return
        # Line changes roll up into the parent: its Amount and its modstamp move with them.
        if opportunity["Pricebook2Id"] is None:
            entry = self.records["PricebookEntry"].get(record["PricebookEntryId"])
            opportunity["Pricebook2Id"] = entry["Pricebook2Id"] if entry else None
        _derive_opportunity(self, opportunity, False)
        opportunity.update(LastModifiedDate=when, SystemModstamp=when)

    def next_contract_number(self) -> str:
        self._contract_number += 1
        return f"{self._contract_number:08d}"


def quantize_money(value: Decimal, currency: str | None) -> Decimal:
    """Round a computed amount to the currency's minor unit (half up, as Salesforce rounds)."""
    places = CURRENCY_EXPONENTS.get(currency or DEFAULT_CURRENCY, 2)
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def parse_datetime(text: str) -> datetime:
    """Salesforce datetimes: `2026-11-01T10:00:00.000+0000`, `...Z`, or `...+00:00`."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = f"{text[:-2]}:{text[-2:]}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("datetime without a time zone")
    return parsed.astimezone(UTC)


def _derive_opportunity(org: EmulatedOrg, record: Record, creating: bool) -> None:
    stage = record.get("StageName")
    record["IsWon"] = _CLOSED_STAGES.get(stage or "") is True
    record["IsClosed"] = stage in _CLOSED_STAGES
    if record.get("CurrencyIsoCode") is None:
        account = org.records["Account"].get(record.get("AccountId") or "")
        record["CurrencyIsoCode"] = (account or {}).get("CurrencyIsoCode") or DEFAULT_CURRENCY
    lines = org.children("OpportunityLineItem", "OpportunityId", record["Id"])
    if lines:
        total = sum((line["TotalPrice"] for line in lines), Decimal(0))
        record["Amount"] = quantize_money(total, record["CurrencyIsoCode"])


def _derive_line(org: EmulatedOrg, record: Record, creating: bool) -> None:
    entry = org.records["PricebookEntry"][record["PricebookEntryId"]]
    opportunity = org.records["Opportunity"][record["OpportunityId"]]
    if creating:
        _check_entry_fits(entry, opportunity)
        product = org.records["Product2"][entry["Product2Id"]]
        record.update(
            Product2Id=entry["Product2Id"],
            ProductCode=product["ProductCode"],
            Name=f"{opportunity['Name']} {product['Name']}",
            CurrencyIsoCode=opportunity["CurrencyIsoCode"],
        )
    if record.get("UnitPrice") is None:
        record["UnitPrice"] = entry["UnitPrice"]
    if record.get("Quantity") is not None:
        record["TotalPrice"] = quantize_money(
            record["Quantity"] * record["UnitPrice"], record["CurrencyIsoCode"]
        )


def _check_entry_fits(entry: Record, opportunity: Record) -> None:
    problem = None
    if not entry["IsActive"]:
        problem = "pricebook entry is inactive"
    elif entry["CurrencyIsoCode"] != opportunity["CurrencyIsoCode"]:
        problem = "pricebook entry currency code does not match opportunity currency code"
    elif opportunity["Pricebook2Id"] not in (None, entry["Pricebook2Id"]):
        problem = "pricebook entry is in a different pricebook than the one assigned"
    if problem is not None:
        raise ApiError(
            400,
            "FIELD_INTEGRITY_EXCEPTION",
            f"field integrity exception: PricebookEntryId ({problem})",
            ("PricebookEntryId",),
        )


def _derive_entry(org: EmulatedOrg, record: Record, creating: bool) -> None:
    product = org.records["Product2"][record["Product2Id"]]
    record.update(Name=product["Name"], ProductCode=product["ProductCode"])
    if record.get("CurrencyIsoCode") is None:
        record["CurrencyIsoCode"] = DEFAULT_CURRENCY
    if record.get("IsActive") is None:
        record["IsActive"] = True


def _derive_contract(org: EmulatedOrg, record: Record, creating: bool) -> None:
    if creating:
        record["ContractNumber"] = org.next_contract_number()
    if record.get("Status") is None:
        record["Status"] = "Draft"
    if record.get("CurrencyIsoCode") is None:
        account = org.records["Account"].get(record.get("AccountId") or "")
        record["CurrencyIsoCode"] = (account or {}).get("CurrencyIsoCode") or DEFAULT_CURRENCY
    start, term = record.get("StartDate"), record.get("ContractTerm")
    record["EndDate"] = _add_months(start, term) - timedelta(days=1) if start and term else None


def _derive_defaults(org: EmulatedOrg, record: Record, creating: bool) -> None:
    for name, default in (
        ("CurrencyIsoCode", DEFAULT_CURRENCY), ("IsActive", False), ("IsPrivate", False)
    ):
        if name in record and record[name] is None:
            record[name] = default
    if "IsStandard" in record and record["IsStandard"] is None:
        record["IsStandard"] = False


def _add_months(start: date, months: int) -> date:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


_DERIVE: dict[str, Callable[[EmulatedOrg, Record, bool], None]] = {
    "Opportunity": _derive_opportunity,
    "OpportunityLineItem": _derive_line,
    "PricebookEntry": _derive_entry,
    "Contract": _derive_contract,
    "Account": _derive_defaults,
    "Product2": _derive_defaults,
    "Pricebook2": _derive_defaults,
    "Note": _derive_defaults,
}


def _as_string(raw: Any) -> str:
    if not isinstance(raw, str):
        raise TypeError("not a string")
    return raw


def _as_bool(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise TypeError("not a boolean")
    return raw


def _as_decimal(raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal | str):
        raise TypeError("not a number")
    value = Decimal(raw.strip()) if isinstance(raw, str) else Decimal(raw)
    if not value.is_finite():
        raise ValueError("not a finite number")
    return value


def _as_int(raw: Any) -> int:
    value = _as_decimal(raw)
    if value != value.to_integral_value():
        raise ValueError("not an integer")
    return int(value)


def _as_date(raw: Any) -> date:
    return date.fromisoformat(_as_string(raw))


def _as_datetime(raw: Any) -> datetime:
    return parse_datetime(_as_string(raw))


_COERCE: dict[str, Callable[[Any], Any]] = {
    "id": _as_string,
    "reference": _as_string,
    "string": _as_string,
    "boolean": _as_bool,
    "double": _as_decimal,
    "currency": _as_decimal,
    "int": _as_int,
    "date": _as_date,
    "datetime": _as_datetime,
}


def _token_name(raw: Any) -> str:
    if isinstance(raw, str):
        return "VALUE_STRING"
    if isinstance(raw, bool):
        return "VALUE_TRUE" if raw else "VALUE_FALSE"
    if isinstance(raw, int | Decimal):
        return "VALUE_NUMBER"
    return "START_OBJECT" if isinstance(raw, dict) else "START_ARRAY"
