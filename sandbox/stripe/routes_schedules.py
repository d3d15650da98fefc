"""Subscription schedules (`/v1/subscription_schedules`): a subscription's phases over time.

What the sandbox keeps of them (https://docs.stripe.com/billing/subscriptions/subscription-schedules):
a schedule made `from_subscription` (one phase: the subscription's current items over its
current period), read back, and its phases replaced by an update. A phase takes over when the
subscription rolls into a period starting at or after the phase's `start_date`: its items
replace the subscription's (without prorations, as the boundary is a period start) and its
metadata is merged into the subscription's. Once the last phase has begun, a schedule whose
`end_behavior` is `release` lets the subscription go on alone (`status: released`).
"""

from __future__ import annotations

from sandbox.stripe import cycle
from sandbox.stripe.errors import invalid_request
from sandbox.stripe.params import Params
from sandbox.stripe.pricing import add_interval
from sandbox.stripe.render import render
from sandbox.stripe.routes_catalog import inline_price
from sandbox.stripe.store import Obj, Store, changed
from sandbox.stripe.usage import item_quantity

__all__ = [
    "create_schedule",
    "enter_phase",
    "get_schedule",
    "update_schedule",
]

KIND = "subscription_schedule"
_END_BEHAVIORS = ("release", "cancel")
_PRORATION = ("create_prorations", "none", "always_invoice")


def create_schedule(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("from_subscription", "metadata"))
    subscription = store.get(
        "subscription", params.required_text("from_subscription"), param="from_subscription"
    )
    if subscription["schedule"] is not None:
        raise invalid_request(
            f"You cannot migrate a subscription that is already attached to a schedule: "
            f"`{subscription['schedule']}`.",
            param="from_subscription",
        )
    if subscription["status"] == "canceled":
        raise invalid_request(
            "You cannot create a schedule from a canceled subscription.",
            param="from_subscription",
        )
    at = store.now(subscription["customer"])
    phase = {
        "start_date": subscription["current_period_start"],
        "end_date": subscription["current_period_end"],
        "items": [
            # A metered item has no quantity (Stripe leaves it out): its usage is billed.
            {"price": item["price"], "quantity": item.get("quantity"), "metadata": item["metadata"]}
            for item in cycle.items_of(store, subscription)
        ],
        "metadata": {},
        "proration_behavior": "create_prorations",
    }
    schedule: Obj = {
        "id": store.mint("sub_sched"),
        "object": KIND,
        "canceled_at": None,
        "completed_at": None,
        "created": at,
        "current_phase": {"start_date": phase["start_date"], "end_date": phase["end_date"]},
        "customer": subscription["customer"],
        "end_behavior": "release",
        "livemode": False,
        "metadata": params.metadata({}),
        "phases": [phase],
        "released_at": None,
        "released_subscription": None,
        "status": "active",
        "subscription": subscription["id"],
        "test_clock": subscription["test_clock"],
    }
    store.insert(schedule)
    subscription["schedule"] = schedule["id"]
    store.emit("subscription_schedule.created", render(store, schedule), created=at)
    return render(store, schedule, params.texts("expand"))


def get_schedule(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    return render(store, store.get(KIND, path["schedule"]), params.texts("expand"))


def update_schedule(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("end_behavior", "metadata", "phases", "proration_behavior"))
    schedule = store.get(KIND, path["schedule"])
    if schedule["status"] not in ("active", "not_started"):
        raise invalid_request(
            f"You cannot update a subscription schedule that is currently in the "
            f"`{schedule['status']}` status.",
        )
    subscription = store.get("subscription", schedule["subscription"])
    params.choice("proration_behavior", _PRORATION)
    if params.has("end_behavior"):
        schedule["end_behavior"] = params.choice("end_behavior", _END_BEHAVIORS)
    entries = params.hashes("phases")
    if entries:
        schedule["phases"] = _phases(store, subscription, entries)
        first = schedule["phases"][0]
        schedule["current_phase"] = {
            "start_date": first["start_date"],
            "end_date": first["end_date"],
        }
    schedule["metadata"] = params.metadata(schedule["metadata"])
    at = store.now(subscription["customer"])
    store.emit("subscription_schedule.updated", render(store, schedule), created=at)
    return render(store, schedule, params.texts("expand"))


def enter_phase(store: Store, subscription: Obj, *, period_start: int) -> None:
    """The subscription rolls into a period starting at `period_start`: the latest phase that
    has begun by then takes over (its items, its metadata), and a finished schedule releases."""
    schedule = store.find(KIND, subscription["schedule"] or "")
    if schedule is None or schedule["status"] != "active":
        return
    phases = schedule["phases"]
    begun = [i for i, phase in enumerate(phases) if phase["start_date"] <= period_start]
    if not begun or begun[-1] == 0:
        return
    index = begun[-1]
    phase = phases[index]
    if schedule["current_phase"]["start_date"] != phase["start_date"]:
        before = render(store, subscription)
        for item in cycle.items_of(store, subscription):
            store.remove(item)
        for entry in phase["items"]:
            cycle.new_item(
                store,
                subscription,
                store.get("price", entry["price"]),
                entry["quantity"],
                dict(entry["metadata"]),
                period_start,
            )
        subscription["metadata"] = {**subscription["metadata"], **phase["metadata"]}
        schedule["current_phase"] = {
            "start_date": phase["start_date"],
            "end_date": phase["end_date"],
        }
        after = render(store, subscription)
        store.emit(
            "customer.subscription.updated",
            after,
            previous=changed(before, after),
            created=period_start,
        )
    if index == len(phases) - 1 and schedule["end_behavior"] == "release":
        schedule.update(
            status="released",
            released_at=period_start,
            released_subscription=subscription["id"],
            current_phase=None,
        )
        subscription["schedule"] = None
        store.emit("subscription_schedule.released", render(store, schedule), created=period_start)


def _phases(store: Store, subscription: Obj, entries: list[Params]) -> list[Obj]:
    phases: list[Obj] = []
    interval = cycle.interval_of(store, subscription)
    previous_end: int | None = None
    for index, entry in enumerate(entries):
        entry.only(
            ("end_date", "items", "iterations", "metadata", "proration_behavior", "start_date")
        )
        start = entry.integer("start_date", minimum=0)
        if start is None:
            if previous_end is None:
                raise invalid_request(
                    "The first phase needs a `start_date`.",
                    param=entry.name("start_date"),
                    code="parameter_missing",
                )
            start = previous_end
        elif previous_end is not None and start != previous_end:
            raise invalid_request(
                "A phase must start when the phase before it ends.",
                param=entry.name("start_date"),
            )
        end = entry.integer("end_date", minimum=0)
        iterations = entry.integer("iterations", minimum=1)
        if end is None and iterations is not None and interval is not None:
            end = start
            for _ in range(iterations):
                end = add_interval(end, *interval)
        if end is not None and end <= start:
            raise invalid_request(
                "The phase must end after it starts.", param=entry.name("end_date")
            )
        if end is None and index < len(entries) - 1:
            raise invalid_request(
                "Every phase but the last needs an `end_date` or `iterations`.",
                param=entry.name("end_date"),
                code="parameter_missing",
            )
        items = entry.hashes("items")
        if not items:
            raise invalid_request(
                "Missing required param: items.",
                param=entry.name("items"),
                code="parameter_missing",
            )
        phases.append(
            {
                "start_date": start,
                "end_date": end,
                "items": [_phase_item(store, subscription, item) for item in items],
                "metadata": entry.metadata({}),
                "proration_behavior": entry.choice(
                    "proration_behavior", _PRORATION, default="create_prorations"
                ),
            }
        )
        previous_end = end
    return phases


def _phase_item(store: Store, subscription: Obj, entry: Params) -> Obj:
    entry.only(("metadata", "price", "price_data", "quantity"))
    data = entry.nested("price_data")
    if data is not None and entry.has("price"):
        raise invalid_request(
            "You may only specify one of these parameters: price, price_data.",
            param=entry.name("price_data"),
        )
    price = (
        inline_price(store, data, recurring=True)
        if data is not None
        else store.get("price", entry.required_text("price"), param=entry.name("price"))
    )
    cycle.check_price(
        price,
        currency=subscription["currency"],
        interval=cycle.interval_of(store, subscription),
        param=entry.name("price"),
    )
    quantity = item_quantity(
        price, entry.integer("quantity", minimum=0), param=entry.name("quantity")
    )
    return {"price": price["id"], "quantity": quantity, "metadata": entry.metadata({})}
