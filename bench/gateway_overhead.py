"""What the gateway's policy stack costs: the same trivial route served bare and behind the
full stack (JWT auth, Redis rate limit, versioning, tracing, metrics), both under granian,
driven by wrk on loopback. The three servers (bare, gateway with the access log off, on) run
at once and are measured in turn for `--rounds` rounds (default 3), each keeping its best
round. Prints requests/s and their ratio, the added p50/p99 latency at low load, and the
stack's added CPU per request with access logging off and on. `--profile` samples the
gateway with the access log on with py-spy and prints where its CPU went per request.

Goals, with the access log on (the default): ratio >= 0.6 (stretch 0.75); added latency
<= 0.5 ms p50 and <= 1.0 ms p99 (4 connections); peak RSS <= 200 MB per gateway process.
Run: `.venv/bin/python bench/gateway_overhead.py` (Redis at ERPGW_BENCH_REDIS_URL, default
redis://127.0.0.1:6379/14, flushed first; without it the rate limit uses in-process storage
and says so).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import (
    Load,
    failed_requests,
    free_port,
    peak_rss_mb,
    process_tree_cpu,
    rss_line,
    serve,
    wrk,
)
from bench._profile import Sampler

ROUTE = "/system/crm/v1/bench-ping"
HIGH = Load(connections=64, seconds=6)
LOW = Load(connections=4, seconds=6, threads=1)
WARMUP = Load(connections=16, seconds=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; best kept")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the gateway (access log on) with py-spy: where its CPU went",
    )
    args = parser.parse_args()
    redis_url = _redis_url()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        env = _gateway_env(Path(tmp), redis_url)
        client = _create_client(env)
        targets: dict[str, tuple[int, str, dict[str, str]]] = {}
        logs: dict[str, Path] = {}
        port = free_port()
        bare = servers.enter_context(serve("bench._apps:bare_app", port=port))
        targets["bare"] = (bare.pid, f"http://127.0.0.1:{port}{ROUTE}", {})
        for access_log in ("false", "true"):
            port = free_port()
            gateway_env = {**env, "ERPGW_ACCESS_LOG": access_log}
            log = Path(tmp) / f"gateway-log-{access_log}.txt"
            logs[access_log] = log
            process = servers.enter_context(
                serve("bench._apps:gateway_app", port=port, env=gateway_env, log=log)
            )
            headers = {"Authorization": f"Bearer {_token(port, client)}"}
            targets[access_log] = (process.pid, f"http://127.0.0.1:{port}{ROUTE}", headers)
        # All three are served at once and measured in turn, round after round: other load
        # on the machine only ever lowers a figure, so each keeps its best round.
        best: dict[str, dict[str, float]] = {}
        for round_number in range(args.rounds):
            for name, (pid, url, headers) in targets.items():
                sampling = args.profile and name == "true"
                with Sampler([pid], Path(tmp), enabled=sampling) as sampler:
                    measured = _run(pid, url, headers, logs.get(name))
                if sampling:
                    print(sampler.report(count=int(measured["requests"]), unit="request"))
                print(
                    f"round {round_number + 1} {name:>5}: {measured['rps']:8.0f} req/s  "
                    f"p50 {measured['p50']:.3f} ms  p99 {measured['p99']:.3f} ms",
                    flush=True,
                )
                best[name] = _better(best.get(name), measured)
    _report(best["bare"], {"false": best["false"], "true": best["true"]}, redis_url)


def _better(kept: dict[str, float] | None, new: dict[str, float]) -> dict[str, float]:
    if kept is None:
        return new
    return {
        "rps": max(kept["rps"], new["rps"]),
        "cpu_us": min(kept["cpu_us"], new["cpu_us"]),
        "p50": min(kept["p50"], new["p50"]),
        "p99": min(kept["p99"], new["p99"]),
        "rss_mb": max(kept["rss_mb"], new["rss_mb"]),
        "requests": new["requests"],
    }


def _run(pid: int, url: str, headers: dict[str, str], log: Path | None) -> dict[str, float]:
    wrk(url, WARMUP, headers)
    cpu_before = process_tree_cpu(pid)
    high = wrk(url, HIGH, headers)
    cpu_used = process_tree_cpu(pid) - cpu_before
    low = wrk(url, LOW, headers)
    if high.non_2xx or low.non_2xx:
        why = failed_requests(log) if log is not None else ""
        raise SystemExit(f"{url}: {high.non_2xx + low.non_2xx} non-2xx answers:\n{why}")
    return {
        "rps": high.requests_per_second,
        "cpu_us": cpu_used / high.requests * 1e6,
        "p50": low.p50_ms,
        "p99": low.p99_ms,
        "rss_mb": peak_rss_mb(pid),
        "requests": high.requests + low.requests,
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
    ratio_on = logged["rps"] / bare["rps"]
    print(f"throughput ratio (gateway/bare, log off): {quiet['rps'] / bare['rps']:.2f}")
    print(
        f"throughput ratio (gateway/bare, log on):  {ratio_on:.2f}   goal >= 0.6 "
        f"(stretch 0.75): {_verdict(ratio_on >= 0.6)}"
    )
    # CPU per request is what the throughput ratio comes to on a machine with nothing else
    # running; it moves far less than requests/s when other work shares the cores.
    cpu_ratio_on = bare["cpu_us"] / logged["cpu_us"]
    print(
        f"CPU-per-request ratio (bare/gateway): {bare['cpu_us'] / quiet['cpu_us']:.2f} log off, "
        f"{cpu_ratio_on:.2f} log on   goal >= 0.6: {_verdict(cpu_ratio_on >= 0.6)}"
    )
    added_p50 = logged["p50"] - bare["p50"]
    added_p99 = logged["p99"] - bare["p99"]
    print(
        f"added latency at 4 connections, log on: p50 {added_p50:+.3f} ms (goal <= 0.5: "
        f"{_verdict(added_p50 <= 0.5)}), p99 {added_p99:+.3f} ms (goal <= 1.0: "
        f"{_verdict(added_p99 <= 1.0)})"
    )
    print(
        f"added latency at 4 connections, log off: p50 {quiet['p50'] - bare['p50']:+.3f} ms, "
        f"p99 {quiet['p99'] - bare['p99']:+.3f} ms"
    )
    print(
        f"added CPU per request: {quiet['cpu_us'] - bare['cpu_us']:.1f} us (log off), "
        f"{logged['cpu_us'] - bare['cpu_us']:.1f} us (log on)"
    )
    print(rss_line({"log off": quiet["rss_mb"], "log on": logged["rss_mb"]}))


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


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
