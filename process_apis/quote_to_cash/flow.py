"""Quote-to-cash: a won deal becomes a customer, a subscription, an order and a write-back.

The flow makes sure the account is a customer in billing, the ERP and support (customer
master), that every product of the deal is in the billing and ERP catalogs (matched by product
code), books the NetSuite sales order (externalId `q2c:{opportunity_id}`) before billing issues
any invoice (so every invoice's posting finds the order it bills), subscribes the customer to
the recurring lines at the deal's own unit prices (one Stripe subscription, `send_invoice`, due
after the account's payment terms), its one-time lines added to that subscription's first
invoice only (never left as loose items another subscription's invoice could pick up), and
writes order number, subscription id and status back to the opportunity, then signs the deal's
CRM contract (activated from the close date for the deal's term, keyed `contract:{opportunity_id}`
so it exists once however often the step runs). The subscription and invoices carry the flow's
correlation id in their metadata, so what they cause (postings, payment failures, amendments)
joins the deal's trace. No compensation: a
step that fails for good waits in the exception queue and resumes from that step; every write is
keyed, so nothing is created twice. A deal of one-time services only gets an invoice of its own
instead of a subscription, its items bound to it.
Every system bills and books the order's prices and tax: the order (`orders.py`) is the one
place a price or a tax treatment is decided. Billing taxes through a tax rate per tax code (on
the subscription, or the one-time invoice); the sales order's lines carry the pre-tax amounts
and the tax code, and the invoices the tax.

Owner teams follow `exceptions.owner_for`: outages and refused credentials go to integration,
catalog and pricing steps to revenue ops, ERP postings to finance.
"""

from __future__ import annotations

from typing import Final

import msgspec

from contracts.ownership import check_write
from contracts.v1 import (
    DealPatch,
    Price,
    Product,
    RecurringInterval,
    SalesOrderCreate,
    SalesOrderLine,
    SubscriptionCreate,
    SubscriptionItemInput,
    TaxRate,
)
from process_apis.cross_references import CrossReferences
from process_apis.customer_master.flow import (
    CustomerLinks,
    CustomerMaster,
    canonical_customer_id,
)
from process_apis.engine.durable import (
    BUSY_PLATFORM,
    FlowInstance,
    current_idempotency_key,
    flow,
    flow_class,
    flow_step,
    report_external_ids,
    report_money,
)
from process_apis.quote_to_cash.orders import Order, OrderLine
from system_apis.billing.port import BillingPort
from system_apis.crm.port import ContractCreate, CrmContractsPort, CrmPort
from system_apis.erp.port import ErpPort
from system_apis.tax.port import TaxTreatment

__all__ = [
    "FLOW_TYPE",
    "BookedOrder",
    "QuoteToCash",
    "QuoteToCashResult",
    "contract_key",
    "flow_id_for",
]

FLOW_TYPE: Final = "quote_to_cash"
PRICE: Final = "price"
"""Cross-reference entity of a catalog price (`{product code}:{currency}`)."""
PRODUCT: Final = "product"
"""Cross-reference entity of a catalog product (its product code)."""
SYNCED: Final = "synced"
TAX_RATE: Final = "tax_rate"
"""Cross-reference entity of a billing tax rate (the company's tax code)."""


class BookedOrder(msgspec.Struct, frozen=True, kw_only=True):
    """The ERP's sales order for a deal."""

    id: str
    number: str | None


class QuoteToCashResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a finished quote-to-cash flow created."""

    customer: CustomerLinks
    subscription_id: str | None
    invoice_item_ids: list[str]
    sales_order: BookedOrder
    contract_id: str | None = None
    """The CRM contract the deal started (None: the CRM keeps no contracts)."""


def contract_key(opportunity_id: str) -> str:
    """The external id of the contract a won deal starts."""
    return f"contract:{opportunity_id}"


def flow_id_for(opportunity_id: str) -> str:
    """The flow id (business key) of a deal's quote-to-cash flow."""
    return f"q2c:{opportunity_id}"


@flow_class("quote-to-cash")
class QuoteToCash(FlowInstance):
    """The quote-to-cash flow (`run`) and its steps; customer steps are the customer
    master's."""

    def __init__(
        self,
        *,
        customers: CustomerMaster,
        crm: CrmPort,
        billing: BillingPort,
        erp: ErpPort,
        references: CrossReferences,
        contracts: CrmContractsPort | None = None,
    ) -> None:
        super().__init__()
        self.customers = customers
        self.crm = crm
        self.contracts = contracts
        self.billing = billing
        self.erp = erp
        self.references = references

    @flow()
    async def run(self, order: Order) -> QuoteToCashResult:
        customer = await self.customers.ensure(order.account)
        prices = await self.sync_billing_catalog(order.lines, order.currency)
        items = await self.sync_erp_catalog(order.lines, order.currency)
        tax_rates = [await self.ensure_tax_rate(order.tax)] if order.tax is not None else []
        # The ERP order is booked before billing issues an invoice, so the invoice's posting
        # always finds the order it bills.
        booked = await self.book_sales_order(order, customer.erp_customer_id, items)
        subscription_id = None
        charges: list[str] = []
        if any(line.recurring for line in order.lines):
            subscription_id = await self.subscribe_to_recurring_prices(
                order, customer.billing_customer_id, prices, tax_rates
            )
        else:
            draft = await self.draft_one_time_invoice(
                order, customer.billing_customer_id, tax_rates
            )
            charges = [
                await self.charge_one_time_product(
                    order, customer.billing_customer_id, draft, prices[line.product_code], line
                )
                for line in order.lines
            ]
            await self.send_one_time_invoice(draft)
        await self.write_back_opportunity(order.opportunity_id, booked.number, subscription_id)
        contract_id = await self.sign_contract(order) if self.contracts is not None else None
        return QuoteToCashResult(
            customer=customer,
            subscription_id=subscription_id,
            invoice_item_ids=charges,
            sales_order=booked,
            contract_id=contract_id,
        )

    # -- catalog ---------------------------------------------------------------------------

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def sync_billing_catalog(self, lines: list[OrderLine], currency: str) -> dict[str, str]:
        """The Stripe price of each product code in `currency`, created where missing."""
        prices: dict[str, str] = {}
        distinct = _distinct(lines)
        linked = await self.references.find_many(
            PRICE, [f"{line.product_code}:{currency}" for line in distinct], "stripe"
        )
        for line in distinct:
            key = f"{line.product_code}:{currency}"
            price_id = linked.get(key)
            if price_id is None:
                price = await self.billing.find_price(
                    product_code=line.product_code, currency=currency
                )
                price_id = price.id if price is not None else await self._new_price(line, currency)
                await self.references.link(PRICE, key, "stripe", price_id)
            prices[line.product_code] = price_id
        report_external_ids(**{f"stripe_price_{code}": pid for code, pid in prices.items()})
        return prices

    @flow_step(system="netsuite", retry=BUSY_PLATFORM)
    async def sync_erp_catalog(self, lines: list[OrderLine], currency: str) -> dict[str, str]:
        """The NetSuite item of each product code, upserted (by code) where missing."""
        items: dict[str, str] = {}
        distinct = _distinct(lines)
        linked = await self.references.find_many(
            PRODUCT, [line.product_code for line in distinct], "netsuite"
        )
        for line in distinct:
            item_id = linked.get(line.product_code)
            if item_id is None:
                found = await self.erp.find_product(line.product_code)
                if found is None:
                    found = await self.erp.upsert_product(
                        _product(line), prices={currency: line.list_amount}
                    )
                item_id = found.id
                await self.references.link(PRODUCT, line.product_code, "netsuite", item_id)
            items[line.product_code] = item_id
        report_external_ids(**{f"netsuite_item_{code}": iid for code, iid in items.items()})
        return items

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def ensure_tax_rate(self, tax: TaxTreatment) -> str:
        """The billing tax rate of the customer's tax code, created where missing. Keyed by
        the code, not the flow: any flow may be the first to need it."""
        rate_id = await self.references.find(TAX_RATE, tax.code, "stripe")
        if rate_id is None:
            found = await self.billing.find_tax_rate(tax.code)
            if found is None:
                found = await self.billing.create_tax_rate(
                    TaxRate(
                        id=tax.code,
                        code=tax.code,
                        rate_bps=tax.rate_bps,
                        display_name=tax.name,
                        reason=tax.reason,
                        jurisdiction=tax.jurisdiction,
                    ),
                    idempotency_key=f"tax:{tax.code}:rate",
                )
            rate_id = found.id
            await self.references.link(TAX_RATE, tax.code, "stripe", rate_id)
        report_external_ids(stripe_tax_rate=rate_id)
        return rate_id

    # -- billing ---------------------------------------------------------------------------

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def subscribe_to_recurring_prices(
        self, order: Order, customer_id: str, prices: dict[str, str], tax_rates: list[str]
    ) -> str:
        """One subscription of the recurring lines at the deal's unit prices, invoiced (not
        charged) on the account's payment terms; the deal's one-time lines go on its first
        invoice. Its metadata names the deal and the canonical customer.

        The deal's trace is not in the create's parameters: a flow started again after its
        record was lost (a database restored empty) has a new correlation id, and Stripe
        refuses an idempotent create replayed with other parameters. Later flows join the
        trace through the keys this step reports (the subscription, its first invoice)."""
        subscription = SubscriptionCreate(
            customer_id=customer_id,
            currency=order.currency,
            items=[_billed(line, prices) for line in order.lines if line.recurring],
            one_time_items=[_billed(line, prices) for line in order.lines if not line.recurring],
            collection_method="send_invoice",
            days_until_due=order.payment_terms_days,
            deal_id=order.opportunity_id,
            legal_entity=order.legal_entity,
            tax_rate_ids=tax_rates,
        )
        created = await self.billing.create_subscription(
            subscription,
            canonical_id=canonical_customer_id(order.account.id),
            idempotency_key=current_idempotency_key(),
        )
        report_external_ids(stripe_subscription=created.id)
        return created.id

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def draft_one_time_invoice(
        self, order: Order, customer_id: str, tax_rates: list[str]
    ) -> str:
        """A deal of one-time services only: a draft invoice of its own, sent on the
        account's payment terms; it takes no pending item of the customer."""
        invoice = await self.billing.create_invoice(
            customer_id=customer_id,
            collection_method="send_invoice",
            days_until_due=order.payment_terms_days,
            include_pending_items=False,
            auto_advance=False,
            description=order.name,
            idempotency_key=current_idempotency_key(),
            tax_rate_ids=tax_rates,
            deal_id=order.opportunity_id,
            legal_entity=order.legal_entity,
            # In the deal's currency: an account's first invoice fixes its billing currency.
            currency=order.currency,
        )
        report_external_ids(stripe_invoice=invoice.id)
        return invoice.id

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def charge_one_time_product(
        self, order: Order, customer_id: str, invoice_id: str, price_id: str, line: OrderLine
    ) -> str:
        """A one-time line at the deal's unit price, on the deal's own invoice."""
        item = await self.billing.create_invoice_item(
            customer_id=customer_id,
            price_id=price_id,
            quantity=line.quantity,
            unit_amount=None if line.unit_amount == line.list_amount else line.unit_amount,
            description=f"{line.product_name} ({order.name})",
            invoice_id=invoice_id,
            deal_id=order.opportunity_id,
            idempotency_key=current_idempotency_key(),
        )
        report_external_ids(stripe_invoice_item=item.id)
        return item.id

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def send_one_time_invoice(self, invoice_id: str) -> str:
        invoice = await self.billing.finalize_invoice(
            invoice_id, idempotency_key=current_idempotency_key()
        )
        return invoice.id

    # -- ERP and CRM -----------------------------------------------------------------------

    @flow_step(system="netsuite", retry=BUSY_PLATFORM)
    async def book_sales_order(
        self, order: Order, customer_id: str, items: dict[str, str]
    ) -> BookedOrder:
        """The sales order in the deal's legal entity and currency, upserted by its external
        id `q2c:{opportunity_id}` (a repeat is the same order).

        The order books what the customer committed to. A metered line is booked at its sold
        unit rate with quantity 0, so amount 0: its deal quantity is an estimate, the calls
        are billed per unit in arrears and each usage invoice reaches the ERP through the
        invoice posting path. NetSuite computes a line's amount as quantity x rate, so this
        keeps the rate on the order (for whoever invoices from it) without committing it;
        the order total then equals the deal's committed amount and billing's first invoice,
        which is what reconciliation compares (usage has its own `usage` kind)."""
        booked = await self.erp.upsert_sales_order(
            SalesOrderCreate(
                customer_id=customer_id,
                legal_entity=order.legal_entity,
                currency=order.currency,
                order_date=order.order_date,
                lines=[
                    SalesOrderLine(
                        item_id=items[line.product_code],
                        product_code=line.product_code,
                        description=line.product_name,
                        quantity=0 if line.metered else line.quantity,
                        unit_amount=line.unit_amount,
                        amount=line.committed_amount,
                        tax_code=order.tax.code if order.tax else None,
                        tax_rate_bps=order.tax.rate_bps if order.tax else None,
                    )
                    for line in order.lines
                ],
                external_id=flow_id_for(order.opportunity_id),
                deal_id=order.opportunity_id,
                memo=order.name,
            )
        )
        report_external_ids(netsuite_sales_order=booked.id, netsuite_tran_id=booked.number or "")
        report_money(
            "booked",
            legal_entity=order.legal_entity,
            currency=order.currency,
            amount=order.amount,
        )
        return BookedOrder(id=booked.id, number=booked.number)

    @flow_step(system="salesforce", retry=BUSY_PLATFORM)
    async def write_back_opportunity(
        self, opportunity_id: str, order_number: str | None, subscription_id: str | None
    ) -> None:
        """The opportunity shows the ERP order, the subscription and that it is synced."""
        patch = DealPatch(
            erp_order_number=order_number,
            billing_subscription_id=subscription_id,
            integration_status=SYNCED,
        )
        # These fields are owned by the ERP, billing and the gateway; the CRM holds mirrors.
        check_write("Deal", "salesforce", patch.fields_set(), mirror=True)
        await self.crm.update_deal(opportunity_id, patch)
        report_external_ids(salesforce_opportunity=opportunity_id)

    @flow_step(system="salesforce", retry=BUSY_PLATFORM)
    async def sign_contract(self, order: Order) -> str:
        """The deal's contract: activated from its close date for its term, keyed by the deal
        (a repeat, or another process doing the same, finds the same contract)."""
        assert self.contracts is not None, "run signs a contract only with a contracts port"
        contract_id, _ = await self.contracts.upsert_contract(
            ContractCreate(
                customer_id=order.account.id,
                deal_id=order.opportunity_id,
                start_date=order.order_date,
                term_months=order.term_months,
                currency=order.currency,
            ),
            external_id=contract_key(order.opportunity_id),
        )
        report_external_ids(salesforce_contract=contract_id)
        return contract_id

    async def _new_price(self, line: OrderLine, currency: str) -> str:
        """A Stripe price (and product, when Stripe has none for the code) at list price.
        Keyed by the catalog record, not the flow: any flow may be the first to need it."""
        product = await self.billing.find_product(line.product_code)
        if product is None:
            product = await self.billing.create_product(
                _product(line), idempotency_key=f"catalog:{line.product_code}:product"
            )
        price = await self.billing.create_price(
            Price(
                id=f"{line.product_code}:{currency}",
                product_id=product.id,
                currency=currency,
                unit_amount=line.list_amount,
                recurring_interval=_recurring_interval(line),
                product_code=line.product_code,
                usage_type="metered" if line.usage_metric else "licensed",
            ),
            idempotency_key=f"catalog:{line.product_code}:{currency}:price",
        )
        return price.id


def _billed(line: OrderLine, prices: dict[str, str]) -> SubscriptionItemInput:
    """A deal line as billing bills it: the catalog price when the deal sold at list price,
    else the catalog price's product at the sold unit price (an inline price of its own)."""
    return SubscriptionItemInput(
        price_id=prices[line.product_code],
        quantity=line.quantity,
        unit_amount=None if line.unit_amount == line.list_amount else line.unit_amount,
        product_code=line.product_code,
        usage_metric=line.usage_metric if line.recurring else None,
    )


def _distinct(lines: list[OrderLine]) -> list[OrderLine]:
    seen: dict[str, OrderLine] = {}
    for line in lines:
        seen.setdefault(line.product_code, line)
    return list(seen.values())


def _recurring_interval(line: OrderLine) -> RecurringInterval | None:
    if line.billing_interval == "month":
        return "month"
    if line.billing_interval == "year":
        return "year"
    return None


def _product(line: OrderLine) -> Product:
    return Product(
        id=line.product_code,
        code=line.product_code,
        name=line.product_name,
        billing_interval=line.billing_interval,
        usage_metric=line.usage_metric,
    )
