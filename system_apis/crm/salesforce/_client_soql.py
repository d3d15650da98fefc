"""SOQL text the client builds, with every value quoted so input stays data."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Annotated

import msgspec

from contracts.errors import UpstreamNotFound
from system_apis.crm.salesforce._client_http import VENDOR

__all__ = [
    "ACCOUNTS_LIST",
    "RecordId",
    "account_filters",
    "checked_id",
    "select",
    "soql_datetime",
    "soql_string",
]

_ID = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")  # fullmatch: `$` lets "\n" through
ACCOUNTS_LIST = "salesforce:Account"
"""The list our account cursors page (their position: the last account id of a page)."""
RecordId = Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?\Z")]
"""A record id, as a cursor position must hold one: it is quoted into SOQL."""


def select(
    fields: Sequence[str],
    sobject: str,
    conditions: Sequence[str] = (),
    order: str | None = None,
    limit: int | None = None,
) -> str:
    soql = f"SELECT {', '.join(fields)} FROM {sobject}"
    if conditions:
        soql += " WHERE " + " AND ".join(conditions)
    if order:
        soql += f" ORDER BY {order}"
    if limit is not None:
        soql += f" LIMIT {limit}"
    return soql


def account_filters(legal_entities: Collection[str] | None, name: str | None) -> list[str]:
    conditions = []
    if legal_entities is not None:
        # An empty set of visible entities must match nothing, not everything.
        values = ", ".join(soql_string(e) for e in sorted(legal_entities)) or "''"
        conditions.append(f"Legal_Entity__c IN ({values})")
    if name:
        conditions.append(f"Name LIKE {soql_string('%' + _like_escape(name) + '%', like=True)}")
    return conditions


def soql_string(value: str, *, like: bool = False) -> str:
    """A SOQL string literal; backslashes and quotes escaped so input stays data."""
    escaped = value if like else value.replace("\\", "\\\\")
    return "'" + escaped.replace("'", "\\'") + "'"


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def soql_datetime(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("the watermark must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def checked_id(value: str, what: str) -> str:
    """A record id is 15 letters and digits, or 18 whose last 3 are the case-safety checksum of
    the first 15; anything else cannot exist, and is not sent (Salesforce would refuse it with
    an error naming our query)."""
    if not _ID.fullmatch(value) or (
        len(value) == 18 and value[15:].upper() != _checksum(value[:15])
    ):
        raise UpstreamNotFound(f"no Salesforce {what} {value!r}", vendor=VENDOR, status=404)
    return value


_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def _checksum(id15: str) -> str:
    """The 18-character id's suffix: for each 5-character chunk, which characters are upper
    case, as a 5-bit number naming a letter of `_SUFFIX_ALPHABET`
    (https://help.salesforce.com/s/articleView?id=000385585)."""
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(
            1 << position
            for position, char in enumerate(id15[start : start + 5])
            if "A" <= char <= "Z"
        )
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix
