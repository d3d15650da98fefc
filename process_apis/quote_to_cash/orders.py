"""Orders: a won deal checked, before any flow starts, into what quote-to-cash books.

`OrderDesk.order_for` reads the deal, its account, the CRM catalog and the ERP's legal
entities and either returns the `Order` or raises `ValidationFailed` listing every field
problem at once (not won, no lines, a product without a price in the deal's currency, a
currency the legal entity or Stripe does not bill in, an account without billing country or
legal entity, more lines, units or money than `contracts.limits` allows a request, a customer
no tax rule covers), so the caller fixes the deal in one go. The order carries the deal's sold
unit prices and the customer's tax treatment: it is the one place where price and tax are
decided, and every platform bills and books what it says.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Final, Generic, TypeVar

import msgspec

from contracts.errors import (
    FieldError,
    NotFound,
    UpstreamError,
    UpstreamNotFound,
    ValidationFailed,
)
from contracts.limits import MAX_AMOUNT, MAX_ITEMS, MAX_QUANTITY
from contracts.principal import Principal
from contracts.v1 import BillingInterval, Customer, Deal, LegalEntity, Price, Product
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort
from system_apis.tax.port import TaxPort, TaxTreatment
from system_apis.visibility import may_see

__all__ = [
    "DEFAULT_PAYMENT_TERMS_DAYS",
    "DEFAULT_TERM_MONTHS",
    "STRIPE_CURRENCIES",
    "Catalog",
    "Order",
    "OrderDesk",
    "OrderLine",
    "order_problems",
]

DEFAULT_PAYMENT_TERMS_DAYS: Final = 30
"""Days an invoice is due after when the account states no payment terms."""
DEFAULT_TERM_MONTHS: Final = 12
"""The contract term of a deal that states none (`Contract_Term_Months__c`)."""
CATALOG_TTL_SECONDS: Final = 30.0
"""How long a read of the CRM catalog is reused. Only a catalog that knows every product and
price of a deal is reused; a miss reads the catalog again, so a new product is never refused
for a stale cache."""
LEGAL_ENTITIES_TTL_SECONDS: Final = 300.0

# https://docs.stripe.com/currencies: the currencies Stripe charges in (presentment).
_STRIPE_CODES = (
    "USD AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL "
    "BSD BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CVE CZK DJF DKK DOP DZD EGP ETB EUR FJD "
    "FKP GBP GEL GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR ISK JMD JOD JPY KES KGS "
    "KHR KMF KRW KWD KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MUR MVR MWK "
    "MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB "
    "RWF SAR SBD SCR SEK SGD SHP SLE SOS SRD STD SZL THB TJS TND TOP TRY TTD TWD TZS UAH "
    "UGX UYU UZS VND VUV WST XAF XCD XOF XPF YER ZAR ZMW"
)
STRIPE_CURRENCIES: Final = frozenset(_STRIPE_CODES.split())

T = TypeVar("T")


class OrderLine(msgspec.Struct, frozen=True, kw_only=True):
    """One product of a won deal, with what the catalog says about it."""

    product_code: str
    product_name: str
    billing_interval: BillingInterval
    quantity: int
    unit_amount: int
    """The deal's unit amount (minor units of the order's currency)."""
    amount: int
    """The deal line's total."""
    list_amount: int
    """The catalog's unit price in the order's currency."""
    usage_metric: str | None = None
    """Set for a metered product: billed per unit of reported usage at each period's end."""

    @property
    def recurring(self) -> bool:
        return self.billing_interval != "one_time"

    @property
    def metered(self) -> bool:
        """Billed per unit of reported usage: its sold amount is a rate, not a commitment."""
        return self.usage_metric is not None and self.recurring

    @property
    def committed_amount(self) -> int:
        """What the customer is committed to pay for this line: none for a metered line
        (its quantity is an estimate; usage invoices bill what is used)."""
        return 0 if self.metered else self.amount


class Order(msgspec.Struct, frozen=True, kw_only=True):
    """A won deal as quote-to-cash books it: checked, and small enough to hand to a flow."""

    opportunity_id: str
    name: str
    account: Customer
    """The CRM account, as read when the order was taken."""
    legal_entity: str
    currency: str
    order_date: date
    payment_terms_days: int
    lines: list[OrderLine]
    amount: int
    """The committed amount: every line's but the metered ones (billed per unit in arrears)."""
    tax: TaxTreatment | None = None
    """How the legal entity taxes this customer (None: the gateway has no tax port)."""
    term_months: int = DEFAULT_TERM_MONTHS
    """The contract's term, from the order date."""


class Catalog(msgspec.Struct, frozen=True, kw_only=True):
    """The CRM catalog a deal is checked against: products by code, and the active price of
    each product code in the deal's currency."""

    products: dict[str, Product]
    prices: dict[str, Price]


def order_problems(
    deal: Deal,
    account: Customer | None,
    catalog: Catalog,
    legal_entities: dict[str, LegalEntity],
) -> list[FieldError]:
    """Every reason `deal` cannot be booked (empty: it can). Pure: tests call it directly."""
    problems: list[FieldError] = []
    if not deal.won:
        problems.append(_problem("/stage", f"the opportunity is not won (stage {deal.stage!r})"))
    if deal.close_date is None:
        problems.append(_problem("/close_date", "the opportunity has no close date"))
    problems += _line_problems(deal, catalog)
    problems += _currency_problems(deal, legal_entities)
    if account is not None and (account.country is None):
        problems.append(
            _problem("/account/billing_address/country", "the account has no billing country")
        )
    return problems


class OrderDesk:
    """Takes won deals as orders: reads what a check needs from the CRM and the ERP."""

    def __init__(
        self,
        *,
        crm: CrmPort,
        erp: ErpPort,
        tax: TaxPort | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._crm = crm
        self._erp = erp
        self._tax = tax
        self._products = _Cached[dict[str, Product]](CATALOG_TTL_SECONDS, clock)
        self._prices: dict[str, _Cached[dict[str, Price]]] = {}
        self._entities = _Cached[dict[str, LegalEntity]](LEGAL_ENTITIES_TTL_SECONDS, clock)
        self._clock = clock

    async def order_for(self, opportunity_id: str, *, principal: Principal | None) -> Order:
        """The order of a won deal.

        Raises:
            NotFound: no such opportunity, or one of a legal entity `principal` may not
                see (the same answer, so its existence does not show).
            ValidationFailed: the deal cannot be booked; one field error per problem.
        """
        return await self.order_of(await self.deal(opportunity_id), principal=principal)

    async def order_of(
        self, deal: Deal, *, principal: Principal | None, renewal: bool = False
    ) -> Order:
        """The order of a deal already read (the poller's); raises as `order_for`.

        `renewal`: the deal is booked as the renewal of another (the renewal flow's order);
        otherwise a renewal is refused, since booking it as a new deal would bill it twice.
        """
        opportunity_id = deal.id
        if not may_see(principal, deal.legal_entity):
            raise NotFound(f"No opportunity {opportunity_id}")
        account, account_problems = await self._account(deal)
        if deal.renewal_of is not None and not renewal:
            account_problems.append(
                _problem(
                    "/renewal_of",
                    "the opportunity renews another deal: book it as a renewal "
                    f"(/process/v1/renewals/{opportunity_id}/book)",
                )
            )
        catalog = await self.catalog(deal)
        entities = await self._entities.get(self._read_entities)
        problems = account_problems + order_problems(deal, account, catalog, entities)
        treatment = None
        if self._tax is not None and account is not None and deal.legal_entity is not None:
            try:
                treatment = self._tax.treatment(legal_entity=deal.legal_entity, customer=account)
            except ValueError as exc:
                problems.append(_problem("/account/billing_address/country", str(exc)))
        if problems or account is None:
            raise ValidationFailed(
                f"Opportunity {opportunity_id} cannot be booked", errors=problems
            )
        return msgspec.structs.replace(_order(deal, account, catalog), tax=treatment)

    async def customer_for(self, crm_account_id: str, *, principal: Principal) -> Customer:
        """The CRM account a customer-master sync copies out.

        Raises:
            NotFound: no such account, or one of a legal entity `principal` may not see.
            ValidationFailed: the account has no legal entity the ERP knows.
        """
        try:
            account = await self._crm.get_account(crm_account_id)
        except UpstreamNotFound as exc:
            raise NotFound(f"No account {crm_account_id}") from exc
        except UpstreamError as exc:
            if exc.code != "unmappable_record":
                raise
            if principal.entities is not None:
                # An account without a legal entity is of none the caller may see.
                raise NotFound(f"No account {crm_account_id}") from exc
            raise ValidationFailed(
                f"Account {crm_account_id} cannot be synced",
                errors=[_problem("/legal_entity", f"the account has no legal entity: {exc}")],
            ) from exc
        if not may_see(principal, account.legal_entity):
            raise NotFound(f"No account {crm_account_id}")
        entities = await self._entities.get(self._read_entities)
        if account.legal_entity not in entities:
            raise ValidationFailed(
                f"Account {crm_account_id} cannot be synced",
                errors=[
                    _problem(
                        "/legal_entity",
                        f"{account.legal_entity} is not a legal entity of the ERP",
                    )
                ],
            )
        return account

    async def catalog(self, deal: Deal) -> Catalog:
        """The catalog for `deal`, read again when the cached one misses any of its lines."""
        codes = {line.product_code for line in deal.lines if line.product_code}
        prices_cache = self._prices.setdefault(
            deal.currency, _Cached[dict[str, Price]](CATALOG_TTL_SECONDS, self._clock)
        )

        async def read_prices() -> dict[str, Price]:
            return await self._read_prices(deal.currency)

        products = await self._products.get(self._read_products)
        prices = await prices_cache.get(read_prices)
        if not codes <= products.keys() or not codes <= prices.keys():
            products = await self._products.refresh(self._read_products)
            prices = await prices_cache.refresh(read_prices)
        return Catalog(products=products, prices=prices)

    async def deal(self, opportunity_id: str) -> Deal:
        """The deal as the CRM holds it; NotFound when there is none."""
        try:
            return await self._crm.get_deal(opportunity_id)
        except UpstreamNotFound as exc:
            raise NotFound(f"No opportunity {opportunity_id}") from exc

    async def _account(self, deal: Deal) -> tuple[Customer | None, list[FieldError]]:
        """The deal's account; an account the CRM cannot give as a customer (it has no
        legal entity) is a problem of the deal, not an error of the gateway."""
        try:
            return await self._crm.get_account(deal.customer_id), []
        except UpstreamNotFound:
            return None, [_problem("/customer_id", f"no account {deal.customer_id}")]
        except UpstreamError as exc:
            if exc.code != "unmappable_record":
                raise
            detail = f"the account has no legal entity or cannot be read: {exc.message}"
            return None, [_problem("/account/legal_entity", detail)]

    async def _read_products(self) -> dict[str, Product]:
        return {product.code: product for product in await self._crm.list_products()}

    async def _read_prices(self, currency: str) -> dict[str, Price]:
        prices = await self._crm.list_prices(currency=currency)
        return {
            price.product_code: price
            for price in prices
            if price.active and price.product_code and price.unit_amount is not None
        }

    async def _read_entities(self) -> dict[str, LegalEntity]:
        return {entity.code: entity for entity in await self._erp.list_legal_entities()}


class _Cached(Generic[T]):
    """One value read through `read`, reused for `ttl` seconds."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._value: T | None = None
        self._read_at = 0.0

    async def get(self, read: Callable[[], Awaitable[T]]) -> T:
        if self._value is None or self._clock() - self._read_at > self._ttl:
            return await self.refresh(read)
        return self._value

    async def refresh(self, read: Callable[[], Awaitable[T]]) -> T:
        value = await read()
        self._value, self._read_at = value, self._clock()
        return value


def _line_problems(deal: Deal, catalog: Catalog) -> list[FieldError]:
    if not deal.lines:
        return [_problem("/lines", "the opportunity has no product lines")]
    problems: list[FieldError] = []
    if len(deal.lines) > MAX_ITEMS:
        problems.append(_problem("/lines", f"the opportunity has more than {MAX_ITEMS} lines"))
    intervals: set[str] = set()
    for index, line in enumerate(deal.lines):
        pointer = f"/lines/{index}"
        code = line.product_code
        if line.quantity < 1:
            problems.append(_problem(f"{pointer}/quantity", "the quantity must be at least 1"))
        elif line.quantity > MAX_QUANTITY:
            problems.append(_problem(f"{pointer}/quantity", f"must be at most {MAX_QUANTITY}"))
        amounts = {"unit_amount": line.unit_amount, "total_amount": line.total_amount}
        for name, amount in amounts.items():
            if abs(amount) > MAX_AMOUNT:
                problems.append(_problem(f"{pointer}/{name}", f"must be at most {MAX_AMOUNT}"))
        if not code:
            problems.append(_problem(f"{pointer}/product_code", "the line has no product code"))
            continue
        product = catalog.products.get(code)
        if product is None:
            problems.append(
                _problem(f"{pointer}/product_code", f"no product {code} in the catalog")
            )
            continue
        if code not in catalog.prices:
            problems.append(
                _problem(
                    f"{pointer}/product_code",
                    f"product {code} has no active price in {deal.currency}",
                )
            )
        if product.billing_interval != "one_time":
            intervals.add(product.billing_interval)
    if len(intervals) > 1:
        problems.append(
            _problem(
                "/lines",
                "recurring lines bill by " + " and ".join(sorted(intervals))
                + "; one subscription bills one interval",
            )
        )
    return problems


def _currency_problems(deal: Deal, legal_entities: dict[str, LegalEntity]) -> list[FieldError]:
    problems: list[FieldError] = []
    if deal.currency not in STRIPE_CURRENCIES:
        problems.append(_problem("/currency", f"billing does not support {deal.currency}"))
    if deal.legal_entity is None:
        problems.append(_problem("/legal_entity", "neither the deal nor its account names one"))
        return problems
    entity = legal_entities.get(deal.legal_entity)
    if entity is None:
        problems.append(
            _problem("/legal_entity", f"{deal.legal_entity} is not a legal entity of the ERP")
        )
    elif entity.currency != deal.currency:
        problems.append(
            _problem(
                "/currency",
                f"{deal.currency} is not the currency of legal entity {entity.code} "
                f"({entity.currency})",
            )
        )
    return problems


def _order(deal: Deal, account: Customer, catalog: Catalog) -> Order:
    lines = []
    for line in deal.lines:
        code = line.product_code or ""
        product, price = catalog.products[code], catalog.prices[code]
        lines.append(
            OrderLine(
                product_code=code,
                product_name=product.name,
                billing_interval=product.billing_interval,
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                amount=line.total_amount,
                list_amount=price.unit_amount or 0,
                usage_metric=product.usage_metric,
            )
        )
    assert deal.legal_entity is not None and deal.close_date is not None
    if account.legal_entity != deal.legal_entity:
        # The deal books in its own legal entity; the customer is made in that one.
        account = msgspec.structs.replace(account, legal_entity=deal.legal_entity)
    return Order(
        opportunity_id=deal.id,
        name=deal.name,
        account=account,
        legal_entity=deal.legal_entity,
        currency=deal.currency,
        order_date=deal.close_date,
        payment_terms_days=account.payment_terms_days or DEFAULT_PAYMENT_TERMS_DAYS,
        lines=lines,
        amount=sum(line.committed_amount for line in lines),
        term_months=deal.contract_term_months or DEFAULT_TERM_MONTHS,
    )


def _problem(pointer: str, detail: str) -> FieldError:
    return FieldError(pointer=pointer, detail=detail)
