"""Salesforce record ids: 15-character case-sensitive ids and their 18-character safe form.

An 18-character id is the 15-character id plus a 3-character suffix that encodes, for each
5-character chunk, which characters are upper case, so the id survives case-insensitive tools.
Algorithm (Salesforce Knowledge "What are Salesforce IDs composed of?"): for chunk i, set bit j
when character j of the chunk is A-Z; the 5-bit number indexes "A..Z0..5".
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "KEY_PREFIXES",
    "checksum",
    "counter_id",
    "is_record_id",
    "key_prefix",
    "make_id",
    "normalize_id",
    "seeded_id",
]

KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Note": "002",
    "Contact": "003",
    "Opportunity": "006",
    "OpportunityLineItem": "00k",
    "Contract": "800",
    "Product2": "01t",
    "Pricebook2": "01s",
    "PricebookEntry": "01u",
    "Organization": "00D",
    "User": "005",
    "QueryLocator": "01g",
}

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_SHAPE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-5]{3})?$")


def checksum(id15: str) -> str:
    """The 3-character case-safety suffix of a 15-character id."""
    if len(id15) != 15:
        raise ValueError(f"expected a 15-character id, got {id15!r}")
    suffix = ""
    for start in (0, 5, 10):
        bits = 0
        for position, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix


def is_record_id(value: str) -> bool:
    """True for a well-formed 15-character id or an 18-character id with a correct suffix."""
    if not _ID_SHAPE.match(value):
        return False
    return len(value) == 15 or value[15:].upper() == checksum(value[:15])


def normalize_id(value: str) -> str:
    """The 18-character form of a 15- or 18-character id; ValueError when malformed."""
    if not is_record_id(value):
        raise ValueError(f"malformed id {value!r}")
    return value[:15] + checksum(value[:15])


def key_prefix(value: str) -> str:
    """The 3-character key prefix naming the object type of an id."""
    return value[:3]


def make_id(prefix: str, body: str) -> str:
    """An 18-character id from a 3-character key prefix and a 12-character body."""
    if len(prefix) != 3 or len(body) != 12:
        raise ValueError("an id is a 3-character prefix and a 12-character body")
    id15 = prefix + body
    return id15 + checksum(id15)


def seeded_id(sobject: str, key: str) -> str:
    """A stable id for a seeded record, derived from its demo key (same on every reset)."""
    digest = int.from_bytes(hashlib.sha256(f"{sobject}:{key}".encode()).digest()[:16], "big")
    return make_id(KEY_PREFIXES[sobject], "ak" + _base62(digest, 10))


def counter_id(sobject: str, number: int) -> str:
    """The id of the `number`th record created at run time (pod `bk` never clashes with seeds)."""
    return make_id(KEY_PREFIXES[sobject], "bk" + _base62(number, 10))


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(_BASE62[digit])
    return "".join(reversed(chars))
