"""Stripe products and prices: the catalog, found by product code."""

from __future__ import annotations

from contracts.v1 import Page, Price, Product
from system_apis.billing.stripe import mapping
from system_apis.billing.stripe._client_base import ClientBase, quote_search, to_page
from system_apis.billing.stripe._wire import PriceWire, ProductWire

__all__ = ["CatalogOperations"]


class CatalogOperations(ClientBase):
    """Catalog operations of `StripeClient`."""

    # catalog -----------------------------------------------------------------------------------

    async def create_product(
        self, product: Product, *, idempotency_key: str | None = None
    ) -> Product:
        wire = await self.post_json(
            "/v1/products",
            mapping.from_product(product),
            ProductWire,
            idempotency_key,
            "product create",
        )
        return mapping.to_product(wire)

    async def get_product(self, product_id: str) -> Product:
        wire = await self.get_json(
            f"/v1/products/{product_id}",
            ProductWire,
            f"product {product_id}",
            template="/v1/products/{id}",
        )
        return mapping.to_product(wire)

    async def update_product(
        self,
        product_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        active: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Product:
        params = {"name": name, "description": description, "active": active}
        wire = await self.post_json(
            f"/v1/products/{product_id}",
            params,
            ProductWire,
            idempotency_key,
            f"product {product_id} update",
            template="/v1/products/{id}",
        )
        return mapping.to_product(wire)

    async def list_products(
        self, *, active: bool | None = None, cursor: str | None = None, limit: int = 50
    ) -> Page[Product]:
        wire = await self.list_page(
            "/v1/products", {"active": active}, ProductWire, cursor, limit, "products"
        )
        return to_page(wire, mapping.to_product)

    async def find_product(self, code: str) -> Product | None:
        """The product whose `metadata['product_code']` is `code` (the catalog's SKU)."""
        query = f"metadata['{mapping.META_PRODUCT_CODE}']:'{quote_search(code)}'"
        found = await self.search("/v1/products/search", query, ProductWire, 1)
        return mapping.to_product(found[0]) if found else None

    async def create_price(
        self,
        price: Price,
        *,
        lookup_key: str | None = None,
        idempotency_key: str | None = None,
    ) -> Price:
        params = {
            **mapping.from_price(price, product_id=price.product_id, lookup_key=lookup_key),
            "expand": ["tiers"],
        }
        wire = await self.post_json(
            "/v1/prices", params, PriceWire, idempotency_key, "price create"
        )
        return mapping.to_price(wire)

    async def get_price(self, price_id: str) -> Price:
        wire = await self.get_json(
            f"/v1/prices/{price_id}",
            PriceWire,
            f"price {price_id}",
            template="/v1/prices/{id}",
            expand=["tiers"],
        )
        return mapping.to_price(wire)

    async def list_prices(
        self,
        *,
        product_id: str | None = None,
        currency: str | None = None,
        active: bool | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Price]:
        query = {
            "product": product_id,
            "currency": currency.lower() if currency else None,
            "active": active,
            "expand": ["data.tiers"],
        }
        wire = await self.list_page("/v1/prices", query, PriceWire, cursor, limit, "prices")
        return to_page(wire, mapping.to_price)

    async def find_price(self, *, product_code: str, currency: str) -> Price | None:
        """The active price of the product with `product_code` in `currency`, if any."""
        product = await self.find_product(product_code)
        if product is None:
            return None
        page = await self.list_prices(
            product_id=product.id, currency=currency, active=True, limit=1
        )
        return page.data[0] if page.data else None
