"""The floor under every business flow: DBOS workflows of N no-op steps, on SQLite and, when
`ERPGW_BENCH_DATABASE_URL` names a PostgreSQL database, on PostgreSQL, three ways:

- bare DBOS, started directly (no queue): DBOS's own ceiling here;
- bare DBOS through a queue (`worker_concurrency`, polling every `--poll` s), as flows run;
- the process layer's engine: the same workflow as a `@flow` of `@flow_step`s, started with
  `FlowEngine.start` (flow row, queue, step records, datasource transactions).

    .venv/bin/python bench/flows_noop.py [--workflows 200] [--steps 3] [--concurrency 32]
                                         [--poll 0.05]

Prints workflows/s and steps/s for each and the engine's share of the queued bare workflow's
throughput (like for like). The business-flow benchmark compares against these numbers. Each
run uses fresh databases in a temporary directory (PostgreSQL: schemas of its own, dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from dbos import DBOS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import run_on_served_loop
from gateway import storage
from process_apis.engine.durable import NO_RETRY, FlowInstance, flow, flow_class, flow_step
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.system_database import sync_database_url

STEPS = 3


@DBOS.step()
async def bare_step(index: int) -> int:
    return index


@DBOS.workflow()
async def bare_workflow(steps: int) -> int:
    total = 0
    for index in range(steps):
        total += await bare_step(index)
    return total


@flow_class("bench-noop")
class NoopFlows(FlowInstance):
    pass

    @flow_step(system="bench", retry=NO_RETRY)
    async def noop(self, index: int) -> int:
        return index

    @flow()
    async def run(self, steps: int) -> int:
        total = 0
        for index in range(steps):
            total += await self.noop(index)
        return total


@dataclass(frozen=True)
class Result:
    name: str
    workflows: int
    steps: int
    seconds: float

    def line(self) -> str:
        rate = self.workflows / self.seconds
        return (
            f"{self.name:<22} {self.workflows:>5} workflows in {self.seconds:6.2f} s: "
            f"{rate:8.1f} workflows/s {rate * self.steps:8.1f} steps/s"
        )


async def run_bare(system_url: str, schema: str, args: argparse.Namespace) -> list[Result]:
    DBOS(
        config={
            "name": "erp-gateway-bench",
            "system_database_url": system_url,
            "dbos_system_schema": schema,
            "application_version": "bench",
            "executor_id": "bench",
            "notification_listener_polling_interval_sec": args.poll,
            "log_level": "WARNING",
        }
    )
    DBOS.launch()
    try:
        queue = await DBOS.register_queue_async(
            "bench", worker_concurrency=args.concurrency, polling_interval_sec=args.poll
        )
        warm = await queue.enqueue_async(bare_workflow, args.steps)
        await warm.get_result(polling_interval_sec=args.poll)

        async def direct(index: int) -> None:
            handle = await DBOS.start_workflow_async(bare_workflow, args.steps)
            await handle.get_result()

        async def queued(index: int) -> None:
            handle = await queue.enqueue_async(bare_workflow, args.steps)
            await handle.get_result(polling_interval_sec=args.poll)

        direct_seconds = await _drive(direct, args.workflows, args.concurrency)
        queued_seconds = await _drive(queued, args.workflows, args.concurrency)
    finally:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=1) as stopper:
            await loop.run_in_executor(stopper, DBOS.destroy)
        # DBOS made its (now stopped) pool the loop's default executor.
        loop.set_default_executor(ThreadPoolExecutor())
    return [
        Result("bare DBOS, direct", args.workflows, args.steps, direct_seconds),
        Result("bare DBOS, queued", args.workflows, args.steps, queued_seconds),
    ]


async def run_engine(database_url: str, schema: str, args: argparse.Namespace) -> Result:
    engine = FlowEngine(
        database_url=database_url,
        executor_id=f"bench-{uuid.uuid4().hex[:6]}",
        system_schema=schema,
        worker_concurrency=args.concurrency,
        poll_interval_seconds=args.poll,
    )
    flows = engine.register(NoopFlows)
    await engine.launch()
    prefix = uuid.uuid4().hex[:8]
    try:
        # The queue picks up a new queue's configuration on its next pass: warm it first.
        warm = await engine.start("bench", f"bench:{prefix}:warm", flows.run, args.steps)
        await warm.result()

        async def one(index: int) -> None:
            handle = await engine.start("bench", f"bench:{prefix}:{index}", flows.run, args.steps)
            await handle.result()

        seconds = await _drive(one, args.workflows, args.concurrency)
    finally:
        await engine.shutdown()
    return Result("engine, queued", args.workflows, args.steps, seconds)


async def _drive(one: Callable[[int], Awaitable[None]], total: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def bounded(index: int) -> None:
        async with gate:
            await one(index)

    started = time.perf_counter()
    await asyncio.gather(*(bounded(index) for index in range(total)))
    return time.perf_counter() - started


async def bench_sqlite(args: argparse.Namespace) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="flows-noop-") as tmp:
        root = Path(tmp)
        bare = await run_bare(f"sqlite:///{root / 'bare.sqlite'}", "dbos", args)
        database_url = f"sqlite+aiosqlite:///{root / 'gateway.db'}"
        await asyncio.to_thread(storage.upgrade, database_url)
        engine = await run_engine(database_url, "dbos", args)
    return [*bare, engine]


async def bench_postgres(database_url: str, args: argparse.Namespace) -> list[Result]:
    schema = f"dbos_bench_{uuid.uuid4().hex[:8]}"
    bare_schema = schema + "_bare"
    try:
        bare = await run_bare(sync_database_url(database_url), bare_schema, args)
        await asyncio.to_thread(storage.upgrade, database_url)
        engine = await run_engine(database_url, schema, args)
    finally:
        sync = sa.create_engine(sync_database_url(database_url))
        with sync.begin() as conn:
            for name in (schema, bare_schema):
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        sync.dispose()
    return [*bare, engine]


def report(database: str, results: list[Result]) -> None:
    print(f"{database}:")
    for result in results:
        print("  " + result.line())
    _, queued, engine = results
    share = queued.seconds / engine.seconds
    print(f"  engine vs bare queued DBOS: {share:.2f}x the throughput")


async def main(args: argparse.Namespace) -> None:
    print(
        f"{args.workflows} workflows of {args.steps} no-op steps, "
        f"{args.concurrency} at a time, queues polled every {args.poll} s, one process"
    )
    report("SQLite", await bench_sqlite(args))
    postgres = os.environ.get("ERPGW_BENCH_DATABASE_URL")
    if postgres:
        report("PostgreSQL", await bench_postgres(postgres, args))
    else:
        print("PostgreSQL: skipped (set ERPGW_BENCH_DATABASE_URL to an async PostgreSQL URL)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--poll", type=float, default=0.05)
    run_on_served_loop(main(parser.parse_args()))
