"""The README is true: its shell blocks marked `sh runnable` are run in order, as a newcomer
pastes them, against a gateway served as `make run` serves it (sandbox mode, default settings,
started from the folder the commands run in, `.venv/bin/erp-gateway` beside them)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

README = Path(__file__).resolve().parent.parent / "README.md"
RUNNABLE = re.compile(r"^```sh runnable\n(.*?)^```", re.DOTALL | re.MULTILINE)


def runnable_blocks() -> list[str]:
    return RUNNABLE.findall(README.read_text(encoding="utf-8"))


@pytest.fixture
def clone(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A folder laid out as a clone after `make run`: `.venv`, and the gateway served from it."""
    (tmp_path / ".venv").symlink_to(sys.prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERPGW_")}
    port = free_port()
    log = (tmp_path / "serve.log").open("ab")
    served = subprocess.Popen(
        [str(tmp_path / ".venv" / "bin" / "erp-gateway"), "serve"],
        cwd=tmp_path,
        env={**env, "ERPGW_SANDBOX": "true", "ERPGW_PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    gateway = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not _ready(gateway, tmp_path):
            assert served.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.3)
        yield tmp_path, {**env, "GATEWAY": gateway}
    finally:
        os.killpg(served.pid, signal.SIGTERM)
        try:
            served.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(served.pid, signal.SIGKILL)
            served.wait(timeout=10)
        log.close()


def _ready(gateway: str, folder: Path) -> bool:
    try:
        answer = httpx.get(f"{gateway}/health/ready", timeout=2)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and (folder / "var" / "demo-client.json").exists()


def test_readme_has_runnable_blocks() -> None:
    blocks = runnable_blocks()
    assert len(blocks) >= 5
    assert any("jq -r .client_secret" in block for block in blocks)
    assert any('"opportunity_id"' in block for block in blocks)


def test_readme_runnable_blocks_work_in_order(clone: tuple[Path, dict[str, str]]) -> None:
    folder, env = clone
    script = "set -euo pipefail\n" + "\n".join(runnable_blocks())
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    out = done.stdout
    assert '"client_id"' in out  # whoami
    assert '"status": "succeeded"' in out  # the booked demo deal
    assert "the closed deal's flow: succeeded" in out  # the deal closed in Salesforce
    assert re.search(r"(?im)^sunset: ", out)  # billing v1's lifecycle headers
    assert '"breaking":' in out
