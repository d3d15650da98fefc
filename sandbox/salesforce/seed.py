"""The demo company loaded into the emulated org, with ids derived from the demo keys."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from contracts.money import Money, to_decimal
from sandbox.demo_data import ACCOUNTS, OPPORTUNITIES, PRODUCTS, DemoAccount
from sandbox.salesforce.ids import seeded_id
from sandbox.salesforce.store import EmulatedOrg

__all__ = ["SEED_EPOCH", "STANDARD_PRICEBOOK_KEY", "seed_org"]

SEED_EPOCH = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
"""Seeded records are created a minute apart from here, so every reset stamps them alike."""
STANDARD_PRICEBOOK_KEY = "standard"

_Stamp = Callable[[], datetime]


def seed_org(org: EmulatedOrg) -> None:
    """Load price book, products, accounts, contacts, opportunities and their lines."""
    minutes = itertools.count()

    def stamp() -> datetime:
        return SEED_EPOCH + timedelta(minutes=next(minutes))

    pricebook_id = org.insert(
        "Pricebook2",
        {"Name": "Standard Price Book", "IsActive": True},
        record_id=seeded_id("Pricebook2", STANDARD_PRICEBOOK_KEY),
        stamp=stamp(),
    )
    # IsStandard is read-only through the API: the org is born with its standard price book.
    org.records["Pricebook2"][pricebook_id]["IsStandard"] = True
    entries: dict[tuple[str, str], str] = {}
    for product in PRODUCTS:
        product_id = org.insert(
            "Product2",
            {
                "Name": product.name,
                "ProductCode": product.code,
                "IsActive": True,
                "Billing_Interval__c": product.billing_interval,
                "Description": f"{product.name}, billed {product.billing_interval}",
                **({"Usage_Metric__c": product.usage_metric} if product.usage_metric else {}),
            },
            record_id=seeded_id("Product2", product.code),
            stamp=stamp(),
        )
        for currency, minor in product.unit_amounts.items():
            key = f"{product.code}:{currency}"
            entries[product.code, currency] = org.insert(
                "PricebookEntry",
                {
                    "Pricebook2Id": pricebook_id,
                    "Product2Id": product_id,
                    "UnitPrice": to_decimal(Money(amount=minor, currency=currency)),
                    "CurrencyIsoCode": currency,
                    "IsActive": True,
                },
                record_id=seeded_id("PricebookEntry", key),
                stamp=stamp(),
            )
    accounts = {account.key: _seed_account(org, account, stamp) for account in ACCOUNTS}
    for opportunity in OPPORTUNITIES:
        account = next(a for a in ACCOUNTS if a.key == opportunity.account_key)
        # Won deals were last touched when they closed; open ones when they were seeded.
        when = (
            datetime.combine(date.fromisoformat(opportunity.close_date), time(12), tzinfo=UTC)
            if opportunity.won
            else stamp()
        )
        opportunity_id = org.insert(
            "Opportunity",
            {
                "AccountId": accounts[account.key],
                "Name": opportunity.name,
                "StageName": opportunity.stage,
                "CloseDate": opportunity.close_date,
                "CurrencyIsoCode": account.currency,
                "Pricebook2Id": pricebook_id,
            },
            record_id=seeded_id("Opportunity", opportunity.key),
            stamp=when,
        )
        for number, line in enumerate(opportunity.lines, start=1):
            org.insert(
                "OpportunityLineItem",
                {
                    "OpportunityId": opportunity_id,
                    "PricebookEntryId": entries[line.product_code, account.currency],
                    "Quantity": Decimal(line.quantity),
                },
                record_id=seeded_id("OpportunityLineItem", f"{opportunity.key}:{number}"),
                stamp=when,
            )


def _seed_account(org: EmulatedOrg, account: DemoAccount, stamp: _Stamp) -> str:
    account_id = org.insert(
        "Account",
        {
            "Name": account.name,
            "BillingStreet": account.street,
            "BillingCity": account.city,
            "BillingPostalCode": account.postal_code,
            "BillingCountry": account.country,
            "Website": f"https://www.{account.domain}",
            "CurrencyIsoCode": account.currency,
            "Legal_Entity__c": account.legal_entity,
            "Tax_Id__c": account.tax_id,
            "Payment_Terms_Days__c": Decimal(account.payment_terms_days),
        },
        record_id=seeded_id("Account", account.key),
        stamp=stamp(),
    )
    for contact in account.contacts:
        org.insert(
            "Contact",
            {
                "AccountId": account_id,
                "FirstName": contact.first_name,
                "LastName": contact.last_name,
                "Email": contact.email,
                "Title": contact.title,
            },
            record_id=seeded_id("Contact", contact.email),
            stamp=stamp(),
        )
    return account_id
