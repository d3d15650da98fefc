"""Metered billing: usage records of subscription items and their per-period summaries.

`POST /v1/subscription_items/{id}/usage_records` records usage of an item whose price is
metered (`recurring[usage_type]=metered`): `action=increment` (default) adds the quantity at
the timestamp, `set` replaces what is recorded at that timestamp. The timestamp must lie in the
subscription's current period and not after its now (its test clock's frozen time). A period's
total (`aggregate_usage=sum`) is billed in arrears on the invoice that renews the subscription
(https://docs.stripe.com/billing/subscriptions/usage-based-legacy/recording-usage).
`GET .../usage_record_summaries` lists one summary a period, newest first, each naming the
invoice that billed it.
"""

from __future__ import annotations

from sandbox.stripe.errors import invalid_request
from sandbox.stripe.params import Params
from sandbox.stripe.render import limit_of, list_object
from sandbox.stripe.store import Obj, Store

__all__ = [
    "close_usage_period",
    "create_usage_record",
    "is_metered",
    "item_quantity",
    "list_usage_record_summaries",
    "usage_total",
]

_ACTIONS = ("increment", "set")


def is_metered(price: Obj) -> bool:
    recurring = price.get("recurring") or {}
    return recurring.get("usage_type") == "metered"


def item_quantity(price: Obj, quantity: int | None, *, param: str) -> int | None:
    """The quantity of an item of `price` as given (`param`): none for a metered price, which
    refuses one (its usage is billed), else the one given or 1."""
    if not is_metered(price):
        return 1 if quantity is None else quantity
    if quantity is not None:
        raise invalid_request(
            "Quantity should not be specified where usage_type is `metered`. Remove "
            f"quantity from `{param}`.",
            param=param,
        )
    return None


def create_usage_record(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("action", "quantity", "timestamp"))
    item = store.get("subscription_item", path["item"])
    subscription = store.get("subscription", item["subscription"])
    price = store.get("price", item["price"])
    if not is_metered(price):
        raise invalid_request(
            "Usage records can only be created for subscription items with a metered price "
            f"(price {price['id']} has usage_type=licensed)."
        )
    if subscription["status"] in ("canceled", "incomplete_expired"):
        raise invalid_request(
            f"Usage cannot be recorded for the canceled subscription {subscription['id']}."
        )
    quantity = params.integer("quantity", required=True, minimum=0)
    assert quantity is not None
    action = str(params.choice("action", _ACTIONS, default="increment"))
    now = store.now(subscription["customer"])
    at = _timestamp(params, now)
    start = int(subscription["current_period_start"])
    if at < start:
        raise invalid_request(
            "Cannot create the usage record with this timestamp because timestamps must be "
            "after the subscription's last invoice period (or current period start time).",
            param="timestamp",
        )
    if at > now:
        raise invalid_request(
            "Cannot create the usage record with this timestamp because timestamps must not "
            "be in the future.",
            param="timestamp",
        )
    record: Obj = {
        "id": store.mint("mbur"),
        "object": "usage_record",
        "livemode": False,
        "quantity": quantity,
        "subscription_item": item["id"],
        "timestamp": at,
        "_action": action,
    }
    return {key: value for key, value in store.insert(record).items() if not key.startswith("_")}


def list_usage_record_summaries(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("limit",))
    item = store.get("subscription_item", path["item"])
    subscription = store.get("subscription", item["subscription"])
    summaries = list(reversed(item.get("_summaries", [])))
    start, end = int(subscription["current_period_start"]), int(subscription["current_period_end"])
    if subscription["status"] not in ("canceled", "incomplete_expired"):
        summaries.insert(0, _summary(store, item, (start, end), invoice=None))
    # A few periods at most: one page, cut at `limit`.
    limit = limit_of(params)
    url = f"/v1/subscription_items/{item['id']}/usage_record_summaries"
    return list_object(store, summaries[:limit], url, (), has_more=len(summaries) > limit)


def usage_total(store: Store, item: Obj, period: tuple[int, int]) -> int:
    """The item's usage in [start, end): per timestamp the last `set` plus later increments."""
    at_moment: dict[int, int] = {}
    for record in store.oldest_first("usage_record"):
        if record["subscription_item"] != item["id"]:
            continue
        moment = int(record["timestamp"])
        if not period[0] <= moment < period[1]:
            continue
        if record["_action"] == "set":
            at_moment[moment] = int(record["quantity"])
        else:
            at_moment[moment] = at_moment.get(moment, 0) + int(record["quantity"])
    return sum(at_moment.values())


def close_usage_period(store: Store, item: Obj, period: tuple[int, int], invoice_id: str) -> int:
    """Record the closed period's summary as billed by `invoice_id`; returns its total."""
    summary = _summary(store, item, period, invoice=invoice_id)
    item.setdefault("_summaries", []).append(summary)
    item.pop("_open_summary", None)
    return int(summary["total_usage"])


def _summary(store: Store, item: Obj, period: tuple[int, int], *, invoice: str | None) -> Obj:
    # The open period keeps one id until it closes, as Stripe's summaries do.
    summary_id = item.get("_open_summary") or store.mint("sis")
    item["_open_summary"] = summary_id
    return {
        "id": summary_id,
        "object": "usage_record_summary",
        "invoice": invoice,
        "livemode": False,
        "period": {"start": period[0], "end": period[1]},
        "subscription_item": item["id"],
        "total_usage": usage_total(store, item, period),
    }


def _timestamp(params: Params, now: int) -> int:
    raw = params.text("timestamp")
    if raw is None or raw == "now":
        return now
    value = params.integer("timestamp", minimum=0)
    assert value is not None
    return value
