"""Sales console views (`/experience/sales/v1`): an account's overview composed from the CRM
(required), billing, support, the ERP and the process layer (each optional).

The account is addressed by its Salesforce id; its records in the other platforms are found
through the cross-reference table (`_links`). A caller that may not see the account's legal
entity gets 404, as for an account that does not exist.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Response, Router, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter, SkipValidation

from contracts.errors import FieldError, InvalidRequest, NotFound, UpstreamNotFound
from contracts.v1 import Customer, Invoice, Page, Subscription, SupportCase
from experience_apis._capabilities import AccountDeals, AccountOwners, CreditHolds
from experience_apis._links import CustomerLinks, billing_customer
from experience_apis._process_reads import ProcessActivity
from experience_apis._sales_model import (
    BillingData,
    CrmData,
    ErpData,
    SalesOverview,
    SupportData,
    build_overview,
)
from experience_apis._services import (
    AuthedRequest,
    BillingDep,
    CrmDep,
    ErpDep,
    PriceBook,
    Shared,
    SupportDep,
    ViewsDep,
    principal_of,
    require_port,
)
from experience_apis.compose import (
    Source,
    SourceRule,
    ViewRules,
    conditional_response,
    wants_fresh,
)
from process_apis.renewals.routes import AccountRenewal, RenewalService
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort
from system_apis.outbound import CursorSeal
from system_apis.params import DEFAULT_LIMIT, PageCursor, PageLimit
from system_apis.support.port import SupportPort
from system_apis.visibility import visible_page

__all__ = ["SALES_OVERVIEW", "create_router", "fetch_billing", "fetch_support"]

PREFIX = "/experience/sales/v1"
_OPT: dict[str, Any] = {"scopes": ["experience:sales"], "rate_limit_group": "experience"}
SALES_OVERVIEW = ViewRules(
    name="sales_overview",
    sources={
        "crm": SourceRule(required=True, budget_seconds=2.0),
        "billing": SourceRule(budget_seconds=1.5),
        "support": SourceRule(budget_seconds=1.5),
        "erp": SourceRule(budget_seconds=1.5),
        # Our own database: the cheapest source, but a query per request is most of the
        # view's CPU; a second's delay is nothing to a console.
        "process": SourceRule(budget_seconds=1.0, fresh_seconds=1.0),
    },
)
CASES_PAGE = 100
MAX_CASE_PAGES = 5
INVOICES_PAGE = 100
AccountId = Annotated[
    str, PathParameter(min_length=1, max_length=64, description="The Salesforce account id")
]
NameFilter = Annotated[
    str | None, QueryParameter(min_length=1, max_length=100, description="Part of the name")
]


@get(
    "/accounts",
    opt=_OPT,
    summary="Accounts to open in the sales console",
    description="CRM accounts of the legal entities the caller may see, by part of the name.",
)
async def list_accounts(
    request: AuthedRequest,
    cursor_seal: NamedDependency[CursorSeal],
    crm: CrmDep = None,
    name: NameFilter = None,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
) -> Page[Customer]:
    principal = principal_of(request)
    if len(request.query_params.getall("name", [])) > 1:
        # One name: a repeated parameter is an error, not "the last one wins".
        raise InvalidRequest(
            "Give the name filter once", errors=[FieldError(pointer="name", detail="repeated")]
        )
    port = require_port(crm, "crm")
    return await visible_page(
        principal, seal=cursor_seal, list_name=f"experience:sales:accounts:{name}",
        cursor=cursor, limit=limit,
        fetch=lambda at, n: port.list_accounts(
            legal_entities=principal.entities, name=name, cursor=at, limit=n
        ),
        entity=lambda account: account.legal_entity,
    )


@get(
    "/accounts/{crm_account_id:str}/overview",
    opt=_OPT,
    summary="One account across CRM, billing, support, ERP and flows",
    responses={
        200: ResponseSpec(SalesOverview, description="The overview", generate_examples=False),
        304: ResponseSpec(None, description="Not modified (If-None-Match)"),
    },
)
async def account_overview(
    request: AuthedRequest,
    crm_account_id: AccountId,
    views: ViewsDep,
    crm: CrmDep = None,
    billing: BillingDep = None,
    support: SupportDep = None,
    erp: ErpDep = None,
) -> Response[bytes]:
    """Sections from a source that failed are null and `sources` says why (`timeout`,
    `error`), or a cached answer stands in (`stale`); only the CRM is required. Send
    `Cache-Control: no-cache` to bypass the short-lived cache, `If-None-Match` for a 304."""
    principal = principal_of(request)
    links = Shared(lambda: views.links.for_crm_account(crm_account_id))
    now = views.clock()
    sources = (
        Source("crm", crm_account_id, lambda: fetch_crm(crm, crm_account_id), CrmData),
        Source(
            "billing",
            crm_account_id,
            lambda: fetch_billing(billing, links, views.prices),
            BillingData,
        ),
        Source("support", crm_account_id, lambda: fetch_support(support, links), SupportData),
        Source("erp", crm_account_id, lambda: fetch_erp(erp, links), ErpData),
        Source(
            "process",
            crm_account_id,
            lambda: views.process.customer_activity(crm_account=crm_account_id),
            ProcessActivity,
        ),
    )
    try:
        composition = await views.composer.compose(
            views.rules(SALES_OVERVIEW), *sources, use_cache=not wants_fresh(request)
        )
    except UpstreamNotFound as exc:
        raise NotFound(f"No account {crm_account_id}") from exc
    finally:
        links.cancel()
    crm_data = composition.get(sources[0])
    assert crm_data is not None  # required: compose raised otherwise
    if not principal.may_see_entity(crm_data.account.legal_entity):
        raise NotFound(f"No account {crm_account_id}")
    overview = build_overview(
        crm_data,
        composition.get(sources[1]),
        composition.get(sources[2]),
        composition.get(sources[3]),
        composition.get(sources[4]),
        sources=composition.states,
        now=now,
    )
    return conditional_response(request, overview)


RenewalsDep = NamedDependency[SkipValidation[RenewalService | None]]


class AccountRenewals(msgspec.Struct, frozen=True, kw_only=True):
    """An account's renewal opportunities, each with its risk, the rules behind it and the
    signals they read (usage trend, support load, service credits, payments)."""

    account_id: str
    data: list[AccountRenewal]


@get(
    "/accounts/{crm_account_id:str}/renewals",
    opt=_OPT,
    summary="An account's renewals with their risk and why",
    description="Each renewal opportunity of the account with the risk its signals give now, "
    "the rules that fired, and what the last renewal scan wrote to the CRM.",
)
async def account_renewals(
    request: AuthedRequest,
    crm_account_id: AccountId,
    renewal_service: RenewalsDep = None,
) -> AccountRenewals:
    principal = principal_of(request)
    service = require_port(renewal_service, "renewals")
    renewals = await service.account_renewals(crm_account_id, principal=principal)
    return AccountRenewals(account_id=crm_account_id, data=renewals)


def create_router() -> Router:
    return Router(
        path=PREFIX,
        route_handlers=[list_accounts, account_overview, account_renewals],
        tags=["sales"],
    )


async def fetch_crm(crm: CrmPort | None, account_id: str) -> CrmData:
    port = require_port(crm, "crm")
    if not isinstance(port, AccountDeals | AccountOwners):
        account, contacts = await asyncio.gather(
            port.get_account(account_id), port.list_contacts(account_id)
        )
        return CrmData(account=account, contacts=contacts)
    deals = port.list_open_deals(account_id) if isinstance(port, AccountDeals) else _none()
    owner = port.get_account_owner(account_id) if isinstance(port, AccountOwners) else _none()
    account, contacts, open_deals, account_owner = await asyncio.gather(
        port.get_account(account_id), port.list_contacts(account_id), deals, owner
    )
    return CrmData(account=account, contacts=contacts, open_deals=open_deals, owner=account_owner)


async def fetch_billing(
    billing: BillingPort | None, links: Shared[CustomerLinks], prices: PriceBook
) -> BillingData:
    port = require_port(billing, "billing")
    found = await links.get()
    if found.stripe:
        # The id is known: the customer and its records are asked for at once.
        customer, subscriptions, invoices = await asyncio.gather(
            billing_customer(port, found),
            _subscriptions(port, found.stripe),
            _open_invoices(port, found.stripe),
        )
    else:
        customer = await billing_customer(port, found)
        if customer is None:
            return BillingData(customer=None)
        subscriptions, invoices = await asyncio.gather(
            _subscriptions(port, customer.id), _open_invoices(port, customer.id)
        )
    price_ids = {item.price_id for sub in subscriptions for item in sub.items}
    return BillingData(
        customer=customer,
        subscriptions=subscriptions,
        open_invoices=invoices,
        prices=await prices.get_many(port, price_ids),
    )


async def fetch_support(support: SupportPort | None, links: Shared[CustomerLinks]) -> SupportData:
    port = require_port(support, "support")
    found = await links.get()
    organization_id = found.zendesk
    if organization_id is None and found.canonical_id is not None:
        # Linked by the customer master but not cross-referenced yet: its external id.
        organization = await port.find_organization(found.canonical_id)
        organization_id = organization.id if organization else None
    if organization_id is None:
        return SupportData(organization_id=None)
    entitlement, cases = await asyncio.gather(
        port.get_entitlement(organization_id), _cases(port, organization_id)
    )
    return SupportData(organization_id=organization_id, entitlement=entitlement, cases=cases)


async def fetch_erp(erp: ErpPort | None, links: Shared[CustomerLinks]) -> ErpData:
    port = require_port(erp, "erp")
    found = await links.get()
    customer_id = found.netsuite
    if customer_id is None:
        if found.canonical_id is None:
            return ErpData(customer=None)
        customer = await port.find_customer(external_id=found.canonical_id)
        if customer is None:
            return ErpData(customer=None)
        customer_id = customer.id
    if not isinstance(port, CreditHolds):
        record, receivables = await asyncio.gather(
            port.get_customer(customer_id), port.receivables_balance(customer_id)
        )
        return ErpData(customer=record, receivables=receivables)
    record, receivables, credit_hold = await asyncio.gather(
        port.get_customer(customer_id),
        port.receivables_balance(customer_id),
        port.get_credit_hold(customer_id),
    )
    return ErpData(customer=record, receivables=receivables, credit_hold=credit_hold)


async def _subscriptions(billing: BillingPort, customer_id: str) -> list[Subscription]:
    page = await billing.list_subscriptions(customer_id=customer_id, limit=100)
    return page.data


async def _open_invoices(billing: BillingPort, customer_id: str) -> list[Invoice]:
    page = await billing.list_invoices(customer_id=customer_id, status="open", limit=INVOICES_PAGE)
    return page.data


async def _cases(support: SupportPort, organization_id: str) -> list[SupportCase]:
    cases: list[SupportCase] = []
    cursor: str | None = None
    for _ in range(MAX_CASE_PAGES):
        page = await support.list_cases(
            organization_id=organization_id, cursor=cursor, limit=CASES_PAGE
        )
        cases.extend(page.data)
        cursor = page.next_cursor
        if cursor is None:
            break
    return cases


async def _none() -> None:
    return None
