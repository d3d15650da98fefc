"""API version lifecycle: path majors (`/v1`, `/v2`), each current or deprecated.

A deprecated version answers with `Deprecation: @<unix>` (RFC 9745), `Sunset: <HTTP-date>`
(RFC 8594) and `Link` rels `deprecation` and `successor-version`; after its sunset it answers
410. The registry comes from settings; the OpenAPI marks the deprecated operations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from litestar.types import Scope

from contracts.errors import Gone
from gateway.settings import ApiVersionEntry

__all__ = ["DEFAULT_LIFECYCLE", "SUNSET_AFTER", "VersionRegistry"]

SUNSET_AFTER = timedelta(days=180)
"""How long a deprecated major keeps answering: partners get half a year to move."""
_BILLING_V1_DEPRECATED = datetime(2026, 12, 7, tzinfo=UTC)

DEFAULT_LIFECYCLE: tuple[ApiVersionEntry, ...] = (
    ApiVersionEntry(
        api="system/billing",
        major="v1",
        status="deprecated",
        deprecated_at=_BILLING_V1_DEPRECATED,
        sunset_at=_BILLING_V1_DEPRECATED + SUNSET_AFTER,
        successor="/system/billing/v2",
    ),
)
"""The lifecycle every gateway starts from; `ERPGW_API_VERSIONS` entries replace the entry of
the same api and major (or add one)."""

VERSIONED_PATH = re.compile(r"^/(?P<api>[a-z][a-z0-9/_-]*?)/(?P<major>v\d+)(?:/|$)")


class VersionRegistry:
    """Which API majors are deprecated, keyed by (api, major), e.g. ("system/crm", "v1")."""

    def __init__(self, entries: Iterable[ApiVersionEntry] = ()) -> None:
        # Later entries win: configured ones replace the defaults put before them.
        self._entries = {(entry.api, entry.major): entry for entry in entries}

    def lookup(self, path: str) -> ApiVersionEntry | None:
        match = VERSIONED_PATH.match(path)
        if match is None:
            return None
        return self._entries.get((match.group("api"), match.group("major")))

    def lifecycle_headers(self, scope: Scope, now: datetime) -> tuple[tuple[bytes, bytes], ...]:
        """The Deprecation, Sunset and Link fields for a deprecated version's answer; raises
        `Gone` after its sunset (leaving the same fields for the 410)."""
        entry = self.lookup(scope["path"])
        if entry is None or entry.status != "deprecated":
            return ()
        headers = _lifecycle_headers(entry)
        if entry.sunset_at is not None and now >= entry.sunset_at:
            scope.setdefault("state", {})["problem_headers"] = [
                (name.decode(), value.decode()) for name, value in headers
            ]
            successor = f" Use {entry.successor} instead." if entry.successor else ""
            raise Gone(
                f"/{entry.api}/{entry.major} was retired on "
                f"{format_datetime(entry.sunset_at, usegmt=True)}.{successor}"
            )
        return tuple(headers)

    def deprecated_entries(self) -> list[ApiVersionEntry]:
        return [e for e in self._entries.values() if e.status == "deprecated"]

    def mark_openapi(self, schema: dict[str, Any]) -> None:
        """Set `deprecated: true` on every operation of a deprecated version."""
        for path, item in schema.get("paths", {}).items():
            entry = self.lookup(path)
            if entry is None or entry.status != "deprecated":
                continue
            for operation in item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    operation["deprecated"] = True
                    _describe_lifecycle(operation, entry)


def _describe_lifecycle(operation: dict[str, Any], entry: ApiVersionEntry) -> None:
    """Say in the operation when it goes away and what replaces it (`x-sunset` for tools)."""
    note = f"Deprecated: /{entry.api}/{entry.major}"
    if entry.sunset_at is not None:
        operation["x-sunset"] = entry.sunset_at.isoformat().replace("+00:00", "Z")
        note += f" answers 410 from {operation['x-sunset']}"
    if entry.successor:
        operation["x-successor"] = entry.successor
        note += f"; use {entry.successor}"
    description = operation.get("description")
    operation["description"] = f"{note}.\n\n{description}" if description else f"{note}."


def _lifecycle_headers(entry: ApiVersionEntry) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    if entry.deprecated_at is not None:
        headers.append((b"deprecation", f"@{int(entry.deprecated_at.timestamp())}".encode()))
    if entry.sunset_at is not None:
        headers.append((b"sunset", format_datetime(entry.sunset_at, usegmt=True).encode()))
    links = ['</docs>; rel="deprecation"; type="text/html"']
    if entry.successor:
        links.append(f'<{entry.successor}>; rel="successor-version"')
    headers.append((b"link", ", ".join(links).encode()))
    return headers
