"""A system API read through the gateway against a bare proxy on the same transport.

The Stripe emulator runs in its own process with its rate limit off and a few customers; the
gateway (granian, Redis rate limits when reachable) is pointed at it as at the real Stripe,
and serves `GET /system/billing/v1/customers?limit=10` (auth, rate limit, outbound policy,
mapping to canonical contracts, call recording); the bare proxy forwards the same vendor GET
with httpx on the aiohttp transport and returns the bytes. Both are served at once and wrk
drives each in turn at 64 connections, `--rounds` times (default 3), each keeping its best;
it prints requests/s of both and the ratio (goal >= 0.8), measured in one run, and the gateway
process's peak RSS (goal <= 200 MB). `--profile` samples the gateway with py-spy during its
runs and prints where its CPU went per request (the sampled rounds run slower).

    .venv/bin/python bench/system_read.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import Load, WrkResult, free_port, peak_rss_mb, rss_line, serve, wrk
from bench._profile import Sampler
from bench.gateway_overhead import _redis_url, _token

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "sk_test_erpgw_sandbox"
VENDOR_PATH = "/v1/customers?limit=10"
GATEWAY_PATH = "/system/billing/v1/customers?limit=10"
LOAD = Load(connections=64, seconds=6)
WARMUP = Load(connections=16, seconds=1)
CUSTOMERS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; best kept")
    parser.add_argument(
        "--profile", action="store_true", help="sample the gateway with py-spy (where CPU went)"
    )
    args = parser.parse_args()
    emulator_port = free_port()
    emulator = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("erp-gateway")),
            "emulator",
            "stripe",
            "--port",
            str(emulator_port),
            "--no-limits",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    upstream = f"http://127.0.0.1:{emulator_port}"
    try:
        _wait(upstream)
        asyncio.run(_seed(upstream))
        bare, through, rss_mb = _measure(upstream, args.rounds, profile=args.profile)
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    print(f"{'':40}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    print(
        f"{'bare proxy (httpx + aiohttp transport)':40}{bare.requests_per_second:>10.0f}"
        f"{bare.p50_ms:>9.2f}{bare.p99_ms:>9.2f}"
    )
    print(
        f"{'gateway system API read':40}{through.requests_per_second:>10.0f}"
        f"{through.p50_ms:>9.2f}{through.p99_ms:>9.2f}"
    )
    ratio = through.requests_per_second / bare.requests_per_second
    print(f"ratio gateway/bare: {ratio:.2f}   goal >= 0.8: {'met' if ratio >= 0.8 else 'MISSED'}")
    print(rss_line({"gateway": rss_mb}))


def _measure(upstream: str, rounds: int, *, profile: bool) -> tuple[WrkResult, WrkResult, float]:
    """Serve the bare proxy and the gateway at once and drive them in turn, `rounds` times;
    each keeps its best round (other load on the machine only ever lowers a figure)."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        bare_port = free_port()
        proxy_env = {
            "ERPGW_BENCH_UPSTREAM": upstream,
            "ERPGW_BENCH_UPSTREAM_PATH": VENDOR_PATH,
            "ERPGW_BENCH_UPSTREAM_KEY": SECRET_KEY,
        }
        servers.enter_context(serve("bench._proxy:proxy_app", port=bare_port, env=proxy_env))
        env = _gateway_env(upstream, tmp)
        client = _create_client_with(env, "billing:read")
        port = free_port()
        gateway = servers.enter_context(
            serve("gateway.workers:worker_app", port=port, env=env)
        )
        headers = {"Authorization": f"Bearer {_token(port, client)}"}
        targets: dict[str, tuple[str, dict[str, str]]] = {
            "bare": (f"http://127.0.0.1:{bare_port}/proxy", {}),
            "gateway": (f"http://127.0.0.1:{port}{GATEWAY_PATH}", headers),
        }
        best: dict[str, WrkResult] = {}
        for round_number in range(rounds):
            for name, (url, extra) in targets.items():
                wrk(url, WARMUP, extra)
                sampling = profile and name == "gateway"
                with Sampler([gateway.pid], Path(tmp), enabled=sampling) as sampler:
                    result = wrk(url, LOAD, extra)
                if sampling:
                    print(sampler.report(count=result.requests, unit="request"), flush=True)
                if result.non_2xx:
                    raise SystemExit(f"{name} answered {result.non_2xx} non-2xx")
                print(
                    f"round {round_number + 1} {name:>7}: {result.requests_per_second:8.0f} req/s",
                    flush=True,
                )
                kept = best.get(name)
                if kept is None or result.requests_per_second > kept.requests_per_second:
                    best[name] = result
        return best["bare"], best["gateway"], peak_rss_mb(gateway.pid)


def _gateway_env(upstream: str, tmp: str) -> dict[str, str]:
    redis_url = _redis_url()
    return {
        "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
        "ERPGW_VAR_DIR": tmp,
        "ERPGW_SIGNING_KEYS_DIR": f"{tmp}/keys",
        "ERPGW_LOG_FORMAT": "json",
        "ERPGW_SANDBOX": "true",
        "ERPGW_ACCESS_LOG": "false",
        "ERPGW_RATE_LIMIT_TIERS": "gold=100000000/minute;anonymous=100000000/minute",
        "ERPGW_STRIPE_SECRET_KEY": SECRET_KEY,
        "ERPGW_STRIPE_BASE_URL": upstream,
        # The emulator's limit is off; so is our client-side budget for it (25/s).
        "ERPGW_VENDOR_QUOTAS": "false",
        **({"ERPGW_REDIS_URL": redis_url} if redis_url else {}),
    }


def _create_client_with(env: dict[str, str], scopes: str) -> dict[str, str]:
    script = Path(sys.executable).with_name("erp-gateway")
    import json

    output = subprocess.run(
        [
            str(script),
            "clients",
            "create",
            "--name",
            "bench",
            "--scopes",
            scopes,
            "--tier",
            "gold",
            "--json",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    created: dict[str, str] = json.loads(output)
    return created


async def _seed(upstream: str) -> None:
    async with httpx.AsyncClient(base_url=upstream, auth=(SECRET_KEY, "")) as http:
        for index in range(CUSTOMERS):
            response = await http.post(
                "/v1/customers",
                data={
                    "name": f"Bench {index}",
                    "metadata[legal_entity]": "US01",
                    "metadata[currency]": "usd",
                },
            )
            response.raise_for_status()


def _wait(upstream: str) -> None:
    import time

    for _ in range(100):
        try:
            httpx.get(upstream + "/_emulator/faults", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("the Stripe emulator did not start")


if __name__ == "__main__":
    main()
