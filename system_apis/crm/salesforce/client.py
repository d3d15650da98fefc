"""Salesforce REST API client: accounts, contacts, opportunities and the catalog as contracts.

Reads go through SOQL (`/query`, paged by `nextRecordsUrl`) or sObject rows; writes are PATCHes
of the fields the CRM owns, upserts by external id (Salesforce has no idempotency key, so an
upsert on an external id is how a create is made safe to repeat; a note, which has no external
id, is looked up by its title first) and sObject Collections.
Every answer's `Sforce-Limit-Info` updates `api_usage` for the outbound quota budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from datetime import date, datetime
from typing import Any, TypeVar
from urllib.parse import quote as url_quote

import httpx
import msgspec

from contracts.errors import (
    FieldError,
    InvalidRequest,
    UpstreamError,
    UpstreamInvalid,
    UpstreamNotFound,
)
from contracts.v1 import (
    Contact,
    ContactCreate,
    Contract,
    Customer,
    CustomerCreate,
    CustomerPatch,
    Deal,
    DealPatch,
    Page,
    Price,
    Product,
    RenewalRisk,
)
from system_apis.crm.port import AccountNote, ContractCreate, RenewalCreate, RenewalLine
from system_apis.crm.salesforce._client_auth import (
    SalesforceAuth,
    SalesforceCredentials,
    TokenGrant,
)
from system_apis.crm.salesforce._client_http import (
    ERRORS,
    VENDOR,
    field_errors,
    parse_usage,
    request_id,
)
from system_apis.crm.salesforce._client_soql import (
    ACCOUNTS_LIST,
    RecordId,
    account_filters,
    checked_id,
    select,
    soql_datetime,
    soql_string,
)
from system_apis.crm.salesforce.mapping import (
    ACCOUNT_FIELDS,
    CONTACT_FIELDS,
    CONTRACT_FIELDS,
    LINE_FIELDS,
    OPPORTUNITY_FIELDS,
    PRICE_FIELDS,
    PRODUCT_FIELDS,
    AccountRecord,
    CollectionRequest,
    ContactRecord,
    ContractRecord,
    LineRecord,
    MappingError,
    OpportunityRecord,
    PricebookEntryRecord,
    Product2Record,
    QueryPage,
    SaveResult,
    SObjectRecord,
    from_contact_create,
    from_contract_create,
    from_customer,
    from_customer_patch,
    from_deal_patch,
    from_renewal_create,
    record_id,
    renewal_risk_value,
    to_contact,
    to_contract,
    to_customer,
    to_deal,
    to_money_decimal,
    to_price,
    to_product,
)
from system_apis.outbound import decode_cursor, encode_cursor, paginate

__all__ = [
    "API_VERSION",
    "SalesforceClient",
    "SalesforceCredentials",
]

API_VERSION = "62.0"
"""Winter '25. Pinned because the answers this client decodes are that version's (an upsert
that updates answers 200 with `created: false`; older versions answer 204). Move it on purpose,
after the emulator and a sandbox org agree on the new version's shapes."""
MAX_COLLECTION = 200
"""sObject Collections take at most 200 records per request."""
_IDS_PER_QUERY = 200
"""Ids per `IN (...)` list: keeps a SOQL statement well under its 100,000-character limit."""
NOTE_FIELDS = ("Id", "Title", "Body")
MAX_NOTE_BODY = 32000
"""A Note's Body holds at most 32,000 characters."""
MAX_LONG_TEXT = 32768
"""A long text area field holds at most 32,768 characters."""
CONTRACTS_LIST = "salesforce:Contract"
CONTRACT_KEY = "Contract_Key__c"
RENEWAL_KEY = "Renewal_Key__c"
LINE_KEY = "Line_Key__c"

R = TypeVar("R")
T = TypeVar("T")
_encoder = msgspec.json.Encoder(decimal_format="number")


class NoteRecord(SObjectRecord, kw_only=True):
    title: str | None = msgspec.field(default=None, name="Title")
    body: str | None = msgspec.field(default=None, name="Body")


class SalesforceClient:
    """One org's REST API through the httpx client the app factory built."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        credentials: SalesforceCredentials,
        *,
        default_legal_entity: str | None = None,
        on_usage: Callable[[int, int], None] | None = None,
    ) -> None:
        self._http = http
        self._auth = SalesforceAuth(credentials)
        self._token_lock = asyncio.Lock()
        self._default_legal_entity = default_legal_entity
        self._on_usage = on_usage
        self._usage: tuple[int, int] | None = None

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(calls used, daily limit) from the latest `Sforce-Limit-Info`; None before any."""
        return self._usage

    # -- accounts ------------------------------------------------------------------------

    async def get_account(self, account_id: str) -> Customer:
        record = await self._get_row("Account", account_id, ACCOUNT_FIELDS, AccountRecord)
        return self._customer(record)

    async def list_accounts(
        self,
        *,
        legal_entities: Collection[str] | None = None,
        name: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Customer]:
        """One page of accounts ordered by id; `cursor` is the previous page's `next_cursor`."""
        conditions = account_filters(legal_entities, name)
        after = decode_cursor(cursor, list_name=ACCOUNTS_LIST, position=RecordId)
        if after is not None:
            conditions.append(f"Id > {soql_string(after)}")
        soql = select(ACCOUNT_FIELDS, "Account", conditions, order="Id", limit=limit + 1)
        records = [r async for r in self._query(soql, AccountRecord, sobject="Account")]
        data = [self._customer(record) for record in records[:limit]]
        more = len(records) > limit and data
        next_cursor = encode_cursor(data[-1].id, list_name=ACCOUNTS_LIST) if more else None
        return Page(data=data, next_cursor=next_cursor)

    async def iter_accounts(
        self, *, legal_entities: Collection[str] | None = None, name: str | None = None
    ) -> AsyncIterator[Customer]:
        """Every matching account, following `nextRecordsUrl` batch after batch."""
        soql = select(ACCOUNT_FIELDS, "Account", account_filters(legal_entities, name), "Id")
        async for record in self._query(soql, AccountRecord, sobject="Account"):
            yield self._customer(record)

    async def update_account(self, account_id: str, patch: CustomerPatch) -> Customer:
        """Write the patch's fields to the account; returns the account as it now is."""
        body = from_customer_patch(patch)
        if body:
            await self._send(
                "PATCH", self._row_path("Account", account_id), body=body, sobject="Account",
                template="sobjects/Account/{id}",
            )
        return await self.get_account(account_id)

    async def upsert_account(
        self,
        customer: Customer | CustomerCreate,
        *,
        external_id: str,
        field: str = "Canonical_Id__c",
    ) -> tuple[str, bool]:
        """Create or update the account whose `field` is `external_id`: (id, created).

        Safe to repeat: the same external id always lands on the same record.
        """
        path = f"sobjects/Account/{field}/{url_quote(external_id, safe='')}"
        response = await self._send(
            "PATCH", _data(path), body=from_customer(customer), sobject="Account",
            idempotent=True, template=f"sobjects/Account/{field}/{{value}}",
        )
        if response.status_code == 204:
            # Versions before 46.0 answer an update by upsert with an empty 204.
            account = await self._find_account(field, external_id)
            return account, False
        result = self._decode(response, SaveResult)
        return result.id or "", bool(result.created)

    # -- contacts ------------------------------------------------------------------------

    async def list_contacts(self, account_id: str) -> list[Contact]:
        account = checked_id(account_id, "account")
        soql = select(
            CONTACT_FIELDS, "Contact", [f"AccountId = {soql_string(account)}"], "LastName, Id"
        )
        return [
            self._mapped(to_contact, record)
            async for record in self._query(soql, ContactRecord, sobject="Contact")
        ]

    async def create_contacts(self, contacts: Sequence[ContactCreate]) -> list[str]:
        """Create up to 200 contacts in one call, all or none; returns their ids in order."""
        if not 1 <= len(contacts) <= MAX_COLLECTION:
            raise InvalidRequest(
                f"between 1 and {MAX_COLLECTION} contacts per call",
                errors=[FieldError(pointer="", detail=f"got {len(contacts)}")],
            )
        body = CollectionRequest(
            all_or_none=True,
            records=[
                {"attributes": {"type": "Contact"}, **from_contact_create(c)} for c in contacts
            ],
        )
        response = await self._send(
            "POST", _data("composite/sobjects"), body=msgspec.to_builtins(body),
            sobject="Contact", template="composite/sobjects",
        )
        results = self._decode(response, list[SaveResult])
        return _saved_ids(results, response)

    # -- notes ---------------------------------------------------------------------------

    async def add_account_note(
        self, account_id: str, *, title: str, body: str, idempotency_key: str | None = None
    ) -> str:
        """Attach a note to the account; returns its id.

        Notes take no idempotency key and have no external id field, so the title is the key:
        a note of that title already on the account (an earlier attempt whose answer was lost)
        is returned instead of creating a second one. `idempotency_key` is accepted for the
        port's sake and not sent.
        """
        account = checked_id(account_id, "account")
        existing = await self._find_note(account, title)
        if existing is not None:
            return existing
        response = await self._send(
            "POST", _data("sobjects/Note"), sobject="Note", template="sobjects/Note",
            body={
                "ParentId": account,
                "Title": title,
                "Body": body[:MAX_NOTE_BODY],
                "IsPrivate": False,
            },
        )
        return self._decode(response, SaveResult).id or ""

    async def list_account_notes(self, account_id: str) -> list[AccountNote]:
        """The account's notes, oldest first."""
        account = checked_id(account_id, "account")
        soql = select(
            NOTE_FIELDS, "Note", [f"ParentId = {soql_string(account)}"], "CreatedDate, Id"
        )
        return [
            _note(record) async for record in self._query(soql, NoteRecord, sobject="Note")
        ]

    # -- opportunities -------------------------------------------------------------------

    async def get_deal(self, opportunity_id: str) -> Deal:
        """An opportunity with its line items (product code from each line's product)."""
        opportunity = checked_id(opportunity_id, "opportunity")
        soql = select(OPPORTUNITY_FIELDS, "Opportunity", [f"Id = {soql_string(opportunity)}"])
        records = [r async for r in self._query(soql, OpportunityRecord, sobject="Opportunity")]
        if not records:
            raise UpstreamNotFound(
                f"Salesforce opportunity {opportunity} not found", vendor=VENDOR, status=404
            )
        return (await self._with_lines(records))[0]

    async def list_won_deals(self, *, since: datetime, limit: int = 200) -> list[Deal]:
        """Deals won and changed after `since` (the poller's watermark), oldest first."""
        conditions = ["IsWon = true", f"SystemModstamp > {soql_datetime(since)}"]
        soql = select(OPPORTUNITY_FIELDS, "Opportunity", conditions, "SystemModstamp", limit)
        records = [r async for r in self._query(soql, OpportunityRecord, sobject="Opportunity")]
        return await self._with_lines(records)

    async def update_deal(self, opportunity_id: str, patch: DealPatch) -> None:
        """Write back to the opportunity (ERP order number, subscription id, status)."""
        body = from_deal_patch(patch)
        if body:
            await self._send(
                "PATCH", self._row_path("Opportunity", opportunity_id), body=body,
                sobject="Opportunity", template="sobjects/Opportunity/{id}",
            )

    # -- contracts and renewals ------------------------------------------------------------

    async def get_contract(self, contract_id: str) -> Contract:
        contract = checked_id(contract_id, "contract")
        soql = select(CONTRACT_FIELDS, "Contract", [f"Id = {soql_string(contract)}"])
        records = [r async for r in self._query(soql, ContractRecord, sobject="Contract")]
        if not records:
            raise UpstreamNotFound(
                f"Salesforce contract {contract} not found", vendor=VENDOR, status=404
            )
        return (await self._contracts(records))[0]

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
        """One page of contracts ordered by id; `cursor` is the previous page's cursor."""
        conditions = []
        if customer_id is not None:
            conditions.append(f"AccountId = {soql_string(checked_id(customer_id, 'account'))}")
        if legal_entities is not None:
            # An empty set of visible entities must match nothing, not everything.
            values = ", ".join(soql_string(e) for e in sorted(legal_entities)) or "''"
            conditions.append(f"Account.Legal_Entity__c IN ({values})")
        if ending_from is not None:
            conditions.append(f"EndDate >= {ending_from.isoformat()}")
        if ending_to is not None:
            conditions.append(f"EndDate <= {ending_to.isoformat()}")
        after = decode_cursor(cursor, list_name=CONTRACTS_LIST, position=RecordId)
        if after is not None:
            conditions.append(f"Id > {soql_string(after)}")
        soql = select(CONTRACT_FIELDS, "Contract", conditions, order="Id", limit=limit + 1)
        records = [r async for r in self._query(soql, ContractRecord, sobject="Contract")]
        data = await self._contracts(records[:limit])
        more = len(records) > limit and data
        next_cursor = encode_cursor(data[-1].id, list_name=CONTRACTS_LIST) if more else None
        return Page(data=data, next_cursor=next_cursor)

    async def upsert_contract(
        self, contract: ContractCreate, *, external_id: str
    ) -> tuple[str, bool]:
        """The contract keyed by `external_id` (`Contract_Key__c`), created when missing."""
        found = await self._find_by_key("Contract", CONTRACT_KEY, external_id)
        if found is not None:
            return found, False
        return await self._upsert_by_key(
            "Contract", CONTRACT_KEY, external_id, from_contract_create(contract)
        )

    async def upsert_renewal(
        self, renewal: RenewalCreate, *, external_id: str
    ) -> tuple[str, bool]:
        """The renewal opportunity keyed by `external_id` (`Renewal_Key__c`) and its lines
        (each keyed `{external_id}:{product code}`). An existing opportunity is not written
        again: a person may have moved it on since."""
        opportunity = await self._find_by_key("Opportunity", RENEWAL_KEY, external_id)
        created = False
        if opportunity is None:
            opportunity, created = await self._upsert_by_key(
                "Opportunity", RENEWAL_KEY, external_id, from_renewal_create(renewal)
            )
        if renewal.lines:
            entries = await self._price_entries(
                renewal.currency, {line.product_code for line in renewal.lines}
            )
            for line in renewal.lines:
                await self._ensure_renewal_line(
                    opportunity, line, entries, renewal.currency, f"{external_id}:"
                )
        return opportunity, created

    async def list_renewals(self, customer_id: str) -> list[Deal]:
        account = checked_id(customer_id, "account")
        conditions = [f"AccountId = {soql_string(account)}", "Type = 'Renewal'"]
        soql = select(OPPORTUNITY_FIELDS, "Opportunity", conditions, "CloseDate, Id")
        records = [r async for r in self._query(soql, OpportunityRecord, sobject="Opportunity")]
        return await self._with_lines(records)

    async def assess_renewal(
        self, opportunity_id: str, *, risk: RenewalRisk, context: str
    ) -> None:
        await self._send(
            "PATCH", self._row_path("Opportunity", opportunity_id), sobject="Opportunity",
            template="sobjects/Opportunity/{id}",
            body={
                "Renewal_Risk__c": renewal_risk_value(risk),
                "Renewal_Context__c": context[:MAX_LONG_TEXT],
            },
        )

    async def mark_churned(self, account_id: str) -> None:
        await self._send(
            "PATCH", self._row_path("Account", account_id), sobject="Account",
            template="sobjects/Account/{id}", body={"Customer_Status__c": "Churned"},
        )

    async def _contracts(self, records: list[ContractRecord]) -> list[Contract]:
        deals = [r.opportunity_id for r in records if r.opportunity_id]
        lines = await self._lines_of(deals)
        return [
            self._mapped(to_contract, r, lines.get(r.opportunity_id or "", [])) for r in records
        ]

    async def _find_by_key(self, sobject: str, field: str, value: str) -> str | None:
        soql = select(("Id",), sobject, [f"{field} = {soql_string(value)}"], limit=1)
        async for record in self._query(soql, SObjectRecord, sobject=sobject):
            return record_id(record)
        return None

    async def _upsert_by_key(
        self, sobject: str, field: str, value: str, body: dict[str, Any]
    ) -> tuple[str, bool]:
        path = f"sobjects/{sobject}/{field}/{url_quote(value, safe='')}"
        try:
            response = await self._send(
                "PATCH", _data(path), body=body, sobject=sobject, idempotent=True,
                template=f"sobjects/{sobject}/{field}/{{value}}",
            )
        except UpstreamInvalid:
            # Only called when no record had the key: one that has it now was made meanwhile
            # by another process (Salesforce refuses the second insert as DUPLICATE_VALUE, or
            # the update it turned into when it wrote create-only fields). That one stands.
            found = await self._find_by_key(sobject, field, value)
            if found is None:
                raise
            return found, False
        result = self._decode(response, SaveResult)
        return result.id or "", bool(result.created)

    async def _price_entries(self, currency: str, codes: set[str]) -> dict[str, str]:
        """The standard price book's entry id of each product code in `currency`."""
        listed = ", ".join(soql_string(code) for code in sorted(codes)) or "''"
        conditions = [
            "Pricebook2.IsStandard = true",
            f"CurrencyIsoCode = {soql_string(currency)}",
            f"Product2.ProductCode IN ({listed})",
        ]
        soql = select(PRICE_FIELDS, "PricebookEntry", conditions, "Id")
        entries: dict[str, str] = {}
        async for record in self._query(soql, PricebookEntryRecord, sobject="PricebookEntry"):
            code = record.product.product_code if record.product else None
            if code:
                entries.setdefault(code, record_id(record))
        missing = sorted(codes - entries.keys())
        if missing:
            raise UpstreamInvalid(
                f"no {currency} price book entry for {', '.join(missing)}", vendor=VENDOR,
                code="missing_price_book_entry",
            )
        return entries

    async def _ensure_renewal_line(
        self,
        opportunity: str,
        line: RenewalLine,
        entries: dict[str, str],
        currency: str,
        key_prefix: str,
    ) -> None:
        key = f"{key_prefix}{line.product_code}"
        if await self._find_by_key("OpportunityLineItem", LINE_KEY, key) is not None:
            return
        body = {
            "OpportunityId": opportunity,
            "PricebookEntryId": entries[line.product_code],
            "Quantity": line.quantity,
            "UnitPrice": str(to_money_decimal(line.unit_amount, currency)),
        }
        await self._upsert_by_key("OpportunityLineItem", LINE_KEY, key, body)

    async def _lines_of(self, opportunity_ids: list[str]) -> dict[str, list[LineRecord]]:
        lines: dict[str, list[LineRecord]] = {key: [] for key in opportunity_ids}
        for start in range(0, len(opportunity_ids), _IDS_PER_QUERY):
            chunk = ", ".join(
                soql_string(i) for i in opportunity_ids[start : start + _IDS_PER_QUERY]
            )
            soql = select(LINE_FIELDS, "OpportunityLineItem", [f"OpportunityId IN ({chunk})"],
                           "Id")
            async for line in self._query(soql, LineRecord, sobject="OpportunityLineItem"):
                lines.setdefault(line.opportunity_id or "", []).append(line)
        return lines

    # -- catalog -------------------------------------------------------------------------

    async def list_products(self, *, active_only: bool = False) -> list[Product]:
        conditions = ["IsActive = true"] if active_only else []
        soql = select(PRODUCT_FIELDS, "Product2", conditions, "ProductCode")
        return [
            self._mapped(to_product, record)
            async for record in self._query(soql, Product2Record, sobject="Product2")
        ]

    async def list_prices(self, *, currency: str | None = None) -> list[Price]:
        """The standard price book's entries, optionally of one currency."""
        conditions = ["Pricebook2.IsStandard = true"]
        if currency is not None:
            conditions.append(f"CurrencyIsoCode = {soql_string(currency)}")
        soql = select(PRICE_FIELDS, "PricebookEntry", conditions, "Product2.ProductCode, Id")
        return [
            self._mapped(to_price, record)
            async for record in self._query(soql, PricebookEntryRecord, sobject="PricebookEntry")
        ]

    # -- plumbing ------------------------------------------------------------------------

    async def _with_lines(self, records: list[OpportunityRecord]) -> list[Deal]:
        lines = await self._lines_of([record_id(record) for record in records])
        return [self._mapped(to_deal, r, lines[record_id(r)]) for r in records]

    async def _find_account(self, field: str, value: str) -> str:
        soql = select(("Id",), "Account", [f"{field} = {soql_string(value)}"], limit=1)
        async for record in self._query(soql, AccountRecord, sobject="Account"):
            return record_id(record)
        raise UpstreamNotFound(f"no Salesforce account with {field} {value}", vendor=VENDOR)

    async def _find_note(self, account: str, title: str) -> str | None:
        conditions = [f"ParentId = {soql_string(account)}", f"Title = {soql_string(title)}"]
        soql = select(("Id", "Title"), "Note", conditions, "CreatedDate, Id")
        async for record in self._query(soql, NoteRecord, sobject="Note"):
            # SOQL compares strings case-insensitively; the title is matched exactly.
            if record.title == title:
                return record_id(record)
        return None

    async def _get_row(
        self, sobject: str, raw_id: str, fields: Sequence[str], record_type: type[R]
    ) -> R:
        response = await self._send(
            "GET", self._row_path(sobject, raw_id), params={"fields": ",".join(fields)},
            sobject=sobject, template=f"sobjects/{sobject}/{{id}}",
        )
        return self._decode(response, record_type)

    async def _query(
        self, soql: str, record_type: type[R], *, sobject: str
    ) -> AsyncIterator[R]:
        """Every record of a SOQL query, batch after batch, with loop detection."""
        page_type = QueryPage[record_type]  # type: ignore[valid-type]

        async def fetch(link: str | None) -> QueryPage[R]:
            if link is None:
                response = await self._send(
                    "GET", _data("query"), params={"q": soql}, sobject=sobject, template="query"
                )
            else:
                response = await self._send(
                    "GET", link, sobject=sobject, template="query/{locator}", link=True
                )
            page: QueryPage[R] = self._decode(response, page_type)
            return page

        async for page in paginate(fetch, _next_cursor, vendor=VENDOR, what="Salesforce query"):
            for record in page.records:
                yield record

    async def _send(
        self,
        method: str,
        target: str,
        *,
        template: str,
        sobject: str | None = None,
        params: dict[str, str] | None = None,
        body: Any = None,
        idempotent: bool = False,
        link: bool = False,
    ) -> httpx.Response:
        grant = await self._grant()
        # Our paths hang off instance_url (which may carry a path prefix); links Salesforce
        # emits (nextRecordsUrl) are host-absolute paths and resolve against its origin.
        url = (
            str(httpx.URL(grant.instance_url).join(target))
            if link
            else grant.instance_url + target
        )
        headers = {"Accept": "application/json"}
        content = None
        if body is not None:
            content = _encoder.encode(body)
            headers["Content-Type"] = "application/json"
        extensions: dict[str, Any] = {
            "erpgw_path_template": f"/services/data/v{API_VERSION}/{template}"
        }
        if idempotent:
            extensions["erpgw_idempotent"] = True
        request = self._http.build_request(
            method, url, params=params, content=content, headers=headers, extensions=extensions
        )
        try:
            response = await self._http.send(request, auth=self._auth)
        except httpx.HTTPError as exc:
            raise ERRORS.unavailable(exc, f"{method} {template}") from exc
        self._note_usage(response)
        if response.status_code >= 300:
            raise ERRORS.error_for(response, sobject=sobject)
        return response

    async def _grant(self) -> TokenGrant:
        if self._auth.grant is not None:
            return self._auth.grant
        async with self._token_lock:
            if self._auth.grant is None:
                try:
                    response = await self._http.send(self._auth.token_request())
                except httpx.HTTPError as exc:
                    raise ERRORS.unavailable(exc, "token request") from exc
                self._note_usage(response)
                return self._auth.accept(response)
            return self._auth.grant

    def _note_usage(self, response: httpx.Response) -> None:
        usage = parse_usage(response)
        if usage is not None:
            self._usage = usage
            if self._on_usage is not None:
                self._on_usage(*usage)

    def _row_path(self, sobject: str, raw_id: str) -> str:
        return _data(f"sobjects/{sobject}/{checked_id(raw_id, sobject.lower())}")

    def _decode(self, response: httpx.Response, record_type: type[T]) -> T:
        try:
            return msgspec.json.decode(response.content, type=record_type)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamError(
                f"Salesforce answer to {response.request.url.path} unreadable: {exc}",
                vendor=VENDOR, status=response.status_code, request_id=request_id(response),
                code="unreadable_response",
            ) from exc

    def _customer(self, record: AccountRecord) -> Customer:
        return self._mapped(
            lambda r: to_customer(r, default_legal_entity=self._default_legal_entity), record
        )

    def _mapped(self, convert: Callable[..., T], *args: Any) -> T:
        try:
            return convert(*args)
        except MappingError as exc:
            raise UpstreamError(
                f"Salesforce record cannot be mapped: {exc}", vendor=VENDOR,
                code="unmappable_record",
            ) from exc


def _saved_ids(results: list[SaveResult], response: httpx.Response) -> list[str]:
    failed = [
        result for result in results
        if not result.success
        and not any(e.code == "ALL_OR_NONE_OPERATION_ROLLED_BACK" for e in result.errors)
    ]
    if failed or not all(result.success and result.id for result in results):
        errors = [error for result in failed for error in result.errors]
        raise UpstreamInvalid(
            f"Salesforce refused {len(failed)} of {len(results)} records (none were saved)",
            vendor=VENDOR, status=response.status_code, request_id=request_id(response),
            code=errors[0].code if errors else None,
            errors=field_errors(errors, "Contact"),
        )
    return [result.id or "" for result in results]


def _note(record: NoteRecord) -> AccountNote:
    return AccountNote(id=record_id(record), title=record.title or "", body=record.body or "")


def _next_cursor(page: QueryPage[Any]) -> str | None:
    """The next batch's URL; None when the query is done or a batch came back empty."""
    if page.done or not page.records:
        return None
    return page.next_records_url


def _data(rest: str) -> str:
    return f"/services/data/v{API_VERSION}/{rest}"
