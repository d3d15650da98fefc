"""The sObject types the emulated org knows: their fields, field types and write rules.

Shaped after what `GET /sobjects/{Type}/describe` reports for a multi-currency org with the
gateway's custom fields installed (`Legal_Entity__c`, `ERP_Customer_Id__c`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["OBJECTS", "FieldKind", "FieldSpec", "ObjectSpec", "object_spec"]

FieldKind = Literal[
    "id", "reference", "string", "boolean", "double", "currency", "int", "date", "datetime"
]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: FieldKind = "string"
    createable: bool = True
    updateable: bool = True
    required: bool = False
    external_id: bool = False
    reference_to: str | None = None
    picklist: tuple[str, ...] | None = None
    """Values of a restricted picklist; anything else is refused."""
    label: str = ""

    @property
    def relationship(self) -> str | None:
        """The parent relationship name of a lookup field: `AccountId` -> `Account`, a custom
        `Renewal_Of__c` -> `Renewal_Of__r`."""
        if self.reference_to is None:
            return None
        if self.name.endswith("__c"):
            return self.name[:-3] + "__r"
        return self.name[:-2] if self.name.endswith("Id") else self.name

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    fields: tuple[FieldSpec, ...]
    _by_name: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)
    _by_relationship: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Field and relationship names are case-insensitive in SOQL and in record bodies.
        object.__setattr__(self, "_by_name", {f.name.lower(): f for f in self.fields})
        object.__setattr__(
            self,
            "_by_relationship",
            {f.relationship.lower(): f for f in self.fields if f.relationship},
        )

    def field(self, name: str) -> FieldSpec | None:
        return self._by_name.get(name.lower())

    def lookup(self, relationship: str) -> FieldSpec | None:
        return self._by_relationship.get(relationship.lower())


def _ro(name: str, kind: FieldKind = "string", *, reference_to: str | None = None) -> FieldSpec:
    return FieldSpec(
        name, kind, createable=False, updateable=False, reference_to=reference_to
    )


def _ref(name: str, target: str, *, required: bool = False, updateable: bool = True) -> FieldSpec:
    return FieldSpec(
        name, "reference", reference_to=target, required=required, updateable=updateable
    )


_SYSTEM = (
    _ro("Id", "id"),
    _ro("IsDeleted", "boolean"),
    _ro("CreatedDate", "datetime"),
    _ro("LastModifiedDate", "datetime"),
    _ro("SystemModstamp", "datetime"),
)

_CURRENCY = FieldSpec("CurrencyIsoCode", label="Currency ISO Code")

OBJECTS: dict[str, ObjectSpec] = {
    spec.name: spec
    for spec in (
        ObjectSpec("Account", (
            *_SYSTEM,
            FieldSpec("Name", required=True),
            FieldSpec("BillingStreet"),
            FieldSpec("BillingCity"),
            FieldSpec("BillingState"),
            FieldSpec("BillingPostalCode"),
            FieldSpec("BillingCountry"),
            FieldSpec("ShippingStreet"),
            FieldSpec("ShippingCity"),
            FieldSpec("ShippingState"),
            FieldSpec("ShippingPostalCode"),
            FieldSpec("ShippingCountry"),
            FieldSpec("Phone"),
            FieldSpec("Website"),
            _CURRENCY,
            FieldSpec("Legal_Entity__c"),
            FieldSpec("Tax_Id__c"),
            FieldSpec("Payment_Terms_Days__c", "double"),
            FieldSpec("Payment_Status__c"),
            FieldSpec("Risk_Level__c"),
            FieldSpec("Billing_Email__c"),
            FieldSpec("ERP_Customer_Id__c", external_id=True),
            FieldSpec("Canonical_Id__c", external_id=True),
            FieldSpec(
                "Customer_Status__c", picklist=("Active", "Churned"), label="Customer Status"
            ),
        )),
        ObjectSpec("Contact", (
            *_SYSTEM,
            _ref("AccountId", "Account"),
            FieldSpec("FirstName"),
            FieldSpec("LastName", required=True),
            FieldSpec("Email"),
            FieldSpec("Phone"),
            FieldSpec("Title"),
        )),
        ObjectSpec("Opportunity", (
            *_SYSTEM,
            _ref("AccountId", "Account"),
            FieldSpec("Name", required=True),
            FieldSpec("StageName", required=True),
            FieldSpec("CloseDate", "date", required=True),
            FieldSpec("Amount", "currency"),
            _CURRENCY,
            _ref("Pricebook2Id", "Pricebook2"),
            _ro("IsWon", "boolean"),
            _ro("IsClosed", "boolean"),
            FieldSpec("Legal_Entity__c"),
            FieldSpec("ERP_Order_Number__c"),
            FieldSpec("Billing_Subscription_Id__c"),
            FieldSpec("Integration_Status__c"),
            FieldSpec("Contract_Amount__c", "currency"),
            FieldSpec("Type"),
            FieldSpec("Contract_Term_Months__c", "double", label="Contract Term (Months)"),
            _ref("Renewal_Of__c", "Opportunity"),
            FieldSpec(
                "Renewal_Risk__c", picklist=("Low", "Medium", "High"), label="Renewal Risk"
            ),
            FieldSpec("Renewal_Context__c", label="Renewal Context"),
            FieldSpec("Renewal_Key__c", external_id=True, label="Renewal Key"),
        )),
        ObjectSpec("OpportunityLineItem", (
            *_SYSTEM,
            _ref("OpportunityId", "Opportunity", required=True, updateable=False),
            _ref("PricebookEntryId", "PricebookEntry", required=True, updateable=False),
            _ro("Product2Id", "reference", reference_to="Product2"),
            _ro("Name"),
            _ro("ProductCode"),
            FieldSpec("Quantity", "double", required=True),
            FieldSpec("UnitPrice", "currency"),
            _ro("TotalPrice", "currency"),
            _ro("CurrencyIsoCode"),
            FieldSpec("Description"),
            FieldSpec("Line_Key__c", external_id=True, label="Line Key"),
        )),
        ObjectSpec("Product2", (
            *_SYSTEM,
            FieldSpec("Name", required=True),
            FieldSpec("ProductCode"),
            FieldSpec("IsActive", "boolean"),
            FieldSpec(
                "Billing_Interval__c", picklist=("month", "year", "one_time"),
                label="Billing Interval",
            ),
            # Set on metered products: what the product's usage records count.
            FieldSpec("Usage_Metric__c", label="Usage Metric"),
            FieldSpec("Description"),
        )),
        ObjectSpec("Pricebook2", (
            *_SYSTEM,
            FieldSpec("Name", required=True),
            _ro("IsStandard", "boolean"),
            FieldSpec("IsActive", "boolean"),
        )),
        ObjectSpec("PricebookEntry", (
            *_SYSTEM,
            _ref("Pricebook2Id", "Pricebook2", required=True, updateable=False),
            _ref("Product2Id", "Product2", required=True, updateable=False),
            _ro("Name"),
            _ro("ProductCode"),
            FieldSpec("UnitPrice", "currency", required=True),
            FieldSpec("CurrencyIsoCode", updateable=False),
            FieldSpec("IsActive", "boolean"),
        )),
        ObjectSpec("Contract", (
            *_SYSTEM,
            _ref("AccountId", "Account", required=True),
            _ro("ContractNumber"),
            FieldSpec(
                "Status", picklist=("Draft", "In Approval Process", "Activated"),
                label="Status",
            ),
            FieldSpec("StartDate", "date"),
            FieldSpec("ContractTerm", "int"),
            _ro("EndDate", "date"),
            _CURRENCY,
            _ref("Opportunity__c", "Opportunity"),
            FieldSpec("Contract_Key__c", external_id=True, label="Contract Key"),
        )),
        # Classic notes; ParentId is polymorphic in Salesforce, the gateway notes accounts only.
        ObjectSpec("Note", (
            *_SYSTEM,
            _ref("ParentId", "Account", required=True, updateable=False),
            FieldSpec("Title", required=True),
            FieldSpec("Body"),
            FieldSpec("IsPrivate", "boolean"),
        )),
    )
}


def object_spec(name: str) -> ObjectSpec | None:
    """The spec of an sObject type, matched case-insensitively as Salesforce does."""
    lowered = name.lower()
    return next((spec for key, spec in OBJECTS.items() if key.lower() == lowered), None)
