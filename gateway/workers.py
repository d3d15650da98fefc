"""Server worker processes that never outlive `erp-gateway serve`.

granian and uvicorn stop their workers when the parent shuts down, but a parent killed by
SIGKILL (or the OOM killer) runs no shutdown: its workers were re-parented and kept serving
the port. Each worker therefore watches its parent and exits as soon as it is gone.
"""

from __future__ import annotations

import gc
import os
import threading
import time

from litestar import Litestar

__all__ = ["POLL_SECONDS", "exit_with_parent", "settle_runtime", "worker_app"]

POLL_SECONDS = 0.2
"""How often a worker looks at its parent: the port is free within about this long."""


def exit_with_parent(parent_pid: int | None = None) -> threading.Thread:
    """Start a daemon thread that ends this process when `parent_pid` (default: the current
    parent) is no longer its parent. A polled `getppid()` also covers a parent that dies by
    SIGKILL, which `prctl(PR_SET_PDEATHSIG)` would only catch for the spawning thread."""
    parent = os.getppid() if parent_pid is None else parent_pid

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
        # The parent is gone: nobody will stop this worker or collect its answers. Exit at
        # once; a graceful shutdown would wait for connections no one supervises.
        os._exit(1)

    thread = threading.Thread(target=watch, name="erpgw-parent-watch", daemon=True)
    thread.start()
    return thread


def worker_app() -> Litestar:
    """The ASGI factory `erp-gateway serve` hands the server: the gateway for the
    environment's settings, in a worker that exits with its parent."""
    from gateway.app import create_app_from_env
    from gateway.metrics import enable_multiprocess

    exit_with_parent()
    # Before any series exists: the workers' series go to the shared directory `serve` set.
    enable_multiprocess()
    app = create_app_from_env()
    app.on_startup.append(settle_runtime)
    return app


def settle_runtime() -> None:
    """Once a served worker has started: what it allocated by then (the app, its libraries,
    the flow engine, warm caches) leaves the garbage collector's reach, so a full collection
    no longer walks ~200k long-lived objects mid-request (it halved the event loop's stalls in
    bench/fanout.py). Not for processes that build many apps (tests): frozen objects are never
    freed.

    A shorter GIL switch interval (0.5 ms instead of 5) cut the stalls the flow engine's
    threads cause further, but cost webhook intake a fifth of its throughput (granian's own
    threads then hand the GIL back and forth far more often), so it is not set."""
    gc.collect()
    gc.freeze()
