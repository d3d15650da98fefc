"""Zendesk Support API client: organizations, users, tickets, metrics, webhooks and exports,
returned as canonical contracts.

Zendesk has one API version (v2), pinned in every path below. The client never builds its own
`httpx.AsyncClient`; retries, breakers and correlation headers are the outbound policy's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from datetime import datetime
from typing import Any

import httpx

from contracts.errors import UpstreamNotFound, UpstreamRejected
from contracts.v1 import (
    CasePriority,
    CaseStatus,
    Contact,
    ContactCreate,
    Customer,
    Entitlement,
    Page,
    SupportCase,
    SupportCaseCreate,
    SupportCasePatch,
)
from system_apis.outbound import paginate
from system_apis.support.zendesk import mapping
from system_apis.support.zendesk._client_credentials import (
    ZendeskCredentials,
)
from system_apis.support.zendesk._client_http import VENDOR, Transport, unmappable
from system_apis.support.zendesk._client_views import (
    API,
    WebhookInfo,
    numeric,
    our_cursor,
    page_params,
    select_cases,
    tickets_path,
    to_case,
    to_cases,
    webhook_info,
)
from system_apis.support.zendesk._wire import (
    CommentsPage,
    OrganizationEnvelope,
    OrganizationExportPage,
    OrganizationsPage,
    OrganizationWire,
    SigningSecretEnvelope,
    TicketEnvelope,
    TicketExportPage,
    TicketMetricEnvelope,
    TicketsPage,
    TicketWire,
    UserEnvelope,
    UserExportPage,
    UserSearchPage,
    WebhookEnvelope,
    WebhooksPage,
)

__all__ = [
    "WebhookInfo",
    "ZendeskClient",
    "ZendeskCredentials",
]

_TICKET_SIDELOADS = "users,organizations,metric_sets"


class ZendeskClient:
    """One Zendesk Support account.

    Organizations and cases are addressed by their Zendesk ids (the `id` the contracts carry);
    `find_organization` resolves a canonical customer id written into `external_id`.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        credentials: ZendeskCredentials | None = None,
        auth: httpx.Auth | None = None,
        default_legal_entity: str | None = None,
        currency_by_entity: Mapping[str, str] | None = None,
    ) -> None:
        self._transport = Transport(http, auth or (credentials.auth() if credentials else None))
        self._default_entity = default_legal_entity
        self._currencies = dict(currency_by_entity or {})

    # ------------------------------------------------------------------ organizations

    async def get_organization(self, organization_id: str) -> Customer:
        return self._customer(await self._organization(organization_id))

    async def find_organization(self, external_id: str) -> Customer | None:
        """The organization whose external id is `external_id` (a canonical customer id)."""
        org = await self._find_organization(external_id)
        return None if org is None else self._customer(org)

    async def list_organizations(
        self, *, cursor: str | None = None, limit: int = 50
    ) -> Page[Customer]:
        """One cursor page of organizations; those lacking a legal entity or currency (no
        canonical customer) are left out."""
        pages = f"{VENDOR}:{API}/organizations"
        page = await self._transport.get(
            f"{API}/organizations", OrganizationsPage,
            params=page_params(cursor, limit, list_name=pages),
        )
        return Page(data=self._customers(page.organizations),
                    next_cursor=our_cursor(page, list_name=pages))

    async def iter_organizations(self) -> AsyncIterator[Customer]:
        async for page in self._transport.pages(f"{API}/organizations", OrganizationsPage):
            for customer in self._customers(page.organizations):
                yield customer

    async def create_organization(self, customer: Customer, *, external_id: str) -> Customer:
        body = mapping.from_customer(customer, external_id=external_id)
        body.pop("id", None)
        envelope = await self._transport.call(
            "POST", f"{API}/organizations", OrganizationEnvelope, json={"organization": body}
        )
        return self._customer(envelope.organization)

    async def update_organization(self, organization_id: str, customer: Customer) -> Customer:
        body = mapping.from_customer(customer, external_id=None)
        body.pop("id", None)
        envelope = await self._transport.call(
            "PUT", f"{API}/organizations/{{organization_id}}", OrganizationEnvelope,
            path_params={"organization_id": numeric(organization_id, "organization")},
            json={"organization": body},
        )
        return self._customer(envelope.organization)

    async def upsert_organization(self, customer: Customer, *, external_id: str) -> Customer:
        """Create or update the organization whose external id is `external_id`."""
        body = mapping.from_customer(customer, external_id=external_id)
        envelope = await self._transport.call(
            "POST", f"{API}/organizations/create_or_update", OrganizationEnvelope,
            json={"organization": body}, idempotent=True,
        )
        return self._customer(envelope.organization)

    async def get_entitlement(self, organization_id: str) -> Entitlement | None:
        """The organization's support entitlement; None when it has no plan."""
        return mapping.to_entitlement(await self._organization(organization_id))

    async def set_entitlement(self, organization_id: str, entitlement: Entitlement) -> Entitlement:
        envelope = await self._transport.call(
            "PUT", f"{API}/organizations/{{organization_id}}", OrganizationEnvelope,
            path_params={"organization_id": numeric(organization_id, "organization")},
            json={"organization": mapping.from_entitlement(entitlement)}, idempotent=True,
        )
        written = mapping.to_entitlement(envelope.organization)
        if written is None:
            raise UpstreamRejected(f"Zendesk did not keep the entitlement of {organization_id}",
                                   vendor=VENDOR, code="entitlement_not_kept")
        return written

    # ------------------------------------------------------------------ users

    async def get_user(self, user_id: str) -> Contact:
        envelope = await self._transport.get(
            f"{API}/users/{{user_id}}", UserEnvelope,
            path_params={"user_id": numeric(user_id, "user")},
        )
        return mapping.to_contact(envelope.user)

    async def find_user_by_email(self, email: str) -> Contact | None:
        page = await self._transport.get(
            f"{API}/search", UserSearchPage, params={"query": f'type:user email:"{email}"'}
        )
        wanted = email.casefold()
        found = next((u for u in page.results if (u.email or "").casefold() == wanted), None)
        return None if found is None else mapping.to_contact(found)

    async def create_user(
        self, contact: ContactCreate, *, organization_id: str | None = None
    ) -> Contact:
        """An end user for `contact`, in the organization of its customer (or the one given)."""
        org_id = organization_id
        if org_id is None:
            org = await self._find_organization(contact.customer_id)
            org_id = str(org.id) if org is not None else None
        body = mapping.from_contact_create(
            contact, organization_id=int(org_id) if org_id and org_id.isdigit() else None
        )
        envelope = await self._transport.call(
            "POST", f"{API}/users", UserEnvelope, json={"user": body}
        )
        return mapping.to_contact(envelope.user, customer_id=contact.customer_id)

    # ------------------------------------------------------------------ tickets

    async def get_case(self, case_id: str) -> SupportCase:
        envelope = await self._transport.get(
            f"{API}/tickets/{{ticket_id}}", TicketEnvelope,
            path_params={"ticket_id": numeric(case_id, "case")},
            params={"include": _TICKET_SIDELOADS},
        )
        return to_cases([envelope.ticket], envelope.users, envelope.organizations)[0]

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
        """One cursor page of cases, optionally of one organization.

        Zendesk's ticket lists cannot filter by priority, status or the organization's legal
        entity, so those filters apply to each page here: a page may hold fewer than `limit`.
        """
        template, path_params = tickets_path(organization_id)
        pages = f"{VENDOR}:{template.format(**path_params)}"
        page = await self._transport.get(
            template, TicketsPage, path_params=path_params,
            params={**page_params(cursor, limit, list_name=pages), "include": _TICKET_SIDELOADS},
        )
        cases = select_cases(page, priority=priority, status=status, entities=entities)
        return Page(data=cases, next_cursor=our_cursor(page, list_name=pages))

    async def iter_cases(
        self,
        *,
        organization_id: str | None = None,
        priority: CasePriority | None = None,
        status: CaseStatus | None = None,
    ) -> AsyncIterator[SupportCase]:
        template, path_params = tickets_path(organization_id)
        async for page in self._transport.pages(
            template, TicketsPage, path_params=path_params,
            params={"include": _TICKET_SIDELOADS},
        ):
            for case in select_cases(page, priority=priority, status=status, entities=None):
                yield case

    async def create_case(
        self, case: SupportCaseCreate, *, idempotency_key: str | None = None
    ) -> SupportCase:
        """Open a ticket for the customer's organization.

        `idempotency_key` travels as Zendesk's `Idempotency-Key` (kept 2 hours), so a retried
        step creates one ticket, not two.
        """
        org = await self._find_organization(case.customer_id)
        if org is None:
            raise UpstreamNotFound(
                f"No Zendesk organization is linked to customer {case.customer_id}",
                vendor=VENDOR, code="organization_not_linked",
            )
        body = mapping.from_support_case_create(case, organization_id=org.id)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        envelope = await self._transport.call(
            "POST", f"{API}/tickets", TicketEnvelope, json={"ticket": body}, headers=headers,
            idempotent=idempotency_key is not None,
        )
        return mapping.to_support_case(
            envelope.ticket, customer_id=case.customer_id, requester_email=case.requester_email
        )

    async def update_case(self, case_id: str, patch: SupportCasePatch) -> SupportCase:
        await self._update_ticket(case_id, mapping.from_support_case_patch(patch))
        # The update answer carries no metrics or sideloads: read the case back whole.
        return await self.get_case(case_id)

    async def add_internal_comment(
        self, case_id: str, body: str, *, author_id: str | None = None
    ) -> None:
        """A private note on the case: support staff see it, the customer does not."""
        comment: dict[str, Any] = {"body": body, "public": False}
        if author_id is not None:
            comment["author_id"] = int(numeric(author_id, "author"))
        await self._update_ticket(case_id, {"comment": comment})

    async def list_comments(self, case_id: str) -> list[mapping.TicketComment]:
        comments: list[mapping.TicketComment] = []
        async for page in self._transport.pages(
            f"{API}/tickets/{{ticket_id}}/comments", CommentsPage,
            path_params={"ticket_id": numeric(case_id, "case")},
        ):
            comments += [mapping.to_comment(comment) for comment in page.comments]
        return comments

    async def get_first_response_at(self, case_id: str) -> datetime | None:
        """When support staff first answered the case publicly (None while unanswered)."""
        envelope = await self._transport.get(
            f"{API}/tickets/{{ticket_id}}/metrics", TicketMetricEnvelope,
            path_params={"ticket_id": numeric(case_id, "case")},
        )
        metric = envelope.ticket_metric
        created = metric.created_at or (await self._ticket(case_id)).created_at
        return mapping.first_response_at(created, metric)

    # ------------------------------------------------------------------ incremental exports

    async def iter_cases_changed_since(self, since: datetime) -> AsyncIterator[SupportCase]:
        async for page in self._export(f"{API}/incremental/tickets/cursor", TicketExportPage,
                                       since):
            for ticket in page.tickets:
                yield to_case(ticket)

    async def iter_contacts_changed_since(self, since: datetime) -> AsyncIterator[Contact]:
        async for page in self._export(f"{API}/incremental/users/cursor", UserExportPage, since):
            for user in page.users:
                yield mapping.to_contact(user)

    async def iter_organizations_changed_since(
        self, since: datetime
    ) -> AsyncIterator[Customer]:
        """Organizations changed since `since` (time-based export: pages may repeat a record
        at their boundary, so each is yielded once)."""
        start = int(since.timestamp())
        seen: set[int] = set()
        while True:
            page = await self._transport.get(
                f"{API}/incremental/organizations", OrganizationExportPage,
                params={"start_time": start},
            )
            fresh = [org for org in page.organizations if org.id not in seen]
            seen.update(org.id for org in fresh)
            for customer in self._customers(fresh):
                yield customer
            if page.end_of_stream or page.end_time is None:
                return
            if page.end_time <= start and not fresh:
                raise UpstreamRejected(
                    f"Zendesk organization export did not advance past {start}: loop detected",
                    vendor=VENDOR, code="pagination_loop",
                )
            start = page.end_time

    # ------------------------------------------------------------------ webhooks

    async def create_webhook(
        self, *, name: str, endpoint: str,
        subscriptions: Collection[str] = ("conditional_ticket_events",),
    ) -> WebhookInfo:
        body = {"name": name, "endpoint": endpoint, "http_method": "POST",
                "request_format": "json", "status": "active",
                "subscriptions": list(subscriptions)}
        envelope = await self._transport.call(
            "POST", f"{API}/webhooks", WebhookEnvelope, json={"webhook": body}
        )
        return webhook_info(envelope.webhook)

    async def list_webhooks(self) -> list[WebhookInfo]:
        hooks: list[WebhookInfo] = []
        async for page in self._transport.pages(f"{API}/webhooks", WebhooksPage):
            hooks += [webhook_info(hook) for hook in page.webhooks]
        return hooks

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._transport.send("DELETE", f"{API}/webhooks/{{webhook_id}}",
                                   path_params={"webhook_id": webhook_id}, idempotent=True)

    async def get_signing_secret(self, webhook_id: str) -> str:
        envelope = await self._transport.get(
            f"{API}/webhooks/{{webhook_id}}/signing_secret", SigningSecretEnvelope,
            path_params={"webhook_id": webhook_id},
        )
        return envelope.signing_secret.secret

    # ------------------------------------------------------------------ plumbing

    async def _organization(self, organization_id: str) -> OrganizationWire:
        envelope = await self._transport.get(
            f"{API}/organizations/{{organization_id}}", OrganizationEnvelope,
            path_params={"organization_id": numeric(organization_id, "organization")},
        )
        return envelope.organization

    async def _find_organization(self, external_id: str) -> OrganizationWire | None:
        page = await self._transport.get(
            f"{API}/organizations/search", OrganizationsPage,
            params={"external_id": external_id},
        )
        return page.organizations[0] if page.organizations else None

    async def _ticket(self, case_id: str) -> TicketWire:
        envelope = await self._transport.get(
            f"{API}/tickets/{{ticket_id}}", TicketEnvelope,
            path_params={"ticket_id": numeric(case_id, "case")},
        )
        return envelope.ticket

    async def _update_ticket(self, case_id: str, body: dict[str, Any]) -> None:
        await self._transport.send(
            "PUT", f"{API}/tickets/{{ticket_id}}",
            path_params={"ticket_id": numeric(case_id, "case")}, json={"ticket": body},
        )

    async def _export(
        self, template: str, kind: type[TicketExportPage] | type[UserExportPage], since: datetime
    ) -> AsyncIterator[Any]:
        async def fetch(after: str | None) -> Any:
            params: dict[str, str | int] = (
                {"start_time": int(since.timestamp())} if after is None else {"cursor": after}
            )
            return await self._transport.get(template, kind, params=params)

        def next_export(page: Any) -> str | None:
            return None if page.end_of_stream or not page.after_cursor else page.after_cursor

        async for page in paginate(fetch, next_export, vendor=VENDOR,
                                   what=f"Zendesk export {template}"):
            yield page

    def _customer(self, org: OrganizationWire) -> Customer:
        try:
            return mapping.to_customer(org, default_legal_entity=self._default_entity,
                                       currency_by_entity=self._currencies)
        except mapping.MappingError as exc:
            raise unmappable(exc) from exc

    def _customers(self, orgs: list[OrganizationWire]) -> list[Customer]:
        customers: list[Customer] = []
        for org in orgs:
            try:
                customers.append(self._customer(org))
            except UpstreamRejected:
                continue
        return customers

