"""Salesforce wire Structs and the pure mapping between them and the canonical v1 contracts.

Identity: a CRM record's canonical `id` at this layer is its 18-character Salesforce id, and
`refs` carries it under `salesforce` (plus the ERP customer number an account holds in
`ERP_Customer_Id__c`, under `netsuite`). Money fields are JSON decimals in the record's
currency; they are decoded as `Decimal` and converted exactly (`contracts.money`), never
through a float. Wire Structs are lenient: unknown fields are ignored and every field is
optional, because a query returns only the fields it selected.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast, get_args

from contracts.money import Money, from_decimal, is_known_currency, to_decimal
from contracts.v1 import (
    Address,
    AddressInput,
    BillingInterval,
    Contact,
    ContactCreate,
    Contract,
    ContractLine,
    ContractStatus,
    Customer,
    CustomerCreate,
    CustomerPatch,
    CustomerStatus,
    Deal,
    DealLine,
    DealPatch,
    IntegrationStatus,
    PaymentStatus,
    Price,
    Product,
    RenewalRisk,
    RiskLevel,
)
from system_apis.crm.port import ContractCreate as ContractCreateInput
from system_apis.crm.port import RenewalCreate as RenewalCreateInput
from system_apis.crm.salesforce._wire import (
    ACCOUNT_FIELDS,
    CONTACT_FIELDS,
    CONTRACT_FIELDS,
    LINE_FIELDS,
    OPPORTUNITY_FIELDS,
    PRICE_FIELDS,
    PRODUCT_FIELDS,
    AccountRecord,
    Attributes,
    CollectionRequest,
    ContactRecord,
    ContractRecord,
    ErrorEntry,
    LineRecord,
    OAuthError,
    OpportunityRecord,
    PricebookEntryRecord,
    Product2Record,
    ProductRef,
    QueryPage,
    SaveResult,
    SObjectRecord,
    TokenResponse,
)

__all__ = [
    "ACCOUNT_FIELDS",
    "CONTACT_FIELDS",
    "CONTRACT_FIELDS",
    "LINE_FIELDS",
    "OPPORTUNITY_FIELDS",
    "PRICE_FIELDS",
    "PRODUCT_FIELDS",
    "RENEWAL_TYPE",
    "SYSTEM",
    "AccountRecord",
    "Attributes",
    "CollectionRequest",
    "ContactRecord",
    "ContractRecord",
    "ErrorEntry",
    "LineRecord",
    "MappingError",
    "OAuthError",
    "OpportunityRecord",
    "PricebookEntryRecord",
    "Product2Record",
    "QueryPage",
    "SObjectRecord",
    "SaveResult",
    "TokenResponse",
    "canonical_pointer",
    "from_contact_create",
    "from_contract_create",
    "from_customer",
    "from_customer_patch",
    "from_deal_patch",
    "from_renewal_create",
    "parse_datetime",
    "record_id",
    "renewal_risk_value",
    "to_contact",
    "to_contract",
    "to_customer",
    "to_deal",
    "to_deal_line",
    "to_money_decimal",
    "to_price",
    "to_product",
]

SYSTEM = "salesforce"
DEFAULT_CURRENCY = "USD"
"""A single-currency org has no `CurrencyIsoCode`: its records are in the corporate currency."""

class MappingError(ValueError):
    """A Salesforce record or a canonical value that the other side cannot represent."""


_PAYMENT_STATUSES: tuple[str, ...] = get_args(PaymentStatus)
_RISK_LEVELS: tuple[str, ...] = get_args(RiskLevel)
_INTEGRATION_STATUSES: tuple[str, ...] = get_args(IntegrationStatus)
_INTERVALS: tuple[str, ...] = get_args(BillingInterval)
_RENEWAL_RISKS: tuple[str, ...] = get_args(RenewalRisk)
_CUSTOMER_STATUSES: tuple[str, ...] = get_args(CustomerStatus)
_CONTRACT_STATUSES = {
    "Draft": "draft", "In Approval Process": "in_approval", "Activated": "activated",
    "Expired": "expired", "Terminated": "terminated",
}
RENEWAL_TYPE = "Renewal"
"""The opportunity `Type` of a renewal."""
RENEWAL_STAGE = "Prospecting"

_CUSTOMER_POINTERS = {
    "Name": "/legal_name", "Phone": "/phone", "Website": "/website",
    "CurrencyIsoCode": "/currency", "Legal_Entity__c": "/legal_entity", "Tax_Id__c": "/tax_id",
    "Payment_Terms_Days__c": "/payment_terms_days", "Payment_Status__c": "/payment_status",
    "Risk_Level__c": "/risk_level", "Billing_Email__c": "/email",
    "BillingCountry": "/billing_address/country", "BillingCity": "/billing_address/city",
    "BillingStreet": "/billing_address/line1", "BillingState": "/billing_address/region",
    "BillingPostalCode": "/billing_address/postal_code",
}
_DEAL_POINTERS = {
    "Name": "/name", "StageName": "/stage", "CloseDate": "/close_date",
    "Legal_Entity__c": "/legal_entity", "ERP_Order_Number__c": "/erp_order_number",
    "Billing_Subscription_Id__c": "/billing_subscription_id",
    "Integration_Status__c": "/integration_status",
    "Contract_Amount__c": "/contract_amount",
}
_CONTACT_POINTERS = {
    "AccountId": "/customer_id", "FirstName": "/first_name", "LastName": "/last_name",
    "Email": "/email", "Phone": "/phone", "Title": "/title",
}
_POINTERS = {"Account": _CUSTOMER_POINTERS, "Opportunity": _DEAL_POINTERS,
             "Contact": _CONTACT_POINTERS}


def canonical_pointer(sobject: str | None, field: str) -> str:
    """The canonical JSON Pointer of a Salesforce field named in an error (else `/Field`)."""
    return _POINTERS.get(sobject or "", {}).get(field, f"/{field}")


# -- accounts <-> customers ----------------------------------------------------------------


def record_id(record: SObjectRecord) -> str:
    """The record's id; a query that did not select Id still names it in `attributes.url`."""
    if record.id:
        return record.id
    url = record.attributes.url if record.attributes else None
    if url:
        return url.rstrip("/").rsplit("/", 1)[-1]
    raise MappingError("record without Id or attributes.url")


def to_customer(record: AccountRecord, *, default_legal_entity: str | None = None) -> Customer:
    """The customer an account stands for.

    Raises:
        MappingError: the account has no legal entity (and no default was given) or carries
            an unknown currency.
    """
    sf_id = record_id(record)
    legal_entity = record.legal_entity or default_legal_entity
    if not legal_entity:
        raise MappingError(f"Salesforce account {sf_id} has no Legal_Entity__c")
    refs = {SYSTEM: sf_id}
    if record.erp_customer_id:
        refs["netsuite"] = record.erp_customer_id
    billing = _address(
        record.billing_street, record.billing_city, record.billing_state,
        record.billing_postal_code, record.billing_country,
    )
    return Customer(
        id=sf_id,
        legal_name=record.name or "",
        legal_entity=legal_entity,
        currency=_currency(record.currency, sf_id),
        country=billing.country if billing else None,
        billing_address=billing,
        shipping_address=_address(
            record.shipping_street, record.shipping_city, record.shipping_state,
            record.shipping_postal_code, record.shipping_country,
        ),
        tax_id=record.tax_id,
        email=record.billing_email,
        phone=record.phone,
        website=record.website,
        payment_terms_days=_whole(record.payment_terms_days, "Payment_Terms_Days__c"),
        payment_status=cast(PaymentStatus | None, _token(record.payment_status,
                                                          _PAYMENT_STATUSES)),
        risk_level=cast(RiskLevel | None, _token(record.risk_level, _RISK_LEVELS)),
        updated_at=parse_datetime(record.system_modstamp or record.last_modified_date),
        status=cast(CustomerStatus | None, _token(record.customer_status, _CUSTOMER_STATUSES)),
        refs=refs,
    )


def from_customer(customer: Customer | CustomerCreate) -> dict[str, Any]:
    """The Account body that creates or upserts a customer (every field it carries)."""
    body: dict[str, Any] = {
        "Name": customer.legal_name,
        "CurrencyIsoCode": customer.currency,
        "Legal_Entity__c": customer.legal_entity,
        "Tax_Id__c": customer.tax_id,
        "Phone": customer.phone,
        "Website": customer.website,
        "Billing_Email__c": customer.email,
        "Payment_Terms_Days__c": customer.payment_terms_days,
    }
    body.update(_address_fields("Billing", customer.billing_address))
    body.update(_address_fields("Shipping", customer.shipping_address))
    if customer.country is not None and body["BillingCountry"] is None:
        body["BillingCountry"] = customer.country
    if isinstance(customer, Customer):
        body["Payment_Status__c"] = customer.payment_status
        body["Risk_Level__c"] = customer.risk_level
        if "netsuite" in customer.refs:
            body["ERP_Customer_Id__c"] = customer.refs["netsuite"]
    return body


def from_customer_patch(patch: CustomerPatch) -> dict[str, Any]:
    """The Account fields a partial update writes (absent fields stay; None clears)."""
    simple = {
        "legal_name": "Name", "phone": "Phone", "website": "Website", "email": "Billing_Email__c",
        "tax_id": "Tax_Id__c", "legal_entity": "Legal_Entity__c",
        "payment_terms_days": "Payment_Terms_Days__c", "payment_status": "Payment_Status__c",
        "risk_level": "Risk_Level__c", "country": "BillingCountry",
    }
    body: dict[str, Any] = {}
    for name in patch.fields_set():
        value = getattr(patch, name)
        if name in simple:
            body[simple[name]] = value
        elif name == "billing_address":
            body.update(_address_fields("Billing", value))
        elif name == "shipping_address":
            body.update(_address_fields("Shipping", value))
    return body


# -- contacts ------------------------------------------------------------------------------


def to_contact(record: ContactRecord) -> Contact:
    sf_id = record_id(record)
    return Contact(
        id=sf_id,
        customer_id=record.account_id,
        first_name=record.first_name,
        last_name=record.last_name or "",
        email=record.email,
        phone=record.phone,
        title=record.title,
        refs={SYSTEM: sf_id},
    )


def from_contact_create(contact: ContactCreate) -> dict[str, Any]:
    """The Contact body (`customer_id` is the Salesforce account id at this layer)."""
    return {
        "AccountId": contact.customer_id,
        "FirstName": contact.first_name,
        "LastName": contact.last_name,
        "Email": contact.email,
        "Phone": contact.phone,
        "Title": contact.title,
    }


# -- opportunities <-> deals ---------------------------------------------------------------


def to_deal(record: OpportunityRecord, lines: list[LineRecord]) -> Deal:
    """A deal from an opportunity and its line items (both in the opportunity's currency)."""
    sf_id = record_id(record)
    currency = _currency(record.currency, sf_id)
    legal_entity = record.legal_entity or (record.account.legal_entity if record.account else None)
    return Deal(
        id=sf_id,
        customer_id=record.account_id or "",
        name=record.name or "",
        stage=record.stage or "",
        won=bool(record.is_won),
        closed=bool(record.is_closed),
        close_date=record.close_date,
        currency=currency,
        amount=_minor(record.amount, currency, "Amount"),
        lines=[to_deal_line(line, currency) for line in lines],
        legal_entity=legal_entity,
        erp_order_number=record.erp_order_number,
        billing_subscription_id=record.billing_subscription_id,
        contract_amount=_minor(record.contract_amount, currency, "Contract_Amount__c"),
        integration_status=cast(
            IntegrationStatus | None, _token(record.integration_status, _INTEGRATION_STATUSES)
        ),
        updated_at=parse_datetime(record.system_modstamp or record.last_modified_date),
        deal_type=record.type,
        contract_term_months=_whole(record.contract_term_months, "Contract_Term_Months__c"),
        renewal_of=record.renewal_of,
        renewal_risk=cast(RenewalRisk | None, _token(record.renewal_risk, _RENEWAL_RISKS)),
        renewal_context=record.renewal_context,
        refs={SYSTEM: sf_id},
    )


def to_deal_line(record: LineRecord, currency: str) -> DealLine:
    sf_id = record_id(record)
    code = record.product_code or (record.product.product_code if record.product else None)
    return DealLine(
        id=sf_id,
        product_id=record.product_id,
        product_code=code,
        quantity=_whole(record.quantity, "Quantity") or 0,
        unit_amount=_minor(record.unit_price, currency, "UnitPrice") or 0,
        total_amount=_minor(record.total_price, currency, "TotalPrice") or 0,
        refs={SYSTEM: sf_id},
    )


def from_deal_patch(patch: DealPatch) -> dict[str, Any]:
    """The Opportunity fields a write-back changes (absent fields stay; None clears)."""
    names = {
        "name": "Name", "stage": "StageName", "close_date": "CloseDate",
        "legal_entity": "Legal_Entity__c", "erp_order_number": "ERP_Order_Number__c",
        "billing_subscription_id": "Billing_Subscription_Id__c",
        "integration_status": "Integration_Status__c",
        "contract_amount": "Contract_Amount__c",
    }
    body: dict[str, Any] = {}
    for name in patch.fields_set():
        value = getattr(patch, name)
        if isinstance(value, Money):
            # Salesforce currency fields are decimal amounts of the record's currency.
            value = str(to_decimal(value))
        body[names[name]] = value.isoformat() if isinstance(value, date) else value
    return body


# -- contracts and renewals ----------------------------------------------------------------


def to_contract(record: ContractRecord, lines: list[LineRecord]) -> Contract:
    """A contract, with the line items of the deal it was signed for as its lines."""
    sf_id = record_id(record)
    currency = _currency(record.currency, sf_id)
    if record.start_date is None:
        raise MappingError(f"Salesforce contract {sf_id} has no StartDate")
    status = _CONTRACT_STATUSES.get(record.status or "", "draft")
    return Contract(
        id=sf_id,
        number=record.contract_number,
        customer_id=record.account_id or "",
        deal_id=record.opportunity_id,
        status=cast(ContractStatus, status),
        start_date=record.start_date,
        end_date=record.end_date,
        term_months=record.contract_term or None,
        currency=currency,
        lines=[_contract_line(line, currency) for line in lines],
        legal_entity=record.account.legal_entity if record.account else None,
        refs={SYSTEM: sf_id},
    )


def _contract_line(record: LineRecord, currency: str) -> ContractLine:
    line = to_deal_line(record, currency)
    return ContractLine(
        id=line.id, product_id=line.product_id, product_code=line.product_code,
        quantity=line.quantity, unit_amount=line.unit_amount, refs=line.refs,
    )


def from_contract_create(contract: ContractCreateInput) -> dict[str, Any]:
    """The Contract body of a won deal: activated, from its start date for its term."""
    return {
        "AccountId": contract.customer_id,
        "Opportunity__c": contract.deal_id,
        "Status": "Activated",
        "StartDate": contract.start_date.isoformat(),
        "ContractTerm": contract.term_months,
        "CurrencyIsoCode": contract.currency,
    }


def from_renewal_create(renewal: RenewalCreateInput) -> dict[str, Any]:
    """The Opportunity body of a renewal (its lines are written separately)."""
    return {
        "AccountId": renewal.customer_id,
        "Name": renewal.name,
        "Type": RENEWAL_TYPE,
        "StageName": RENEWAL_STAGE,
        "CloseDate": renewal.close_date.isoformat(),
        "CurrencyIsoCode": renewal.currency,
        "Renewal_Of__c": renewal.renews_deal_id,
        "Contract_Term_Months__c": renewal.term_months,
        "Legal_Entity__c": renewal.legal_entity,
    }


def renewal_risk_value(risk: RenewalRisk) -> str:
    """The `Renewal_Risk__c` picklist value of a risk level ("high" -> "High")."""
    return risk.capitalize()


# -- catalog -------------------------------------------------------------------------------


def to_product(record: Product2Record) -> Product:
    sf_id = record_id(record)
    return Product(
        id=sf_id,
        code=record.product_code or sf_id,
        name=record.name or "",
        description=record.description,
        billing_interval=_interval(record.billing_interval, sf_id),
        active=record.is_active is not False,
        usage_metric=record.usage_metric or None,
        refs={SYSTEM: sf_id},
    )


def to_price(record: PricebookEntryRecord) -> Price:
    """A price book entry as a flat price (recurring unless the product is one-time)."""
    sf_id = record_id(record)
    currency = _currency(record.currency, sf_id)
    product = record.product or ProductRef()
    interval = _interval(product.billing_interval, sf_id)
    return Price(
        id=sf_id,
        product_id=record.product_id or "",
        currency=currency,
        unit_amount=_minor(record.unit_price, currency, "UnitPrice"),
        recurring_interval=None if interval == "one_time" else interval,
        product_code=product.product_code,
        active=record.is_active is not False,
        usage_type="metered" if product.usage_metric else "licensed",
        refs={SYSTEM: sf_id},
    )


# -- conversions---------------------------------------------------------------------------


def parse_datetime(text: str | None) -> datetime | None:
    """Salesforce datetimes (`2026-11-01T10:00:00.000+0000`) as aware UTC datetimes."""
    if not text:
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MappingError(f"not a Salesforce datetime: {text!r}") from exc
    if parsed.tzinfo is None:
        raise MappingError(f"datetime without a time zone: {text!r}")
    return parsed.astimezone(UTC)


def to_money_decimal(amount: int, currency: str) -> Decimal:
    """Minor units as the decimal Salesforce stores (1250 USD -> 12.50)."""
    return to_decimal(Money(amount=amount, currency=currency))


def _currency(value: str | None, sf_id: str) -> str:
    currency = (value or DEFAULT_CURRENCY).upper()
    if not is_known_currency(currency):
        raise MappingError(f"Salesforce record {sf_id} has unknown currency {value!r}")
    return currency


def _minor(value: Decimal | None, currency: str, field: str) -> int | None:
    if value is None:
        return None
    try:
        return from_decimal(value, currency).amount
    except (TypeError, ValueError) as exc:
        raise MappingError(f"{field} {value} is not an exact {currency} amount") from exc


def _whole(value: Decimal | None, field: str) -> int | None:
    if value is None:
        return None
    if value != value.to_integral_value():
        raise MappingError(f"{field} {value} is not a whole number")
    return int(value)


def _token(value: str | None, allowed: tuple[str, ...]) -> str | None:
    """A picklist value as a canonical token ("Past Due" -> "past_due"); unknown: None."""
    if value is None:
        return None
    token = value.strip().lower().replace(" ", "_").replace("-", "_")
    return token if token in allowed else None


def _interval(value: str | None, sf_id: str) -> BillingInterval:
    token = _token(value, _INTERVALS)
    if token is None:
        raise MappingError(f"Salesforce product {sf_id} has no known Billing_Interval__c")
    return cast(BillingInterval, token)


def _address(
    street: str | None, city: str | None, state: str | None, postal: str | None,
    country: str | None,
) -> Address | None:
    if not any((street, city, state, postal, country)):
        return None
    line1, _, line2 = (street or "").partition("\n")
    iso = country.strip() if country else None
    return Address(
        line1=line1 or None,
        line2=line2 or None,
        city=city,
        region=state,
        postal_code=postal,
        # Salesforce's country is free text unless state/country picklists are on: keep only
        # what is already an ISO 3166 alpha-2 code.
        country=iso if iso and len(iso) == 2 and iso.isalpha() and iso.isupper() else None,
    )


def _address_fields(prefix: str, address: Address | AddressInput | None) -> dict[str, Any]:
    if address is None:
        values: tuple[str | None, ...] = (None, None, None, None, None)
    else:
        street = "\n".join(part for part in (address.line1, address.line2) if part) or None
        values = (street, address.city, address.region, address.postal_code, address.country)
    names = ("Street", "City", "State", "PostalCode", "Country")
    return {f"{prefix}{name}": value for name, value in zip(names, values, strict=True)}
