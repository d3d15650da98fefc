"""Fan-out bench: the sales overview composed from backends that answer in 10, 30 and 50 ms,
measured against its slowest backend, and its throughput against a single-source view.

What runs: the whole gateway (JWT auth, rate limits, tracing, metrics, SQLite, the flow
engine idle) under granian, one worker, in its own process. The views are mounted a second
time under `/bench` with fake ports instead of the vendor clients: each port call sleeps its
vendor's delay (CRM 10 ms, billing 30 ms, support 50 ms, ERP 0 ms) and returns canned
contracts. Fakes rather than the emulators because the emulators enforce the vendors' own
rate limits (Stripe ~25 requests/s, NetSuite 5 concurrent) and the outbound quotas follow
them, which would measure those limits, not the fan-out. The view cache is off
(`ERPGW_VIEW_CACHE_SECONDS=0`), so every request asks every vendor source; the process source
reads flows and exceptions from SQLite for real, at most once a second (its own freshness,
as in production), and cross-references come from the in-process link cache.

Steps: wrk (64 connections) measures the capacity of the sales overview and of the portal
subscription view (one source: billing, 30 ms); then an open-loop generator (its own
process; latency counted from each request's scheduled time, so a stall is not hidden) sends
the sales overview at half its capacity, while the fake support port records the latency of
every call it serves. Prints p50/p99 of the view against the slowest backend's, with the
goals p50 <= slowest p50 + 1 ms and p99 <= 1.1 x slowest p99, and the throughput ratio.

    .venv/bin/python bench/fanout.py [--seconds 10] [--capacity-seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import Load, free_port, peak_rss_mb, rss_line, serve, wrk
from gateway.workers import settle_runtime

ACCOUNT = "001BENCH0000001AAA"
CANONICAL = f"cus-{ACCOUNT}"
DELAYS_MS = {"crm": 10.0, "billing": 30.0, "support": 50.0, "erp": 0.0}
SALES = f"/bench/experience/sales/v1/accounts/{ACCOUNT}/overview"
PORTAL = "/bench/experience/portal/v1/subscription"
CAPACITY = Load(connections=64, seconds=5)
WARMUP = Load(connections=8, seconds=1)


# -- the served app (imported by granian in the server process) ------------------------------


def fanout_app() -> Any:
    """The gateway, plus the views under `/bench` on fake ports (see the module docstring)."""
    from litestar import Router, get, post
    from litestar.di import Provide

    from bench._fanout_ports import FakePorts, LoopWatch
    from experience_apis import create_routers
    from gateway.app import create_app

    app = create_app()
    ports = FakePorts({name: ms / 1000 for name, ms in DELAYS_MS.items()})
    watch = LoopWatch()
    watching: list[asyncio.Task[None]] = []

    def start_watch() -> None:
        watching.append(asyncio.get_running_loop().create_task(watch.run()))

    @post("/bench/settle-runtime", opt={"public": True, "rate_limit": False},
          sync_to_thread=False)
    def settle() -> None:
        settle_runtime()  # as every worker of `erp-gateway serve` does once started

    def stop_watch() -> None:
        for task in watching:
            task.cancel()

    app.on_startup.append(start_watch)
    app.on_shutdown.append(stop_watch)

    def constant(value: Any) -> Provide:
        return Provide(lambda: value, use_cache=True, sync_to_thread=False)

    @get("/bench/backend-latency", opt={"public": True, "rate_limit": False}, sync_to_thread=False)
    def latencies() -> dict[str, list[float]]:
        return {**ports.latencies(), "loop_late": list(watch.late_ms)}

    @post("/bench/backend-latency/reset", opt={"public": True, "rate_limit": False},
          sync_to_thread=False)
    def reset() -> None:
        ports.reset()
        watch.late_ms.clear()

    app.register(
        Router(
            path="/bench",
            route_handlers=create_routers(),
            dependencies={name: constant(port) for name, port in ports.by_domain().items()},
        )
    )
    app.register(latencies)
    app.register(reset)
    app.register(settle)
    return app


# -- the driver ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="open-loop run length")
    parser.add_argument("--unsettled", action="store_true",
                        help="skip what a served worker does once started (gc.freeze(); "
                             "gateway/workers.py)")
    parser.add_argument("--generate", nargs=4, metavar=("URL", "RATE", "SECONDS", "TOKEN"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        url, rate, seconds, token = args.generate
        print(json.dumps(asyncio.run(_open_loop(url, float(rate), float(seconds), token))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(Path(tmp))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with serve("bench.fanout:fanout_app", port=port, env=env) as process:
            asyncio.run(_seed(env["ERPGW_DATABASE_URL"]))
            sales_token = _token(base, env, "experience:sales")
            portal_token = _token(base, env, "experience:portal", customer=CANONICAL)
            _check(base + SALES, sales_token)
            _check(base + PORTAL, portal_token)
            if not args.unsettled:
                httpx.post(f"{base}/bench/settle-runtime").raise_for_status()
            sales_capacity = _capacity(base + SALES, sales_token)
            portal_capacity = _capacity(base + PORTAL, portal_token)
            rate = sales_capacity.requests_per_second / 2
            httpx.post(f"{base}/bench/backend-latency/reset").raise_for_status()
            measured = _generate(base + SALES, rate, args.seconds, sales_token)
            backends = httpx.get(f"{base}/bench/backend-latency").json()
            rss_mb = peak_rss_mb(process.pid)
    _report(measured, backends, rate, sales_capacity, portal_capacity)
    settled = "no (--unsettled)" if args.unsettled else "yes, as `erp-gateway serve` workers"
    print(f"  runtime settled after start (gateway/workers.py): {settled}")
    print(rss_line({"gateway": rss_mb}))


def _env(tmp: Path) -> dict[str, str]:
    return {
        "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
        "ERPGW_VAR_DIR": str(tmp),
        "ERPGW_SIGNING_KEYS_DIR": str(tmp / "keys"),
        "ERPGW_SANDBOX": "true",
        "ERPGW_SANDBOX_VENDORS": "none",
        "ERPGW_LOG_FORMAT": "json",
        "ERPGW_LOG_LEVEL": "WARNING",
        "ERPGW_ACCESS_LOG": "false",
        "ERPGW_VIEW_CACHE_SECONDS": "0",
        "ERPGW_RATE_LIMIT_TIERS": "gold=100000000/minute;anonymous=100000000/minute",
    }


async def _seed(database_url: str) -> None:
    """The account's cross-references, and flows and an exception for the process source."""
    import sqlalchemy as sa

    from gateway import storage
    from process_apis.engine.queue import new_exception_id, open_exception
    from process_apis.engine.records import create_flow, set_flow_status
    from process_apis.engine.store import cross_references

    engine = storage.create_engine(database_url)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            for system, external_id in (("stripe", "cus_bench"), ("zendesk", "9001"),
                                        ("netsuite", "5001")):
                await conn.execute(sa.insert(cross_references).values(
                    entity="customer", canonical_id=CANONICAL, system=system,
                    legal_entity="US01", external_id=external_id, created_at=now, updated_at=now,
                ))
            for index, status in enumerate(("running", "failed", "succeeded")):
                flow_id = f"q2c:bench-{index}"
                await create_flow(conn, flow_id=flow_id, flow_type="quote_to_cash",
                                  correlation_id=None, crm_account=ACCOUNT, legal_entity="US01",
                                  now=now - timedelta(minutes=index))
                await set_flow_status(conn, flow_id, status, now=now)  # type: ignore[arg-type]
            await open_exception(
                conn, exception_id=new_exception_id(), flow_id="q2c:bench-1",
                flow_type="quote_to_cash", step="post_to_erp", step_ref="bench.post_to_erp",
                system="netsuite", owner="finance", error_class="UpstreamRejected",
                cause="period closed", input_json=None, legal_entity="US01", now=now,
            )
    finally:
        await engine.dispose()


def _token(base: str, env: dict[str, str], scopes: str, customer: str | None = None) -> str:
    command = [str(Path(sys.executable).with_name("erp-gateway")), "clients", "create",
               "--name", "fanout-bench", "--scopes", scopes, "--tier", "gold", "--json"]
    if customer:
        command += ["--customer", customer]
    created = json.loads(subprocess.run(command, env={**os.environ, **env}, capture_output=True,
                                        text=True, check=True).stdout)
    response = httpx.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(created["client_id"], created["client_secret"]))
    response.raise_for_status()
    return str(response.json()["access_token"])


def _check(url: str, token: str) -> None:
    response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {response.text[:300]}")
    sources = response.json().get("sources", {})
    if any(state != "ok" for state in sources.values()):
        raise SystemExit(f"{url}: not every source answered: {sources}")


def _capacity(url: str, token: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    wrk(url, WARMUP, headers)
    result = wrk(url, CAPACITY, headers)
    if result.non_2xx:
        raise SystemExit(f"{url}: {result.non_2xx} non-2xx answers under load")
    return result


def _generate(url: str, rate: float, seconds: float, token: str) -> dict[str, list[float]]:
    """Run the open-loop generator in its own process (it must not share the bench's CPU
    accounting with the driver)."""
    output = subprocess.run(
        [sys.executable, __file__, "--generate", url, str(rate), str(seconds), token],
        capture_output=True, text=True, check=True,
    ).stdout
    measured: dict[str, list[float]] = json.loads(output)
    return measured


async def _open_loop(
    url: str, rate: float, seconds: float, token: str
) -> dict[str, list[float]]:
    """Send at a fixed rate whatever the answers do; each latency runs from the request's
    scheduled time (no coordinated omission). Also how late the generator itself sent."""
    import aiohttp

    count = int(rate * seconds)
    latencies: list[float] = []
    late: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as client:
        start = time.perf_counter() + 0.2

        async def one(index: int) -> None:
            scheduled = start + index / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            late.append((time.perf_counter() - scheduled) * 1000)
            async with client.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}")
            latencies.append((time.perf_counter() - scheduled) * 1000)

        await _all([one(index) for index in range(count)])
    return {"latency": latencies, "late": late}


async def _all(jobs: list[Coroutine[Any, Any, None]]) -> None:
    await asyncio.gather(*jobs)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _report(
    measured: dict[str, list[float]],
    backends: dict[str, list[float]],
    rate: float,
    sales_capacity: Any,
    portal_capacity: Any,
) -> None:
    view, sent_late = measured["latency"], measured["late"]
    slowest = backends["support"]
    view_p50, view_p99 = _quantile(view, 0.5), _quantile(view, 0.99)
    slow_p50, slow_p99 = _quantile(slowest, 0.5), _quantile(slowest, 0.99)
    fmt: Callable[[float], str] = lambda ms: f"{ms:7.2f} ms"  # noqa: E731
    print(f"backend delays: {', '.join(f'{k} {v:g} ms' for k, v in DELAYS_MS.items())}"
          " (fake ports; see the module docstring)")
    sales_rps = sales_capacity.requests_per_second
    portal_rps = portal_capacity.requests_per_second
    print(f"capacity (wrk, 64 connections): sales overview {sales_rps:.0f} req/s, "
          f"portal subscription (one source) {portal_rps:.0f} req/s: "
          f"ratio {sales_rps / portal_rps:.2f}")
    print(f"open loop at half capacity: {rate:.0f} req/s for {len(view)} requests")
    print(f"  sales overview      p50 {fmt(view_p50)}   p99 {fmt(view_p99)}")
    print(f"  slowest backend     p50 {fmt(slow_p50)}   p99 {fmt(slow_p99)}   "
          f"({len(slowest)} support calls)")
    p50_ok = view_p50 <= slow_p50 + 1.0
    p99_ok = view_p99 <= 1.1 * slow_p99
    print(f"  goal p50 <= slowest p50 + 1 ms: {view_p50 - slow_p50:+.2f} ms "
          f"{'met' if p50_ok else 'MISSED'}")
    print(f"  goal p99 <= 1.1 x slowest p99:  {view_p99 / slow_p99:.3f}x "
          f"{'met' if p99_ok else 'MISSED'}")
    late = backends["loop_late"]
    print(f"  server event loop lateness p50 {fmt(_quantile(late, 0.5))}   "
          f"p99 {fmt(_quantile(late, 0.99))}   max {fmt(max(late))}")
    print(f"  load generator sending late p50 {fmt(_quantile(sent_late, 0.5))}   "
          f"p99 {fmt(_quantile(sent_late, 0.99))} (counted in the view's latency)")
    print(f"  ({date.today().isoformat()}, {os.cpu_count()} CPUs; server and load share them)")


if __name__ == "__main__":
    main()
