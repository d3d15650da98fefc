"""Shared bench plumbing: serve an app under granian in its own process, drive it with wrk,
read the server's CPU time from /proc."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from gateway.cli import EVENT_LOOP

__all__ = [
    "RSS_GOAL_MB",
    "Load",
    "WrkResult",
    "failed_requests",
    "free_port",
    "peak_rss_mb",
    "process_tree_cpu",
    "process_tree_peak_rss",
    "rss_line",
    "run_on_served_loop",
    "serve",
    "wrk",
]

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")
RSS_GOAL_MB = 200
"""Peak resident memory a gateway process may reach under any bench."""


def run_on_served_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a bench's own work (a baseline measured in this process) on the event loop the
    servers run on, so a ratio compares like with like."""
    if EVENT_LOOP == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(
    target: str,
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    server: str = "granian",
    log: Path | None = None,
    workers: int = 1,
) -> Iterator[subprocess.Popen[bytes]]:
    """Serve `module:factory` on 127.0.0.1:port in a child process (granian: with `workers`
    worker processes) until the block ends; its output goes to `log` when given (to read why
    a request failed), else nowhere."""
    command = (
        [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            EVENT_LOOP,
            "--log-level",
            "warning",
            target,
        ]
        if server == "granian"
        else [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--loop",
            EVENT_LOOP,
            target,
        ]
    )
    output = log.open("ab") if log is not None else None
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=output or subprocess.DEVNULL,
        stderr=output or subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process)
        _wait_settled(process.pid)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        if output is not None:
            output.close()


def failed_requests(log: Path, limit: int = 10) -> str:
    """The access lines of `log` whose status is not 2xx, and any error lines (at most
    `limit`), to say why a bench saw non-2xx answers."""
    found: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        status = re.search(r'"status":\s*(\d{3})', line)
        if (status and not status.group(1).startswith("2")) or '"level":"error"' in line:
            found.append(line[:400])
    return "\n".join(found[-limit:]) or "(no failed request in the server's log)"


def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            httpx.get(f"{base}/health/live", timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("server did not start within 60 s")


def _wait_settled(pid: int, *, window: float = 0.5, busy_share: float = 0.1) -> None:
    """Wait until the server's processes are idle: the first worker ready answers the
    health check while the others may still be starting (migrations, the flow engine), and
    their start-up would be counted as the load's CPU."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        before = process_tree_cpu(pid)
        time.sleep(window)
        if process_tree_cpu(pid) - before < window * busy_share:
            return


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    requests: int
    p50_ms: float
    p99_ms: float
    non_2xx: int


@dataclass(frozen=True)
class Load:
    connections: int
    seconds: int
    threads: int = 2


def wrk(url: str, load: Load, headers: Mapping[str, str] | None = None) -> WrkResult:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    command = [
        binary,
        f"-t{min(load.threads, load.connections)}",
        f"-c{load.connections}",
        f"-d{load.seconds}s",
        "--latency",
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return WrkResult(
        requests_per_second=float(_find(r"Requests/sec:\s+([\d.]+)", output)),
        requests=int(_find(r"(\d+) requests in", output)),
        p50_ms=_millis(_find(r"\s50%\s+([\d.]+\w+)", output)),
        p99_ms=_millis(_find(r"\s99%\s+([\d.]+\w+)", output)),
        non_2xx=int(_find(r"Non-2xx or 3xx responses: (\d+)", output, default="0")),
    )


def _find(pattern: str, text: str, default: str | None = None) -> str:
    match = re.search(pattern, text)
    if match is None:
        if default is not None:
            return default
        raise RuntimeError(f"wrk output lacks {pattern!r}:\n{text}")
    return match.group(1)


def _millis(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants."""
    total = 0.0
    for child in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def process_tree_peak_rss(pid: int) -> dict[int, float]:
    """Peak resident memory (VmHWM, MB) of `pid` and each of its descendants, by pid."""
    peaks: dict[int, float] = {}
    for member in [pid, *_descendants(pid)]:
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        if found:
            peaks[member] = int(found.group(1)) / 1024
    return peaks


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return found
    for child in map(int, children):
        found += [child, *_descendants(child)]
    return found


def peak_rss_mb(pid: int) -> float:
    """The largest peak resident set (VmHWM) among `pid` and its descendants, in MB: granian
    serves from a worker child, so the parent alone would understate it. Read it before the
    process stops."""
    return max(process_tree_peak_rss(pid).values(), default=0.0)


def rss_line(peaks: Mapping[str, float]) -> str:
    """One line: each gateway process's peak RSS against the goal."""
    worst = max(peaks.values(), default=0.0)
    each = ", ".join(f"{name} {mb:.0f} MB" for name, mb in peaks.items())
    verdict = "met" if worst <= RSS_GOAL_MB else "MISSED"
    return f"peak RSS per gateway process: {each}   goal <= {RSS_GOAL_MB} MB: {verdict}"
