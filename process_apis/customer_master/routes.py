"""The customer-master route and its service.

    POST /process/v1/customers/{crm_account_id}/sync          make an account a customer

It needs scope `process:write` and an `Idempotency-Key`, checks the account before a flow
starts (422 listing every field problem) and answers 202 with the flow resource and its
`Location`; asking again for the same account (under any key) answers the same flow. The
route takes one dependency by name, `customer_master` (a `CustomerMasterService`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Protocol

from litestar import Request, Response, Router, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import Example
from litestar.params import PathParameter

from contracts.audit import actor_of
from contracts.context import current_context
from contracts.principal import Principal
from contracts.v1 import Customer
from process_apis.customer_master.flow import FLOW_TYPE, CustomerMaster, customer_flow_id
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.records import FlowReader
from process_apis.engine.routes import flow_location
from process_apis.flows import Flow

__all__ = ["DEMO_ACCOUNT_ID", "AccountDesk", "CustomerMasterService", "create_router"]

PREFIX: Final = "/process/v1"
_WRITE: dict[str, Any] = {
    "scopes": ["process:write"],
    "idempotency": "required",
    "rate_limit_group": "process",
}
AuthedRequest = Request[Principal, Any, Any]
# The sandbox's demo company as the example, so the docs page and contract tests can sync a
# real account against the emulators.
DEMO_ACCOUNT_ID: Final = "001akMjmrpCRjZzABL"
AccountId = Annotated[
    str,
    PathParameter(
        min_length=1,
        max_length=64,
        description="The CRM account id",
        examples=[Example(summary="The sandbox's demo account", value=DEMO_ACCOUNT_ID)],
    ),
]


class AccountDesk(Protocol):
    """Reads a CRM account and checks it may become a customer (quote-to-cash's order desk)."""

    async def customer_for(self, crm_account_id: str, *, principal: Principal) -> Customer: ...


@dataclass
class CustomerMasterService:
    """The customer-master flow as the app runs it: the checks, then the flow."""

    engine: FlowEngine
    reader: FlowReader
    desk: AccountDesk
    customers: CustomerMaster

    @property
    def dependencies(self) -> dict[str, Provide]:
        def dependency() -> CustomerMasterService:
            return self

        return {"customer_master": Provide(dependency, use_cache=True, sync_to_thread=False)}

    async def sync(self, crm_account_id: str, *, principal: Principal) -> Flow:
        """The customer-master flow of an account (the existing one, or a new one)."""
        flow_id = customer_flow_id(crm_account_id)
        existing = await self.reader.get(flow_id, principal=principal)
        if existing is not None:
            await self.engine.record_start(
                FLOW_TYPE, flow_id, created=False, source="api", actor=actor_of(principal),
                legal_entity=existing.legal_entity,
                correlation_id=current_context().correlation_id,
            )
            return existing
        account = await self.desk.customer_for(crm_account_id, principal=principal)
        await self.engine.start(
            FLOW_TYPE,
            flow_id,
            self.customers.sync,
            account,
            correlation_id=current_context().correlation_id,
            crm_account=account.id,
            legal_entity=account.legal_entity,
            source="api",
            actor=actor_of(principal),
        )
        flow = await self.reader.get(flow_id)
        assert flow is not None, "a started flow has a record"
        return flow


@post(
    "/customers/{crm_account_id:str}/sync",
    opt=_WRITE,
    status_code=202,
    summary="Make a CRM account a customer in billing, the ERP and support",
)
async def sync_customer(
    request: AuthedRequest,
    customer_master: NamedDependency[CustomerMasterService],
    crm_account_id: AccountId,
) -> Response[Flow]:
    flow = await customer_master.sync(crm_account_id, principal=request.user)
    return Response(flow, status_code=202, headers={"Location": flow_location(flow.id)})


def create_router() -> Router:
    """The customer-master route (dependency: `customer_master`)."""
    return Router(path=PREFIX, route_handlers=[sync_customer], tags=["process"])
