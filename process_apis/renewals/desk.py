"""The renewal desk: what a renewal is made of, read from the platforms (no durable state).

It answers the questions the flows' steps and the sales view ask: which subscription a contract
bills, what its renewal sells (the subscription's current lines at its current prices), where a
renewal's contract ends, and how risky the renewal is (signals read from billing, support and
usage, judged by `risk.assess`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import msgspec

from contracts.errors import UpstreamNotFound
from contracts.v1 import Contract, Customer, Deal, Subscription, SubscriptionItem
from process_apis.cross_references import CrossReferences
from process_apis.customer_master.flow import CUSTOMER, canonical_customer_id
from process_apis.renewals import signals as reading
from process_apis.renewals.risk import (
    Assessment,
    RiskRules,
    Signals,
    UsageHistory,
    UsagePeriod,
    assess,
    usage_trend,
)
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmContractsPort, CrmPort, RenewalCreate, RenewalLine
from system_apis.support.port import SupportPort

__all__ = [
    "SIGNAL_WINDOW_DAYS",
    "RenewalDesk",
    "RenewalParts",
    "boundary_of",
    "renewal_key",
]

SIGNAL_WINDOW_DAYS: Final = 90
USAGE_PERIODS: Final = 3


def renewal_key(contract_id: str) -> str:
    """The external id of a contract's renewal opportunity: one per contract, whoever makes
    it and however often."""
    return f"renewal:{contract_id}"


def boundary_of(subscription: Subscription, contract_end: date) -> datetime:
    """The instant the renewal takes over: the subscription's period end at the contract's end
    (an annual subscription's anniversary), else the day after the contract's last day."""
    period_end = subscription.current_period_end
    if period_end is not None and period_end.date() >= contract_end:
        return period_end
    return datetime.combine(contract_end + timedelta(days=1), time(0), tzinfo=UTC)


class RenewalParts(msgspec.Struct, frozen=True, kw_only=True):
    """What the renewal of one contract sells, and whom."""

    contract: Contract
    deal: Deal
    """The deal the contract was signed for."""
    subscription_id: str
    renewal: RenewalCreate


class RenewalDesk:
    """Reads what renewals need; every method is safe to run again."""

    def __init__(
        self,
        *,
        crm: CrmPort,
        contracts: CrmContractsPort,
        billing: BillingPort,
        support: SupportPort | None,
        references: CrossReferences,
        usage: UsageHistory | None = None,
        rules: RiskRules | None = None,
    ) -> None:
        self.crm = crm
        self.contracts = contracts
        self.billing = billing
        self.support = support
        self.references = references
        self.usage = usage
        self.rules = rules or RiskRules()

    async def parts(self, contract: Contract) -> RenewalParts | None:
        """The renewal of `contract`; None when it bills nothing that recurs (no subscription,
        or the subscription has ended)."""
        if contract.deal_id is None or contract.end_date is None:
            return None
        deal = await self.crm.get_deal(contract.deal_id)
        if not deal.billing_subscription_id:
            return None
        subscription = await self.billing.get_subscription(deal.billing_subscription_id)
        if subscription.status == "canceled":
            return None
        lines = [
            RenewalLine(
                product_code=item.product_code,
                quantity=_renewed_quantity(item, contract),
                unit_amount=item.unit_amount,
            )
            for item in subscription.items
            if item.product_code and item.unit_amount is not None
        ]
        base = deal.name.split(" - Renewal ")[0]
        renewal = RenewalCreate(
            customer_id=contract.customer_id,
            renews_deal_id=deal.id,
            name=f"{base} - Renewal {contract.end_date + timedelta(days=1):%Y-%m-%d}",
            close_date=contract.end_date,
            currency=contract.currency,
            term_months=contract.term_months or deal.contract_term_months or 12,
            legal_entity=deal.legal_entity or contract.legal_entity,
            lines=lines,
        )
        return RenewalParts(
            contract=contract, deal=deal, subscription_id=subscription.id, renewal=renewal
        )

    async def renewed_contract(self, renewal: Deal) -> Contract | None:
        """The contract a renewal opportunity renews (the latest of the deal it renews)."""
        if renewal.renewal_of is None:
            return None
        page = await self.contracts.list_contracts(customer_id=renewal.customer_id, limit=200)
        mine = [c for c in page.data if c.deal_id == renewal.renewal_of]
        return max(mine, key=lambda c: c.end_date or date.min, default=None)

    # -- signals ---------------------------------------------------------------------------

    async def billing_signals(self, subscription_id: str, as_of: date) -> reading.BillingSignals:
        subscription = await self.billing.get_subscription(subscription_id)
        return await reading.read_billing(
            self.billing, subscription.customer_id, as_of=as_of, window_days=SIGNAL_WINDOW_DAYS
        )

    async def support_signals(self, account: Customer, as_of: date) -> reading.SupportSignals:
        if self.support is None:
            return reading.SupportSignals()
        organization = await self.references.find(
            CUSTOMER,
            canonical_customer_id(account.id),
            "zendesk",
            legal_entity=account.legal_entity,
        )
        if organization is None:
            return reading.SupportSignals()
        return await reading.read_support(
            self.support, organization, as_of=as_of, window_days=SIGNAL_WINDOW_DAYS
        )

    async def usage_periods(self, subscription_id: str) -> list[UsagePeriod] | None:
        if self.usage is None:
            return None
        return await self.usage.last_periods(subscription_id, USAGE_PERIODS)

    def judge(
        self,
        *,
        currency: str,
        billing: reading.BillingSignals,
        support: reading.SupportSignals,
        usage: list[UsagePeriod] | None,
    ) -> Assessment:
        """The risk of a renewal from the signals read (pure: the flow calls it in its body)."""
        trend, quantities = usage_trend(usage)
        signals = Signals(
            usage_trend=trend,
            usage_periods=quantities,
            urgent_cases=support.urgent_cases,
            sla_breaches=support.sla_breaches,
            service_credits=billing.service_credits,
            service_credit_amount=billing.service_credit_amount,
            failed_payments=billing.failed_payments,
            days_past_due=billing.days_past_due,
            currency=currency,
            window_days=SIGNAL_WINDOW_DAYS,
        )
        return assess(signals, self.rules)

    async def assessment(self, parts: RenewalParts, as_of: date) -> Assessment:
        """Read every signal of a renewal at once and judge it (the view's live figures)."""
        account = await self.crm.get_account(parts.contract.customer_id)
        billing, support, usage = await asyncio.gather(
            self.billing_signals(parts.subscription_id, as_of),
            self.support_signals(account, as_of),
            self.usage_periods(parts.subscription_id),
        )
        return self.judge(
            currency=parts.contract.currency, billing=billing, support=support, usage=usage
        )

    async def account(self, account_id: str) -> Customer | None:
        try:
            return await self.crm.get_account(account_id)
        except UpstreamNotFound:
            return None


def _renewed_quantity(item: SubscriptionItem, contract: Contract) -> int:
    """What the renewal sells of an item: its quantity, or for a metered item (which bills
    reported usage, so has none) the estimate the contract sold, else one unit at its rate."""
    if item.usage_metric is None:
        return item.quantity
    sold = [line.quantity for line in contract.lines if line.product_code == item.product_code]
    return max(sold, default=1) or 1
