"""Two more things a flow body may do: publish a value for readers outside the flow (a
resource the routes show while the flow runs), and sleep durably (a flow that must wait for a
date).

Both are DBOS workflow operations: checkpointed like a step, replayed on recovery, and (for
published values) readable from any gateway process that shares the system database.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec
from dbos import DBOS

__all__ = ["pause", "publish", "read_published"]

T = TypeVar("T", bound=msgspec.Struct)


async def publish(key: str, value: msgspec.Struct) -> None:
    """Set the running flow's `key` to `value` (inside a flow body only, not in a step)."""
    # Plain builtins, not the Struct: a stored value must outlive a change of its class.
    await DBOS.set_event_async(key, msgspec.to_builtins(value))


async def read_published(flow_id: str, key: str, kind: type[T]) -> T | None:
    """The latest value flow `flow_id` published under `key`; None before it published one."""
    events = await DBOS.get_all_events_async(flow_id)
    raw = events.get(key)
    return None if raw is None else msgspec.convert(raw, kind)


async def pause(seconds: float) -> None:
    """Sleep durably inside a flow body: a flow recovered after a restart sleeps only what is
    left of `seconds`."""
    await DBOS.sleep_async(seconds)
