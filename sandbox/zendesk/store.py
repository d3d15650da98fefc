"""The Zendesk account the emulator keeps in memory: organizations, users, tickets and the rules
Zendesk applies when they are written."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sandbox.zendesk.checks import Checks
from sandbox.zendesk.errors import not_found
from sandbox.zendesk.records import (
    INTEGER_ORGANIZATION_FIELDS,
    ORGANIZATION_FIELD_KEYS,
    USER_ROLES,
    Organization,
    User,
)

__all__ = ["Clock", "DirectoryStore"]

Clock = Callable[[], datetime]

_FIRST_CREATED_ID = 40_000_000_000_000


class DirectoryStore:
    """Organizations and users, with Zendesk's uniqueness and reference rules."""

    def __init__(self, *, clock: Clock) -> None:
        self.clock = clock
        self.organizations: dict[int, Organization] = {}
        self.users: dict[int, User] = {}
        self._next_id = _FIRST_CREATED_ID

    def clear(self) -> None:
        self.organizations.clear()
        self.users.clear()
        self._next_id = _FIRST_CREATED_ID

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- organizations -------------------------------------------------------------------

    def organization(self, org_id: int) -> Organization:
        org = self.organizations.get(org_id)
        if org is None:
            raise not_found()
        return org

    def organization_by_external_id(self, external_id: str) -> Organization | None:
        wanted = external_id.casefold()
        return next(
            (
                org
                for org in self.organizations.values()
                if org.external_id is not None and org.external_id.casefold() == wanted
            ),
            None,
        )

    def create_organization(self, payload: Mapping[str, Any]) -> Organization:
        now = self.clock()
        org = Organization(id=self.new_id(), name="", created_at=now, updated_at=now)
        org.fields = dict.fromkeys(ORGANIZATION_FIELD_KEYS)
        self._write_organization(org, payload, creating=True)
        self.organizations[org.id] = org
        return org

    def update_organization(self, org: Organization, payload: Mapping[str, Any]) -> Organization:
        self._write_organization(org, payload, creating=False)
        org.updated_at = self.clock()
        return org

    def upsert_organization(self, payload: Mapping[str, Any]) -> tuple[Organization, bool]:
        """Zendesk's create_or_update: match on id, then external_id (name never matches)."""
        existing: Organization | None = None
        org_id = payload.get("id")
        if isinstance(org_id, int) and not isinstance(org_id, bool):
            existing = self.organizations.get(org_id)
        external_id = payload.get("external_id")
        if existing is None and isinstance(external_id, str) and external_id:
            existing = self.organization_by_external_id(external_id)
        if existing is None:
            return self.create_organization(payload), True
        return self.update_organization(existing, payload), False

    def _write_organization(
        self, org: Organization, payload: Mapping[str, Any], *, creating: bool
    ) -> None:
        checks = Checks()
        name = checks.text(payload, "name", "Name", required=creating or "name" in payload)
        if name is not None and self._name_taken(name, org.id):
            checks.fail("name", "DuplicateValue", f"Name: {name} has already been taken")
        external_id = checks.text(payload, "external_id", "External ID")
        if external_id and self._external_id_taken(external_id, org.id):
            checks.fail("external_id", "DuplicateValue",
                        f"External ID: {external_id} has already been taken")
        domains = checks.strings(payload, "domain_names", "Domain names")
        details = checks.text(payload, "details", "Details")
        notes = checks.text(payload, "notes", "Notes")
        tags = checks.strings(payload, "tags", "Tags")
        fields = _organization_fields(checks, payload)
        checks.done()
        if name is not None:
            org.name = name.strip()
        if "external_id" in payload:
            org.external_id = external_id or None
        if domains is not None:
            org.domain_names = domains
        if "details" in payload:
            org.details = details
        if "notes" in payload:
            org.notes = notes
        if tags is not None:
            org.tags = tags
        org.fields.update(fields)

    def _name_taken(self, name: str, own_id: int) -> bool:
        wanted = name.strip().casefold()
        return any(
            org.name.casefold() == wanted and org.id != own_id
            for org in self.organizations.values()
        )

    def _external_id_taken(self, external_id: str, own_id: int) -> bool:
        found = self.organization_by_external_id(external_id)
        return found is not None and found.id != own_id

    # -- users ---------------------------------------------------------------------------

    def user(self, user_id: int) -> User:
        user = self.users.get(user_id)
        if user is None:
            raise not_found()
        return user

    def user_by_email(self, email: str) -> User | None:
        wanted = email.strip().casefold()
        return next(
            (u for u in self.users.values() if (u.email or "").casefold() == wanted), None
        )

    def create_user(self, payload: Mapping[str, Any]) -> User:
        now = self.clock()
        user = User(id=self.new_id(), name="", email=None, role="end-user", created_at=now,
                    updated_at=now)
        self._write_user(user, payload, creating=True)
        self.users[user.id] = user
        return user

    def update_user(self, user: User, payload: Mapping[str, Any]) -> User:
        self._write_user(user, payload, creating=False)
        user.updated_at = self.clock()
        return user

    def _write_user(self, user: User, payload: Mapping[str, Any], *, creating: bool) -> None:
        checks = Checks()
        name = checks.text(payload, "name", "Name", required=creating or "name" in payload)
        email = checks.text(payload, "email", "Email")
        if email is not None:
            email = email.strip()
            if "@" not in email or "." not in email.rpartition("@")[2]:
                checks.fail("email", "InvalidFormat", f"Email: {email} is not properly formatted")
            elif (other := self.user_by_email(email)) is not None and other.id != user.id:
                checks.fail(
                    "email", "DuplicateValue",
                    f"Email: {email} is already being used by another user",
                )
        role = checks.choice(payload, "role", "Role", USER_ROLES)
        org_id = checks.identifier(payload, "organization_id", "Organization")
        if org_id is not None and org_id not in self.organizations:
            checks.fail("organization_id", "InvalidValue", "Organization: is invalid")
        external_id = checks.text(payload, "external_id", "External ID")
        phone = checks.text(payload, "phone", "Phone")
        tags = checks.strings(payload, "tags", "Tags")
        checks.done()
        if name is not None:
            user.name = name.strip()
        if email is not None:
            user.email = email
        if role is not None:
            user.role = role
        if "organization_id" in payload:
            user.organization_id = org_id
        if "external_id" in payload:
            user.external_id = external_id or None
        if "phone" in payload:
            user.phone = phone
        if tags is not None:
            user.tags = tags


def _organization_fields(checks: Checks, payload: Mapping[str, Any]) -> dict[str, str | int | None]:
    """The known organization fields in `payload`; unknown keys are ignored, as Zendesk does."""
    raw = checks.mapping(payload, "organization_fields", "Organization fields") or {}
    fields: dict[str, str | int | None] = {}
    for key in ORGANIZATION_FIELD_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if value is None or value == "":
            fields[key] = None
        elif key in INTEGER_ORGANIZATION_FIELDS:
            parsed = _integer(value)
            if parsed is None:
                checks.fail(f"organization_fields.{key}", "InvalidValue", f"{key}: is not a number")
            fields[key] = parsed
        elif isinstance(value, str):
            fields[key] = value
        else:
            checks.fail(f"organization_fields.{key}", "InvalidValue", f"{key}: is invalid")
    return fields


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None

