"""The demo company as a NetSuite account: currencies and terms, a subsidiary per legal entity
and a service item per demo product, under fixed internal ids."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from sandbox import demo_data

if TYPE_CHECKING:
    from sandbox.netsuite.store import RecordStore

__all__ = ["CURRENCIES", "TERMS", "seed_demo", "seed_references"]

CURRENCIES = {"USD": ("1", "US Dollar", "$"), "EUR": ("4", "Euro", "€")}
TERMS = (("1", "Net 15", 15), ("2", "Net 30", 30), ("3", "Net 60", 60),
         ("4", "Due on receipt", 0), ("7", "Net 14", 14), ("8", "Net 45", 45))


def seed_references(store: RecordStore) -> None:
    """The currencies and terms every account has."""
    for code, (cid, name, sign) in CURRENCIES.items():
        store.put("currency", cid, {"name": name, "symbol": code, "displaySymbol": sign,
                                    "currencyPrecision": 2, "isBaseCurrency": code == "USD",
                                    "externalId": code})
    for tid, name, days in TERMS:
        store.put("term", tid, {"name": name, "daysUntilNetDue": days})


def seed_demo(store: RecordStore) -> None:
    """The demo company: its subsidiaries (legal entities) and its service items."""
    for entity in demo_data.LEGAL_ENTITIES:
        currency = CURRENCIES[entity.currency][0]
        store.put("subsidiary", entity.netsuite_subsidiary_id, {
            "name": entity.name, "legalName": entity.name, "country": entity.country,
            "currency": {"id": currency}, "externalId": entity.code, "isInactive": False,
            "_allowedCurrencies": [currency],
        })
    for tax in demo_data.TAX_CODES:
        store.put("salesTaxItem", tax.netsuite_id, {
            "itemId": tax.code, "externalId": tax.code, "description": tax.description,
            "rate": Decimal(tax.rate_bps).scaleb(-2), "isInactive": False,
        })
    for product in demo_data.PRODUCTS:
        prices = [
            {"currency": {"id": CURRENCIES[code][0]}, "priceLevel": {"id": "1"},
             "price": Decimal(amount).scaleb(-2)}
            for code, amount in product.unit_amounts.items()
        ]
        store.put("serviceSaleItem", product.netsuite_item_id, {
            "itemId": product.code, "externalId": product.code,
            "displayName": product.name, "salesDescription": product.name,
            "custitem_erpgw_billing_interval": product.billing_interval,
            "isInactive": False, "price": prices,
        })
