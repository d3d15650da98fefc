"""Renewals: every contract ending soon gets one renewal opportunity with its context and risk;
a won renewal continues the subscription at the contract's end, a lost one ends it there.

Scan: each contract ending between `as_of` and `as_of + lead_days` gets its renewal opportunity
(externalId `renewal:{contract_id}`, so one per contract however often and on however many
replicas the scan runs), selling the subscription's current lines at its current prices, closing
on the contract's end; its context and risk are read and written to it on every scan.
Won: the renewal's ERP sales order is booked (externalId `q2c:{opportunity_id}`, as any deal's),
the subscription continues at the boundary with the renewal's quantities and prices (nothing
prorated), the new term's contract is signed and the opportunity shows order, subscription and
status. Lost: the subscription ends at the boundary, the ERP order is left as it is, the account
shows churn. No compensation: every write is keyed; a step that fails for good waits in the
exception queue and resumes from there.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Final

import msgspec

from contracts.ownership import check_write
from contracts.v1 import Contract, Customer, DealPatch, RenewalRisk, SubscriptionItemInput
from process_apis.engine.durable import (
    BUSY_PLATFORM,
    FlowInstance,
    current_idempotency_key,
    flow,
    flow_class,
    flow_step,
    report_external_ids,
)
from process_apis.quote_to_cash.flow import QuoteToCash
from process_apis.quote_to_cash.orders import Order
from process_apis.renewals import signals as reading
from process_apis.renewals.desk import RenewalDesk, RenewalParts, boundary_of, renewal_key
from process_apis.renewals.risk import UsagePeriod, summary
from system_apis.billing.port import SubscriptionRenewals
from system_apis.crm.port import CrmContractsPort

__all__ = [
    "LOST_TYPE",
    "SCAN_TYPE",
    "WON_TYPE",
    "LostRenewal",
    "RenewalFlows",
    "RenewalOpened",
    "ScanRequest",
    "ScanResult",
    "WonRenewal",
    "lost_flow_id",
    "won_flow_id",
]

SCAN_TYPE: Final = "renewal_scan"
WON_TYPE: Final = "renewal_won"
LOST_TYPE: Final = "renewal_lost"
SYNCED: Final = "synced"


def won_flow_id(opportunity_id: str) -> str:
    return f"renewal-won:{opportunity_id}"


def lost_flow_id(opportunity_id: str) -> str:
    return f"renewal-lost:{opportunity_id}"


class ScanRequest(msgspec.Struct, frozen=True, kw_only=True):
    scan_id: str
    as_of: date
    lead_days: int
    entities: list[str] | None = None
    """Legal entities whose contracts are scanned; None: every entity."""


class RenewalOpened(msgspec.Struct, frozen=True, kw_only=True):
    contract_id: str
    opportunity_id: str
    created: bool
    """False when the contract already had its renewal opportunity."""
    risk: RenewalRisk | None = None


class ScanResult(msgspec.Struct, frozen=True, kw_only=True):
    scan_id: str
    renewals: list[RenewalOpened]


class WonRenewal(msgspec.Struct, frozen=True, kw_only=True):
    """A won renewal as its flow books it (checked before the flow starts)."""

    order: Order
    """The renewal opportunity as an order; `order_date` is its close date."""
    contract: Contract
    """The contract it renews."""
    subscription_id: str


class LostRenewal(msgspec.Struct, frozen=True, kw_only=True):
    opportunity_id: str
    account_id: str
    contract: Contract
    subscription_id: str


class WonResult(msgspec.Struct, frozen=True, kw_only=True):
    sales_order_number: str | None
    subscription_id: str
    continues_at: datetime
    contract_id: str


@flow_class("renewals")
class RenewalFlows(FlowInstance):
    """The renewal scan, the won and the lost renewal, and their steps."""

    def __init__(
        self,
        *,
        desk: RenewalDesk,
        contracts: CrmContractsPort,
        renewals: SubscriptionRenewals,
        quote_to_cash: QuoteToCash,
    ) -> None:
        super().__init__()
        self.desk = desk
        self.contracts = contracts
        self.renewals = renewals
        self.quote_to_cash = quote_to_cash

    # -- the scan --------------------------------------------------------------------------

    @flow()
    async def scan(self, request: ScanRequest) -> ScanResult:
        ending = await self.find_ending_contracts(
            request.as_of, request.as_of + timedelta(days=request.lead_days), request.entities
        )
        opened: list[RenewalOpened] = []
        for contract in ending:
            parts = await self.read_renewal_parts(contract)
            if parts is None:
                continue
            opportunity_id, created = await self.open_renewal_opportunity(parts)
            account = await self.read_account(contract.customer_id)
            billing = await self.read_billing_signals(parts.subscription_id, request.as_of)
            support = await self.read_support_signals(account, request.as_of)
            usage = await self.read_usage(parts.subscription_id)
            assessment = self.desk.judge(
                currency=contract.currency, billing=billing, support=support, usage=usage
            )
            await self.write_renewal_context(opportunity_id, assessment.risk, summary(assessment))
            opened.append(
                RenewalOpened(
                    contract_id=contract.id,
                    opportunity_id=opportunity_id,
                    created=created,
                    risk=assessment.risk,
                )
            )
        return ScanResult(scan_id=request.scan_id, renewals=opened)

    @flow_step(system="salesforce", retry=BUSY_PLATFORM)
    async def find_ending_contracts(
        self, ending_from: date, ending_to: date, entities: list[str] | None
    ) -> list[Contract]:
        """Activated contracts ending in the window, oldest id first, every page."""
        found: list[Contract] = []
        cursor: str | None = None
        while True:
            page = await self.contracts.list_contracts(
                legal_entities=entities,
                ending_from=ending_from,
                ending_to=ending_to,
                cursor=cursor,
                limit=200,
            )
            found += [c for c in page.data if c.status == "activated"]
            cursor = page.next_cursor
            if cursor is None:
                return found

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def read_renewal_parts(self, contract: Contract) -> RenewalParts | None:
        """The deal and subscription a contract renews, and what the renewal sells."""
        return await self.desk.parts(contract)

    @flow_step(system="salesforce", retry=BUSY_PLATFORM)
    async def open_renewal_opportunity(self, parts: RenewalParts) -> tuple[str, bool]:
        """The contract's renewal opportunity, made once (keyed by the contract)."""
        opportunity_id, created = await self.contracts.upsert_renewal(
            parts.renewal, external_id=renewal_key(parts.contract.id)
        )
        report_external_ids(salesforce_renewal=opportunity_id)
        return opportunity_id, created

    @flow_step(system="salesforce", retry=BUSY_PLATFORM)
    async def read_account(self, account_id: str) -> Customer:
        return await self.desk.crm.get_account(account_id)

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def read_billing_signals(
        self, subscription_id: str, as_of: date
    ) -> reading.BillingSignals:
        return await self.desk.billing_signals(subscription_id, as_of)

    @flow_step(system="zendesk", retry=BUSY_PLATFORM)
    async def read_support_signals(self, account: Customer, as_of: date) -> reading.SupportSignals:
        return await self.desk.support_signals(account, as_of)

    @flow_step(system="gateway", retry=BUSY_PLATFORM)
    async def read_usage(self, subscription_id: str) -> list[UsagePeriod] | None:
        return await self.desk.usage_periods(subscription_id)

    @flow_step(system="salesforce", retry=BUSY_PLATFORM)
    async def write_renewal_context(
        self, opportunity_id: str, risk: RenewalRisk, context: str
    ) -> None:
        await self.contracts.assess_renewal(opportunity_id, risk=risk, context=context)

    # -- won -------------------------------------------------------------------------------

    @flow()
    async def won(self, renewal: WonRenewal) -> WonResult:
        order = renewal.order
        q2c = self.quote_to_cash
        customer = await q2c.customers.ensure(order.account)
        prices = await q2c.sync_billing_catalog(order.lines, order.currency)
        items = await q2c.sync_erp_catalog(order.lines, order.currency)
        booked = await q2c.book_sales_order(order, customer.erp_customer_id, items)
        at = await self.find_boundary(renewal.subscription_id, renewal.contract)
        await self.continue_subscription(renewal, prices, at)
        # The new term starts the day after the old one ends.
        assert renewal.contract.end_date is not None
        new_term = msgspec.structs.replace(
            order, order_date=renewal.contract.end_date + timedelta(days=1)
        )
        contract_id = await q2c.sign_contract(new_term)
        await q2c.write_back_opportunity(
            order.opportunity_id, booked.number, renewal.subscription_id
        )
        return WonResult(
            sales_order_number=booked.number,
            subscription_id=renewal.subscription_id,
            continues_at=at,
            contract_id=contract_id,
        )

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def find_boundary(self, subscription_id: str, contract: Contract) -> datetime:
        """When the renewal takes over: the subscription's period end at the contract's end."""
        assert contract.end_date is not None
        subscription = await self.desk.billing.get_subscription(subscription_id)
        return boundary_of(subscription, contract.end_date)

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def continue_subscription(
        self, renewal: WonRenewal, prices: dict[str, str], at: datetime
    ) -> None:
        """From the boundary on, the subscription bills the renewal's quantities and sold
        prices under the renewal deal; nothing before it changes or is prorated."""
        items = [
            SubscriptionItemInput(
                price_id=prices[line.product_code],
                quantity=line.quantity,
                unit_amount=None if line.unit_amount == line.list_amount else line.unit_amount,
                product_code=line.product_code,
                usage_metric=line.usage_metric,
            )
            for line in renewal.order.lines
            if line.recurring
        ]
        subscription = await self.renewals.continue_subscription(
            renewal.subscription_id,
            at=at,
            items=items,
            deal_id=renewal.order.opportunity_id,
            idempotency_key=current_idempotency_key(),
        )
        report_external_ids(stripe_subscription=subscription.id)

    # -- lost ------------------------------------------------------------------------------

    @flow()
    async def lost(self, renewal: LostRenewal) -> datetime:
        at = await self.find_boundary(renewal.subscription_id, renewal.contract)
        await self.cancel_subscription_at_boundary(renewal.subscription_id, at)
        await self.show_churn(renewal.account_id)
        await self.write_back_lost(renewal.opportunity_id)
        return at

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def cancel_subscription_at_boundary(self, subscription_id: str, at: datetime) -> None:
        await self.renewals.cancel_subscription_at(
            subscription_id, at=at, idempotency_key=current_idempotency_key()
        )

    @flow_step(system="salesforce", retry=BUSY_PLATFORM)
    async def show_churn(self, account_id: str) -> None:
        await self.contracts.mark_churned(account_id)

    @flow_step(system="salesforce", retry=BUSY_PLATFORM)
    async def write_back_lost(self, opportunity_id: str) -> None:
        patch = DealPatch(integration_status=SYNCED)
        check_write("Deal", "salesforce", patch.fields_set(), mirror=True)
        await self.desk.crm.update_deal(opportunity_id, patch)
