"""Tax rates over HTTP (`/v1/tax_rates`): the rates billing applies to invoice lines.

A rate is exclusive or inclusive and its `percentage` is fixed once created (Stripe: "you
can't change the percentage of a tax rate"; archive it and create another). The invoice
arithmetic is in `invoicing.recompute`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from sandbox.stripe.errors import invalid_request
from sandbox.stripe.params import Params
from sandbox.stripe.render import created_filter, page, render
from sandbox.stripe.store import Obj, Store

__all__ = ["create_tax_rate", "get_tax_rate", "list_tax_rates", "tax_rates_of", "update_tax_rate"]

_TAX_TYPES = (
    "amusement_tax", "communications_tax", "gst", "hst", "igst", "jct", "lease_tax", "pst",
    "qst", "retail_delivery_fee", "rst", "sales_tax", "service_tax", "vat",
)
_UPDATABLE = ("active", "country", "description", "display_name", "jurisdiction", "metadata",
              "state", "tax_type")


def create_tax_rate(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only((*_UPDATABLE, "inclusive", "percentage"))
    display_name = params.required_text("display_name")
    inclusive = params.flag("inclusive")
    if inclusive is None:
        raise invalid_request(
            "Missing required param: inclusive.", param="inclusive", code="parameter_missing"
        )
    percentage = _percentage(params.required_text("percentage"))
    rate: Obj = {
        "id": store.mint("txr"),
        "object": "tax_rate",
        "active": True,
        "country": None,
        "created": store.real_now(),
        "description": None,
        "display_name": display_name,
        "effective_percentage": float(percentage),
        "inclusive": inclusive,
        "jurisdiction": None,
        "jurisdiction_level": None,
        "livemode": False,
        "metadata": {},
        "percentage": float(percentage),
        "state": None,
        "tax_type": None,
    }
    _apply(rate, params)
    store.insert(rate)
    return render(store, rate, params.texts("expand"))


def get_tax_rate(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    return render(store, store.get("tax_rate", path["tax_rate"]), params.texts("expand"))


def update_tax_rate(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(_UPDATABLE)
    rate = store.get("tax_rate", path["tax_rate"])
    _apply(rate, params)
    return render(store, rate, params.texts("expand"))


def list_tax_rates(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("active", "created", "inclusive", "limit", "starting_after", "ending_before"))
    active, inclusive = params.flag("active"), params.flag("inclusive")
    in_window = created_filter(params)
    candidates = [
        rate
        for rate in store.newest_first("tax_rate")
        if (active is None or rate["active"] == active)
        and (inclusive is None or rate["inclusive"] == inclusive)
        and in_window(rate)
    ]
    return page(store, candidates, params, "/v1/tax_rates")


def tax_rates_of(store: Store, params: Params, key: str) -> list[Obj]:
    """The active tax rates a `key[]` parameter names (each checked), as stored objects."""
    rates = []
    for index, rate_id in enumerate(params.texts(key)):
        rate = store.get("tax_rate", rate_id, param=f"{params.name(key)}[{index}]")
        if not rate["active"]:
            raise invalid_request(
                f"Tax rate {rate_id} is archived and cannot be applied.",
                param=f"{params.name(key)}[{index}]",
            )
        rates.append(rate)
    return rates


def _apply(rate: Obj, params: Params) -> None:
    for field in ("country", "description", "jurisdiction", "state"):
        if params.has(field):
            rate[field] = params.text(field) or None
    if params.has("display_name"):
        rate["display_name"] = params.required_text("display_name")
    if params.has("tax_type"):
        rate["tax_type"] = params.choice("tax_type", _TAX_TYPES)
    flag = params.flag("active")
    if flag is not None:
        rate["active"] = flag
    rate["metadata"] = params.metadata(rate["metadata"])


def _percentage(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise invalid_request(f"Invalid decimal: {raw}", param="percentage") from exc
    if not value.is_finite() or value < 0 or value > 100:
        raise invalid_request(
            "The percentage must be between 0 and 100.", param="percentage"
        )
    return value
