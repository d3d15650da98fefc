"""Stripe customers: create (idempotent), read, update, list, search."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from contracts.v1 import Customer, CustomerCreate, CustomerPatch, Page
from system_apis.billing.stripe import mapping
from system_apis.billing.stripe._client_base import ClientBase, created_range, quote_search, to_page
from system_apis.billing.stripe._wire import CustomerWire

__all__ = ["CustomerOperations"]


class CustomerOperations(ClientBase):
    """Customer operations of `StripeClient`."""

    # customers ---------------------------------------------------------------------------------

    async def create_customer(
        self,
        customer: CustomerCreate,
        *,
        crm_account_id: str | None = None,
        canonical_id: str | None = None,
        test_clock: str | None = None,
        idempotency_key: str | None = None,
    ) -> Customer:
        params = {
            **mapping.from_customer_create(
                customer, crm_account_id=crm_account_id, canonical_id=canonical_id
            )
        }
        params["test_clock"] = test_clock
        wire = await self.post_json(
            "/v1/customers", params, CustomerWire, idempotency_key, "customer create"
        )
        return mapping.to_customer(wire)

    async def get_customer(self, customer_id: str) -> Customer:
        return mapping.to_customer(await self._customer_wire(customer_id))

    async def update_customer(
        self, customer_id: str, patch: CustomerPatch, *, idempotency_key: str | None = None
    ) -> Customer:
        current = await self._customer_wire(customer_id)
        params = mapping.from_customer_patch(patch, current=current)
        wire = await self.post_json(
            f"/v1/customers/{customer_id}",
            params,
            CustomerWire,
            idempotency_key,
            f"customer {customer_id} update",
            template="/v1/customers/{id}",
        )
        return mapping.to_customer(wire)

    async def list_customers(
        self,
        *,
        email: str | None = None,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Customer]:
        query = {"email": email, "created": created_range(created_gte, created_lte)}
        wire = await self.list_page(
            "/v1/customers", query, CustomerWire, cursor, limit, "customers"
        )
        return to_page(wire, mapping.to_customer)

    async def iter_customers(self, *, email: str | None = None) -> AsyncIterator[Customer]:
        query = {"email": email}
        async for wire in self.iterate("/v1/customers", query, CustomerWire, "customers"):
            yield mapping.to_customer(wire)

    async def find_customer(self, *, crm_account_id: str) -> Customer | None:
        """The customer mirroring a CRM account, found by `metadata['crm_account_id']`."""
        query = f"metadata['{mapping.META_CRM_ACCOUNT}']:'{quote_search(crm_account_id)}'"
        found = await self.search_customers(query, limit=1)
        return found[0] if found else None

    async def search_customers(self, query: str, *, limit: int = 10) -> list[Customer]:
        """Stripe's customer search (`/v1/customers/search`), following `next_page` to `limit`."""
        return [
            mapping.to_customer(w)
            for w in await self.search("/v1/customers/search", query, CustomerWire, limit)
        ]

    async def _customer_wire(self, customer_id: str) -> CustomerWire:
        return await self.get_json(
            f"/v1/customers/{customer_id}",
            CustomerWire,
            f"customer {customer_id}",
            template="/v1/customers/{id}",
        )
