"""Request body size limit: larger bodies get 413 problem+json before anything reads them.

A declared `Content-Length` over the limit is refused before the body is read; a chunked
body is counted as it streams and refused the moment it passes the limit.
"""

from __future__ import annotations

from typing import Any

from contracts.errors import PayloadTooLarge

__all__ = ["declared_too_large", "limited_receive"]


def declared_too_large(scope: Any, max_bytes: int) -> PayloadTooLarge | None:
    """The refusal for a declared `Content-Length` over the limit, before reading a byte."""
    declared = _content_length(scope["headers"])
    if declared is not None and declared > max_bytes:
        return _too_large(max_bytes)
    return None


def limited_receive(receive: Any, max_bytes: int) -> Any:
    """`receive` that raises `PayloadTooLarge` the moment a streamed body passes the limit."""
    received = 0

    async def counting_receive() -> Any:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise _too_large(max_bytes)
        return message

    return counting_receive


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
