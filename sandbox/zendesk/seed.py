"""The demo company as a Zendesk account: one organization per demo account, its contacts as end
users, the sandbox API user (an admin) and a few tickets per organization."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sandbox.credentials import ZENDESK
from sandbox.demo_data import ACCOUNTS, DemoAccount
from sandbox.zendesk.records import (
    Comment,
    Organization,
    Ticket,
    User,
    stable_id,
)
from sandbox.zendesk.store import DirectoryStore
from sandbox.zendesk.tickets import TicketDesk

__all__ = [
    "API_USER_EMAIL",
    "API_USER_NAME",
    "SEED_EPOCH",
    "SUPPORT_AGENT_EMAIL",
    "api_user_id",
    "seed_account",
    "seed_api_user",
]

API_USER_EMAIL = ZENDESK.email
API_USER_NAME = "ERP Gateway Sandbox"
SUPPORT_AGENT_EMAIL = "sam.rivera@northwind.test"
SEED_EPOCH = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
"""Seeded records carry fixed times around this instant, so every reset is identical."""

_MISSED_BY_MINUTES = 75
_TIME_ZONES = {"US": "America/Los_Angeles", "DE": "Europe/Berlin", "NL": "Europe/Amsterdam"}


def api_user_id() -> int:
    return stable_id("user", API_USER_EMAIL)


def seed_api_user(directory: DirectoryStore) -> User:
    """The account's API user, an admin; it exists even in an unseeded account."""
    staff = User(
        id=api_user_id(), name=API_USER_NAME, email=API_USER_EMAIL, role="admin",
        created_at=SEED_EPOCH - timedelta(days=90), updated_at=SEED_EPOCH - timedelta(days=90),
    )
    directory.users[staff.id] = staff
    return staff


def seed_account(directory: DirectoryStore, desk: TicketDesk) -> None:
    """Fill empty stores with the demo company; ids and times depend only on the demo keys.

    A support agent answers and holds the seeded tickets; customers' contacts are end users.
    """
    joined = SEED_EPOCH - timedelta(days=80)
    staff = User(id=stable_id("user", SUPPORT_AGENT_EMAIL), name="Sam Rivera",
                 email=SUPPORT_AGENT_EMAIL, role="agent", created_at=joined, updated_at=joined)
    directory.users[staff.id] = staff
    for index, account in enumerate(ACCOUNTS):
        org = _organization(account)
        directory.organizations[org.id] = org
        users = [_contact_user(account, org, contact_index) for contact_index in
                 range(len(account.contacts))]
        for user in users:
            directory.users[user.id] = user
        if users:
            _seed_tickets(desk, account, org, users[0], staff, index)


def _organization(account: DemoAccount) -> Organization:
    created = SEED_EPOCH - timedelta(days=60)
    entitlement = account.entitlement
    fields: dict[str, str | int | None] = {
        "plan": entitlement.plan if entitlement else None,
        "sla_first_response_minutes": entitlement.sla_first_response_minutes if entitlement
        else None,
        "credit_percent_per_breach": entitlement.credit_percent_per_breach if entitlement
        else None,
        "credit_cap_percent": entitlement.credit_cap_percent if entitlement else None,
        "legal_entity": account.legal_entity,
        "currency": account.currency,
        # The gateway writes canonical ids into external_id itself; this marker only lets it
        # recognise the demo organization the first time it meets it.
        "crm_account_id": f"demo:{account.key}",
    }
    return Organization(
        id=stable_id("organization", account.key),
        name=account.name,
        created_at=created,
        updated_at=created,
        external_id=None,
        domain_names=[account.domain],
        details=f"{account.street}, {account.postal_code} {account.city}, {account.country}",
        tags=[entitlement.plan] if entitlement else [],
        fields=fields,
    )


def _contact_user(account: DemoAccount, org: Organization, contact_index: int) -> User:
    contact = account.contacts[contact_index]
    created = SEED_EPOCH - timedelta(days=59)
    return User(
        id=stable_id("user", contact.email),
        name=f"{contact.first_name} {contact.last_name}",
        email=contact.email,
        role="end-user",
        organization_id=org.id,
        time_zone=_TIME_ZONES.get(account.country, "UTC"),
        created_at=created,
        updated_at=created,
    )


def _seed_tickets(
    desk: TicketDesk, account: DemoAccount, org: Organization, requester: User, staff: User,
    index: int,
) -> None:
    sla = account.entitlement.sla_first_response_minutes if account.entitlement else 480
    day = SEED_EPOCH + timedelta(days=index)
    # A question answered within the target and solved.
    solved = _ticket(desk, account, "invoice", requester, staff, day - timedelta(days=7),
                     subject="Question about our latest invoice",
                     body="Could you explain the seat line on our latest invoice?",
                     priority="normal", type_="question", status="solved", tags=["billing"])
    _reply(desk, solved, account, staff, "invoice", solved.created_at + timedelta(minutes=sla // 2))
    solved.solved_at = solved.created_at + timedelta(minutes=sla * 2)
    solved.updated_at = solved.solved_at
    # An urgent outage answered after the SLA target: the escalation-credit case.
    urgent = _ticket(desk, account, "outage", requester, staff, day + timedelta(hours=1),
                     subject=f"{account.name}: API returning 503 in production",
                     body="All API calls fail with 503 since 09:00 UTC. Production is down.",
                     priority="urgent", type_="incident", status="open", tags=["api", "outage"])
    _reply(desk, urgent, account, staff, "outage", urgent.created_at
           + timedelta(minutes=sla + _MISSED_BY_MINUTES))
    # A new ticket nobody has answered yet.
    _ticket(desk, account, "sso", requester, None, day + timedelta(hours=5),
            subject="SSO login intermittently failing",
            body="Some users get an SSO error when signing in from the EU region.",
            priority="high", type_="problem", status="new", tags=["sso"])


def _ticket(
    desk: TicketDesk, account: DemoAccount, key: str, requester: User, assignee: User | None,
    created: datetime, *, subject: str, body: str, priority: str, type_: str, status: str,
    tags: list[str],
) -> Ticket:
    ticket = Ticket(
        id=desk.next_ticket_id, subject=subject, description=body, status=status,
        priority=priority, type=type_, requester_id=requester.id, submitter_id=requester.id,
        assignee_id=assignee.id if assignee else None, organization_id=requester.organization_id,
        tags=tags, created_at=created, updated_at=created, channel="email",
        assigned_at=created if assignee else None,
    )
    desk.next_ticket_id += 1
    ticket.comments.append(Comment(
        id=stable_id("comment", f"{account.key}:{key}:0"), author_id=requester.id, body=body,
        public=True, created_at=created, audit_id=stable_id("audit", f"{account.key}:{key}:0"),
    ))
    desk.tickets[ticket.id] = ticket
    return ticket


def _reply(
    desk: TicketDesk, ticket: Ticket, account: DemoAccount, staff: User, key: str, at: datetime
) -> None:
    ticket.comments.append(Comment(
        id=stable_id("comment", f"{account.key}:{key}:1"), author_id=staff.id,
        body="Thanks for reaching out, we are on it.", public=True, created_at=at,
        audit_id=stable_id("audit", f"{account.key}:{key}:1"),
    ))
    ticket.first_response_at = at
    ticket.updated_at = at
