"""Quote-to-cash end to end: won deals booked through real gateway processes against the four
vendor emulators, beside DBOS workflows of the same number of no-op steps.

    .venv/bin/python bench/flows.py [--flows 200] [--concurrency 32] [--queue-concurrency 8]
                                    [--profile]

The emulators run in their own processes with their rate and concurrency limits off, and the
gateway's client-side vendor quotas are off too (`ERPGW_VENDOR_QUOTAS=false`): what is left is
the gateway, the flow engine and the vendor HTTP calls. For each database it creates the deals
in the Salesforce emulator, books one deal per account first (customers are created then, and
the catalog linked), then books `--flows` deals through `POST /process/v1/quote-to-cash`
(`--concurrency` requests at a time, spread over the gateway processes) and times from the
first request to the last flow's success, read from the database. Then, in this process, the
no-op baseline of `bench/flows_noop.py` runs as many workflows of as many steps as a booking
had, bare on DBOS and through the engine, with the gateway's queue concurrency.

SQLite: one gateway process. PostgreSQL (when `ERPGW_BENCH_DATABASE_URL` names an async
PostgreSQL URL of a database the bench may empty: its tables and DBOS schemas are dropped
first): two gateway processes. Prints flows/s, steps/s, the ratio of quote-to-cash steps/s to
the no-op workflow's and each gateway process's peak RSS.
Goals: ratio >= 0.7 of bare queued DBOS; >= 40 flows/s on PostgreSQL with two processes;
peak RSS <= 200 MB per gateway process.

`--profile` samples every gateway process with py-spy while the deals are booked (py-spy is
in the dev extras; sampling costs some throughput, so the rates of a profiled run are not the
figures to quote) and prints where their CPU went, by package and by our own functions.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import peak_rss_mb, rss_line, run_on_served_loop
from bench._profile import Sampler
from bench.flows_noop import Result, run_bare, run_engine
from gateway import storage
from process_apis.engine.store import flow_steps, flows
from process_apis.engine.system_database import sync_database_url
from tests.process_apis.emulator_processes import emulator_processes, gateway_env
from tests.process_apis.sandbox import SalesforceOrg, seeded_id
from tests.support.processes import GatewayProcess, create_client, start_gateway

QUEUE_POLL_SECONDS = 0.25
"""How often a gateway process polls the flows queue (`ERPGW_FLOW_QUEUE_POLL_SECONDS`'s
default)."""
DEALS = (
    # (account, currency, lines)
    ("acme", "USD", (("PLAT-STD", 1), ("SEAT", 10), ("ONBOARD", 1))),
    ("globex", "EUR", (("PLAT-ENT", 1), ("ONBOARD", 1))),
    ("umbrella", "EUR", (("PLAT-STD", 1), ("SEAT", 5))),
)
BOOKING_ATTEMPTS = 4
"""A booking answered 503 (the database busy) is sent again, with its key, up to this often."""
RETRIED = [0]
"""Bookings answered 503 and sent again, over the whole run (printed: the database was busy)."""
WARM_UP = ("acme-platform", "globex-enterprise", "umbrella-platform")


@dataclass(frozen=True)
class Booking:
    processes: int
    rss_mb: dict[str, float]
    flows: int
    steps: int
    failed: int
    seconds: float

    @property
    def flows_per_second(self) -> float:
        return self.flows / self.seconds

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds

    def line(self) -> str:
        return (
            f"{'quote-to-cash':<22} {self.flows:>5} flows     in {self.seconds:6.2f} s: "
            f"{self.flows_per_second:8.1f} flows/s     {self.steps_per_second:8.1f} steps/s"
            f"   ({self.steps / self.flows:.1f} steps a flow, {self.processes} gateway "
            f"process{'es' if self.processes > 1 else ''}, {self.failed} failed)"
        )


async def book(
    database_url: str, processes: int, tmp: Path, args: argparse.Namespace
) -> Booking:
    """Book `args.flows` won deals through `processes` gateway processes on `database_url`."""
    with emulator_processes(tmp, limits=False) as urls:
        env = {
            "ERPGW_DATABASE_URL": database_url,
            "ERPGW_VAR_DIR": str(tmp),
            "ERPGW_SIGNING_KEYS_DIR": str(tmp / "keys"),
            "ERPGW_ISSUER": "http://gateway.bench",
            "ERPGW_ACCESS_LOG": "false",
            "ERPGW_LOG_LEVEL": "WARNING",
            "ERPGW_VENDOR_QUOTAS": "false",
            "ERPGW_RATE_LIMIT_TIERS": "gold=1000000/minute",
            "ERPGW_FLOW_QUEUE_CONCURRENCY": str(args.queue_concurrency),
            **gateway_env(urls),
        }
        client = create_client(env, scopes="process:write process:read", tier="gold")
        async with httpx.AsyncClient(timeout=60) as http:
            deals = await _create_deals(SalesforceOrg(http, urls["salesforce"]), args.flows)
            with _gateways(processes, env, tmp) as gateways:
                bases = [gateway.base_url for gateway in gateways]
                headers = await _token(http, bases[0], client)
                warm = [seeded_id("Opportunity", key) for key in WARM_UP]
                await _trigger(http, bases, headers, warm, args.concurrency)
                await _until_done(database_url, warm, since=None)
                pids = [gateway.process.pid for gateway in gateways]
                with Sampler(pids, tmp, enabled=args.profile) as sampler:
                    started = datetime.now(UTC)
                    await _trigger(http, bases, headers, deals, args.concurrency)
                    seconds, steps, failed = await _until_done(
                        database_url, deals, since=started
                    )
                rss = {f"gateway {index}": peak_rss_mb(pid) for index, pid in enumerate(pids)}
    if args.profile:
        print(sampler.report(count=len(deals), unit="flow"))
    return Booking(
        processes=processes, rss_mb=rss, flows=len(deals), steps=steps, failed=failed,
        seconds=seconds,
    )


async def _create_deals(org: SalesforceOrg, count: int) -> list[str]:
    gate = asyncio.Semaphore(16)
    plan = list(itertools.islice(itertools.cycle(DEALS), count))

    async def one(index: int, account: str, currency: str, lines: tuple[tuple[str, int], ...]
                  ) -> str:
        async with gate:
            return await org.deal(
                seeded_id("Account", account), list(lines), currency=currency,
                name=f"Bench {account} {index}",
            )

    # Read the price book entries once before the deals are made concurrently.
    for _, currency, lines in DEALS:
        for code, _ in lines:
            await org.price_entry(code, currency)
    return list(await asyncio.gather(*(one(i, *deal) for i, deal in enumerate(plan))))


async def _trigger(
    http: httpx.AsyncClient, bases: list[str], headers: dict[str, str], deals: list[str],
    concurrency: int,
) -> None:
    gate = asyncio.Semaphore(concurrency)
    targets = itertools.cycle(bases)

    async def one(opportunity: str, base: str) -> None:
        key = uuid.uuid4().hex
        async with gate:
            for _ in range(BOOKING_ATTEMPTS):
                response = await http.post(
                    f"{base}/process/v1/quote-to-cash",
                    json={"opportunity_id": opportunity},
                    headers={**headers, "Idempotency-Key": key},
                )
                if response.status_code != 503:
                    break
                # As a client would: the same key again once the gateway's Retry-After passed.
                RETRIED[0] += 1
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            if response.status_code != 202:
                raise RuntimeError(f"booking {opportunity}: {response.status_code} {response.text}")

    await asyncio.gather(*(one(deal, next(targets)) for deal in deals))


async def _until_done(
    database_url: str, deals: list[str], *, since: datetime | None, within: float = 600
) -> tuple[float, int, int]:
    """Wait for every flow of `deals` to end; (seconds from `since` to the last end, steps
    recorded, flows failed)."""
    ids = [f"q2c:{deal}" for deal in deals]
    engine = sa.create_engine(sync_database_url(database_url))
    deadline = time.monotonic() + within
    try:
        while True:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(flows.c.status, flows.c.updated_at).where(flows.c.id.in_(ids))
                ).all()
                done = [row for row in rows if row.status in ("succeeded", "failed")]
                if len(done) == len(ids):
                    steps = conn.execute(
                        sa.select(sa.func.count()).select_from(flow_steps).where(
                            flow_steps.c.flow_id.in_(ids)
                        )
                    ).scalar_one()
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(ids) - len(done)} flows did not finish")
            await asyncio.sleep(0.05)
    finally:
        engine.dispose()
    failed = sum(1 for row in done if row.status == "failed")
    if since is None:
        return 0.0, int(steps), failed
    last = max(_utc(row.updated_at) for row in done)
    return (last - since).total_seconds(), int(steps), failed


@contextmanager
def _gateways(count: int, env: dict[str, str], tmp: Path) -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    try:
        for index in range(count):
            started.append(start_gateway(env, tmp / f"gateway-{index}.log"))
        yield started
    finally:
        for gateway in started:
            gateway.stop()


async def _token(http: httpx.AsyncClient, base: str, client: dict[str, str]) -> dict[str, str]:
    response = await http.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _noop_args(booking: Booking, args: argparse.Namespace) -> argparse.Namespace:
    # The queue as the gateway runs it: its concurrency (all processes') and poll interval.
    return argparse.Namespace(
        workflows=booking.flows,
        steps=round(booking.steps / booking.flows),
        concurrency=args.queue_concurrency * booking.processes,
        poll=QUEUE_POLL_SECONDS,
    )


async def noop_sqlite(booking: Booking, args: argparse.Namespace) -> list[Result]:
    noop = _noop_args(booking, args)
    with tempfile.TemporaryDirectory(prefix="flows-bench-noop-") as tmp:
        root = Path(tmp)
        bare = await run_bare(f"sqlite:///{root / 'bare.sqlite'}", "dbos", noop)
        database_url = f"sqlite+aiosqlite:///{root / 'gateway.db'}"
        await asyncio.to_thread(storage.upgrade, database_url)
        engine = await run_engine(database_url, "dbos", noop)
    return [*bare, engine]


async def noop_postgres(
    database_url: str, booking: Booking, args: argparse.Namespace
) -> list[Result]:
    noop = _noop_args(booking, args)
    schema = f"dbos_noop_{uuid.uuid4().hex[:8]}"
    bare = await run_bare(sync_database_url(database_url), schema + "_bare", noop)
    engine = await run_engine(database_url, schema, noop)
    return [*bare, engine]


def report(database: str, booking: Booking, noop: list[Result]) -> None:
    print(f"{database}:")
    print("  " + booking.line())
    for result in noop:
        print("  " + result.line())
    for result in noop:
        steps_per_second = result.workflows * result.steps / result.seconds
        ratio = booking.steps_per_second / steps_per_second
        goal = ""
        if result.name == "bare DBOS, queued":
            goal = f"   goal >= 0.7: {'met' if ratio >= 0.7 else 'MISSED'}"
        print(f"  quote-to-cash steps/s vs {result.name}: {ratio:.2f}{goal}")
    print("  " + rss_line(booking.rss_mb))


@contextmanager
def emptied_postgres(url: str) -> Iterator[str]:
    """The database `url` names with every table of ours and every DBOS schema dropped, before
    and after the run: the bench works in the one database it is given, never beside it."""
    admin = sa.create_engine(sync_database_url(url), isolation_level="AUTOCOMMIT")

    def empty() -> None:
        with admin.connect() as conn:
            schemas = conn.execute(sa.text(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'dbos%'"
            )).scalars().all()
            for schema in [*schemas, "public"]:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(sa.text("CREATE SCHEMA public"))

    empty()
    try:
        yield url
    finally:
        empty()
        admin.dispose()


async def _sqlite(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="flows-bench-") as tmp:
        root = Path(tmp)
        database_url = f"sqlite+aiosqlite:///{root / 'gateway.db'}"
        await asyncio.to_thread(storage.upgrade, database_url)
        booking = await book(database_url, 1, root, args)
    print(
        f"no-op baseline: the same workflows and steps a booking had, {args.queue_concurrency} "
        f"at a time per gateway process, queue polled every {QUEUE_POLL_SECONDS} s as in the "
        "gateway"
    )
    report("SQLite", booking, await noop_sqlite(booking, args))
    if RETRIED[0]:
        print(f"  ({RETRIED[0]} bookings answered 503, database busy, and were sent again)")
        RETRIED[0] = 0


async def main(args: argparse.Namespace) -> None:
    print(
        f"{args.flows} won deals booked end to end ({args.concurrency} requests at a time), "
        "emulators in their own processes, limits and vendor quotas off"
    )
    if not args.skip_sqlite:
        await _sqlite(args)
    postgres = os.environ.get("ERPGW_BENCH_DATABASE_URL")
    if not postgres:
        print("PostgreSQL: skipped (set ERPGW_BENCH_DATABASE_URL to an async PostgreSQL URL)")
        return
    with emptied_postgres(postgres) as database_url, tempfile.TemporaryDirectory(
        prefix="flows-bench-"
    ) as tmp:
        await asyncio.to_thread(storage.upgrade, database_url)
        booking = await book(database_url, 2, Path(tmp), args)
        # Printed at once: the no-op baseline that follows may still fail on its own.
        print("PostgreSQL booking: " + booking.line(), flush=True)
        noop = await noop_postgres(database_url, booking, args)
    report("PostgreSQL", booking, noop)
    if RETRIED[0]:
        print(f"  ({RETRIED[0]} bookings answered 503, database busy, and were sent again)")
    goal = "met" if booking.flows_per_second >= 40 else "MISSED"
    print(f"  goal >= 40 flows/s on PostgreSQL with two processes: {goal}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--queue-concurrency",
        type=int,
        default=8,
        help="flows each gateway process runs at once (ERPGW_FLOW_QUEUE_CONCURRENCY)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample the gateways with py-spy (where CPU went)"
    )
    run_on_served_loop(main(parser.parse_args()))
