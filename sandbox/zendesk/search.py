"""A small subset of Zendesk's search query language, enough for what the gateway asks.

Supported: `type:organization|user|ticket`, `external_id:`, `name:`, `email:`,
`organization:`/`organization_id:`, `requester:`, `status:`, `priority:`, `ticket_type:`,
`tags:`/`tag:` and free words (matched case-insensitively against names, subjects, emails).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.zendesk.records import Organization, Ticket, User
from sandbox.zendesk.store import DirectoryStore
from sandbox.zendesk.tickets import TicketDesk

__all__ = ["SearchHit", "search"]

_TOKEN = re.compile(r'(\w+):"([^"]*)"|(\w+):(\S+)|"([^"]*)"|(\S+)')
_TYPES = ("organization", "user", "ticket")


@dataclass(frozen=True, slots=True)
class SearchHit:
    result_type: str
    record: Organization | User | Ticket


def search(query: str, directory: DirectoryStore, desk: TicketDesk) -> list[SearchHit]:
    filters, words = _parse(query)
    wanted = [filters.pop("type")] if "type" in filters else list(_TYPES)
    hits: list[SearchHit] = []
    if "organization" in wanted:
        hits += [SearchHit("organization", o) for o in sorted(directory.organizations.values(),
                 key=lambda o: o.id) if _matches(_org_fields(o), filters, words)]
    if "user" in wanted:
        hits += [SearchHit("user", u) for u in sorted(directory.users.values(),
                 key=lambda u: u.id) if _matches(_user_fields(u), filters, words)]
    if "ticket" in wanted:
        hits += [SearchHit("ticket", t) for t in sorted(desk.tickets.values(),
                 key=lambda t: t.id) if _matches(_ticket_fields(t, directory), filters, words)]
    return hits


def _parse(query: str) -> tuple[dict[str, str], list[str]]:
    filters: dict[str, str] = {}
    words: list[str] = []
    for quoted_key, quoted_value, key, value, phrase, word in _TOKEN.findall(query):
        if quoted_key or key:
            filters[(quoted_key or key).lower()] = quoted_value or value
        else:
            words.append(phrase or word)
    return filters, words


def _matches(fields: dict[str, Any], filters: dict[str, str], words: list[str]) -> bool:
    for key, expected in filters.items():
        check = _FILTERS.get(key)
        name = _ALIASES.get(key, key)
        # A filter this record type does not have matches nothing, as in Zendesk.
        if check is None or name not in fields or not check(fields[name], expected):
            return False
    text = " ".join(str(value) for value in fields.get("_text", [])).casefold()
    return all(word.casefold() in text for word in words)


def _same(actual: Any, expected: str) -> bool:
    return actual is not None and str(actual).casefold() == expected.casefold()


def _contains(actual: Any, expected: str) -> bool:
    return actual is not None and expected.casefold() in str(actual).casefold()


def _tagged(actual: Any, expected: str) -> bool:
    return isinstance(actual, list) and expected.casefold() in (t.casefold() for t in actual)


_FILTERS: dict[str, Callable[[Any, str], bool]] = {
    "external_id": _same, "name": _contains, "email": _same, "organization": _same,
    "organization_id": _same, "requester": _same, "status": _same, "priority": _same,
    "ticket_type": _same, "tags": _tagged, "tag": _tagged,
}
_ALIASES = {"organization_id": "organization", "tag": "tags"}


def _org_fields(org: Organization) -> dict[str, Any]:
    return {"external_id": org.external_id, "name": org.name, "tags": org.tags,
            "_text": [org.name, *org.domain_names]}


def _user_fields(user: User) -> dict[str, Any]:
    return {"external_id": user.external_id, "name": user.name, "email": user.email,
            "organization": user.organization_id, "tags": user.tags,
            "_text": [user.name, user.email or ""]}


def _ticket_fields(ticket: Ticket, directory: DirectoryStore) -> dict[str, Any]:
    requester = directory.users.get(ticket.requester_id)
    return {"external_id": ticket.external_id, "organization": ticket.organization_id,
            "requester": requester.email if requester else ticket.requester_id,
            "status": ticket.status, "priority": ticket.priority, "ticket_type": ticket.type,
            "tags": ticket.tags, "_text": [ticket.subject, ticket.description]}
