"""Test clocks (`/v1/test_helpers/test_clocks`): simulated time for a group of customers.

Advancing a clock replays what would happen in between, in time order: subscriptions renew
into new periods (drafting their invoices), drafts are finalized an hour after creation and
charged, failed charges are retried, unpaid first invoices expire their subscription.
Stripe advances asynchronously (`status: advancing`, then `ready`); the sandbox does the work
before answering, answers `advancing` as Stripe does, and reads `ready` from then on.
"""

from __future__ import annotations

from collections.abc import Callable

from sandbox.stripe import cycle, invoicing
from sandbox.stripe.errors import invalid_request
from sandbox.stripe.params import Params
from sandbox.stripe.render import page, render
from sandbox.stripe.store import Obj, Store

__all__ = [
    "advance_test_clock",
    "create_test_clock",
    "delete_test_clock",
    "get_test_clock",
    "list_test_clocks",
]

_KIND = "test_helpers.test_clock"
_LIFETIME = 30 * 86_400
"""Stripe deletes a test clock (and its objects) 30 days after creating it."""
_INCOMPLETE_EXPIRY = 23 * 3_600
"""An incomplete subscription expires when its first invoice stays unpaid for 23 hours."""
_MAX_RETRIES = 4
_MAX_STEPS = 10_000


def create_test_clock(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("frozen_time", "name"))
    frozen = params.integer("frozen_time", required=True)
    now = store.real_now()
    clock: Obj = {
        "id": store.mint("clock"),
        "object": _KIND,
        "created": now,
        "deletes_after": now + _LIFETIME,
        "frozen_time": frozen,
        "livemode": False,
        "name": params.text("name") or None,
        "status": "ready",
    }
    store.insert(clock)
    store.emit("test_helpers.test_clock.created", render(store, clock))
    return render(store, clock)


def get_test_clock(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    return render(store, store.get(_KIND, path["clock"]))


def list_test_clocks(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("limit", "starting_after", "ending_before"))
    return page(store, store.newest_first(_KIND), params, "/v1/test_helpers/test_clocks")


def delete_test_clock(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    clock = store.get(_KIND, path["clock"])
    store.remove(clock)
    return {"id": clock["id"], "object": _KIND, "deleted": True}


def advance_test_clock(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("frozen_time",))
    clock = store.get(_KIND, path["clock"])
    target = params.integer("frozen_time", required=True)
    assert target is not None
    if target <= clock["frozen_time"]:
        raise invalid_request(
            "The test clock can only be advanced to a time after its current frozen_time.",
            param="frozen_time",
        )
    store.emit("test_helpers.test_clock.advancing", {**render(store, clock), "status": "advancing"})
    _run_until(store, clock, target)
    clock["frozen_time"] = target
    store.emit("test_helpers.test_clock.ready", render(store, clock))
    return {**render(store, clock), "status": "advancing"}


def _run_until(store: Store, clock: Obj, target: int) -> None:
    for _ in range(_MAX_STEPS):
        due = _next_due(store, clock, target)
        if due is None:
            return
        moment, action = due
        clock["frozen_time"] = moment
        action()
    raise invalid_request("The test clock advance produced too many billing events.")


def _next_due(store: Store, clock: Obj, target: int) -> tuple[int, Callable[[], None]] | None:
    """The earliest thing that happens on `clock` at or before `target`."""
    candidates: list[tuple[int, int, Callable[[], None]]] = []
    customers = {c["id"] for c in store.oldest_first("customer") if c["test_clock"] == clock["id"]}
    for order, sub in enumerate(store.oldest_first("subscription")):
        if sub["customer"] not in customers:
            continue
        if sub["status"] in ("active", "past_due", "trialing", "unpaid"):
            end = int(sub["current_period_end"])
            candidates.append((end, order, _bound(cycle.renew, store, sub, end)))
        elif sub["status"] == "incomplete":
            expiry = int(sub["created"]) + _INCOMPLETE_EXPIRY
            candidates.append((expiry, order, _expire(store, sub, expiry)))
    for order, invoice in enumerate(store.oldest_first("invoice")):
        if invoice["customer"] not in customers or not invoice["auto_advance"]:
            continue
        if invoice["status"] == "draft":
            moment = int(invoice["created"]) + cycle.FINALIZE_DELAY
            candidates.append((moment, order, _finalize(store, invoice, moment)))
        elif invoice["status"] == "open" and invoice["next_payment_attempt"] is not None:
            moment = int(invoice["next_payment_attempt"])
            candidates.append((moment, order, _retry(store, invoice, moment)))
    eligible = [c for c in candidates if c[0] <= target]
    if not eligible:
        return None
    moment, _, action = min(eligible, key=lambda c: (c[0], c[1]))
    return moment, action


def _bound(
    renew: Callable[..., None], store: Store, subscription: Obj, at: int
) -> Callable[[], None]:
    return lambda: renew(store, subscription, at=at)


def _finalize(store: Store, invoice: Obj, at: int) -> Callable[[], None]:
    def run() -> None:
        invoicing.finalize(store, invoice, at=at)
        if invoice["status"] == "open" and invoice["collection_method"] == "charge_automatically":
            invoicing.collect(store, invoice, at=at, raise_on_decline=False)

    return run


def _retry(store: Store, invoice: Obj, at: int) -> Callable[[], None]:
    def run() -> None:
        invoicing.collect(store, invoice, at=at, raise_on_decline=False)
        if invoice["status"] == "open" and invoice["attempt_count"] >= _MAX_RETRIES:
            invoice["next_payment_attempt"] = None

    return run


def _expire(store: Store, subscription: Obj, at: int) -> Callable[[], None]:
    def run() -> None:
        previous = {"status": subscription["status"]}
        subscription.update(status="incomplete_expired", ended_at=at)
        store.emit(
            "customer.subscription.updated",
            render(store, subscription),
            previous=previous,
            created=at,
        )

    return run
