"""The app's request class: every JSON body a route takes as `data` is decoded by
`contracts.json_input`, so a repeated key or nesting deep enough to exhaust the stack is a 400
problem on every route, not a silent last-one-wins or a 500."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.types import Empty

from contracts.json_input import decode_json_input

__all__ = ["GatewayRequest"]


class GatewayRequest(Request[Any, Any, Any]):
    """Litestar's `Request` with the gateway's JSON decoding (the value is cached on the
    connection, as Litestar caches its own)."""

    __slots__ = ()

    async def json(self) -> Any:
        if self._json is Empty:
            state = self._connection_state
            if state.json is not Empty:
                self._json = state.json
            else:
                self._json = state.json = decode_json_input(await self.body() or b"null")
        return self._json
