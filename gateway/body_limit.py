"""Request body size and read time: larger bodies get 413 problem+json before anything reads
them, slower ones 408.

A declared `Content-Length` over the limit is refused before the body is read; a chunked
body is counted as it streams and refused the moment it passes the limit. The time spent
waiting for body chunks is bounded too: a client that promises 200 bytes and sends 7 would
otherwise hold its connection (and the request's memory) for as long as it likes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar.exceptions import HTTPException

from contracts.errors import PayloadTooLarge

__all__ = ["declared_too_large", "limited_receive"]


def declared_too_large(scope: Any, max_bytes: int) -> PayloadTooLarge | None:
    """The refusal for a declared `Content-Length` over the limit, before reading a byte."""
    declared = _content_length(scope["headers"])
    if declared is not None and declared > max_bytes:
        return _too_large(max_bytes)
    return None


def limited_receive(receive: Any, max_bytes: int, timeout: float) -> Any:
    """`receive` that raises `PayloadTooLarge` the moment a streamed body passes the limit,
    and a 408 once the client has kept it waiting for body chunks `timeout` seconds in all
    (time the app spends between chunks does not count). After the body, `receive` (which
    then only reports a disconnect) is passed through unbounded."""
    received = 0
    budget = timeout
    done = False

    async def bounded_receive() -> Any:
        nonlocal received, budget, done
        if done:
            return await receive()
        started = time.monotonic()
        try:
            async with asyncio.timeout(budget):
                message = await receive()
        except TimeoutError:
            raise _too_slow(timeout) from None
        budget -= time.monotonic() - started
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise _too_large(max_bytes)
            done = not message.get("more_body", False)
        else:
            done = True
        return message

    return bounded_receive


def _too_slow(timeout: float) -> HTTPException:
    # `Connection: close`: the rest of the body may still arrive; the connection cannot
    # carry another request.
    return HTTPException(
        status_code=408,
        detail=f"the request body did not arrive within {timeout:g} s",
        headers={"Connection": "close"},
    )


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request bodies are limited to {max_bytes} bytes")


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
