"""Served as in production (`erp-gateway serve`, granian): a client that stops sending its
headers or its body loses the connection within the configured time, instead of holding it
(and a worker's memory) for as long as it likes. A client that finishes is answered."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import GatewayProcess, start_gateway

HEAD = (
    b"POST /webhooks/stripe HTTP/1.1\r\nHost: gateway\r\n"
    b"Content-Type: application/json\r\nStripe-Signature: t=1,v1=ab\r\n"
    b"Content-Length: 200\r\n\r\n"
)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[GatewayProcess]:
    env = {
        "ERPGW_SANDBOX": "true",
        "ERPGW_SANDBOX_VENDORS": "none",
        "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        "ERPGW_VAR_DIR": str(tmp_path),
        "ERPGW_LOG_FORMAT": "json",
        "ERPGW_ACCESS_LOG": "false",
        "ERPGW_BODY_READ_TIMEOUT_SECONDS": "1",
    }
    gateway = start_gateway(env, tmp_path / "serve.log")
    try:
        yield gateway
    finally:
        gateway.stop()


def exchange(gateway: GatewayProcess, request: bytes, *, wait: float = 15) -> tuple[bytes, float]:
    """What the server sent before closing the connection (or `wait` passing), and when."""
    host, port = gateway.base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    received = b""
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received, time.monotonic() - started


def test_stalled_headers_and_bodies_lose_the_connection(served: GatewayProcess) -> None:
    partial_head, took = exchange(served, HEAD[:40])
    assert took < 8, "a client sending part of its headers kept the connection"
    assert partial_head == b"" or partial_head.startswith(b"HTTP/1.1 408"), partial_head[:100]

    stalled_body, took = exchange(served, HEAD + b'{"id":1')
    assert took < 8
    assert stalled_body.startswith(b"HTTP/1.1 408 "), stalled_body[:200]
    assert b"application/problem+json" in stalled_body

    # Control: the same request, complete, is answered (a 401: it is not signed).
    complete, took = exchange(served, HEAD.replace(b"HTTP/1.1", b"HTTP/1.0") + b" " * 200)
    assert complete.startswith(b"HTTP/1.0 401 ") or complete.startswith(b"HTTP/1.1 401 "), complete[
        :200
    ]
    assert took < 8
