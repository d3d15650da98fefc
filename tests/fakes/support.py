"""`FakeSupport`: an in-memory `SupportPort` that keeps tickets as Zendesk does.

Organizations and users have numeric ids, tickets are numbered 1, 2, 3 ... as in a Zendesk
account. An organization upsert matches the Zendesk id in the customer's refs, then the external
id (a canonical customer id, compared case-insensitively), and refuses a name another
organization holds. A case is opened for the organization linked to its customer (none linked is
`UpstreamNotFound`); an `idempotency_key` replays the first ticket (other parameters under the
same key are `UpstreamConflict`). A case starts `new`, its description is its first (public)
comment, internal comments are private, and its first response is the first public staff reply,
reported in whole minutes after creation as Zendesk's metrics do. An id that is not a number, or
names nothing, is `UpstreamNotFound`; writing to a closed ticket is `UpstreamInvalid`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from contracts.errors import (
    FieldError,
    UpstreamConflict,
    UpstreamInvalid,
    UpstreamNotFound,
    UpstreamRejected,
)
from contracts.money import is_known_currency
from contracts.v1 import (
    CasePriority,
    CaseStatus,
    Contact,
    Customer,
    Entitlement,
    Page,
    SupportCase,
    SupportCaseCreate,
    SupportCasePatch,
)
from tests.fakes._base import FakePort, operation

__all__ = ["FakeComment", "FakeSupport"]

VENDOR = "zendesk"
MAX_PAGE_SIZE = 100
_DEMO_MARKER = "demo:"
_SUBJECT_FROM_BODY = 60


class FakeComment(msgspec.Struct, frozen=True, kw_only=True):
    """A ticket comment, shaped as the Zendesk client returns it (satisfies `CaseComment`)."""

    id: str
    author_id: str | None
    body: str
    public: bool
    created_at: datetime


@dataclass
class _Org:
    id: int
    name: str
    external_id: str | None
    fields: dict[str, str | int | None] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass
class _User:
    id: int
    name: str
    email: str | None
    role: str
    phone: str | None = None
    organization_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in ("agent", "admin")


@dataclass
class _Ticket:
    id: int
    subject: str
    description: str
    status: CaseStatus
    priority: CasePriority | None
    requester_id: int
    organization_id: int | None
    created_at: datetime
    updated_at: datetime
    tags: list[str] = field(default_factory=list)
    comments: list[FakeComment] = field(default_factory=list)
    first_response_at: datetime | None = None


class FakeSupport(FakePort):
    """Zendesk in memory.

    Readable by tests: organizations (Customer by id, unmappable ones left out), cases
    (SupportCase by id), comments (ticket id -> FakeComment list), users (Contact by id),
    entitlements (Entitlement by organization id); calls and writes (see `FakePort`).
    Seed with `seed_organization` and `seed_user`; answer as staff with `reply_publicly`.
    """

    vendor = VENDOR

    def __init__(
        self,
        *,
        default_legal_entity: str | None = None,
        currency_by_entity: Mapping[str, str] | None = None,
        agent_email: str = "gateway@fake.zendesk.test",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self._default_entity = default_legal_entity
        self._currencies = dict(currency_by_entity or {})
        self._orgs: dict[int, _Org] = {}
        self._users: dict[int, _User] = {}
        self._tickets: dict[int, _Ticket] = {}
        self._ids = 1000
        self.agent = self._add_user("Gateway Integration", agent_email, role="admin")
        """The API user every write acts as (a staff member)."""

    # ------------------------------------------------------------------ seeding (not recorded)

    def seed_organization(
        self,
        name: str,
        *,
        legal_entity: str | None = None,
        currency: str | None = None,
        external_id: str | None = None,
        crm_account_id: str | None = None,
        entitlement: Entitlement | None = None,
    ) -> str:
        """An organization the account already holds; returns its id."""
        org = _Org(id=self._new_id(), name=name, external_id=external_id,
                   fields={"legal_entity": legal_entity, "currency": currency,
                           "crm_account_id": crm_account_id},
                   updated_at=self.now())
        if entitlement is not None:
            org.fields.update(_entitlement_fields(entitlement))
        self._orgs[org.id] = org
        return str(org.id)

    def seed_user(
        self, name: str, *, email: str | None = None, role: str = "end-user",
        organization_id: str | None = None,
    ) -> str:
        user = self._add_user(name, email, role=role,
                              organization_id=int(organization_id) if organization_id else None)
        return str(user.id)

    def reply_publicly(
        self, case_id: str, body: str, *, at: datetime | None = None, author_id: str | None = None
    ) -> FakeComment:
        """A public reply on the case by support staff (the agent unless `author_id`)."""
        ticket = self._ticket(case_id)
        author = self._users[int(author_id)] if author_id else self.agent
        return self._comment(ticket, author, body, public=True, at=at or self.now())

    # ------------------------------------------------------------------ readable state

    @property
    def organizations(self) -> dict[str, Customer]:
        found = {}
        for org in self._orgs.values():
            try:
                found[str(org.id)] = self._customer(org)
            except UpstreamRejected:
                continue
        return found

    @property
    def entitlements(self) -> dict[str, Entitlement]:
        found = {str(org.id): _entitlement(org) for org in self._orgs.values()}
        return {key: value for key, value in found.items() if value is not None}

    @property
    def cases(self) -> dict[str, SupportCase]:
        return {str(t.id): self._case(t) for t in self._tickets.values()}

    @property
    def comments(self) -> dict[str, list[FakeComment]]:
        return {str(t.id): list(t.comments) for t in self._tickets.values()}

    @property
    def users(self) -> dict[str, Contact]:
        return {str(user.id): _contact(user) for user in self._users.values()}

    # ------------------------------------------------------------------ organizations

    @operation
    async def get_organization(self, organization_id: str) -> Customer:
        return self._customer(self._org(organization_id))

    @operation
    async def find_organization(self, external_id: str) -> Customer | None:
        org = self._org_by_external_id(external_id)
        return None if org is None else self._customer(org)

    @operation
    async def list_organizations(
        self, *, cursor: str | None = None, limit: int = 50
    ) -> Page[Customer]:
        orgs = [self._orgs[key] for key in sorted(self._orgs)]
        page = self._page(orgs, cursor, min(limit, MAX_PAGE_SIZE))
        customers = []
        for org in page.data:
            try:
                customers.append(self._customer(org))
            except UpstreamRejected:
                continue
        return Page(data=customers, next_cursor=page.next_cursor)

    @operation
    async def upsert_organization(self, customer: Customer, *, external_id: str) -> Customer:
        existing: _Org | None = None
        zendesk_id = customer.refs.get(VENDOR, "")
        if zendesk_id.isdigit():
            existing = self._orgs.get(int(zendesk_id))
        if existing is None:
            existing = self._org_by_external_id(external_id)
        own_id = existing.id if existing else 0
        errors = []
        if any(o.name.casefold() == customer.legal_name.strip().casefold() and o.id != own_id
               for o in self._orgs.values()):
            errors.append(("name", f"Name: {customer.legal_name} has already been taken"))
        if any((o.external_id or "").casefold() == external_id.casefold() and o.id != own_id
               for o in self._orgs.values()):
            errors.append(("external_id", f"External ID: {external_id} has already been taken"))
        if errors:
            raise UpstreamInvalid(
                "Zendesk answered POST /api/v2/organizations/create_or_update with 422: "
                "RecordInvalid", vendor=VENDOR, status=422, code="RecordInvalid",
                errors=[FieldError(pointer=name, detail=detail) for name, detail in errors],
            )
        fields: dict[str, str | int | None] = {
            "legal_entity": customer.legal_entity, "currency": customer.currency}
        if "salesforce" in customer.refs:
            fields["crm_account_id"] = customer.refs["salesforce"]
        if existing is None:
            org = _Org(id=self._new_id(), name=customer.legal_name.strip(),
                       external_id=external_id, fields=fields, updated_at=self.now())
            self._orgs[org.id] = org
            self._wrote("upsert_organization", external_id)
            return self._customer(org)
        updated = _Org(id=existing.id, name=customer.legal_name.strip(), external_id=external_id,
                       fields={**existing.fields, **fields}, updated_at=existing.updated_at)
        if updated != existing:
            updated.updated_at = self.now()
            self._orgs[existing.id] = updated
            self._wrote("upsert_organization", external_id)
        return self._customer(self._orgs[existing.id])

    @operation
    async def get_entitlement(self, organization_id: str) -> Entitlement | None:
        return _entitlement(self._org(organization_id))

    # ------------------------------------------------------------------ cases

    @operation
    async def get_case(self, case_id: str) -> SupportCase:
        return self._case(self._ticket(case_id))

    @operation
    async def list_cases(
        self,
        *,
        organization_id: str | None = None,
        priority: CasePriority | None = None,
        status: CaseStatus | None = None,
        entities: Collection[str] | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[SupportCase]:
        tickets = [self._tickets[key] for key in sorted(self._tickets)]
        if organization_id is not None:
            org = self._org(organization_id)
            tickets = [t for t in tickets if t.organization_id == org.id]
        # As Zendesk's ticket lists cannot filter these, the client filters each page: a page
        # may hold fewer than `limit` cases.
        page = self._page(tickets, cursor, min(limit, MAX_PAGE_SIZE))

        def visible(ticket: _Ticket) -> bool:
            if entities is None:
                return True
            org = self._orgs.get(ticket.organization_id or 0)
            return (org.fields.get("legal_entity") if org else None) in entities

        cases = [self._case(t) for t in page.data if visible(t)]
        cases = [c for c in cases if (priority is None or c.priority == priority)
                 and (status is None or c.status == status)]
        return Page(data=cases, next_cursor=page.next_cursor)

    @operation
    async def create_case(
        self, case: SupportCaseCreate, *, idempotency_key: str | None = None
    ) -> SupportCase:
        org = self._org_by_external_id(case.customer_id)
        if org is None:
            raise UpstreamNotFound(
                f"No Zendesk organization is linked to customer {case.customer_id}",
                vendor=VENDOR, code="organization_not_linked",
            )
        fingerprint = (msgspec.json.encode(case), org.id)
        replayed = self._replayed(idempotency_key, fingerprint)
        if replayed is not None:
            ticket = self._tickets[int(replayed)]
            return self._case(ticket, customer_id=case.customer_id,
                              requester_email=case.requester_email, as_created=True)
        requester = self.agent
        if case.requester_email is not None:
            requester = self._user_by_email(case.requester_email) or self._add_user(
                case.requester_email, case.requester_email, role="end-user")
        now = self.now()
        ticket = _Ticket(
            id=len(self._tickets) + 1, subject=case.subject or case.description[:60],
            description=case.description.strip(), status="new", priority=case.priority,
            requester_id=requester.id, organization_id=org.id, created_at=now, updated_at=now,
            tags=list(dict.fromkeys(case.tags)),
        )
        self._tickets[ticket.id] = ticket
        ticket.comments.append(FakeComment(id=str(self._new_id()), author_id=str(self.agent.id),
                                           body=ticket.description, public=True, created_at=now))
        self._remember(idempotency_key, fingerprint, str(ticket.id))
        self._wrote("create_case", str(ticket.id))
        return self._case(ticket, customer_id=case.customer_id,
                          requester_email=case.requester_email, as_created=True)

    @operation
    async def update_case(self, case_id: str, patch: SupportCasePatch) -> SupportCase:
        ticket = self._writable(case_id)
        changed = False
        for name in patch.fields_set():
            value = getattr(patch, name)
            if name == "tags":
                value = list(value)
            if getattr(ticket, name) != value:
                setattr(ticket, name, value)
                changed = True
        ticket.updated_at = self.now()
        if changed:
            self._wrote("update_case", str(ticket.id))
        return self._case(ticket)

    @operation
    async def add_internal_comment(
        self, case_id: str, body: str, *, author_id: str | None = None
    ) -> None:
        author = self.agent
        if author_id is not None:
            known = self._users.get(int(_numeric(author_id, "author")))
            if known is None:
                raise UpstreamInvalid(
                    "Zendesk answered PUT /api/v2/tickets with 422: RecordInvalid",
                    vendor=VENDOR, status=422, code="RecordInvalid",
                    errors=[FieldError(pointer="author_id", detail="Author: is invalid")],
                )
            author = known
        ticket = self._writable(case_id)
        if not body.strip():
            raise UpstreamInvalid(
                "Zendesk answered PUT /api/v2/tickets with 422: RecordInvalid", vendor=VENDOR,
                status=422, code="RecordInvalid",
                errors=[FieldError(pointer="comment", detail="Comment: cannot be blank")],
            )
        self._comment(ticket, author, body.strip(), public=False, at=self.now())
        self._wrote("add_internal_comment", str(ticket.id))

    @operation
    async def list_comments(self, case_id: str) -> list[FakeComment]:
        return list(self._ticket(case_id).comments)

    @operation
    async def get_first_response_at(self, case_id: str) -> datetime | None:
        return _first_response(self._ticket(case_id))

    @operation
    async def find_user_by_email(self, email: str) -> Contact | None:
        user = self._user_by_email(email)
        return None if user is None else _contact(user)

    # ------------------------------------------------------------------ plumbing

    def _key_reused(self, key: str) -> UpstreamConflict:
        return UpstreamConflict(
            "Zendesk answered POST /api/v2/tickets with 400: IdempotentRequestError (the request "
            "parameters do not match the original request made with this Idempotency-Key)",
            vendor=VENDOR, status=400, code="IdempotentRequestError",
        )

    def _new_id(self) -> int:
        self._ids += 1
        return self._ids

    def _add_user(self, name: str, email: str | None, *, role: str,
                  organization_id: int | None = None) -> _User:
        user = _User(id=self._new_id(), name=name, email=email, role=role,
                     organization_id=organization_id)
        self._users[user.id] = user
        return user

    def _user_by_email(self, email: str) -> _User | None:
        wanted = email.casefold()
        return next((u for u in self._users.values() if (u.email or "").casefold() == wanted),
                    None)

    def _org(self, organization_id: str) -> _Org:
        org = self._orgs.get(int(_numeric(organization_id, "organization")))
        if org is None:
            raise _not_found("organizations", organization_id)
        return org

    def _org_by_external_id(self, external_id: str) -> _Org | None:
        wanted = external_id.casefold()
        found = [o for o in self._orgs.values() if (o.external_id or "").casefold() == wanted]
        return min(found, key=lambda org: org.id) if found else None

    def _ticket(self, case_id: str) -> _Ticket:
        ticket = self._tickets.get(int(_numeric(case_id, "case")))
        if ticket is None:
            raise _not_found("tickets", case_id)
        return ticket

    def _writable(self, case_id: str) -> _Ticket:
        ticket = self._ticket(case_id)
        if ticket.status == "closed":
            raise UpstreamInvalid(
                "Zendesk answered PUT /api/v2/tickets with 422: RecordInvalid", vendor=VENDOR,
                status=422, code="RecordInvalid",
                errors=[FieldError(pointer="status",
                                   detail="Status: closed prevents ticket update")],
            )
        return ticket

    def _comment(self, ticket: _Ticket, author: _User, body: str, *, public: bool,
                 at: datetime) -> FakeComment:
        comment = FakeComment(id=str(self._new_id()), author_id=str(author.id), body=body,
                              public=public, created_at=at)
        ticket.comments.append(comment)
        ticket.updated_at = at
        if public and author.is_staff and author.id != ticket.requester_id \
                and ticket.first_response_at is None:
            ticket.first_response_at = at
        return comment

    def _customer(self, org: _Org) -> Customer:
        legal_entity = _text(org.fields.get("legal_entity")) or self._default_entity
        if not legal_entity:
            raise _unmappable(f"Zendesk organization {org.id} has no legal_entity")
        currency = (_text(org.fields.get("currency")) or "").upper() or \
            self._currencies.get(legal_entity, "")
        if not is_known_currency(currency):
            raise _unmappable(f"Zendesk organization {org.id} has no known currency")
        refs = {VENDOR: str(org.id)}
        crm = _text(org.fields.get("crm_account_id"))
        if crm and not crm.startswith(_DEMO_MARKER):
            refs["salesforce"] = crm
        return Customer(id=str(org.id), legal_name=org.name, legal_entity=legal_entity,
                        currency=currency, updated_at=org.updated_at, refs=refs)

    def _case(self, ticket: _Ticket, *, customer_id: str | None = None,
              requester_email: str | None = None, as_created: bool = False) -> SupportCase:
        if not as_created:
            org = self._orgs.get(ticket.organization_id or 0)
            customer_id = org.external_id if org else None
            requester = self._users.get(ticket.requester_id)
            requester_email = requester.email if requester else None
        return SupportCase(
            id=str(ticket.id), customer_id=customer_id,
            organization_id=None if ticket.organization_id is None
            else str(ticket.organization_id),
            subject=ticket.subject, description=ticket.description,
            priority=ticket.priority or "normal", status=ticket.status,
            created_at=ticket.created_at, updated_at=ticket.updated_at,
            first_response_at=_first_response(ticket), requester_email=requester_email,
            tags=list(ticket.tags), refs={VENDOR: str(ticket.id)},
        )


def _first_response(ticket: _Ticket) -> datetime | None:
    """Zendesk reports the reply time in whole calendar minutes after creation."""
    if ticket.first_response_at is None:
        return None
    minutes = int((ticket.first_response_at - ticket.created_at).total_seconds() // 60)
    return ticket.created_at + timedelta(minutes=minutes)


def _entitlement_fields(entitlement: Entitlement) -> dict[str, str | int | None]:
    return {
        "plan": entitlement.plan,
        "sla_first_response_minutes": entitlement.sla_first_response_minutes,
        "credit_percent_per_breach": entitlement.credit_percent_per_breach,
        "credit_cap_percent": entitlement.credit_cap_percent,
    }


def _entitlement(org: _Org) -> Entitlement | None:
    plan = _text(org.fields.get("plan"))
    sla = org.fields.get("sla_first_response_minutes")
    if not plan or not isinstance(sla, int) or sla < 1:
        return None

    def whole(key: str) -> int:
        value = org.fields.get(key)
        return value if isinstance(value, int) else 0

    return Entitlement(
        id=str(org.id), customer_id=org.external_id, organization_id=str(org.id), plan=plan,
        sla_first_response_minutes=sla,
        credit_percent_per_breach=whole("credit_percent_per_breach"),
        credit_cap_percent=whole("credit_cap_percent"), refs={VENDOR: str(org.id)},
    )


def _contact(user: _User) -> Contact:
    first, _, last = user.name.strip().rpartition(" ")
    return Contact(id=str(user.id), first_name=first or None, last_name=last or user.name,
                   email=user.email, phone=user.phone, refs={VENDOR: str(user.id)})


def _text(value: str | int | None) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _numeric(value: str, what: str) -> str:
    if not value.isdigit():
        raise UpstreamNotFound(f"{value!r} is not a Zendesk {what} id", vendor=VENDOR,
                               code="invalid_id")
    return value


def _not_found(kind: str, rid: str) -> UpstreamNotFound:
    return UpstreamNotFound(
        f"Zendesk answered GET /api/v2/{kind}/{rid} with 404: RecordNotFound", vendor=VENDOR,
        status=404, code="RecordNotFound",
    )


def _unmappable(message: str) -> UpstreamRejected:
    return UpstreamRejected(message, vendor=VENDOR, code="unmappable_record")
