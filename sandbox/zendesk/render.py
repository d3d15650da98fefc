"""Records rendered as the JSON Zendesk answers (shapes follow its docs and recorded samples)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from sandbox.zendesk.records import (
    Comment,
    Organization,
    Ticket,
    TicketEvent,
    User,
)

__all__ = [
    "audit_json",
    "comment_json",
    "iso",
    "metrics_json",
    "organization_json",
    "ticket_json",
    "user_json",
]

# Fixed ids of the account's default brand, form and statuses (one brand, one form).
_BRAND_ID = 36_000_000_000_001
_FORM_ID = 36_000_000_000_002
_STATUS_IDS = {
    status: 36_000_000_000_100 + index
    for index, status in enumerate(("new", "open", "pending", "hold", "solved", "closed"))
}


def iso(moment: datetime | None) -> str | None:
    """Zendesk's timestamp format: UTC, whole seconds, `Z`."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _via(channel: str) -> dict[str, Any]:
    return {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}}


def organization_json(base: str, org: Organization) -> dict[str, Any]:
    return {
        "url": f"{base}/api/v2/organizations/{org.id}.json",
        "id": org.id,
        "name": org.name,
        "shared_tickets": False,
        "shared_comments": False,
        "external_id": org.external_id,
        "created_at": iso(org.created_at),
        "updated_at": iso(org.updated_at),
        "domain_names": list(org.domain_names),
        "details": org.details,
        "notes": org.notes,
        "group_id": None,
        "tags": list(org.tags),
        "organization_fields": dict(org.fields),
    }


def user_json(base: str, user: User) -> dict[str, Any]:
    staff = user.is_staff
    return {
        "id": user.id,
        "url": f"{base}/api/v2/users/{user.id}.json",
        "name": user.name,
        "email": user.email,
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
        "time_zone": user.time_zone,
        "iana_time_zone": user.time_zone,
        "phone": user.phone,
        "shared_phone_number": None,
        "photo": None,
        "locale_id": 1,
        "locale": "en-US",
        "organization_id": user.organization_id,
        "role": user.role,
        "verified": True,
        "external_id": user.external_id,
        "tags": list(user.tags),
        "alias": None,
        "active": True,
        "shared": False,
        "shared_agent": False,
        "last_login_at": None,
        "two_factor_auth_enabled": None,
        "signature": None,
        "details": None,
        "notes": None,
        "role_type": None,
        "custom_role_id": None,
        "moderator": staff,
        "ticket_restriction": None if staff else "requested",
        "only_private_comments": False,
        "restricted_agent": not staff,
        "suspended": False,
        "default_group_id": None,
        "report_csv": staff,
        "user_fields": {},
    }


def ticket_json(base: str, ticket: Ticket) -> dict[str, Any]:
    custom_fields = [dict(item) for item in ticket.custom_fields]
    first = ticket.comments[0] if ticket.comments else None
    return {
        "url": f"{base}/api/v2/tickets/{ticket.id}.json",
        "id": ticket.id,
        "external_id": ticket.external_id,
        "via": _via(ticket.channel),
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "generated_timestamp": int(ticket.updated_at.timestamp()),
        "type": ticket.type,
        "subject": ticket.subject,
        "raw_subject": ticket.subject,
        "description": ticket.description,
        "priority": ticket.priority,
        "status": ticket.status,
        "recipient": None,
        "requester_id": ticket.requester_id,
        "submitter_id": ticket.submitter_id,
        "assignee_id": ticket.assignee_id,
        "organization_id": ticket.organization_id,
        "group_id": None,
        "collaborator_ids": [],
        "follower_ids": [],
        "email_cc_ids": [],
        "forum_topic_id": None,
        "problem_id": None,
        "has_incidents": False,
        "is_public": first.public if first else True,
        "due_at": None,
        "tags": list(ticket.tags),
        "custom_fields": custom_fields,
        "satisfaction_rating": {"score": "unoffered"},
        "sharing_agreement_ids": [],
        "custom_status_id": _STATUS_IDS[ticket.status],
        "fields": [dict(item) for item in custom_fields],
        "followup_ids": [],
        "ticket_form_id": _FORM_ID,
        "brand_id": _BRAND_ID,
        "allow_channelback": False,
        "allow_attachments": True,
        "from_messaging_channel": False,
    }


def comment_json(comment: Comment, channel: str = "api") -> dict[str, Any]:
    return {
        "id": comment.id,
        "type": "Comment",
        "author_id": comment.author_id,
        "body": comment.body,
        "html_body": f'<div class="zd-comment" dir="auto"><p>{html.escape(comment.body)}</p></div>',
        "plain_body": comment.body,
        "public": comment.public,
        "attachments": [],
        "audit_id": comment.audit_id,
        "via": _via(channel),
        "created_at": iso(comment.created_at),
        "metadata": {"system": {}, "custom": {}},
    }


def audit_json(
    ticket: Ticket, events: list[TicketEvent], comment: Comment | None, *, audit_id: int,
    author_id: int, at: datetime,
) -> dict[str, Any]:
    """The audit an update answers with: one event per changed field, plus the comment."""
    rendered: list[dict[str, Any]] = []
    if comment is not None:
        rendered.append({
            "id": comment.id, "type": "Comment", "author_id": comment.author_id,
            "body": comment.body, "public": comment.public,
        })
    for index, event in enumerate(events):
        if event.kind in ("comment_added", "created"):
            continue
        change: dict[str, Any] = {"id": audit_id + index + 1, "type": "Change",
                                  "field_name": event.kind.removesuffix("_changed")}
        if event.current is not None:
            change["value"] = _audit_value(event.current)
        if event.previous is not None:
            change["previous_value"] = _audit_value(event.previous)
        rendered.append(change)
    return {
        "id": comment.audit_id if comment is not None else audit_id,
        "ticket_id": ticket.id,
        "created_at": iso(at),
        "author_id": author_id,
        "metadata": {"system": {}, "custom": {}},
        "via": _via("api"),
        "events": rendered,
    }


def _audit_value(value: object) -> str | int:
    if isinstance(value, list):
        # Zendesk reports tag changes as one space-separated string.
        return " ".join(str(item) for item in value)
    return value if isinstance(value, int) and not isinstance(value, bool) else str(value)


def metrics_json(base: str, ticket: Ticket, users: dict[int, User]) -> dict[str, Any]:
    """The ticket's metric set; reply time runs to the first public staff comment, as Zendesk
    counts it.

    The sandbox schedule is 24/7, so business minutes equal calendar minutes.
    """
    reply = _minutes(ticket.created_at, ticket.first_response_at)
    resolution = _minutes(ticket.created_at, ticket.solved_at)
    replies = sum(
        1 for c in ticket.comments[1:]
        if c.public and c.author_id in users and users[c.author_id].is_staff
    )
    latest = ticket.comments[-1].created_at if ticket.comments else ticket.created_at
    return {
        "url": f"{base}/api/v2/ticket_metrics/{ticket.id}.json",
        "id": ticket.id,
        "ticket_id": ticket.id,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "group_stations": 1,
        "assignee_stations": 1 if ticket.assignee_id else 0,
        "reopens": 0,
        "replies": replies,
        "assignee_updated_at": iso(ticket.assigned_at),
        "requester_updated_at": iso(ticket.created_at),
        "status_updated_at": iso(ticket.updated_at),
        "initially_assigned_at": iso(ticket.assigned_at),
        "assigned_at": iso(ticket.assigned_at),
        "solved_at": iso(ticket.solved_at),
        "latest_comment_added_at": iso(latest),
        "reply_time_in_minutes": {"calendar": reply, "business": reply},
        "first_resolution_time_in_minutes": {"calendar": resolution, "business": resolution},
        "full_resolution_time_in_minutes": {"calendar": resolution, "business": resolution},
        "agent_wait_time_in_minutes": {"calendar": None, "business": None},
        "requester_wait_time_in_minutes": {"calendar": None, "business": None},
        "on_hold_time_in_minutes": {"calendar": 0, "business": 0},
    }


def _minutes(start: datetime, end: datetime | None) -> int | None:
    if end is None:
        return None
    return int((end - start).total_seconds() // 60)
