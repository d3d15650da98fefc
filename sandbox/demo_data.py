"""The deterministic demo company every emulator seeds from, so the four platforms agree.

Two legal entities (a US and a German subsidiary) in two currencies, a price book of recurring
and one-time products matched across platforms by product code, and customers with won and open
deals. Amounts are integer minor units; each emulator renders them in its own wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ACCOUNTS",
    "LEGAL_ENTITIES",
    "OPPORTUNITIES",
    "PRODUCTS",
    "TAX_CODES",
    "DemoAccount",
    "DemoContact",
    "DemoEntitlement",
    "DemoLegalEntity",
    "DemoLine",
    "DemoOpportunity",
    "DemoProduct",
    "DemoTaxCode",
]


@dataclass(frozen=True, kw_only=True)
class DemoLegalEntity:
    code: str
    """The code CRM accounts carry in `Legal_Entity__c`."""
    name: str
    country: str
    currency: str
    netsuite_subsidiary_id: str


@dataclass(frozen=True, kw_only=True)
class DemoProduct:
    code: str
    name: str
    billing_interval: str
    """`month`, `year` or `one_time`."""
    unit_amounts: dict[str, int]
    """Price per unit in minor units, by ISO 4217 currency."""
    netsuite_item_id: str
    usage_metric: str | None = None
    """Set for a metered product: what its usage records count (billed in arrears per unit)."""


@dataclass(frozen=True, kw_only=True)
class DemoTaxCode:
    code: str
    """The company's tax code (the ERP's tax code external id, billing's tax rate metadata)."""
    description: str
    rate_bps: int
    netsuite_id: str


@dataclass(frozen=True, kw_only=True)
class DemoContact:
    first_name: str
    last_name: str
    email: str
    title: str


@dataclass(frozen=True, kw_only=True)
class DemoEntitlement:
    plan: str
    sla_first_response_minutes: int
    credit_percent_per_breach: int
    credit_cap_percent: int


@dataclass(frozen=True, kw_only=True)
class DemoAccount:
    key: str
    """Stable demo key; emulators derive their deterministic ids from it."""
    name: str
    country: str
    currency: str
    legal_entity: str
    tax_id: str
    street: str
    city: str
    postal_code: str
    payment_terms_days: int
    domain: str
    contacts: tuple[DemoContact, ...] = ()
    entitlement: DemoEntitlement | None = None


@dataclass(frozen=True, kw_only=True)
class DemoLine:
    product_code: str
    quantity: int


@dataclass(frozen=True, kw_only=True)
class DemoOpportunity:
    key: str
    account_key: str
    name: str
    stage: str
    close_date: str
    lines: tuple[DemoLine, ...] = field(default_factory=tuple)

    @property
    def won(self) -> bool:
        return self.stage == "Closed Won"


LEGAL_ENTITIES: tuple[DemoLegalEntity, ...] = (
    DemoLegalEntity(
        code="US01", name="Northwind Cloud Inc.", country="US", currency="USD",
        netsuite_subsidiary_id="1",
    ),
    DemoLegalEntity(
        code="DE01", name="Northwind Cloud GmbH", country="DE", currency="EUR",
        netsuite_subsidiary_id="2",
    ),
)

PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct(
        code="PLAT-STD", name="Platform Standard", billing_interval="month",
        unit_amounts={"USD": 50_000, "EUR": 46_000}, netsuite_item_id="101",
    ),
    DemoProduct(
        code="PLAT-ENT", name="Platform Enterprise", billing_interval="year",
        unit_amounts={"USD": 1_200_000, "EUR": 1_100_000}, netsuite_item_id="102",
    ),
    DemoProduct(
        code="SEAT", name="User Seat", billing_interval="month",
        unit_amounts={"USD": 2_500, "EUR": 2_300}, netsuite_item_id="103",
    ),
    DemoProduct(
        code="ONBOARD", name="Onboarding Service", billing_interval="one_time",
        unit_amounts={"USD": 250_000, "EUR": 230_000}, netsuite_item_id="104",
    ),
    DemoProduct(
        code="API-CALLS", name="API Calls", billing_interval="month",
        unit_amounts={"USD": 2, "EUR": 2}, netsuite_item_id="105", usage_metric="api_calls",
    ),
)

TAX_CODES: tuple[DemoTaxCode, ...] = tuple(
    DemoTaxCode(code=code, description=description, rate_bps=rate, netsuite_id=str(201 + index))
    for index, (code, description, rate) in enumerate((
        ("DE-VAT-19", "German VAT 19%", 1900),
        ("EU-RC", "EU reverse charge", 0),
        ("DE-EXPORT", "Services outside the EU", 0),
        ("US-CA", "Sales tax California", 725),
        ("US-NY", "Sales tax New York", 400),
        ("US-TX", "Sales tax Texas", 625),
        ("US-WA", "Sales tax Washington", 650),
        ("US-DE-EXEMPT", "No sales tax Delaware", 0),
        ("US-MT-EXEMPT", "No sales tax Montana", 0),
        ("US-NH-EXEMPT", "No sales tax New Hampshire", 0),
        ("US-OR-EXEMPT", "No sales tax Oregon", 0),
        ("US-AK-EXEMPT", "No sales tax Alaska", 0),
        ("US-NT", "Not taxable in the state", 0),
        ("US-EXPORT", "Services outside the US", 0),
    ))
)
"""The tax codes of the demo company's tax table (`system_apis.tax.rules.DEFAULT_RULES`),
as its ERP knows them."""

_GOLD = DemoEntitlement(
    plan="enterprise", sla_first_response_minutes=60, credit_percent_per_breach=5,
    credit_cap_percent=20,
)
_SILVER = DemoEntitlement(
    plan="business", sla_first_response_minutes=240, credit_percent_per_breach=2,
    credit_cap_percent=10,
)

ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount(
        key="acme", name="Acme Robotics Inc.", country="US", currency="USD",
        legal_entity="US01", tax_id="US-94-1234567", street="100 Market St",
        city="San Francisco", postal_code="94105", payment_terms_days=30, domain="acme.test",
        contacts=(
            DemoContact(first_name="Ada", last_name="Reyes", email="ada@acme.test", title="CFO"),
            DemoContact(first_name="Ben", last_name="Ito", email="ben@acme.test", title="CTO"),
        ),
        entitlement=_GOLD,
    ),
    DemoAccount(
        key="globex", name="Globex Logistik GmbH", country="DE", currency="EUR",
        legal_entity="DE01", tax_id="DE123456789", street="Friedrichstr. 10", city="Berlin",
        postal_code="10117", payment_terms_days=14, domain="globex.test",
        contacts=(
            DemoContact(
                first_name="Greta", last_name="Brandt", email="greta@globex.test",
                title="Head of Finance",
            ),
        ),
        entitlement=_SILVER,
    ),
    DemoAccount(
        key="initech", name="Initech LLC", country="US", currency="USD", legal_entity="US01",
        tax_id="US-12-7654321", street="4120 Freidrich Ln", city="Austin",
        postal_code="78744", payment_terms_days=45, domain="initech.test",
        contacts=(
            DemoContact(
                first_name="Bill", last_name="Lumbergh", email="bill@initech.test", title="VP",
            ),
        ),
        entitlement=_SILVER,
    ),
    DemoAccount(
        key="umbrella", name="Umbrella Pharma B.V.", country="NL", currency="EUR",
        legal_entity="DE01", tax_id="NL001234567B01", street="Herengracht 1",
        city="Amsterdam", postal_code="1015 BA", payment_terms_days=30, domain="umbrella.test",
        contacts=(
            DemoContact(
                first_name="Alice", last_name="Marcus", email="alice@umbrella.test",
                title="Procurement",
            ),
        ),
        entitlement=_GOLD,
    ),
)

OPPORTUNITIES: tuple[DemoOpportunity, ...] = (
    DemoOpportunity(
        key="acme-platform", account_key="acme", name="Acme - Platform rollout",
        stage="Closed Won", close_date="2026-11-02",
        lines=(
            DemoLine(product_code="PLAT-STD", quantity=1),
            DemoLine(product_code="SEAT", quantity=20),
            DemoLine(product_code="ONBOARD", quantity=1),
        ),
    ),
    DemoOpportunity(
        key="acme-expansion", account_key="acme", name="Acme - Seat expansion",
        stage="Negotiation/Review", close_date="2026-12-15",
        lines=(DemoLine(product_code="SEAT", quantity=30),),
    ),
    DemoOpportunity(
        key="globex-enterprise", account_key="globex", name="Globex - Enterprise annual",
        stage="Closed Won", close_date="2026-10-20",
        lines=(
            DemoLine(product_code="PLAT-ENT", quantity=1),
            DemoLine(product_code="ONBOARD", quantity=1),
        ),
    ),
    DemoOpportunity(
        key="initech-pilot", account_key="initech", name="Initech - Pilot",
        stage="Proposal/Price Quote", close_date="2027-01-10",
        lines=(DemoLine(product_code="PLAT-STD", quantity=1),),
    ),
    DemoOpportunity(
        key="umbrella-platform", account_key="umbrella", name="Umbrella - Platform",
        stage="Closed Won", close_date="2026-11-12",
        lines=(
            DemoLine(product_code="PLAT-STD", quantity=1),
            DemoLine(product_code="SEAT", quantity=10),
        ),
    ),
)
