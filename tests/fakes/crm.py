"""`FakeCrm`: an in-memory `CrmPort` with Salesforce's ids, upserts, roll-ups and errors.

Ids are 18-character Salesforce ids with the right key prefix (001 account, 003 contact, 006
opportunity, ...); a 15-character id names the same record. An id that is not 15 or 18 letters
and digits, or names no record, is `UpstreamNotFound`, as `SalesforceClient` raises it. An
account upsert is keyed by its external id (`Canonical_Id__c`) and writes every field the
customer carries (a missing one is cleared); a note is keyed by its title on the account. A
deal's line total is quantity x unit price and the deal amount the sum of its lines; writing a
deal moves its `updated_at` (SystemModstamp), so it shows in `list_won_deals` again.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
from msgspec import UNSET

from contracts.errors import FieldError, InvalidRequest, UpstreamInvalid, UpstreamNotFound
from contracts.money import Money
from contracts.v1 import (
    Address,
    AddressInput,
    Contact,
    ContactCreate,
    Contract,
    ContractLine,
    Customer,
    CustomerCreate,
    CustomerPatch,
    Deal,
    DealLine,
    DealPatch,
    Page,
    Price,
    Product,
    RenewalRisk,
)
from system_apis.crm.port import AccountNote, ContractCreate, RenewalCreate
from tests.fakes._base import FakePort, operation

__all__ = ["FakeCrm", "sf_checksum"]

VENDOR = "salesforce"
MAX_COLLECTION = 200
_PREFIXES = {"Account": "001", "Note": "002", "Contact": "003", "Opportunity": "006",
             "OpportunityLineItem": "00k", "Product2": "01t", "PricebookEntry": "01u",
             "Contract": "800"}
_ID = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")
_CLOSED_STAGES = {"Closed Won": True, "Closed Lost": False}


def sf_checksum(id15: str) -> str:
    """The 3-character case-safety suffix Salesforce appends to a 15-character id."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << pos for pos, char in enumerate(id15[start:start + 5]) if "A" <= char <= "Z")
        suffix += alphabet[bits]
    return suffix


class FakeCrm(FakePort):
    """Salesforce in memory.

    Readable by tests: accounts (Customer by id), contacts, deals, notes (AccountNote by id),
    note_parents (note id -> account id), products, prices; calls and writes (see `FakePort`).
    Seed with `seed_account`, `seed_product` and `seed_deal` (not recorded as writes).
    """

    vendor = VENDOR

    def __init__(
        self,
        *,
        default_legal_entity: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self._default_legal_entity = default_legal_entity
        self.accounts: dict[str, Customer] = {}
        self.account_external_ids: dict[str, str] = {}
        """Canonical_Id__c -> account id."""
        self.contacts: dict[str, Contact] = {}
        self.notes: dict[str, AccountNote] = {}
        self.note_parents: dict[str, str] = {}
        self.deals: dict[str, Deal] = {}
        self.products: dict[str, Product] = {}
        self.prices: dict[str, Price] = {}
        self.contracts: dict[str, Contract] = {}
        self.contract_keys: dict[str, str] = {}
        """Contract_Key__c -> contract id."""
        self.renewal_keys: dict[str, str] = {}
        """Renewal_Key__c -> opportunity id."""

    # ------------------------------------------------------------------ seeding (not recorded)

    def seed_account(
        self,
        legal_name: str,
        *,
        legal_entity: str,
        currency: str,
        external_id: str | None = None,
        updated_at: datetime | None = None,
        **fields: Any,
    ) -> Customer:
        """An account the org already holds; `fields` are other `Customer` fields."""
        rid = self._new_id("Account")
        account = Customer(id=rid, legal_name=legal_name, legal_entity=legal_entity,
                           currency=currency, updated_at=updated_at or self.now(),
                           refs={VENDOR: rid, **fields.pop("refs", {})}, **fields)
        self.accounts[rid] = account
        if external_id is not None:
            self.account_external_ids[external_id] = rid
        return account

    def seed_product(
        self,
        code: str,
        *,
        name: str | None = None,
        billing_interval: str = "month",
        prices: Mapping[str, int] | None = None,
        active: bool = True,
    ) -> Product:
        """A product with a standard price book entry per currency."""
        rid = self._new_id("Product2")
        product = Product(id=rid, code=code, name=name or code,
                          billing_interval=billing_interval,  # type: ignore[arg-type]
                          active=active, refs={VENDOR: rid})
        self.products[rid] = product
        for currency, amount in sorted((prices or {}).items()):
            pid = self._new_id("PricebookEntry")
            self.prices[pid] = Price(
                id=pid, product_id=rid, currency=currency, unit_amount=amount,
                recurring_interval=None if billing_interval == "one_time"
                else billing_interval,  # type: ignore[arg-type]
                product_code=code, active=True, refs={VENDOR: pid},
            )
        return product

    def seed_deal(
        self,
        account_id: str,
        *,
        name: str,
        stage: str = "Closed Won",
        lines: Sequence[tuple[str, int]] = (),
        close_date: date | None = None,
        legal_entity: str | None = None,
        currency: str | None = None,
        updated_at: datetime | None = None,
    ) -> Deal:
        """An opportunity with lines `(product code, quantity)` priced from the price book;
        `updated_at` is its SystemModstamp (what `list_won_deals` filters on)."""
        account = self.accounts[account_id]
        deal_currency = currency or account.currency
        rid = self._new_id("Opportunity")
        deal_lines = []
        for code, quantity in lines:
            price = next(p for p in self.prices.values()
                         if p.product_code == code and p.currency == deal_currency)
            line_id = self._new_id("OpportunityLineItem")
            unit = price.unit_amount or 0
            deal_lines.append(DealLine(id=line_id, product_id=price.product_id,
                                       product_code=code, quantity=quantity, unit_amount=unit,
                                       total_amount=quantity * unit, refs={VENDOR: line_id}))
        self.deals[rid] = Deal(
            id=rid, customer_id=account_id, name=name, stage=stage,
            won=_CLOSED_STAGES.get(stage) is True, closed=stage in _CLOSED_STAGES,
            close_date=close_date, currency=deal_currency,
            amount=sum(line.total_amount for line in deal_lines) if deal_lines else None,
            lines=deal_lines, legal_entity=legal_entity or account.legal_entity,
            updated_at=updated_at or self.now(), refs={VENDOR: rid},
        )
        return self.deals[rid]

    # ------------------------------------------------------------------ accounts

    @operation
    async def get_account(self, account_id: str) -> Customer:
        return self.accounts[self._existing(self.accounts, account_id, "account")]

    @operation
    async def list_accounts(
        self,
        *,
        legal_entities: Collection[str] | None = None,
        name: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Customer]:
        found = [
            account for key, account in sorted(self.accounts.items())
            if (legal_entities is None or account.legal_entity in legal_entities)
            and (not name or name.casefold() in account.legal_name.casefold())
        ]
        return self._page(found, cursor, limit)

    @operation
    async def update_account(self, account_id: str, patch: CustomerPatch) -> Customer:
        fields = patch.fields_set()
        if not fields:
            return self.accounts[self._existing(self.accounts, account_id, "account")]
        rid = self._existing(self.accounts, account_id, "account")
        account = self.accounts[rid]
        changes: dict[str, Any] = {}
        for name in fields:
            value = getattr(patch, name)
            if name in ("billing_address", "shipping_address"):
                changes[name] = _address(value)
            elif name == "country":
                billing = changes.get("billing_address", account.billing_address)
                changes["billing_address"] = _address(
                    msgspec.structs.replace(billing or Address(), country=value))
            else:
                changes[name] = value
        if "billing_address" in changes:
            address = changes["billing_address"]
            changes["country"] = address.country if address else None
        self.accounts[rid] = msgspec.structs.replace(account, **changes, updated_at=self.now())
        self._wrote("update_account", rid)
        return self.accounts[rid]

    @operation
    async def upsert_account(
        self, customer: Customer | CustomerCreate, *, external_id: str
    ) -> tuple[str, bool]:
        rid = self.account_external_ids.get(external_id)
        created = rid is None
        rid = rid or self._new_id("Account")
        billing = _address(customer.billing_address)
        if customer.country is not None and (billing is None or billing.country is None):
            billing = _address(msgspec.structs.replace(billing or Address(),
                                                       country=customer.country))
        refs = {VENDOR: rid}
        extra: dict[str, Any] = {}
        if isinstance(customer, Customer):
            extra = {"payment_status": customer.payment_status,
                     "risk_level": customer.risk_level}
            if "netsuite" in customer.refs:
                refs["netsuite"] = customer.refs["netsuite"]
        elif not created:
            previous = self.accounts[rid]
            extra = {"payment_status": previous.payment_status,
                     "risk_level": previous.risk_level}
            if "netsuite" in previous.refs:
                refs["netsuite"] = previous.refs["netsuite"]
        account = Customer(
            id=rid, legal_name=customer.legal_name, legal_entity=customer.legal_entity,
            currency=customer.currency, country=billing.country if billing else None,
            billing_address=billing, shipping_address=_address(customer.shipping_address),
            tax_id=customer.tax_id, email=customer.email, phone=customer.phone,
            website=customer.website, payment_terms_days=customer.payment_terms_days,
            refs=refs, **extra,
        )
        previous_account = self.accounts.get(rid)
        if previous_account is None or msgspec.structs.replace(
                previous_account, updated_at=None) != account:
            self.accounts[rid] = msgspec.structs.replace(account, updated_at=self.now())
            self._wrote("upsert_account", external_id)
        self.account_external_ids[external_id] = rid
        return rid, created

    # ------------------------------------------------------------------ notes

    @operation
    async def add_account_note(
        self, account_id: str, *, title: str, body: str, idempotency_key: str | None = None
    ) -> str:
        account = _soql_id(account_id, "account")
        for note_id, note in self.notes.items():
            if self.note_parents[note_id] == _full(account) and note.title == title:
                return note_id
        if _full(account) not in self.accounts:
            raise _invalid("Note", "/ParentId", "INVALID_CROSS_REFERENCE_KEY",
                           "invalid cross reference id")
        rid = self._new_id("Note")
        self.notes[rid] = AccountNote(id=rid, title=title, body=body[:32000])
        self.note_parents[rid] = _full(account)
        self._wrote("add_account_note", rid)
        return rid

    @operation
    async def list_account_notes(self, account_id: str) -> list[AccountNote]:
        account = _full(_soql_id(account_id, "account"))
        return [note for rid, note in self.notes.items() if self.note_parents[rid] == account]

    # ------------------------------------------------------------------ contacts

    @operation
    async def list_contacts(self, account_id: str) -> list[Contact]:
        account = _full(_soql_id(account_id, "account"))
        found = [c for c in self.contacts.values() if c.customer_id == account]
        return sorted(found, key=lambda c: (c.last_name.casefold(), c.id))

    @operation
    async def create_contacts(self, contacts: Sequence[ContactCreate]) -> list[str]:
        if not 1 <= len(contacts) <= MAX_COLLECTION:
            raise InvalidRequest(
                f"between 1 and {MAX_COLLECTION} contacts per call",
                errors=[FieldError(pointer="", detail=f"got {len(contacts)}")],
            )
        for contact in contacts:
            account = contact.customer_id
            if not (_ID.fullmatch(account) and account.startswith(_PREFIXES["Account"])):
                raise _invalid("Contact", "/customer_id", "MALFORMED_ID",
                               f"Account ID: id value of incorrect type: {account}",
                               failed=len(contacts))
            if _full(account) not in self.accounts:
                raise _invalid("Contact", "/customer_id", "INVALID_CROSS_REFERENCE_KEY",
                               "invalid cross reference id", failed=len(contacts))
        ids = []
        for contact in contacts:
            rid = self._new_id("Contact")
            self.contacts[rid] = Contact(
                id=rid, customer_id=_full(contact.customer_id), first_name=contact.first_name,
                last_name=contact.last_name, email=contact.email, phone=contact.phone,
                title=contact.title, refs={VENDOR: rid},
            )
            self._wrote("create_contacts", rid)
            ids.append(rid)
        return ids

    # ------------------------------------------------------------------ deals

    @operation
    async def get_deal(self, opportunity_id: str) -> Deal:
        _soql_id(opportunity_id, "opportunity")
        return self.deals[self._existing(self.deals, opportunity_id, "opportunity")]

    @operation
    async def list_won_deals(self, *, since: datetime, limit: int = 200) -> list[Deal]:
        won = [deal for deal in self.deals.values()
               if deal.won and deal.updated_at is not None and deal.updated_at > since]
        return sorted(won, key=lambda deal: (deal.updated_at or since, deal.id))[:limit]

    @operation
    async def update_deal(self, opportunity_id: str, patch: DealPatch) -> None:
        fields = patch.fields_set()
        if not fields:
            return
        rid = self._existing(self.deals, opportunity_id, "opportunity")
        changes: dict[str, Any] = {name: getattr(patch, name) for name in fields}
        if "stage" in changes:
            stage = changes["stage"]
            changes.update(won=_CLOSED_STAGES.get(stage) is True, closed=stage in _CLOSED_STAGES)
        if isinstance(changes.get("contract_amount"), Money):
            # A Salesforce currency field holds a decimal of the record's currency: the deal
            # reads it back in minor units.
            changes["contract_amount"] = changes["contract_amount"].amount
        if changes.get("legal_entity", UNSET) is None:
            changes["legal_entity"] = self.accounts[self.deals[rid].customer_id].legal_entity \
                if self.deals[rid].customer_id in self.accounts else None
        self.deals[rid] = msgspec.structs.replace(self.deals[rid], **changes,
                                                  updated_at=self.now())
        self._wrote("update_deal", rid)

    # ------------------------------------------------------------------ contracts, renewals

    def seed_contract(
        self, deal_id: str, *, start_date: date, term_months: int = 12
    ) -> Contract:
        """An activated contract of a won deal (not recorded as a write)."""
        return self.contracts[self._sign(deal_id, start_date, term_months)]

    @operation
    async def get_contract(self, contract_id: str) -> Contract:
        return self.contracts[self._existing(self.contracts, contract_id, "contract")]

    @operation
    async def list_contracts(
        self,
        *,
        customer_id: str | None = None,
        legal_entities: Collection[str] | None = None,
        ending_from: date | None = None,
        ending_to: date | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Contract]:
        if customer_id is not None:
            customer_id = _full(_soql_id(customer_id, "account"))
        found = [
            c for _, c in sorted(self.contracts.items())
            if (customer_id is None or c.customer_id == customer_id)
            and (legal_entities is None or c.legal_entity in legal_entities)
            and (ending_from is None or (c.end_date is not None and c.end_date >= ending_from))
            and (ending_to is None or (c.end_date is not None and c.end_date <= ending_to))
        ]
        return self._page(found, cursor, limit)

    @operation
    async def upsert_contract(
        self, contract: ContractCreate, *, external_id: str
    ) -> tuple[str, bool]:
        if external_id in self.contract_keys:
            return self.contract_keys[external_id], False
        rid = self._sign(contract.deal_id, contract.start_date, contract.term_months)
        self.contract_keys[external_id] = rid
        self._wrote("upsert_contract", rid)
        return rid, True

    @operation
    async def upsert_renewal(
        self, renewal: RenewalCreate, *, external_id: str
    ) -> tuple[str, bool]:
        if external_id in self.renewal_keys:
            return self.renewal_keys[external_id], False
        account = self.accounts[self._existing(self.accounts, renewal.customer_id, "account")]
        rid = self._new_id("Opportunity")
        lines = []
        for line in renewal.lines:
            line_id = self._new_id("OpportunityLineItem")
            lines.append(DealLine(
                id=line_id, product_code=line.product_code, quantity=line.quantity,
                unit_amount=line.unit_amount, total_amount=line.quantity * line.unit_amount,
                refs={VENDOR: line_id},
            ))
        self.deals[rid] = Deal(
            id=rid, customer_id=account.id, name=renewal.name, stage="Prospecting",
            close_date=renewal.close_date, currency=renewal.currency,
            amount=sum(line.total_amount for line in lines) if lines else None, lines=lines,
            legal_entity=renewal.legal_entity or account.legal_entity, updated_at=self.now(),
            deal_type="Renewal", renewal_of=renewal.renews_deal_id,
            contract_term_months=renewal.term_months, refs={VENDOR: rid},
        )
        self.renewal_keys[external_id] = rid
        self._wrote("upsert_renewal", rid)
        return rid, True

    @operation
    async def list_renewals(self, customer_id: str) -> list[Deal]:
        account = _full(_soql_id(customer_id, "account"))
        found = [d for d in self.deals.values()
                 if d.customer_id == account and d.deal_type == "Renewal"]
        return sorted(found, key=lambda d: (d.close_date or date.min, d.id))

    @operation
    async def assess_renewal(
        self, opportunity_id: str, *, risk: RenewalRisk, context: str
    ) -> None:
        rid = self._existing(self.deals, opportunity_id, "opportunity")
        self.deals[rid] = msgspec.structs.replace(
            self.deals[rid], renewal_risk=risk, renewal_context=context, updated_at=self.now()
        )
        self._wrote("assess_renewal", rid)

    @operation
    async def mark_churned(self, account_id: str) -> None:
        rid = self._existing(self.accounts, account_id, "account")
        self.accounts[rid] = msgspec.structs.replace(self.accounts[rid], status="churned")
        self._wrote("mark_churned", rid)

    def _sign(self, deal_id: str, start: date, term_months: int) -> str:
        deal = self.deals[self._existing(self.deals, deal_id, "opportunity")]
        rid = self._new_id("Contract")
        month = start.month - 1 + term_months
        year, month = start.year + month // 12, month % 12 + 1
        end = date(year, month, min(start.day, calendar.monthrange(year, month)[1]))
        self.contracts[rid] = Contract(
            id=rid, number=f"{len(self.contracts) + 101:08d}", customer_id=deal.customer_id,
            deal_id=deal.id, status="activated", start_date=start,
            end_date=end - timedelta(days=1), term_months=term_months, currency=deal.currency,
            lines=[ContractLine(id=li.id, product_id=li.product_id, product_code=li.product_code,
                                quantity=li.quantity, unit_amount=li.unit_amount)
                   for li in deal.lines],
            legal_entity=deal.legal_entity, refs={VENDOR: rid},
        )
        return rid

    # ------------------------------------------------------------------ catalog

    @operation
    async def list_products(self, *, active_only: bool = False) -> list[Product]:
        found = [p for p in self.products.values() if p.active or not active_only]
        return sorted(found, key=lambda product: product.code)

    @operation
    async def list_prices(self, *, currency: str | None = None) -> list[Price]:
        found = [p for p in self.prices.values() if currency is None or p.currency == currency]
        return sorted(found, key=lambda price: (price.product_code or "", price.id))

    # ------------------------------------------------------------------ plumbing

    def _new_id(self, sobject: str) -> str:
        id15 = f"{_PREFIXES[sobject]}FK{self._next(sobject):010d}"
        return id15 + sf_checksum(id15)

    def _existing(self, records: Mapping[str, object], raw_id: str, what: str) -> str:
        rid = _full(_checked(raw_id, what))
        if rid not in records:
            raise UpstreamNotFound(
                f"Salesforce {what} {raw_id} answered 404 NOT_FOUND: The requested resource "
                "does not exist", vendor=VENDOR, status=404, code="NOT_FOUND",
            )
        return rid


def _checked(value: str, what: str) -> str:
    """As the client checks an id before any call: 15 letters and digits, or 18 whose
    case-safety suffix is right; anything else names no record."""
    if not _ID.fullmatch(value) or (
        len(value) == 18 and value[15:].upper() != sf_checksum(value[:15])
    ):
        raise UpstreamNotFound(f"no Salesforce {what} {value!r}", vendor=VENDOR, status=404)
    return value


def _soql_id(value: str, what: str) -> str:
    """An id a SOQL filter names (checked as any id, so never refused by the query)."""
    return _checked(value, what)


def _full(value: str) -> str:
    return value if len(value) == 18 else value + sf_checksum(value)


def _address(value: Address | AddressInput | None) -> Address | None:
    if value is None:
        return None
    fields = (value.line1, value.line2, value.city, value.region, value.postal_code,
              value.country)
    if not any(fields):
        return None
    return Address(line1=value.line1, line2=value.line2, city=value.city, region=value.region,
                   postal_code=value.postal_code, country=value.country)


def _invalid(sobject: str, pointer: str, code: str, message: str, *,
             failed: int | None = None) -> UpstreamInvalid:
    prefix = f"Salesforce refused {failed} of {failed} records (none were saved)" if failed \
        else f"Salesforce {sobject} answered 400 {code}: {message}"
    return UpstreamInvalid(prefix, vendor=VENDOR, status=400, code=code,
                           errors=[FieldError(pointer=pointer, detail=f"{code}: {message}")])
