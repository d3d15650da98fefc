"""Support desk views (`/experience/support/v1`): what support staff need beside a ticket, for the
ticket's Zendesk organization: its plan and SLA targets (support, required), payment status,
renewal date and credits issued (billing), credits waiting for approval (process, with the
ERP's approval tasks), and the account owner (CRM).

The organization's records elsewhere are found through the cross-reference table; when it has
no Salesforce link there, the organization's own `crm_account_id` field is used.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Response, Router, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter

from contracts.errors import NotFound, UpstreamNotFound
from contracts.money import Money
from contracts.v1 import (
    ApprovalTask,
    Contact,
    CreditNote,
    Customer,
    Entitlement,
    Page,
    PaymentStatus,
    Subscription,
)
from experience_apis._capabilities import AccountOwners
from experience_apis._health import worse_payment_status
from experience_apis._links import CustomerLinks, billing_customer
from experience_apis._process_reads import ProcessActivity
from experience_apis._recurring import BILLING_STATUSES
from experience_apis._services import (
    AuthedRequest,
    BillingDep,
    CrmDep,
    ErpDep,
    Shared,
    SupportDep,
    ViewsDep,
    ViewServices,
    principal_of,
    require_port,
)
from experience_apis.compose import (
    Source,
    SourceRule,
    SourceState,
    ViewRules,
    conditional_response,
    wants_fresh,
)
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort
from system_apis.outbound import CursorSeal
from system_apis.params import DEFAULT_LIMIT, PageCursor, PageLimit
from system_apis.support.port import SupportPort
from system_apis.visibility import visible_page

__all__ = ["SUPPORT_CONTEXT", "SupportContext", "create_router"]

PREFIX = "/experience/support/v1"
_OPT: dict[str, Any] = {"scopes": ["experience:support"], "rate_limit_group": "experience"}
SUPPORT_CONTEXT = ViewRules(
    name="support_context",
    sources={
        "support": SourceRule(required=True, budget_seconds=2.0),
        "billing": SourceRule(budget_seconds=1.5),
        "crm": SourceRule(budget_seconds=1.5),
        "erp": SourceRule(budget_seconds=1.5),
        "process": SourceRule(budget_seconds=1.0, fresh_seconds=1.0),
    },
)
OrganizationId = Annotated[
    str, PathParameter(min_length=1, max_length=64, description="The Zendesk organization id")
]


class SupportData(msgspec.Struct, frozen=True, kw_only=True):
    organization: Customer
    entitlement: Entitlement | None = None


class BillingData(msgspec.Struct, frozen=True, kw_only=True):
    customer: Customer | None
    subscriptions: list[Subscription] = []
    credit_notes: list[CreditNote] = []


class CrmData(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str | None
    owner: Contact | None = None


class IssuedCredit(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    invoice_id: str
    amount: Money
    reason: str | None = None
    status: str
    created_at: datetime | None = None


class PendingCredit(msgspec.Struct, frozen=True, kw_only=True):
    flow_id: str
    flow_type: str
    requested_at: datetime
    approval_task_id: str | None = None
    subject: str | None = None
    amount: Money | None = None
    """None until the ERP's approval task names it (or when the ERP did not answer)."""


class SupportBilling(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str | None
    payment_status: PaymentStatus | None = None
    renewal_date: datetime | None = None
    """The end of the current period of the first subscription that renews."""
    credits_issued: list[IssuedCredit] = []


class AccountOwner(msgspec.Struct, frozen=True, kw_only=True):
    crm_account_id: str | None
    owner: Contact | None = None
    """None when unknown (the CRM adapter does not report owners)."""


class SupportContext(msgspec.Struct, frozen=True, kw_only=True):
    """A support organization as the desk shows it beside a ticket; a section is null when
    its source did not answer (see `sources`)."""

    organization: Customer
    plan: str | None = None
    entitlement: Entitlement | None = None
    """The plan's SLA targets (first response minutes) and credit terms."""
    billing: SupportBilling | None = None
    credits_pending: list[PendingCredit] | None = None
    account: AccountOwner | None = None
    sources: dict[str, SourceState]


@get("/organizations", opt=_OPT, summary="Support organizations to open in the desk")
async def list_organizations(
    request: AuthedRequest,
    cursor_seal: NamedDependency[CursorSeal],
    support: SupportDep = None,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
) -> Page[Customer]:
    port = require_port(support, "support")
    return await visible_page(
        principal_of(request), seal=cursor_seal, list_name="experience:support:organizations",
        cursor=cursor, limit=limit,
        fetch=lambda at, n: port.list_organizations(cursor=at, limit=n),
        entity=lambda org: org.legal_entity,
    )


@get(
    "/organizations/{zendesk_org_id:str}/context",
    opt=_OPT,
    summary="Plan, payment status, credits and owner of a support organization",
    responses={
        200: ResponseSpec(SupportContext, description="The context", generate_examples=False),
        304: ResponseSpec(None, description="Not modified (If-None-Match)"),
    },
)
async def organization_context(
    request: AuthedRequest,
    zendesk_org_id: OrganizationId,
    views: ViewsDep,
    crm: CrmDep = None,
    billing: BillingDep = None,
    support: SupportDep = None,
    erp: ErpDep = None,
) -> Response[bytes]:
    """Only the support platform is required; see the sales overview for `sources`,
    `Cache-Control: no-cache` and `If-None-Match`."""
    principal = principal_of(request)
    org_id = zendesk_org_id
    organization = Shared(lambda: require_port(support, "support").get_organization(org_id))
    links = Shared(lambda: _links(views, org_id, organization))
    sources = (
        Source("support", org_id, lambda: _support(support, organization, org_id), SupportData),
        Source("billing", org_id, lambda: _billing(billing, links), BillingData),
        Source("crm", org_id, lambda: _crm(crm, links), CrmData),
        Source("erp", "pending", lambda: _pending_tasks(erp), list[ApprovalTask]),
        Source("process", org_id, lambda: _activity(views, links, org_id), ProcessActivity),
    )
    try:
        composition = await views.composer.compose(
            views.rules(SUPPORT_CONTEXT), *sources, use_cache=not wants_fresh(request)
        )
    except UpstreamNotFound as exc:
        raise NotFound(f"No organization {org_id}") from exc
    finally:
        links.cancel()
        organization.cancel()
    support_data = composition.get(sources[0])
    assert support_data is not None  # required: compose raised otherwise
    if not principal.may_see_entity(support_data.organization.legal_entity):
        raise NotFound(f"No organization {org_id}")
    billing_data, crm_data = composition.get(sources[1]), composition.get(sources[2])
    context = SupportContext(
        organization=support_data.organization,
        plan=support_data.entitlement.plan if support_data.entitlement else None,
        entitlement=support_data.entitlement,
        billing=_support_billing(billing_data) if billing_data else None,
        credits_pending=_pending(composition.get(sources[4]), composition.get(sources[3])),
        account=AccountOwner(crm_account_id=crm_data.account_id, owner=crm_data.owner)
        if crm_data
        else None,
        sources=composition.states,
    )
    return conditional_response(request, context)


def create_router() -> Router:
    return Router(
        path=PREFIX, route_handlers=[list_organizations, organization_context], tags=["support"]
    )


async def _links(views: ViewServices, org_id: str, organization: Shared[Customer]) -> CustomerLinks:
    found = await views.links.for_organization(org_id)
    if found.salesforce is not None:
        return found
    try:
        crm_account = (await organization.get()).refs.get("salesforce")
    except Exception:
        return found
    return msgspec.structs.replace(found, salesforce=crm_account) if crm_account else found


async def _support(
    support: SupportPort | None, organization: Shared[Customer], org_id: str
) -> SupportData:
    port = require_port(support, "support")
    record, entitlement = await asyncio.gather(organization.get(), port.get_entitlement(org_id))
    return SupportData(organization=record, entitlement=entitlement)


async def _billing(billing: BillingPort | None, links: Shared[CustomerLinks]) -> BillingData:
    port = require_port(billing, "billing")
    customer = await billing_customer(port, await links.get())
    if customer is None:
        return BillingData(customer=None)
    subscriptions, notes = await asyncio.gather(
        port.list_subscriptions(customer_id=customer.id, limit=100),
        port.list_credit_notes(customer_id=customer.id, limit=100),
    )
    return BillingData(customer=customer, subscriptions=subscriptions.data, credit_notes=notes.data)


async def _crm(crm: CrmPort | None, links: Shared[CustomerLinks]) -> CrmData:
    port = require_port(crm, "crm")
    account_id = (await links.get()).salesforce
    if account_id is None or not isinstance(port, AccountOwners):
        return CrmData(account_id=account_id)
    return CrmData(account_id=account_id, owner=await port.get_account_owner(account_id))


async def _pending_tasks(erp: ErpPort | None) -> list[ApprovalTask]:
    page = await require_port(erp, "erp").list_approval_tasks(status="pending", limit=100)
    return page.data


async def _activity(
    views: ViewServices, links: Shared[CustomerLinks], org_id: str
) -> ProcessActivity:
    # Escalation credits are keyed by organization (`escalation:{org}:...`), other flows
    # by the CRM account.
    found = await links.get()
    return await views.process.customer_activity(
        crm_account=found.salesforce, flow_prefixes=[f"escalation:{org_id}:"]
    )


def _support_billing(data: BillingData) -> SupportBilling:
    renewing = [
        sub.current_period_end
        for sub in data.subscriptions
        if sub.status in BILLING_STATUSES
        and not sub.cancel_at_period_end
        and sub.current_period_end is not None
    ]
    past_due = any(sub.status == "past_due" for sub in data.subscriptions)
    return SupportBilling(
        customer_id=data.customer.id if data.customer else None,
        payment_status=worse_payment_status(
            data.customer.payment_status if data.customer else None,
            "past_due" if past_due else None,
        ),
        renewal_date=min(renewing) if renewing else None,
        credits_issued=[
            IssuedCredit(
                id=note.id,
                invoice_id=note.invoice_id,
                amount=Money(amount=note.amount, currency=note.currency),
                reason=note.reason,
                status=note.status,
                created_at=note.created_at,
            )
            for note in data.credit_notes
        ],
    )


def _pending(
    activity: ProcessActivity | None, tasks: list[ApprovalTask] | None
) -> list[PendingCredit] | None:
    """Credits waiting for a decision: the ERP approval tasks of the customer's flows, and
    the customer's flows waiting for approval that have no task yet."""
    if activity is None:
        return None
    flows = {flow.id: flow for flow in activity.flows}
    pending: list[PendingCredit] = []
    tasked: set[str] = set()
    for task in tasks or []:
        flow = flows.get(task.flow_id or "")
        if flow is None:
            continue
        tasked.add(flow.id)
        amount = (
            Money(amount=task.amount, currency=task.currency)
            if task.amount is not None and task.currency
            else None
        )
        pending.append(
            PendingCredit(
                flow_id=flow.id,
                flow_type=flow.type,
                requested_at=task.requested_at,
                approval_task_id=task.id,
                subject=task.subject,
                amount=amount,
            )
        )
    for flow in activity.flows:
        if flow.status == "waiting_approval" and flow.id not in tasked:
            pending.append(
                PendingCredit(flow_id=flow.id, flow_type=flow.type, requested_at=flow.created_at)
            )
    return sorted(pending, key=lambda credit: (credit.requested_at, credit.flow_id))
