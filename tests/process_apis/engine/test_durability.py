"""Flows survive the death of their process: a flow whose process is SIGKILLed mid-step
resumes, its finished steps not run again, either when a process with the same executor id
starts again or, through the heartbeat reaper, in a live process with another executor id.
Runs on SQLite and, when configured, on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway import storage
from process_apis.engine.system_database import sync_database_url
from tests.support.services import REPO_ROOT

WORKER = Path(__file__).parent.parent / "durability_worker.py"

pytestmark = pytest.mark.slow


@dataclass
class Setup:
    database_url: str
    system_schema: str
    tmp: Path

    @property
    def calls(self) -> Path:
        return self.tmp / "calls.txt"

    @property
    def release(self) -> Path:
        return self.tmp / "release"

    def worker(self, mode: str, executor_id: str, flow_id: str, **extra: str) -> list[str]:
        args = [
            sys.executable, str(WORKER), mode,
            "--database-url", self.database_url,
            "--executor-id", executor_id,
            "--system-schema", self.system_schema,
            "--flow-id", flow_id,
            "--calls", str(self.calls),
            "--release", str(self.release),
        ]
        for name, value in extra.items():
            args += [f"--{name.replace('_', '-')}", value]
        return args

    def recorded(self) -> list[str]:
        return self.calls.read_text().split() if self.calls.exists() else []


@pytest.fixture(params=["sqlite", "postgres"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
        storage.upgrade(url)
        yield Setup(url, "dbos", tmp_path)
        return
    url = request.getfixturevalue("postgres_url")
    storage.upgrade(url)
    schema = f"dbos_{uuid.uuid4().hex[:10]}"
    try:
        yield Setup(url, schema, tmp_path)
    finally:
        engine = sa.create_engine(sync_database_url(url))
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def kill_while_blocked(setup: Setup, executor_id: str, flow_id: str, log: Path) -> None:
    """Start the flow in a process, wait until its second step is blocked, SIGKILL it."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            setup.worker("start", executor_id, flow_id),
            env=env(), cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while setup.recorded() != ["reserve", "invoice"]:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"flow did not block: {log.read_text()[-3000:]}")
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


def resume(setup: Setup, executor_id: str, flow_id: str, log: Path, **extra: str) -> None:
    with log.open("ab") as output:
        result = subprocess.run(
            setup.worker("resume", executor_id, flow_id, **extra),
            env=env(), cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, timeout=90,
        )
    assert result.returncode == 0, log.read_text()[-3000:]


def test_same_executor_resumes_after_sigkill(setup: Setup) -> None:
    flow_id = f"durable:{uuid.uuid4().hex[:8]}"
    executor_id = f"exec-a-{uuid.uuid4().hex[:6]}"
    kill_while_blocked(setup, executor_id, flow_id, setup.tmp / "first.log")
    setup.release.touch()

    resume(setup, executor_id, flow_id, setup.tmp / "second.log")

    # `invoice` never finished, so it runs again; `reserve` finished and is not repeated.
    assert setup.recorded() == ["reserve", "invoice", "invoice", "post"]


def test_live_executor_recovers_a_dead_ones_flow(setup: Setup) -> None:
    flow_id = f"durable:{uuid.uuid4().hex[:8]}"
    dead = f"exec-dead-{uuid.uuid4().hex[:6]}"
    live = f"exec-live-{uuid.uuid4().hex[:6]}"
    kill_while_blocked(setup, dead, flow_id, setup.tmp / "first.log")
    setup.release.touch()

    resume(setup, live, flow_id, setup.tmp / "second.log", executor_timeout="1.0")

    assert setup.recorded() == ["reserve", "invoice", "invoice", "post"]
    log = (setup.tmp / "second.log").read_text()
    assert "executor_recovered" in log and dead in log
