"""The emulator's in-memory Stripe account: objects by type, creation order, clock and events.

Objects are the plain JSON dicts Stripe would answer with (references held as ids and expanded
when rendered). Lists are newest first, as Stripe's are; a cursor (`starting_after`) is any
object id, located by its creation sequence so it works under any filter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.stripe.context import current_request
from sandbox.stripe.errors import no_such
from sandbox.stripe.ids import IdMinter

__all__ = ["API_VERSION", "KINDS", "Obj", "Store", "changed"]

Obj = dict[str, Any]
EventListener = Callable[[Obj], None]

API_VERSION = "2023-08-16"

KINDS: dict[str, tuple[str, str]] = {
    # id prefix -> (object type, wording in "No such ..." errors)
    "cus": ("customer", "customer"),
    "prod": ("product", "product"),
    "price": ("price", "price"),
    "sub": ("subscription", "subscription"),
    "si": ("subscription_item", "subscription item"),
    "in": ("invoice", "invoice"),
    "ii": ("invoiceitem", "invoiceitem"),
    "pi": ("payment_intent", "payment_intent"),
    "cn": ("credit_note", "credit note"),
    "evt": ("event", "event"),
    "we": ("webhook_endpoint", "webhook endpoint"),
    "clock": ("test_helpers.test_clock", "test clock"),
    "txr": ("tax_rate", "tax rate"),
    "mbur": ("usage_record", "usage record"),
    "sub_sched": ("subscription_schedule", "subscription schedule"),
}
_LABELS = {kind: label for kind, label in KINDS.values()}


class Store:
    """Every object of the emulated account, with the clock and the event log."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.ids = IdMinter()
        self._clock = clock
        self._objects: dict[str, dict[str, Obj]] = {}
        self._sequence: dict[str, int] = {}
        self._counter = 0
        self.listeners: list[EventListener] = []

    def clear(self) -> None:
        self.ids.reset()
        self._objects.clear()
        self._sequence.clear()
        self._counter = 0

    # objects -------------------------------------------------------------------------------

    def mint(self, prefix: str) -> str:
        return self.ids.mint(prefix)

    def insert(self, obj: Obj) -> Obj:
        self._counter += 1
        self._objects.setdefault(obj["object"], {})[obj["id"]] = obj
        self._sequence[obj["id"]] = self._counter
        return obj

    def remove(self, obj: Obj) -> None:
        self._objects.get(obj["object"], {}).pop(obj["id"], None)

    def find(self, kind: str, object_id: str) -> Obj | None:
        return self._objects.get(kind, {}).get(object_id)

    def get(self, kind: str, object_id: str, *, param: str = "id") -> Obj:
        obj = self.find(kind, object_id)
        if obj is None:
            # Stripe answers 404 for the object in the path, 400 for one named by a parameter.
            error = no_such(_LABELS.get(kind, kind), object_id, param=param)
            if param != "id":
                error.status = 400
            raise error
        return obj

    def find_any(self, object_id: str) -> Obj | None:
        """The object an id names, whatever its type (for `expand[]`)."""
        prefix = object_id.split("_", 1)[0]
        kind = KINDS.get(prefix)
        return self.find(kind[0], object_id) if kind else None

    def newest_first(self, kind: str) -> list[Obj]:
        return list(reversed(self._objects.get(kind, {}).values()))

    def oldest_first(self, kind: str) -> list[Obj]:
        return list(self._objects.get(kind, {}).values())

    def sequence(self, object_id: str) -> int | None:
        return self._sequence.get(object_id)

    # time ----------------------------------------------------------------------------------

    def now(self, customer_id: str | None = None) -> int:
        """Unix time for an object of `customer_id`: its test clock's frozen time if it has one."""
        clock_id = self.clock_of(customer_id)
        if clock_id is not None:
            clock = self.find("test_helpers.test_clock", clock_id)
            if clock is not None:
                return int(clock["frozen_time"])
        return int(self._clock())

    def real_now(self) -> int:
        return int(self._clock())

    def clock_of(self, customer_id: str | None) -> str | None:
        if customer_id is None:
            return None
        customer = self.find("customer", customer_id)
        return None if customer is None else customer.get("test_clock")

    # events --------------------------------------------------------------------------------

    def emit(
        self,
        event_type: str,
        snapshot: Obj,
        *,
        previous: Obj | None = None,
        created: int | None = None,
    ) -> Obj:
        """Record an event whose `data.object` is `snapshot` (already rendered) and announce it."""
        request = current_request()
        data: Obj = {"object": snapshot}
        if previous:
            data["previous_attributes"] = previous
        event: Obj = {
            "id": self.mint("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": created if created is not None else self.real_now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": request.request_id, "idempotency_key": request.idempotency_key},
            "type": event_type,
        }
        self.insert(event)
        for listener in self.listeners:
            listener(event)
        return event


def changed(before: Obj, after: Obj, keys: Iterable[str] | None = None) -> Obj:
    """`previous_attributes`: the old values of the top-level keys that changed."""
    names = keys if keys is not None else after.keys()
    return {key: before.get(key) for key in names if before.get(key) != after.get(key)}
