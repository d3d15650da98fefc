"""A process that runs one flow on the engine, for the durability tests (run as a script).

    start   launch the engine and start flow FLOW_ID; its second step blocks until the release
            file exists, so the test can SIGKILL this process mid-flow
    resume  launch the engine (maybe under another executor id) and exit 0 once FLOW_ID has
            succeeded, recovered from the killed process

Every step appends its name to the calls file first, so the test sees exactly which steps ran.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway import storage
from process_apis.engine.durable import NO_RETRY, FlowInstance, flow, flow_class, flow_step
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.records import FlowReader
from tests.support.waiting import eventually


@flow_class("durable-orders")
class DurableOrders(FlowInstance):
    def __init__(self, *, calls: Path, release: Path) -> None:
        super().__init__()
        self.calls = calls
        self.release = release

    def _record(self, step: str) -> None:
        with self.calls.open("a") as handle:
            handle.write(step + "\n")

    @flow_step(system="crm", retry=NO_RETRY)
    async def reserve(self, order_id: str) -> str:
        self._record("reserve")
        return f"reservation-{order_id}"

    @flow_step(system="billing", retry=NO_RETRY)
    async def invoice(self, reservation: str) -> str:
        self._record("invoice")
        # The release file comes from another process: nothing here can signal an Event.
        while not self.release.exists():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return f"invoice-{reservation}"

    @flow_step(system="erp", retry=NO_RETRY)
    async def post(self, invoice: str) -> str:
        self._record("post")
        return f"posted-{invoice}"

    @flow()
    async def run(self, order_id: str) -> str:
        reservation = await self.reserve(order_id)
        invoice = await self.invoice(reservation)
        return await self.post(invoice)


async def main(args: argparse.Namespace) -> int:
    engine = FlowEngine(
        database_url=args.database_url,
        executor_id=args.executor_id,
        system_schema=args.system_schema,
        poll_interval_seconds=0.05,
        heartbeat_seconds=0.2,
        executor_timeout_seconds=args.executor_timeout,
        pool_size=4,
    )
    orders = engine.register(DurableOrders, calls=Path(args.calls), release=Path(args.release))
    await engine.launch()
    try:
        if args.mode == "start":
            await engine.start("durable", args.flow_id, orders.run, "o-1")
            await asyncio.Event().wait()
        reader = FlowReader(storage.create_engine(args.database_url))

        async def succeeded() -> bool:
            found = await reader.get(args.flow_id)
            return found is not None and found.status == "succeeded"

        try:
            await eventually(succeeded, timeout=60.0, what=f"flow {args.flow_id} succeeded")
        except AssertionError:
            return 1
        print("succeeded", flush=True)
        return 0
    finally:
        await engine.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("start", "resume"))
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--executor-id", required=True)
    parser.add_argument("--system-schema", default="dbos")
    parser.add_argument("--executor-timeout", type=float, default=30.0)
    parser.add_argument("--flow-id", required=True)
    parser.add_argument("--calls", required=True)
    parser.add_argument("--release", required=True)
    sys.exit(asyncio.run(main(parser.parse_args())))
