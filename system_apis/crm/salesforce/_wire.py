"""Salesforce's wire format as lenient msgspec Structs, and the fields the client selects.

Every field is optional (a query returns only the fields it selected) and unknown fields are
ignored. Money and quantities decode straight into `Decimal`, never through a float.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Generic, TypeVar

import msgspec

__all__ = [
    "ACCOUNT_FIELDS",
    "CONTACT_FIELDS",
    "CONTRACT_FIELDS",
    "LINE_FIELDS",
    "OPPORTUNITY_FIELDS",
    "PRICE_FIELDS",
    "PRODUCT_FIELDS",
    "AccountRecord",
    "AccountRef",
    "Attributes",
    "CollectionRequest",
    "ContactRecord",
    "ContractRecord",
    "ErrorEntry",
    "LineRecord",
    "OAuthError",
    "OpportunityRecord",
    "PricebookEntryRecord",
    "Product2Record",
    "ProductRef",
    "QueryPage",
    "SObjectRecord",
    "SaveResult",
    "TokenResponse",
]

R = TypeVar("R")


# -- wire Structs --------------------------------------------------------------------------


class Attributes(msgspec.Struct, kw_only=True):
    type: str | None = None
    url: str | None = None


class SObjectRecord(msgspec.Struct, kw_only=True):
    """Any record: its attributes and id (the base of every record Struct)."""

    attributes: Attributes | None = None
    id: str | None = msgspec.field(default=None, name="Id")
    system_modstamp: str | None = msgspec.field(default=None, name="SystemModstamp")
    last_modified_date: str | None = msgspec.field(default=None, name="LastModifiedDate")


class AccountRef(msgspec.Struct, kw_only=True):
    """The parent account fields selected through a relationship (`Account.Name`)."""

    name: str | None = msgspec.field(default=None, name="Name")
    legal_entity: str | None = msgspec.field(default=None, name="Legal_Entity__c")


class ProductRef(msgspec.Struct, kw_only=True):
    product_code: str | None = msgspec.field(default=None, name="ProductCode")
    billing_interval: str | None = msgspec.field(default=None, name="Billing_Interval__c")
    usage_metric: str | None = msgspec.field(default=None, name="Usage_Metric__c")


class AccountRecord(SObjectRecord, kw_only=True):
    name: str | None = msgspec.field(default=None, name="Name")
    billing_street: str | None = msgspec.field(default=None, name="BillingStreet")
    billing_city: str | None = msgspec.field(default=None, name="BillingCity")
    billing_state: str | None = msgspec.field(default=None, name="BillingState")
    billing_postal_code: str | None = msgspec.field(default=None, name="BillingPostalCode")
    billing_country: str | None = msgspec.field(default=None, name="BillingCountry")
    shipping_street: str | None = msgspec.field(default=None, name="ShippingStreet")
    shipping_city: str | None = msgspec.field(default=None, name="ShippingCity")
    shipping_state: str | None = msgspec.field(default=None, name="ShippingState")
    shipping_postal_code: str | None = msgspec.field(default=None, name="ShippingPostalCode")
    shipping_country: str | None = msgspec.field(default=None, name="ShippingCountry")
    phone: str | None = msgspec.field(default=None, name="Phone")
    website: str | None = msgspec.field(default=None, name="Website")
    currency: str | None = msgspec.field(default=None, name="CurrencyIsoCode")
    legal_entity: str | None = msgspec.field(default=None, name="Legal_Entity__c")
    tax_id: str | None = msgspec.field(default=None, name="Tax_Id__c")
    payment_terms_days: Decimal | None = msgspec.field(default=None, name="Payment_Terms_Days__c")
    payment_status: str | None = msgspec.field(default=None, name="Payment_Status__c")
    risk_level: str | None = msgspec.field(default=None, name="Risk_Level__c")
    billing_email: str | None = msgspec.field(default=None, name="Billing_Email__c")
    erp_customer_id: str | None = msgspec.field(default=None, name="ERP_Customer_Id__c")
    canonical_id: str | None = msgspec.field(default=None, name="Canonical_Id__c")
    customer_status: str | None = msgspec.field(default=None, name="Customer_Status__c")


class ContactRecord(SObjectRecord, kw_only=True):
    account_id: str | None = msgspec.field(default=None, name="AccountId")
    first_name: str | None = msgspec.field(default=None, name="FirstName")
    last_name: str | None = msgspec.field(default=None, name="LastName")
    email: str | None = msgspec.field(default=None, name="Email")
    phone: str | None = msgspec.field(default=None, name="Phone")
    title: str | None = msgspec.field(default=None, name="Title")


class OpportunityRecord(SObjectRecord, kw_only=True):
    account_id: str | None = msgspec.field(default=None, name="AccountId")
    account: AccountRef | None = msgspec.field(default=None, name="Account")
    name: str | None = msgspec.field(default=None, name="Name")
    stage: str | None = msgspec.field(default=None, name="StageName")
    close_date: date | None = msgspec.field(default=None, name="CloseDate")
    amount: Decimal | None = msgspec.field(default=None, name="Amount")
    currency: str | None = msgspec.field(default=None, name="CurrencyIsoCode")
    is_won: bool | None = msgspec.field(default=None, name="IsWon")
    is_closed: bool | None = msgspec.field(default=None, name="IsClosed")
    legal_entity: str | None = msgspec.field(default=None, name="Legal_Entity__c")
    erp_order_number: str | None = msgspec.field(default=None, name="ERP_Order_Number__c")
    billing_subscription_id: str | None = msgspec.field(
        default=None, name="Billing_Subscription_Id__c"
    )
    integration_status: str | None = msgspec.field(default=None, name="Integration_Status__c")
    contract_amount: Decimal | None = msgspec.field(default=None, name="Contract_Amount__c")
    type: str | None = msgspec.field(default=None, name="Type")
    contract_term_months: Decimal | None = msgspec.field(
        default=None, name="Contract_Term_Months__c"
    )
    renewal_of: str | None = msgspec.field(default=None, name="Renewal_Of__c")
    renewal_risk: str | None = msgspec.field(default=None, name="Renewal_Risk__c")
    renewal_context: str | None = msgspec.field(default=None, name="Renewal_Context__c")


class ContractRecord(SObjectRecord, kw_only=True):
    account_id: str | None = msgspec.field(default=None, name="AccountId")
    account: AccountRef | None = msgspec.field(default=None, name="Account")
    contract_number: str | None = msgspec.field(default=None, name="ContractNumber")
    status: str | None = msgspec.field(default=None, name="Status")
    start_date: date | None = msgspec.field(default=None, name="StartDate")
    end_date: date | None = msgspec.field(default=None, name="EndDate")
    contract_term: int | None = msgspec.field(default=None, name="ContractTerm")
    currency: str | None = msgspec.field(default=None, name="CurrencyIsoCode")
    opportunity_id: str | None = msgspec.field(default=None, name="Opportunity__c")


class LineRecord(SObjectRecord, kw_only=True):
    opportunity_id: str | None = msgspec.field(default=None, name="OpportunityId")
    product_id: str | None = msgspec.field(default=None, name="Product2Id")
    product_code: str | None = msgspec.field(default=None, name="ProductCode")
    product: ProductRef | None = msgspec.field(default=None, name="Product2")
    quantity: Decimal | None = msgspec.field(default=None, name="Quantity")
    unit_price: Decimal | None = msgspec.field(default=None, name="UnitPrice")
    total_price: Decimal | None = msgspec.field(default=None, name="TotalPrice")
    currency: str | None = msgspec.field(default=None, name="CurrencyIsoCode")


class Product2Record(SObjectRecord, kw_only=True):
    name: str | None = msgspec.field(default=None, name="Name")
    product_code: str | None = msgspec.field(default=None, name="ProductCode")
    description: str | None = msgspec.field(default=None, name="Description")
    is_active: bool | None = msgspec.field(default=None, name="IsActive")
    billing_interval: str | None = msgspec.field(default=None, name="Billing_Interval__c")
    usage_metric: str | None = msgspec.field(default=None, name="Usage_Metric__c")


class PricebookEntryRecord(SObjectRecord, kw_only=True):
    product_id: str | None = msgspec.field(default=None, name="Product2Id")
    product: ProductRef | None = msgspec.field(default=None, name="Product2")
    unit_price: Decimal | None = msgspec.field(default=None, name="UnitPrice")
    currency: str | None = msgspec.field(default=None, name="CurrencyIsoCode")
    is_active: bool | None = msgspec.field(default=None, name="IsActive")


class QueryPage(msgspec.Struct, Generic[R], kw_only=True):
    """One batch of a SOQL query; follow `next_records_url` while `done` is false."""

    total_size: int = msgspec.field(default=0, name="totalSize")
    done: bool = True
    next_records_url: str | None = msgspec.field(default=None, name="nextRecordsUrl")
    records: list[R] = []


class ErrorEntry(msgspec.Struct, kw_only=True):
    """One error: `errorCode` in REST error arrays, `statusCode` in save results."""

    message: str = ""
    error_code: str | None = msgspec.field(default=None, name="errorCode")
    status_code: str | None = msgspec.field(default=None, name="statusCode")
    fields: list[str] = []

    @property
    def code(self) -> str:
        return self.error_code or self.status_code or "UNKNOWN_EXCEPTION"


class SaveResult(msgspec.Struct, kw_only=True):
    """A create, upsert or collection result (`created` only on upsert)."""

    id: str | None = None
    success: bool = False
    errors: list[ErrorEntry] = []
    created: bool | None = None


class CollectionRequest(msgspec.Struct, kw_only=True):
    """The body of `composite/sobjects` (records carry `attributes.type`)."""

    records: list[dict[str, Any]]
    all_or_none: bool = msgspec.field(default=False, name="allOrNone")


class TokenResponse(msgspec.Struct, kw_only=True):
    access_token: str
    instance_url: str
    id: str | None = None
    token_type: str = "Bearer"
    scope: str | None = None
    issued_at: str | None = None
    signature: str | None = None


class OAuthError(msgspec.Struct, kw_only=True):
    error: str
    error_description: str | None = None


# -- SOQL field lists: what the client selects for each contract ---------------------------

ACCOUNT_FIELDS = (
    "Id", "Name", "BillingStreet", "BillingCity", "BillingState", "BillingPostalCode",
    "BillingCountry", "ShippingStreet", "ShippingCity", "ShippingState", "ShippingPostalCode",
    "ShippingCountry", "Phone", "Website", "CurrencyIsoCode", "Legal_Entity__c", "Tax_Id__c",
    "Payment_Terms_Days__c", "Payment_Status__c", "Risk_Level__c", "Billing_Email__c",
    "ERP_Customer_Id__c", "Canonical_Id__c", "Customer_Status__c", "SystemModstamp",
)
CONTACT_FIELDS = ("Id", "AccountId", "FirstName", "LastName", "Email", "Phone", "Title")
OPPORTUNITY_FIELDS = (
    "Id", "AccountId", "Account.Legal_Entity__c", "Name", "StageName", "CloseDate", "Amount",
    "CurrencyIsoCode", "IsWon", "IsClosed", "Legal_Entity__c", "ERP_Order_Number__c",
    "Billing_Subscription_Id__c", "Integration_Status__c", "Contract_Amount__c", "Type",
    "Contract_Term_Months__c", "Renewal_Of__c", "Renewal_Risk__c", "Renewal_Context__c",
    "SystemModstamp",
)
CONTRACT_FIELDS = (
    "Id", "AccountId", "Account.Legal_Entity__c", "ContractNumber", "Status", "StartDate",
    "EndDate", "ContractTerm", "CurrencyIsoCode", "Opportunity__c", "SystemModstamp",
)
LINE_FIELDS = (
    "Id", "OpportunityId", "Product2Id", "ProductCode", "Product2.ProductCode",
    "Product2.Billing_Interval__c", "Quantity", "UnitPrice", "TotalPrice", "CurrencyIsoCode",
)
PRODUCT_FIELDS = (
    "Id", "Name", "ProductCode", "Description", "IsActive", "Billing_Interval__c",
    "Usage_Metric__c",
)
PRICE_FIELDS = (
    "Id", "Product2Id", "Product2.ProductCode", "Product2.Billing_Interval__c",
    "Product2.Usage_Metric__c", "UnitPrice", "CurrencyIsoCode", "IsActive",
)
