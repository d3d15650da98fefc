"""What the process layer tells whoever measures it: flows started and finished, step attempts,
money booked, invoiced, credited and collected, webhooks processed. The gateway implements
it with Prometheus series (`gateway.metrics`); without one, nothing is measured.
"""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

__all__ = ["FlowObserver", "MoneyKind", "MoneyMoved", "NoObserver"]

MoneyKind = Literal["booked", "invoiced", "credited", "collected"]


class MoneyMoved(msgspec.Struct, frozen=True, kw_only=True):
    """An amount a step booked in a platform (integer minor units of `currency`)."""

    kind: MoneyKind
    legal_entity: str
    currency: str
    amount: int


class FlowObserver(Protocol):
    def flow_started(self, flow_type: str) -> None:
        """A new flow was recorded (a duplicate start is not one)."""

    def flow_finished(self, flow_type: str, outcome: str) -> None:
        """A flow ended: `succeeded`, `failed` or `cancelled`."""

    def step_attempted(self, system: str, outcome: str, seconds: float) -> None:
        """One attempt of a step calling `system` ended (`succeeded` or `failed`)."""

    def money_moved(self, money: MoneyMoved) -> None:
        """A step booked an amount (reported once per successful step)."""

    def webhook_processed(
        self, source: str, *, processing_seconds: float, event_age_seconds: float | None
    ) -> None:
        """A delivery was stored and its flows enqueued: how long that took, and how old the
        event was by then (from the vendor's event time; None when it gives none)."""


class NoObserver:
    """Measures nothing (the engine's default)."""

    def flow_started(self, flow_type: str) -> None:
        return None

    def flow_finished(self, flow_type: str, outcome: str) -> None:
        return None

    def step_attempted(self, system: str, outcome: str, seconds: float) -> None:
        return None

    def money_moved(self, money: MoneyMoved) -> None:
        return None

    def webhook_processed(
        self, source: str, *, processing_seconds: float, event_age_seconds: float | None
    ) -> None:
        return None
