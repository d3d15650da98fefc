"""Links from the console to a record in its vendor's own UI, where the vendor has a URL
for it: the Stripe dashboard, the Salesforce Lightning record page on the instance, the
NetSuite record page on the account, the Zendesk help desk.

External ids reach the console keyed by system (`{"stripe": "in_..."}`, a step's `refs`) or by
system and kind (`{"netsuite_sales_order": "42"}`, what steps report); the kind, or the id's
own prefix, says which page.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VendorLinks", "vendor_links"]

# Stripe object id prefixes -> dashboard path (https://docs.stripe.com/dashboard/basics).
_STRIPE_PATHS = {
    "cus": "customers",
    "sub": "subscriptions",
    "in": "invoices",
    "cn": "credit_notes",
    "prod": "products",
    "price": "prices",
    "ii": "invoiceitems",
    "pi": "payments",
    "ch": "payments",
    "evt": "events",
}
# Salesforce key prefixes (the first three characters of a record id) -> sObject type.
_SALESFORCE_TYPES = {
    "001": "Account",
    "003": "Contact",
    "006": "Opportunity",
    "800": "Contract",
    "01t": "Product2",
    "00k": "OpportunityLineItem",
    "005": "User",
}
# NetSuite record kinds -> the classic record page (`/app/...?id=`).
_NETSUITE_PAGES = {
    "customer": "common/entity/custjob.nl",
    "sales_order": "accounting/transactions/salesord.nl",
    "salesorder": "accounting/transactions/salesord.nl",
    "invoice": "accounting/transactions/custinvc.nl",
    "credit_memo": "accounting/transactions/custcred.nl",
    "creditmemo": "accounting/transactions/custcred.nl",
    "payment": "accounting/transactions/custpymt.nl",
    "customer_payment": "accounting/transactions/custpymt.nl",
    "journal": "accounting/transactions/journal.nl",
    "journal_entry": "accounting/transactions/journal.nl",
    "item": "common/item/item.nl",
}
_ZENDESK_PAGES = {
    "organization": "organizations",
    "org": "organizations",
    "ticket": "tickets",
    "case": "tickets",
    "user": "users",
}


@dataclass(frozen=True, kw_only=True)
class VendorLinks:
    """Where each vendor's UI is; a vendor without a base URL gets no links."""

    salesforce: str | None = None
    """The instance's Lightning URL, e.g. https://acme.lightning.force.com."""
    stripe: str | None = "https://dashboard.stripe.com/test"
    """The dashboard, with `/test` for test-mode data."""
    netsuite: str | None = None
    """The account's UI, e.g. https://1234567.app.netsuite.com."""
    zendesk: str | None = None
    """The help desk, e.g. https://acme.zendesk.com."""

    def url(self, key: str, external_id: str) -> str | None:
        """The vendor page of the record `external_id` reported under `key`, if there is one."""
        system, _, kind = key.partition("_")
        if system == "stripe" and self.stripe:
            return self._stripe(external_id)
        if system == "salesforce" and self.salesforce:
            sobject = _SALESFORCE_TYPES.get(external_id[:3])
            if sobject:
                return f"{self.salesforce.rstrip('/')}/lightning/r/{sobject}/{external_id}/view"
        if system == "netsuite" and self.netsuite:
            page = _NETSUITE_PAGES.get(kind)
            if page:
                return f"{self.netsuite.rstrip('/')}/app/{page}?id={external_id}"
        if system == "zendesk" and self.zendesk:
            path = _ZENDESK_PAGES.get(kind)
            if path:
                return f"{self.zendesk.rstrip('/')}/agent/{path}/{external_id}"
        return None

    def _stripe(self, external_id: str) -> str | None:
        prefix = external_id.split("_", 1)[0]
        path = _STRIPE_PATHS.get(prefix)
        if path is None or "_" not in external_id or self.stripe is None:
            return None
        return f"{self.stripe.rstrip('/')}/{path}/{external_id}"


def vendor_links(
    *,
    salesforce: str | None = None,
    stripe: str | None = None,
    netsuite: str | None = None,
    zendesk: str | None = None,
    netsuite_account: str | None = None,
    zendesk_subdomain: str | None = None,
    stripe_live: bool = False,
) -> VendorLinks:
    """Links to each vendor's own UI: the configured base URLs, else from the vendors' own
    settings (NetSuite account id, Zendesk subdomain; Stripe's test dashboard unless a live
    key is configured)."""
    account = (netsuite_account or "").strip().lower().replace("_", "-")
    subdomain = (zendesk_subdomain or "").strip()
    return VendorLinks(
        salesforce=salesforce or None,
        stripe=stripe
        or ("https://dashboard.stripe.com" if stripe_live else "https://dashboard.stripe.com/test"),
        netsuite=netsuite or (f"https://{account}.app.netsuite.com" if account else None),
        zendesk=zendesk or (f"https://{subdomain}.zendesk.com" if subdomain else None),
    )
