"""Outbound HTTP bench: requests/s of a one-hop proxy per HTTP client, measured in one run.

An upstream JSON endpoint (aiohttp.web) runs in its own process on loopback. For each client
(httpx default transport, httpx on the aiohttp transport, raw aiohttp, httpx2 when installed,
and httpx + PolicyTransport over the default transport) a proxy app runs under granian in
another process; wrk drives it with 64 connections, 1 s of warm-up then 5 s measured, in
interleaved rounds (best kept, since other load on the machine only lowers a number). Prints
requests/s per client, each as a ratio of raw aiohttp, and the policy's cost on its transport.

    .venv/bin/python bench/outbound.py [--seconds 5] [--rounds 3] [--only aiohttp policy ...]

Loopback only; every process it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["main", "proxy_app"]

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PAYLOAD = (
    b'{"id":"cus_NffrFeUfNV2Hib","object":"customer","name":"Acme GmbH","currency":"eur",'
    b'"email":"billing@acme.example","metadata":{"erp_id":"C-1042","legal_entity":"DE01"},'
    b'"created":1700000000,"livemode":false}'
)
KINDS = ("httpx", "httpx-aiohttp", "aiohttp", "httpx2", "policy")
LABELS = {
    "httpx": "httpx, default transport",
    "httpx-aiohttp": "httpx + aiohttp transport (httpx-aiohttp)",
    "aiohttp": "raw aiohttp",
    "httpx2": "httpx2, default transport",
    "policy": "httpx + PolicyTransport over the default transport",
}
_KIND_ENV = "ERPGW_BENCH_KIND"
_UPSTREAM_ENV = "ERPGW_BENCH_UPSTREAM"
_POOL = 100

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Fetch = Callable[[], Awaitable[bytes]]


# --- the proxy (runs inside granian) -------------------------------------------------------


def proxy_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI proxy for the client named by $ERPGW_BENCH_KIND (a granian factory)."""
    kind = os.environ[_KIND_ENV]
    upstream = os.environ[_UPSTREAM_ENV]
    state: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, state)
            return
        fetch = state.get("fetch")
        if fetch is None:
            # Built on first use, inside the worker's event loop.
            fetch, state["close"] = _build_fetch(kind, upstream)
            state["fetch"] = fetch
        body = await fetch()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


async def _lifespan(receive: Receive, send: Send, state: dict[str, Any]) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            close = state.get("close")
            if close is not None:
                await close()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _build_fetch(kind: str, upstream: str) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    if kind == "aiohttp":
        return _aiohttp_fetch(upstream)
    if kind == "httpx2":
        import httpx2

        client2 = httpx2.AsyncClient(
            limits=httpx2.Limits(max_connections=_POOL, max_keepalive_connections=_POOL)
        )

        async def fetch2() -> bytes:
            response = await client2.get(upstream)
            content: bytes = response.content
            return content

        return fetch2, client2.aclose
    client = _httpx_client(kind)

    async def fetch() -> bytes:
        return (await client.get(upstream)).content

    return fetch, client.aclose


def _aiohttp_fetch(upstream: str) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    import aiohttp

    aio = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=_POOL))

    async def fetch() -> bytes:
        async with aio.get(upstream) as response:
            return await response.read()

    return fetch, aio.close


def _httpx_client(kind: str) -> httpx.AsyncClient:
    from system_apis.outbound import (
        DEFAULT_TRANSPORT,
        CircuitBreaker,
        InMemoryCallRecorder,
        OutboundMetrics,
        RateQuota,
        build_quota,
        build_transport,
        build_vendor_http,
        default_policy,
    )

    limits = httpx.Limits(max_connections=_POOL, max_keepalive_connections=_POOL)
    if kind == "httpx":
        return httpx.AsyncClient(transport=build_transport("httpx", limits=limits))
    if kind == "httpx-aiohttp":
        return httpx.AsyncClient(transport=build_transport("aiohttp", limits=limits))
    from dataclasses import replace

    from prometheus_client import CollectorRegistry

    # Every part of the policy on, with a budget far above the load so it never throttles.
    policy = replace(default_policy("stripe"), quota=RateQuota(limit=10_000_000, window=1.0))
    return build_vendor_http(
        "stripe",
        base_url="http://bench.invalid",
        transport=build_transport(DEFAULT_TRANSPORT, limits=limits),
        policy=policy,
        breaker=CircuitBreaker("stripe", policy.breaker),
        quota=build_quota(policy),
        recorder=InMemoryCallRecorder(),
        metrics=OutboundMetrics(CollectorRegistry()),
    )


# --- the upstream (its own process) --------------------------------------------------------


def serve_upstream(port: int) -> None:
    """Serve the JSON payload on every path until terminated."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=PAYLOAD, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None)


# --- the driver ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    kind: str
    rps: float | None
    note: str = ""


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.role == "upstream":
        serve_upstream(args.port)
        return 0
    if args.role == "load":
        count = asyncio.run(_python_load(args.url, args.connections, args.seconds))
        print(f"Requests/sec: {count / args.seconds:.2f}")
        return 0
    return _run_all(args)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("role", nargs="?", default="bench", choices=["bench", "upstream", "load"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--url", default="")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure every kind this many times, interleaved, and keep the best: other "
        "load on the machine only ever lowers a number",
    )
    parser.add_argument("--only", nargs="*", choices=KINDS, default=list(KINDS))
    return parser.parse_args(argv)


def _run_all(args: argparse.Namespace) -> int:
    wrk = shutil.which("wrk")
    print(f"load generator: {'wrk' if wrk else 'Python aiohttp load generator (wrk not found)'}")
    print(
        f"{args.connections} connections; per measurement {args.warmup:g} s warm-up, "
        f"{args.seconds:g} s measured; {args.rounds} round(s), kinds interleaved, best kept"
    )
    upstream_port = _free_port()
    upstream = f"http://{HOST}:{upstream_port}/v1/customers/cus_NffrFeUfNV2Hib"
    skipped = {kind: _skip_reason(kind) for kind in args.only}
    kinds = [kind for kind in args.only if not skipped[kind]]
    best: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        upstream_command = [sys.executable, __file__, "upstream", "--port", str(upstream_port)]
        stack.enter_context(_process(upstream_command, upstream_port))
        urls = {kind: stack.enter_context(_proxy(kind, upstream)) for kind in kinds}
        for round_number in range(1, args.rounds + 1):
            for kind in kinds:
                _load(urls[kind], args.warmup, args.connections, wrk)
                rps = _load(urls[kind], args.seconds, args.connections, wrk)
                best[kind] = max(best.get(kind, 0.0), rps)
                print(f"  round {round_number} {LABELS[kind]}: {rps:,.0f} req/s", flush=True)
    _report([Result(kind, best.get(kind), skipped[kind]) for kind in args.only])
    return 0


def _skip_reason(kind: str) -> str:
    if kind != "httpx2":
        return ""
    try:
        import httpx2  # noqa: F401
    except ImportError:
        return "httpx2 is not installed: `.venv/bin/pip install httpx2` to include it"
    return ""


@contextlib.contextmanager
def _proxy(kind: str, upstream: str) -> Iterator[str]:
    """A granian process serving the proxy for `kind`; yields its URL."""
    port = _free_port()
    env = {**os.environ, _KIND_ENV: kind, _UPSTREAM_ENV: upstream, "PYTHONPATH": str(REPO_ROOT)}
    command = [
        sys.executable, "-m", "granian", "--interface", "asgi", "--host", HOST,
        "--port", str(port), "--workers", "1", "--no-ws", "--log-level", "warning",
        "--factory", "bench.outbound:proxy_app",
    ]  # fmt: skip
    with _process(command, port, env=env):
        yield f"http://{HOST}:{port}/"


def _load(url: str, seconds: float, connections: int, wrk: str | None) -> float:
    if wrk:
        command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url]
    else:
        command = [
            sys.executable, __file__, "load", "--url", url,
            "--seconds", str(seconds), "--connections", str(connections),
        ]  # fmt: skip
    output = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    match = re.search(r"Requests/sec:\s*([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"no requests/s in the load generator's output:\n{output}")
    return float(match.group(1))


async def _python_load(url: str, connections: int, seconds: float) -> int:
    import aiohttp

    done = 0
    stop = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as aio:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < stop:
                async with aio.get(url) as response:
                    await response.read()
                done += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    return done


def _report(results: list[Result]) -> None:
    rps = {r.kind: r.rps for r in results if r.rps}
    base = rps.get("aiohttp")
    print("\nrequests/s and ratio to raw aiohttp (same run):")
    for result in results:
        if result.rps is None:
            print(f"  {LABELS[result.kind]:<55} skipped: {result.note}")
            continue
        ratio = f"{result.rps / base:.2f}x" if base else "n/a"
        print(f"  {LABELS[result.kind]:<55} {result.rps:>9,.0f}  {ratio}")
    from system_apis.outbound import DEFAULT_TRANSPORT

    bare = rps.get("httpx-aiohttp" if DEFAULT_TRANSPORT == "aiohttp" else "httpx")
    if bare and "policy" in rps:
        print(
            f"\npolicy vs bare on the {DEFAULT_TRANSPORT} transport: "
            f"{rps['policy'] / bare:.2f}x ({rps['policy']:,.0f} vs {bare:,.0f} req/s)"
        )


# --- process handling ----------------------------------------------------------------------


@contextlib.contextmanager
def _process(
    command: list[str], port: int, *, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_for_port(port, process)
        yield process
    finally:
        _stop(process)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {limit:g} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    # The process leads its own process group (granian forks a worker): signal that group.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
