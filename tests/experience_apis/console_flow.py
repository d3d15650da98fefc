"""A one-step flow for the console tests: create the customer in billing (Stripe), so an
outage of the Stripe emulator fails it into the exception queue, and a retry from the console
completes it once the emulator is healthy again."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, post
from litestar.di import NamedDependency

from contracts.v1 import CustomerCreate
from process_apis.engine.durable import (
    FlowInstance,
    Retry,
    current_idempotency_key,
    flow,
    flow_class,
    flow_step,
    report_external_ids,
)
from process_apis.engine.flow_engine import FlowEngine
from system_apis.billing.port import BillingPort

__all__ = ["BillingCustomerInput", "ConsoleDemoFlows", "start_route"]


class BillingCustomerInput(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    legal_entity: str
    currency: str
    crm_account_id: str


@flow_class("console-demo")
class ConsoleDemoFlows(FlowInstance):
    def __init__(self, *, billing: BillingPort) -> None:
        super().__init__()
        self.billing = billing

    @flow_step(
        system="stripe", retry=Retry(further=1, interval_seconds=0.1), input=BillingCustomerInput
    )
    async def create_billing_customer(self, account: BillingCustomerInput) -> str:
        customer = await self.billing.create_customer(
            CustomerCreate(
                legal_name=account.name,
                legal_entity=account.legal_entity,
                currency=account.currency,
            ),
            crm_account_id=account.crm_account_id,
            idempotency_key=current_idempotency_key(),
        )
        report_external_ids(stripe_customer=customer.id)
        return customer.id

    @flow()
    async def onboard(self, account: BillingCustomerInput) -> str:
        return await self.create_billing_customer(account)


def start_route(flows: ConsoleDemoFlows) -> Any:
    """`POST /test/console-demo/{key}`: start the flow (a test-only route, no token)."""

    @post("/test/console-demo/{key:str}", opt={"public": True, "rate_limit": False})
    async def start(key: str, flow_engine: NamedDependency[FlowEngine]) -> Response[dict[str, str]]:
        account = BillingCustomerInput(
            name=f"Console Demo {key}",
            legal_entity="US01",
            currency="USD",
            crm_account_id=f"001demo{key}",
        )
        handle = await flow_engine.start(
            "console_demo",
            f"onboard:{key}",
            flows.onboard,
            account,
            correlation_id=f"corr-{key}",
            crm_account=account.crm_account_id,
            legal_entity="US01",
        )
        return Response({"flow_id": handle.flow_id}, status_code=202)

    return start
