"""The partner kit run against a served sandbox gateway, for the contract tests: one gateway a
test module, with a client holding every scope and a read-only one."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from contracts.scopes import SCOPES
from gateway import storage
from gateway.clients import ClientRegistry
from gateway.partner_kit import run_contract_test
from tests.support.apps import gateway_app, settings_for
from tests.support.servers import free_port, serve_asgi

__all__ = ["READ_SCOPES", "failures", "run_kit", "served_gateway"]

READ_SCOPES = sorted(s for s in SCOPES if s.endswith(":read"))


@contextmanager
def served_gateway(tmp: Path) -> Iterator[dict[str, Any]]:
    """A sandbox gateway served on loopback, its base URL and the two clients' credentials."""
    port = free_port()
    gateway_settings = settings_for(tmp, emulated=True, ERPGW_PORT=str(port))
    app = gateway_app(gateway_settings)
    with serve_asgi(app, port=port, lifespan="on") as base_url:
        everything = asyncio.run(_create_client(gateway_settings.database_url, SCOPES))
        reader = asyncio.run(_create_client(gateway_settings.database_url, READ_SCOPES))
        yield {"base_url": base_url, "everything": everything, "reader": reader}


async def _create_client(database_url: str, scopes: list[str]) -> tuple[str, str]:
    engine = storage.create_engine(database_url)
    try:
        created = await ClientRegistry(engine).create(name="contract", scopes=scopes, tier="gold")
    finally:
        await engine.dispose()
    return created.client.client_id, created.client_secret


def run_kit(
    gateway: dict[str, Any], client: str, outside: Path, *, max_examples: int, read_only: bool
) -> tuple[Any, dict[str, set[int]], ET.Element]:
    """Run the kit as `client` from the directory `outside`; the run, the statuses each
    operation answered, and schemathesis's JUnit report."""
    answers = outside / f"{client}-answers.txt"
    junit = outside / f"{client}-junit.xml"
    client_id, client_secret = gateway[client]
    done = run_contract_test(
        gateway["base_url"],
        client_id=client_id,
        client_secret=client_secret,
        read_only=read_only,
        junit_xml=junit,
        max_examples=max_examples,
        workdir=outside,
        echo=False,
        answers=answers,
    )
    seen: dict[str, set[int]] = defaultdict(set)
    for line in answers.read_text().splitlines():
        method, path, status = line.split(" ")
        seen[f"{method} {path}"].add(int(status))
    return done, seen, ET.parse(junit).getroot()


def failures(report: ET.Element) -> list[str]:
    """Every failed or errored case of a JUnit report, named, its message cut short."""
    return [
        f"{case.get('name')}: {(problem.text or problem.get('message') or '')[:400]}"
        for case in report.iter("testcase")
        for problem in [*case.findall("failure"), *case.findall("error")]
    ]
