"""Tickets in the emulated Zendesk account: creation, updates, comments and first response."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sandbox.zendesk.checks import Checks
from sandbox.zendesk.errors import not_found, record_invalid
from sandbox.zendesk.records import (
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    TICKET_TYPES,
    Comment,
    IdempotentResponse,
    Ticket,
    TicketEvent,
    User,
)
from sandbox.zendesk.store import DirectoryStore

__all__ = ["TicketDesk", "TicketListener"]

TicketListener = Callable[[Ticket, list[TicketEvent], User], None]
"""(ticket, what changed, who changed it) after every accepted write."""

_SUBJECT_FROM_BODY = 60
# Field -> the Zendesk event type suffix emitted when an update changes it.
_CHANGE_EVENTS = {
    "subject": "subject_changed",
    "priority": "priority_changed",
    "status": "status_changed",
    "type": "type_changed",
    "assignee_id": "agent_assignment_changed",
    "organization_id": "organization_changed",
    "external_id": "external_id_changed",
    "tags": "tags_changed",
    "custom_fields": "custom_field_changed",
}


class TicketDesk:
    """The tickets of the account; every accepted write is reported to the listeners."""

    def __init__(self, directory: DirectoryStore) -> None:
        self.directory = directory
        self.tickets: dict[int, Ticket] = {}
        self.idempotency: dict[str, IdempotentResponse] = {}
        self.listeners: list[TicketListener] = []
        self.next_ticket_id = 1
        """Zendesk numbers tickets per account, 1, 2, 3, ... (unlike every other record)."""

    def clear(self) -> None:
        self.tickets.clear()
        self.idempotency.clear()
        self.next_ticket_id = 1

    def ticket(self, ticket_id: int) -> Ticket:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            raise not_found()
        return ticket

    def create(self, payload: Mapping[str, Any], *, actor: User) -> Ticket:
        checks = Checks()
        comment = checks.mapping(payload, "comment", "Comment") or {}
        body = _comment_body(checks, comment) or checks.text(payload, "description", "Description")
        if not body:
            checks.fail("description", "BlankValue", "Description: cannot be blank")
        requester_ref = self._requester(checks, payload, actor)
        submitter = self._user_ref(checks, payload, "submitter_id", "Submitter") or actor
        author = self._user_ref(checks, comment, "author_id", "Author") or submitter
        fields = self._ticket_fields(checks, payload)
        public = _public_flag(checks, comment)
        checks.done()
        if requester_ref is None or not body:  # each already failed a check above
            raise record_invalid({"requester_id": [("InvalidValue", "Requester: is invalid")]})
        # Zendesk creates an unknown requester as an end user, once the ticket is valid.
        requester = (requester_ref if isinstance(requester_ref, User)
                     else self.directory.create_user(requester_ref))
        now = self.directory.clock()
        subject = fields.pop("subject", None) or body.splitlines()[0][:_SUBJECT_FROM_BODY]
        ticket = Ticket(
            id=self.next_ticket_id,
            subject=subject,
            description=body,
            status="new",
            requester_id=requester.id,
            submitter_id=submitter.id,
            organization_id=requester.organization_id,
            created_at=now,
            updated_at=now,
        )
        self.next_ticket_id += 1
        self._apply(ticket, fields)
        if "status" not in fields and ticket.assignee_id is not None:
            ticket.status = "open"
        ticket.comments.append(self._comment(author.id, body, public=public))
        self.tickets[ticket.id] = ticket
        self._emit(ticket, [TicketEvent(kind="created", ticket_id=ticket.id)], actor)
        return ticket

    def update(
        self, ticket: Ticket, payload: Mapping[str, Any], *, actor: User
    ) -> tuple[Comment | None, list[TicketEvent]]:
        """Apply an update; (the comment it added, the events it caused)."""
        if ticket.status == "closed":
            raise record_invalid(
                {"status": [("InvalidValue", "Status: closed prevents ticket update")]}
            )
        checks = Checks()
        fields = self._ticket_fields(checks, payload)
        comment_payload = checks.mapping(payload, "comment", "Comment")
        body: str | None = None
        author: User | None = None
        public = True
        if comment_payload is not None:
            body = _comment_body(checks, comment_payload)
            if not body:
                checks.fail("comment", "BlankValue", "Comment: cannot be blank")
            author = self._user_ref(checks, comment_payload, "author_id", "Author") or actor
            public = _public_flag(checks, comment_payload)
        checks.done()
        events = self._apply(ticket, fields)
        comment: Comment | None = None
        if body and author is not None:
            comment = self.add_comment(ticket, author, body, public=public)
            events.append(TicketEvent(kind="comment_added", ticket_id=ticket.id, current=comment))
        ticket.updated_at = self.directory.clock()
        self._emit(ticket, events, actor)
        return comment, events

    def add_comment(self, ticket: Ticket, author: User, body: str, *, public: bool) -> Comment:
        """Append a comment; the first public staff reply fixes the ticket's first response."""
        comment = self._comment(author.id, body, public=public)
        ticket.comments.append(comment)
        if (
            public
            and author.is_staff
            and author.id != ticket.requester_id
            and ticket.first_response_at is None
        ):
            ticket.first_response_at = comment.created_at
        return comment

    def _comment(self, author_id: int, body: str, *, public: bool) -> Comment:
        return Comment(
            id=self.directory.new_id(),
            author_id=author_id,
            body=body,
            public=public,
            created_at=self.directory.clock(),
            audit_id=self.directory.new_id(),
        )

    def _ticket_fields(self, checks: Checks, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The writable ticket fields present in `payload`, checked (None clears a field)."""
        fields: dict[str, Any] = {}
        if "subject" in payload:
            fields["subject"] = checks.text(payload, "subject", "Subject")
        if "priority" in payload:
            fields["priority"] = checks.choice(payload, "priority", "Priority", TICKET_PRIORITIES)
        if "status" in payload:
            fields["status"] = checks.choice(payload, "status", "Status", TICKET_STATUSES) or "open"
        if "type" in payload:
            fields["type"] = checks.choice(payload, "type", "Type", TICKET_TYPES)
        if "assignee_id" in payload:
            assignee = self._user_ref(checks, payload, "assignee_id", "Assignee")
            if assignee is not None and not assignee.is_staff:
                checks.fail("assignee_id", "InvalidValue", "Assignee: must be a staff member")
            fields["assignee_id"] = assignee.id if assignee is not None else None
        if "organization_id" in payload:
            org_id = checks.identifier(payload, "organization_id", "Organization")
            if org_id is not None and org_id not in self.directory.organizations:
                checks.fail("organization_id", "InvalidValue", "Organization: is invalid")
            fields["organization_id"] = org_id
        if "external_id" in payload:
            fields["external_id"] = checks.text(payload, "external_id", "External ID")
        if "tags" in payload:
            fields["tags"] = checks.strings(payload, "tags", "Tags") or []
        if "custom_fields" in payload:
            fields["custom_fields"] = _custom_fields(checks, payload.get("custom_fields"))
        return fields

    def _apply(self, ticket: Ticket, fields: Mapping[str, Any]) -> list[TicketEvent]:
        events: list[TicketEvent] = []
        now = self.directory.clock()
        for key, value in fields.items():
            if key == "custom_fields":
                value = _merge_custom_fields(ticket.custom_fields, value)
            previous = getattr(ticket, key)
            if previous == value:
                continue
            setattr(ticket, key, value)
            events.append(
                TicketEvent(
                    kind=_CHANGE_EVENTS[key], ticket_id=ticket.id, previous=previous, current=value
                )
            )
        if ticket.assignee_id is not None and ticket.assigned_at is None:
            ticket.assigned_at = now
            if ticket.status == "new":
                ticket.status = "open"
        if ticket.status in ("solved", "closed") and ticket.solved_at is None:
            ticket.solved_at = now
        return events

    def _requester(
        self, checks: Checks, payload: Mapping[str, Any], actor: User
    ) -> User | dict[str, Any] | None:
        """The requester: a known user, or the `user` body of one to create (None: invalid)."""
        if "requester_id" in payload:
            return self._user_ref(checks, payload, "requester_id", "Requester")
        requester = checks.mapping(payload, "requester", "Requester")
        if requester is None:
            return actor
        email = checks.text(requester, "email", "Requester email")
        name = checks.text(requester, "name", "Requester name") or email
        if not name:
            checks.fail("requester", "BlankValue", "Requester: needs a name or an email")
            return None
        if email and (known := self.directory.user_by_email(email)) is not None:
            return known
        return {"name": name, "email": email, "role": "end-user"}

    def _user_ref(
        self, checks: Checks, payload: Mapping[str, Any], key: str, label: str
    ) -> User | None:
        user_id = checks.identifier(payload, key, label)
        if user_id is None:
            return None
        user = self.directory.users.get(user_id)
        if user is None:
            checks.fail(key, "InvalidValue", f"{label}: is invalid")
        return user

    def _emit(self, ticket: Ticket, events: list[TicketEvent], actor: User) -> None:
        if not events:
            return
        for listener in self.listeners:
            listener(ticket, events, actor)


def _comment_body(checks: Checks, comment: Mapping[str, Any]) -> str | None:
    body = checks.text(comment, "body", "Comment")
    if body is None and "html_body" in comment:
        body = checks.text(comment, "html_body", "Comment")
    return body.strip() if body and body.strip() else None


def _public_flag(checks: Checks, comment: Mapping[str, Any]) -> bool:
    value = comment.get("public", True)
    if not isinstance(value, bool):
        checks.fail("comment.public", "InvalidValue", "Public: must be true or false")
        return True
    return value


def _custom_fields(checks: Checks, raw: object) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        checks.fail("custom_fields", "InvalidValue", "Custom fields: must be a list")
        return []
    fields: list[dict[str, Any]] = []
    for item in raw:
        field_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(field_id, int) or isinstance(field_id, bool):
            checks.fail("custom_fields", "InvalidValue", "Custom fields: each needs an integer id")
            continue
        fields.append({"id": field_id, "value": item.get("value")})
    return fields


def _merge_custom_fields(
    current: list[dict[str, Any]], changes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    merged = {item["id"]: item["value"] for item in current}
    merged.update({item["id"]: item["value"] for item in changes})
    return [{"id": field_id, "value": value} for field_id, value in sorted(merged.items())]
