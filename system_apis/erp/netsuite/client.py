"""NetSuite SuiteTalk REST client: records and SuiteQL in, canonical contracts out.

Writes that a flow may repeat are upserts by external id (`PUT /{type}/eid:{id}`), NetSuite's
own idempotency mechanism; they are marked idempotent for the outbound retry policy. A create
answers 204 with a `Location` naming the record, which is then read back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from contracts.errors import InvalidRequest, UpstreamError, UpstreamInvalid, UpstreamNotFound
from contracts.money import Money, from_decimal
from contracts.v1 import (
    ApprovalDecision,
    ApprovalStatus,
    ApprovalTask,
    CreditMemo,
    CreditMemoCreate,
    Customer,
    CustomerCreate,
    Invoice,
    InvoiceStatus,
    JournalEntry,
    JournalEntryCreate,
    LegalEntity,
    Page,
    Payment,
    PaymentStatus,
    Product,
    SalesOrder,
    SalesOrderCreate,
    SalesOrderLine,
)
from system_apis.erp.netsuite import mapping
from system_apis.erp.netsuite._client_auth import TOKEN_PATH, NetSuiteAuth
from system_apis.erp.netsuite._client_http import (
    VENDOR,
    Transport,
)
from system_apis.erp.netsuite._wire import (
    ApprovalRecord,
    Collection,
    CreditMemoRecord,
    CustomerPaymentRecord,
    CustomerRecord,
    InvoiceRecord,
    ItemRecord,
    JournalEntryRecord,
    Ref,
    SalesOrderRecord,
    SubsidiaryRecord,
    SuiteQLPage,
    TaxCodeRecord,
)
from system_apis.erp.port import ErpChanges, ReceivablesBalance
from system_apis.outbound import Offset, decode_cursor, encode_cursor, paginate

__all__ = [
    "APPROVAL_RECORD",
    "NetSuiteClient",
    "NetSuiteCredentials",
]

# REST web services record API v1 is the only major version; record shapes follow the
# account's release, so the client reads only fields present since 2020.1.
RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
MAX_PAGE = 1000  # NetSuite's limit for record lists and SuiteQL pages.
APPROVAL_RECORD = "customrecord_erpgw_approval"
COLLECTIONS_FLAG = "in_collections"
_APPLY_ATTEMPTS = 3
"""Posts of a payment whose application a concurrent credit memo outdated, before giving up."""
R = TypeVar("R")


class NetSuiteCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """An integration's M2M credentials: client id, mapped certificate and its private key."""

    account_id: str
    client_id: str
    certificate_id: str
    private_key_pem: str
    base_url: str
    """`https://<account>.suitetalk.api.netsuite.com`, or the emulator's URL."""
    algorithm: str | None = None
    """PS256 for RSA keys, ES256 for EC keys unless set (e.g. RS256)."""

    @property
    def token_url(self) -> str:
        return self.base_url.rstrip("/") + TOKEN_PATH

    def auth(self) -> NetSuiteAuth:
        return NetSuiteAuth(client_id=self.client_id, certificate_id=self.certificate_id,
                            private_key_pem=self.private_key_pem, token_url=self.token_url,
                            algorithm=self.algorithm)


def _q_text(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_id(value: str) -> str:
    if not value.isdigit():
        raise InvalidRequest(f"{value!r} is not a NetSuite internal id")
    return value


class NetSuiteClient:
    """One NetSuite account through SuiteTalk REST web services."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        credentials: NetSuiteCredentials,
        auth: httpx.Auth | None = None,
        credit_item_id: str | None = None,
    ) -> None:
        self._transport = Transport(http, auth or credentials.auth())
        self._directory: mapping.Directory | None = None
        self._credit_item_id = credit_item_id
        self._tax_codes: dict[str, str] = {}
        """Company tax code -> internal id of its `salesTaxItem`, read once each."""

    # ------------------------------------------------------------------ plumbing

    async def _read(self, rtype: str, key: str, kind: type[R], *, expand: bool = False) -> R:
        params = {"expandSubResources": "true"} if expand else None
        response = await self._transport.send("GET", f"{RECORD}/{rtype}/{quote(key, safe=':')}",
                                              params=params, what=f"read {rtype} {key}")
        return self._transport.decode(response, kind, f"read {rtype} {key}")

    async def _upsert(self, rtype: str, external_id: str, body: dict[str, Any]) -> str:
        response = await self._transport.send(
            "PUT", f"{RECORD}/{rtype}/eid:{quote(external_id, safe='')}", json=body,
            idempotent=True, what=f"upsert {rtype} {external_id}",
        )
        return _location_id(response, rtype)

    async def _patch(self, rtype: str, rid: str, body: dict[str, Any]) -> None:
        await self._transport.send("PATCH", f"{RECORD}/{rtype}/{rid}", json=body,
                                   what=f"update {rtype} {rid}")

    async def _list_page(self, rtype: str, *, q: str | None, offset: int,
                         limit: int) -> Collection:
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if q:
            params["q"] = q
        response = await self._transport.send("GET", f"{RECORD}/{rtype}", params=params,
                                              what=f"list {rtype}")
        return self._transport.decode(response, Collection, f"list {rtype}")

    async def iter_ids(self, rtype: str, *, q: str | None = None,
                       page_size: int = MAX_PAGE) -> AsyncIterator[str]:
        """Every id of a record list, page by page."""
        async def fetch(offset: int | None) -> tuple[int, Collection]:
            start = offset or 0
            return start, await self._list_page(rtype, q=q, offset=start, limit=page_size)

        async for _, page in paginate(fetch, _next_offset, vendor=VENDOR,
                                      what=f"NetSuite list {rtype}"):
            for item in page.items:
                yield item.id

    async def _page(self, rtype: str, kind: type[R], convert: Any, *, q: str | None,
                    cursor: str | None, limit: int, expand: bool = False) -> Page[Any]:
        pages = f"{VENDOR}:{rtype}"
        offset = decode_cursor(cursor, list_name=pages, position=Offset) or 0
        page = await self._list_page(rtype, q=q, offset=offset, limit=limit)
        directory = await self.directory()
        data = []
        for item in page.items:
            record = await self._read(rtype, item.id, kind, expand=expand)
            data.append(convert(record, directory))
        more = page.has_more and bool(page.items)
        next_cursor = encode_cursor(offset + len(page.items), list_name=pages) if more else None
        return Page(data=data, next_cursor=next_cursor)

    async def suiteql_page(self, query: str, *, limit: int = MAX_PAGE,
                           offset: int = 0) -> SuiteQLPage:
        """One page of a SuiteQL query (rows are strings; NULL columns are absent)."""
        response = await self._transport.send(
            "POST", SUITEQL, json={"q": query}, params={"limit": limit, "offset": offset},
            headers={"Prefer": "transient"}, idempotent=True, what="SuiteQL query",
        )
        return self._transport.decode(response, SuiteQLPage, "SuiteQL query")

    async def suiteql(self, query: str, *, page_size: int = MAX_PAGE
                      ) -> AsyncIterator[dict[str, str]]:
        """Every row of a SuiteQL query, following its pages."""
        async def fetch(offset: int | None) -> tuple[int, SuiteQLPage]:
            start = offset or 0
            return start, await self.suiteql_page(query, limit=page_size, offset=start)

        async for _, page in paginate(fetch, _next_offset, vendor=VENDOR,
                                      what="NetSuite SuiteQL query"):
            for row in page.items:
                yield {key: str(value) for key, value in row.items() if key != "links"}

    async def directory(self) -> mapping.Directory:
        """The account's subsidiaries, currencies and terms (read once)."""
        if self._directory is None:
            subsidiaries = {row["id"]: row.get("externalid", row["id"]) async for row in
                            self.suiteql("SELECT id, externalid FROM subsidiary ORDER BY id")}
            currencies = {row["id"]: row["symbol"] async for row in
                          self.suiteql("SELECT id, symbol FROM currency ORDER BY id")}
            terms = {row["id"]: int(row["daysuntilnetdue"]) async for row in self.suiteql(
                "SELECT id, daysuntilnetdue FROM term ORDER BY id") if "daysuntilnetdue" in row}
            self._directory = mapping.Directory(currencies=currencies, subsidiaries=subsidiaries,
                                                terms=terms)
        return self._directory

    def _require(self, directory: mapping.Directory, convert: Any, *args: Any) -> Any:
        try:
            return convert(*args, directory)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc

    # ------------------------------------------------------------- legal entities

    async def list_legal_entities(self) -> list[LegalEntity]:
        directory = await self.directory()
        return [mapping.to_legal_entity(await self._read("subsidiary", rid, SubsidiaryRecord),
                                        directory)
                async for rid in self.iter_ids("subsidiary")]

    async def get_legal_entity(self, code: str) -> LegalEntity:
        directory = await self.directory()
        try:
            rid = directory.subsidiary_id(code)
        except ValueError as exc:
            raise UpstreamNotFound(str(exc), vendor=VENDOR) from exc
        record = await self._read("subsidiary", rid, SubsidiaryRecord)
        return mapping.to_legal_entity(record, directory)

    async def list_currencies(self) -> list[str]:
        """ISO codes of the currencies enabled in the account."""
        return sorted((await self.directory()).currencies.values())

    # ------------------------------------------------------------------ customers

    async def get_customer(self, customer_id: str) -> Customer:
        record = await self._read("customer", customer_id, CustomerRecord)
        return mapping.to_customer(record, await self.directory())

    async def find_customer(self, *, external_id: str) -> Customer | None:
        try:
            return await self.get_customer(f"eid:{external_id}")
        except UpstreamNotFound:
            return None

    async def upsert_customer(self, customer: CustomerCreate, *, external_id: str) -> Customer:
        directory = await self.directory()
        body = self._require(directory, mapping.from_customer_create, customer)
        return await self.get_customer(await self._upsert("customer", external_id, body))

    async def set_customer_collections(
        self,
        customer_id: str,
        *,
        payment_status: PaymentStatus | None,
        credit_hold: bool | None = None,
    ) -> Customer:
        body: dict[str, Any] = {"custentity_collections_status": payment_status}
        if credit_hold is not None:
            body["creditHoldOverride"] = {"id": "ON" if credit_hold else "AUTO"}
        await self._patch("customer", customer_id, body)
        return await self.get_customer(customer_id)

    async def list_customers(
        self, *, legal_entity: str | None = None, q: str | None = None,
        cursor: str | None = None, limit: int = 50,
    ) -> Page[Customer]:
        conditions = [q] if q else []
        if legal_entity is not None:
            sub = self._subsidiary_or_none(await self.directory(), legal_entity)
            if sub is None:
                return Page(data=[])
            conditions.append(f"subsidiary ANY_OF [{sub}]")
        return await self._page("customer", CustomerRecord, mapping.to_customer,
                                q=" AND ".join(conditions) or None, cursor=cursor, limit=limit)

    async def receivables_balance(self, customer_id: str) -> ReceivablesBalance:
        record = await self._read("customer", customer_id, CustomerRecord)
        currency = (await self.directory()).currency_code(record.currency)
        return ReceivablesBalance(
            customer_id=record.id,
            balance=from_decimal(record.balance, currency) if record.balance is not None
            else Money(amount=0, currency=currency),
            overdue=from_decimal(record.overdue_balance, currency)
            if record.overdue_balance is not None else Money(amount=0, currency=currency),
        )

    async def changed_since(self, since: dt.datetime) -> ErpChanges:
        """Two SuiteQL reads filtered on `lastmodifieddate` (to the second, in UTC: the
        integration role's time zone). NetSuite stamps an invoice modified when a payment or
        credit memo settles it. A deleted record is simply gone: only a full read shows it."""
        when = (f"lastmodifieddate >= TO_DATE('{since.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}', "
                "'YYYY-MM-DD HH24:MI:SS')")
        customers: set[str] = set()
        invoices: list[str] = []
        memos: list[str] = []
        async for row in self.suiteql(
                "SELECT id, type, entity FROM transaction WHERE type IN ('CustInvc', 'CustCred', "
                f"'CustPymt', 'SalesOrd') AND {when} ORDER BY id"):
            if "entity" in row:
                customers.add(row["entity"])
            if row.get("type") == "CustInvc":
                invoices.append(row["id"])
            elif row.get("type") == "CustCred":
                memos.append(row["id"])
        async for row in self.suiteql(f"SELECT id FROM customer WHERE {when} ORDER BY id"):
            customers.add(row["id"])
        return ErpChanges(customers=sorted(customers, key=_numeric_id), invoices=invoices,
                          credit_memos=memos)

    @staticmethod
    def _subsidiary_or_none(directory: mapping.Directory, code: str) -> str | None:
        try:
            return directory.subsidiary_id(code)
        except ValueError:
            return None

    # ---------------------------------------------------------------------- items

    async def list_products(self, *, cursor: str | None = None,
                            limit: int = 50) -> Page[Product]:
        return await self._page("serviceSaleItem", ItemRecord,
                                lambda record, _: mapping.to_product(record),
                                q=None, cursor=cursor, limit=limit)

    async def find_product(self, code: str) -> Product | None:
        async for rid in self.iter_ids("serviceSaleItem", q=f"itemId IS {_q_text(code)}"):
            return mapping.to_product(await self._read("serviceSaleItem", rid, ItemRecord))
        return None

    async def upsert_product(self, product: Product, *,
                             prices: Mapping[str, int] | None = None) -> Product:
        """Create or update the item whose external id is the product code."""
        directory = await self.directory()
        body = self._require(directory, lambda p, d: mapping.from_product(p, d, prices), product)
        rid = await self._upsert("serviceSaleItem", product.code, body)
        return mapping.to_product(await self._read("serviceSaleItem", rid, ItemRecord))

    # --------------------------------------------------------------- sales orders

    async def upsert_sales_order(self, order: SalesOrderCreate) -> SalesOrder:
        lines = [await self._with_item(line) for line in order.lines]
        order = msgspec.structs.replace(order, lines=lines)
        codes = await self._tax_code_ids(order.lines)
        body = self._require(
            await self.directory(),
            lambda o, d: mapping.from_sales_order_create(o, d, codes),
            order,
        )
        rid = await self._upsert("salesOrder", order.external_id, body)
        return await self.get_sales_order(rid)

    async def _tax_code_ids(self, lines: Sequence[SalesOrderLine]) -> dict[str, str]:
        """The internal ids of the lines' tax codes (the codes are their external ids)."""
        for code in {line.tax_code for line in lines if line.tax_code} - self._tax_codes.keys():
            try:
                record = await self._read("salesTaxItem", f"eid:{code}", TaxCodeRecord)
            except UpstreamNotFound as exc:
                raise UpstreamNotFound(
                    f"NetSuite has no tax code {code} (salesTaxItem externalId); set it up "
                    "as the company's tax table names it",
                    vendor="netsuite",
                ) from exc
            self._tax_codes[code] = record.id
        return dict(self._tax_codes)

    async def _with_item(self, line: SalesOrderLine) -> SalesOrderLine:
        if line.item_id is not None or line.product_code is None:
            return line
        product = await self.find_product(line.product_code)
        if product is None:
            raise InvalidRequest(f"no NetSuite item for product code {line.product_code}")
        return msgspec.structs.replace(line, item_id=product.id)

    async def get_sales_order(self, order_id: str) -> SalesOrder:
        record = await self._read("salesOrder", order_id, SalesOrderRecord, expand=True)
        return mapping.to_sales_order(record, await self.directory())

    async def list_sales_orders(
        self, *, number: str | None = None, customer_id: str | None = None,
        legal_entity: str | None = None, cursor: str | None = None, limit: int = 50,
        lines: bool = True, customer_ids: Sequence[str] | None = None,
    ) -> Page[SalesOrder]:
        if customer_ids is not None and not customer_ids:
            return Page(data=[])
        if not lines:
            return await self._order_headers(number=number, customer_id=customer_id,
                                             legal_entity=legal_entity, cursor=cursor,
                                             limit=limit, customer_ids=customer_ids)
        conditions = []
        if number:
            conditions.append(f"tranId IS {_q_text(number)}")
        if customer_id:
            conditions.append(f"entity ANY_OF [{_sql_id(customer_id)}]")
        if customer_ids:
            conditions.append(f"entity ANY_OF [{', '.join(map(_sql_id, customer_ids))}]")
        if legal_entity:
            sub = self._subsidiary_or_none(await self.directory(), legal_entity)
            if sub is None:
                return Page(data=[])
            conditions.append(f"subsidiary ANY_OF [{sub}]")
        return await self._page("salesOrder", SalesOrderRecord, mapping.to_sales_order,
                                q=" AND ".join(conditions) or None, cursor=cursor, limit=limit,
                                expand=True)

    async def _order_headers(self, *, number: str | None, customer_id: str | None,
                             legal_entity: str | None, cursor: str | None,
                             limit: int, customer_ids: Sequence[str] | None) -> Page[SalesOrder]:
        """A page of sales orders without their lines in one SuiteQL query."""
        where = ["type = 'SalesOrd'"]
        if number:
            where.append(f"tranid = {_sql_text(number)}")
        if customer_id:
            where.append(f"entity = {_sql_id(customer_id)}")
        if customer_ids:
            where.append(_entity_in(customer_ids))
        if legal_entity:
            sub = self._subsidiary_or_none(await self.directory(), legal_entity)
            if sub is None:
                return Page(data=[])
            where.append(f"subsidiary = {sub}")
        return await self._header_page("salesOrder", _ORDER_COLUMNS, _order_record,
                                       mapping.to_sales_order, where, cursor=cursor,
                                       limit=limit)

    async def _header_page(self, rtype: str, columns: Sequence[str],
                           record: Callable[[Mapping[str, str]], Any], convert: Any,
                           where: list[str], *, cursor: str | None, limit: int) -> Page[Any]:
        """A page of transactions read from their SuiteQL rows alone: the record API would
        take one request per transaction, which bounds a whole-ledger read by round trips."""
        pages = f"{VENDOR}:{rtype}"  # the same cursors as the per-record read
        offset = decode_cursor(cursor, list_name=pages, position=Offset) or 0
        query = (f"SELECT {', '.join(columns)} FROM transaction "
                 f"WHERE {' AND '.join(where)} ORDER BY id")
        page = await self.suiteql_page(query, limit=limit, offset=offset)
        directory = await self.directory()
        data = []
        for item in page.items:
            row = {key: str(value) for key, value in item.items() if key != "links"}
            try:
                data.append(convert(record(row), directory))
            except (KeyError, ValueError, ArithmeticError) as exc:
                raise UpstreamError(f"NetSuite answered a {rtype} row that cannot be read "
                                    f"({exc})", vendor=VENDOR) from exc
        more = page.has_more and bool(page.items)
        next_cursor = encode_cursor(offset + len(page.items), list_name=pages) if more else None
        return Page(data=data, next_cursor=next_cursor)

    # ------------------------------------------------------------------- invoices

    async def upsert_invoice(self, *, sales_order_id: str, external_id: str,
                             memo: str | None = None,
                             lines: Sequence[SalesOrderLine] | None = None,
                             tax_note: str | None = None) -> Invoice:
        """Bill a sales order: an invoice created from it with the order's lines, or with
        `lines` (what billing billed, with its tax per line) when given."""
        order = await self._read("salesOrder", sales_order_id, SalesOrderRecord)
        body: dict[str, Any] = {"entity": {"id": order.entity.id},
                                "createdFrom": {"id": order.id}}
        if lines:
            currency = (await self.directory()).currency_code(order.currency)
            codes = await self._tax_code_ids(lines)
            try:
                items = [mapping.item_line(line, currency, codes, invoiced=True)
                         for line in lines]
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from exc
            body["item"] = {"items": items}
        if tax_note is not None:
            body["custbody_erpgw_tax_note"] = tax_note
        if memo is not None:
            body["memo"] = memo
        return await self.get_invoice(await self._upsert("invoice", external_id, body))

    async def get_invoice(self, invoice_id: str) -> Invoice:
        record = await self._read("invoice", invoice_id, InvoiceRecord, expand=True)
        return mapping.to_invoice(record, await self.directory())

    async def find_invoice(self, *, external_id: str) -> Invoice | None:
        try:
            return await self.get_invoice(f"eid:{external_id}")
        except UpstreamNotFound:
            return None

    async def list_invoices(
        self, *, customer_id: str | None = None, status: InvoiceStatus | None = None,
        cursor: str | None = None, limit: int = 50, lines: bool = True,
        customer_ids: Sequence[str] | None = None,
    ) -> Page[Invoice]:
        if customer_ids is not None and not customer_ids:
            return Page(data=[])
        where = ["type = 'CustInvc'"]
        if customer_id:
            where.append(f"entity = {_sql_id(customer_id)}")
        if customer_ids:
            where.append(_entity_in(customer_ids))
        if status is not None:
            codes = {"open": "'A'", "paid": "'B'"}.get(status)
            if codes is None:
                return Page(data=[])
            where.append(f"status = {codes}")
        if not lines:
            return await self._invoice_headers(where, cursor=cursor, limit=limit)
        return await self._transaction_page("invoice", InvoiceRecord, mapping.to_invoice,
                                            where, cursor=cursor, limit=limit)

    async def _invoice_headers(self, where: list[str], *, cursor: str | None,
                               limit: int) -> Page[Invoice]:
        return await self._header_page("invoice", _INVOICE_COLUMNS, _invoice_record,
                                       mapping.to_invoice, where, cursor=cursor, limit=limit)

    async def mark_invoice_for_collections(
        self, invoice_id: str, *, status: str | None = COLLECTIONS_FLAG
    ) -> Invoice:
        await self._patch("invoice", invoice_id, {"custbody_collections_status": status})
        return await self.get_invoice(invoice_id)

    async def _transaction_page(self, rtype: str, kind: type[R], convert: Any,
                                where: list[str], *, cursor: str | None,
                                limit: int) -> Page[Any]:
        pages = f"{VENDOR}:{rtype}"
        offset = decode_cursor(cursor, list_name=pages, position=Offset) or 0
        query = f"SELECT id FROM transaction WHERE {' AND '.join(where)} ORDER BY id"
        page = await self.suiteql_page(query, limit=limit, offset=offset)
        directory = await self.directory()
        data = [convert(await self._read(rtype, str(row["id"]), kind, expand=True), directory)
                for row in page.items]
        more = page.has_more and bool(page.items)
        next_cursor = encode_cursor(offset + len(page.items), list_name=pages) if more else None
        return Page(data=data, next_cursor=next_cursor)

    # --------------------------------------------------------------- credit memos

    async def upsert_credit_memo(self, memo: CreditMemoCreate) -> CreditMemo:
        item_id = self._credit_item_id
        if item_id is None and memo.invoice_id:
            invoice = await self._read("invoice", memo.invoice_id, InvoiceRecord, expand=True)
            lines = invoice.item.items if invoice.item else []
            item_id = lines[0].item.id if lines else None
        if item_id is None:
            raise InvalidRequest("a credit memo needs an invoice or a configured credit item")
        directory = await self.directory()
        body = self._require(directory,
                             lambda m, d: mapping.from_credit_memo_create(m, d, item_id=item_id),
                             memo)
        rid = await self._upsert("creditMemo", memo.external_id, body)
        return await self.get_credit_memo(rid)

    async def get_credit_memo(self, memo_id: str) -> CreditMemo:
        record = await self._read("creditMemo", memo_id, CreditMemoRecord)
        return mapping.to_credit_memo(record, await self.directory())

    async def list_credit_memos(self, *, customer_id: str | None = None,
                                cursor: str | None = None, limit: int = 50,
                                customer_ids: Sequence[str] | None = None) -> Page[CreditMemo]:
        if customer_ids is not None and not customer_ids:
            return Page(data=[])
        where = ["type = 'CustCred'"]
        if customer_id:
            where.append(f"entity = {_sql_id(customer_id)}")
        if customer_ids:
            where.append(_entity_in(customer_ids))
        # A credit memo carries no lines in the contract: its SuiteQL row is all of it.
        return await self._header_page("creditMemo", _MEMO_COLUMNS, _memo_record,
                                       mapping.to_credit_memo, where, cursor=cursor,
                                       limit=limit)

    # ------------------------------------------------------- payments and journals

    async def upsert_customer_payment(self, payment: Payment, *, external_id: str) -> Payment:
        for attempt in range(1, _APPLY_ATTEMPTS + 1):
            try:
                rid = await self._post_payment(payment, external_id)
                break
            except UpstreamInvalid as exc:
                # A credit memo applied to the invoice between reading what it has open and
                # posting the payment: read again and apply what is open now.
                if attempt == _APPLY_ATTEMPTS or not _over_applied(exc):
                    raise
        record = await self._read("customerPayment", rid, CustomerPaymentRecord, expand=True)
        return mapping.to_payment(record, await self.directory())

    async def _post_payment(self, payment: Payment, external_id: str) -> str:
        invoice_open = (
            await self._open_to_payment(payment.invoice_id, external_id)
            if payment.invoice_id
            else None
        )
        try:
            body = mapping.from_payment(payment, await self.directory(), invoice_open=invoice_open)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        return await self._upsert("customerPayment", external_id, body)

    async def _open_to_payment(self, invoice_id: str, external_id: str) -> int:
        """What an invoice has open to the payment `external_id`, in minor units: its amount
        remaining plus what that payment (when posted before) already applies to it, since
        posting the payment again replaces its application. A credit memo applied to the
        invoice in between leaves less open than the payment's amount."""
        invoice = await self.get_invoice(invoice_id)
        try:
            earlier = await self._read("customerPayment", f"eid:{external_id}",
                                       CustomerPaymentRecord, expand=True)
        except UpstreamNotFound:
            return invoice.amount_remaining
        lines = earlier.apply.items if earlier.apply else []
        applied = sum((line.amount for line in lines if line.apply and line.doc.id == invoice_id),
                      Decimal(0))
        return invoice.amount_remaining + from_decimal(applied, invoice.currency).amount

    async def upsert_journal_entry(self, entry: JournalEntryCreate) -> JournalEntry:
        body = self._require(await self.directory(), mapping.from_journal_entry_create, entry)
        rid = await self._upsert("journalEntry", entry.external_id, body)
        record = await self._read("journalEntry", rid, JournalEntryRecord, expand=True)
        return mapping.to_journal_entry(record, await self.directory())

    # ------------------------------------------------------------------ approvals

    async def upsert_approval_task(self, task: ApprovalTask, *, external_id: str) -> ApprovalTask:
        body = self._require(await self.directory(), mapping.from_approval_task, task)
        return await self.get_approval_task(await self._upsert(APPROVAL_RECORD, external_id,
                                                               body))

    async def get_approval_task(self, task_id: str) -> ApprovalTask:
        record = await self._read(APPROVAL_RECORD, task_id, ApprovalRecord)
        return mapping.to_approval_task(record, await self.directory())

    async def decide_approval_task(self, task_id: str, decision: ApprovalDecision, *,
                                   decided_by: str) -> ApprovalTask:
        return await self.set_approval_status(task_id, decision.decision, decided_by=decided_by,
                                              reason=decision.reason)

    async def set_approval_status(self, task_id: str, status: ApprovalStatus, *,
                                  decided_by: str | None = None,
                                  reason: str | None = None) -> ApprovalTask:
        body: dict[str, Any] = {
            "custrecord_status": status,
            "custrecord_decided_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        if decided_by is not None:
            body["custrecord_decided_by"] = decided_by
        if reason is not None:
            body["custrecord_reason"] = reason
        await self._patch(APPROVAL_RECORD, task_id, body)
        return await self.get_approval_task(task_id)

    async def list_approval_tasks(self, *, status: ApprovalStatus | None = None,
                                  cursor: str | None = None,
                                  limit: int = 50) -> Page[ApprovalTask]:
        q = f"custrecord_status IS {_q_text(status)}" if status else None
        return await self._page(APPROVAL_RECORD, ApprovalRecord, mapping.to_approval_task,
                                q=q, cursor=cursor, limit=limit)


_ORDER_COLUMNS = ("id", "tranid", "entity", "subsidiary", "currency", "trandate", "status",
                  "foreigntotal", "externalid", "memo", "otherrefnum")
_MEMO_COLUMNS = ("id", "tranid", "entity", "subsidiary", "currency", "trandate",
                 "foreigntotal", "createdfrom", "externalid", "memo")
_INVOICE_COLUMNS = ("id", "tranid", "entity", "subsidiary", "currency", "trandate", "duedate",
                    "status", "foreigntotal", "foreignamountremaining", "taxtotal",
                    "createdfrom", "externalid", "memo", "custbody_collections_status",
                    "custbody_erpgw_tax_note")
# SuiteQL answers an invoice's status as its one-letter code; the record API as its name.
_INVOICE_STATUS_NAMES = {"A": "Open", "B": "Paid In Full", "V": "Voided"}


def _over_applied(exc: UpstreamInvalid) -> bool:
    """NetSuite refused a payment for applying more than an invoice has remaining."""
    return exc.code == "USER_ERROR" and any(
        error.pointer.startswith("apply.items") and error.pointer.endswith(".amount")
        for error in exc.errors
    )


def _entity_in(customer_ids: Sequence[str]) -> str:
    """A SuiteQL condition: the transaction is of one of these customers."""
    return f"entity IN ({', '.join(map(_sql_id, customer_ids))})"


def _numeric_id(rid: str) -> tuple[int, str]:
    return (int(rid), rid) if rid.isdigit() else (0, rid)


def _suiteql_date(text: str) -> dt.date:
    """A SuiteQL date (the account's format, M/D/YYYY by default) or an ISO date."""
    if "/" in text:
        month, day, year = (int(part) for part in text.split("/"))
        return dt.date(year, month, day)
    return dt.date.fromisoformat(text[:10])


def _invoice_record(row: Mapping[str, str]) -> InvoiceRecord:
    """The record API's view of an invoice's header from one SuiteQL row (absent = NULL)."""
    def ref(column: str) -> Ref | None:
        return Ref(id=row[column]) if column in row else None

    def amount(column: str) -> Decimal | None:
        return Decimal(row[column]) if column in row else None

    total = amount("foreigntotal") or Decimal(0)
    tax = amount("taxtotal")
    code = row.get("status")
    return InvoiceRecord(
        id=row["id"],
        tran_id=row.get("tranid"),
        entity=Ref(id=row["entity"]),
        subsidiary=Ref(id=row["subsidiary"]),
        currency=Ref(id=row["currency"]),
        tran_date=_suiteql_date(row["trandate"]),
        due_date=_suiteql_date(row["duedate"]) if "duedate" in row else None,
        status=Ref(id=code, ref_name=_INVOICE_STATUS_NAMES.get(code, code))
        if code is not None else None,
        total=total,
        amount_remaining=amount("foreignamountremaining"),
        created_from=ref("createdfrom"),
        external_id=row.get("externalid"),
        memo=row.get("memo"),
        collections_status=row.get("custbody_collections_status"),
        subtotal=total - tax if tax is not None else None,
        tax_total=tax,
        tax_note=row.get("custbody_erpgw_tax_note"),
    )


def _memo_record(row: Mapping[str, str]) -> CreditMemoRecord:
    """The record API's view of a credit memo from one SuiteQL row."""
    return CreditMemoRecord(
        id=row["id"],
        tran_id=row.get("tranid"),
        entity=Ref(id=row["entity"]),
        subsidiary=Ref(id=row["subsidiary"]),
        currency=Ref(id=row["currency"]),
        tran_date=_suiteql_date(row["trandate"]) if "trandate" in row else None,
        total=Decimal(row.get("foreigntotal", "0")),
        created_from=Ref(id=row["createdfrom"]) if "createdfrom" in row else None,
        external_id=row.get("externalid"),
        memo=row.get("memo"),
    )


def _order_record(row: Mapping[str, str]) -> SalesOrderRecord:
    """The record API's view of a sales order's header from one SuiteQL row; the status
    stays its one-letter code, which the mapping reads."""
    return SalesOrderRecord(
        id=row["id"],
        tran_id=row.get("tranid"),
        entity=Ref(id=row["entity"]),
        subsidiary=Ref(id=row["subsidiary"]),
        currency=Ref(id=row["currency"]),
        tran_date=_suiteql_date(row["trandate"]),
        status=row.get("status"),
        total=Decimal(row.get("foreigntotal", "0")),
        external_id=row.get("externalid"),
        memo=row.get("memo"),
        other_ref_num=row.get("otherrefnum"),
    )


def _next_offset(fetched: tuple[int, Collection | SuiteQLPage]) -> int | None:
    """The offset of the page after one fetched at `start`; None after the last page."""
    start, page = fetched
    return start + len(page.items) if page.has_more and page.items else None


def _location_id(response: httpx.Response, rtype: str) -> str:
    """The internal id at the end of the `Location` of a 204 create or upsert."""
    location = response.headers.get("Location", "")
    rid = location.rstrip("/").rsplit("/", 1)[-1]
    if not rid.isdigit():
        raise UpstreamError(f"NetSuite wrote {rtype} but named no record ({location!r})",
                            vendor=VENDOR, status=response.status_code,
                            request_id=response.headers.get("X-N-OperationId"))
    return str(rid)
