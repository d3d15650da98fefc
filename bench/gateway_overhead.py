"""What the gateway's policy stack costs: the same trivial route served bare and behind the
full stack (JWT auth, Redis rate limit, versioning, tracing, metrics), both under granian,
driven by wrk on loopback. Prints requests/s and their ratio, the added p50/p99 latency at low
load, and the stack's added CPU per request with access logging off and on.

Goals: ratio >= 0.6; added latency <= 0.8 ms p50 and <= 1.5 ms p99 (4 connections).
Run: `.venv/bin/python bench/gateway_overhead.py` (Redis at ERPGW_BENCH_REDIS_URL, default
redis://127.0.0.1:6379/14; without it the rate limit uses in-process storage and says so).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import Load, free_port, process_tree_cpu, serve, wrk

ROUTE = "/system/crm/v1/bench-ping"
HIGH = Load(connections=64, seconds=6)
LOW = Load(connections=4, seconds=6, threads=1)
WARMUP = Load(connections=16, seconds=1)


def main() -> None:
    redis_url = _redis_url()
    with tempfile.TemporaryDirectory() as tmp:
        env = _gateway_env(Path(tmp), redis_url)
        client = _create_client(env)
        bare = _measure("bare", "bench._apps:bare_app", {}, headers={})
        headers: dict[str, str] = {}
        results = {}
        for access_log in ("false", "true"):
            gateway_env = {**env, "ERPGW_ACCESS_LOG": access_log}
            port = free_port()
            with serve("bench._apps:gateway_app", port=port, env=gateway_env) as process:
                headers = {"Authorization": f"Bearer {_token(port, client)}"}
                results[access_log] = _run(process.pid, f"http://127.0.0.1:{port}{ROUTE}", headers)
    _report(bare, results, redis_url)


def _measure(
    name: str, target: str, env: dict[str, str], headers: dict[str, str]
) -> dict[str, float]:
    port = free_port()
    with serve(target, port=port, env=env) as process:
        return _run(process.pid, f"http://127.0.0.1:{port}{ROUTE}", headers)


def _run(pid: int, url: str, headers: dict[str, str]) -> dict[str, float]:
    wrk(url, WARMUP, headers)
    cpu_before = process_tree_cpu(pid)
    high = wrk(url, HIGH, headers)
    cpu_used = process_tree_cpu(pid) - cpu_before
    low = wrk(url, LOW, headers)
    if high.non_2xx or low.non_2xx:
        raise SystemExit(f"{url}: {high.non_2xx + low.non_2xx} non-2xx answers; fix the setup")
    return {
        "rps": high.requests_per_second,
        "cpu_us": cpu_used / high.requests * 1e6,
        "p50": low.p50_ms,
        "p99": low.p99_ms,
    }


def _report(
    bare: dict[str, float], results: dict[str, dict[str, float]], redis_url: str | None
) -> None:
    quiet = results["false"]
    logged = results["true"]
    print(f"rate-limit store: {redis_url or 'in-process memory (Redis unreachable)'}")
    print(f"{'':28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}")
    for name, row in (
        ("bare route", bare),
        ("gateway, access log off", quiet),
        ("gateway, access log on", logged),
    ):
        print(
            f"{name:28}{row['rps']:>10.0f}{row['p50']:>9.3f}{row['p99']:>9.3f}{row['cpu_us']:>12.1f}"
        )
    print(
        f"throughput ratio (gateway/bare, log off): {quiet['rps'] / bare['rps']:.2f}   goal >= 0.6"
    )
    print(f"throughput ratio (gateway/bare, log on):  {logged['rps'] / bare['rps']:.2f}")
    print(
        f"added latency at 4 connections: p50 {quiet['p50'] - bare['p50']:+.3f} ms (goal <= 0.8), "
        f"p99 {quiet['p99'] - bare['p99']:+.3f} ms (goal <= 1.5)"
    )
    print(
        f"added CPU per request: {quiet['cpu_us'] - bare['cpu_us']:.1f} us (log off), "
        f"{logged['cpu_us'] - bare['cpu_us']:.1f} us (log on)"
    )


def _redis_url() -> str | None:
    url = os.environ.get("ERPGW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    try:
        redis.Redis.from_url(url, socket_timeout=1).ping()
    except redis.RedisError:
        return None
    redis.Redis.from_url(url).flushdb()
    return url


def _gateway_env(tmp: Path, redis_url: str | None) -> dict[str, str]:
    env = {
        "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
        "ERPGW_VAR_DIR": str(tmp),
        "ERPGW_SIGNING_KEYS_DIR": str(tmp / "keys"),
        "ERPGW_SANDBOX": "true",
        "ERPGW_SANDBOX_VENDORS": "none",
        "ERPGW_LOG_FORMAT": "json",
        # High enough never to refuse, so every request takes the full admission path.
        "ERPGW_RATE_LIMIT_TIERS": "gold=100000000/minute;anonymous=100000000/minute",
    }
    if redis_url:
        env["ERPGW_REDIS_URL"] = redis_url
    return env


def _create_client(env: dict[str, str]) -> dict[str, str]:
    script = Path(sys.executable).with_name("erp-gateway")
    output = subprocess.run(
        [
            str(script),
            "clients",
            "create",
            "--name",
            "bench",
            "--scopes",
            "crm:read",
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


def _token(port: int, client: dict[str, str]) -> str:
    response = httpx.post(
        f"http://127.0.0.1:{port}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


if __name__ == "__main__":
    main()
