"""With `ERPGW_LOG_FORMAT=json` every event is one JSON line, whatever wrote it (structlog,
the standard library, DBOS's logger, `warnings`, a dying thread), and a failure that repeats
is written once with a count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import logging, threading, warnings
    import structlog
    from gateway.logging import configure_logging

    configure_logging(fmt="json", level="INFO")
    # DBOS installs its console handler when it starts, unless one is there by its name.
    from dbos._logger import init_logger
    init_logger()
    logging.getLogger("dbos").error("Exception encountered in queue thread: boom")
    logging.getLogger("sqlalchemy.pool").warning("connection lost")
    warnings.warn("old api", DeprecationWarning, stacklevel=1)
    try:
        raise ValueError("step failed")
    except ValueError:
        structlog.get_logger("process").exception("step_retry", step="create_order")

    def die():
        raise RuntimeError("thread boom")
    t = threading.Thread(target=die, name="worker-x")
    t.start(); t.join()

    for _ in range(100):
        logging.getLogger("dbos").warning("could not reach the system database: refused")
    for _ in range(100):
        structlog.get_logger("engine").warning("flow_engine_job_failed", job="beat", error="down")
    structlog.get_logger("engine").info("done")
    """
)


def _lines() -> list[dict[str, object]]:
    warnings_env = {**os.environ, "PYTHONWARNINGS": "always"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=warnings_env,
        timeout=60,
        check=True,
    )
    raw = [line for line in result.stderr.splitlines() if line.strip()]
    parsed = []
    for line in raw:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}\n{result.stderr}") from None
    return parsed


def test_every_source_writes_one_json_line_per_event() -> None:
    lines = _lines()
    text = [str(line.get("event")) for line in lines]
    assert any("queue thread: boom" in t for t in text)
    assert any(t == "connection lost" for t in text)
    assert any("old api" in t for t in text)
    retry = next(line for line in lines if line.get("event") == "step_retry")
    assert "ValueError: step failed" in str(retry["exception"])
    assert retry["step"] == "create_order"
    died = next(line for line in lines if line.get("event") == "thread_failed")
    assert died["thread"] == "worker-x"
    assert "RuntimeError: thread boom" in str(died["exception"])
    assert lines[-1]["event"] == "done"


def test_a_repeated_failure_is_written_once() -> None:
    lines = _lines()
    dbos = [line for line in lines if "system database" in str(line.get("event"))]
    engine = [line for line in lines if line.get("event") == "flow_engine_job_failed"]
    assert len(dbos) == 1
    assert len(engine) == 1


def test_a_repeat_after_the_window_carries_the_count() -> None:
    from gateway.logging import RepeatThrottle

    now = [0.0]
    throttle = RepeatThrottle(window=60.0, clock=lambda: now[0])
    key = ("engine", "OperationalError: down")
    assert throttle.admit(key) == 0
    held = [throttle.admit(key) for _ in range(99)]
    assert held == [None] * 99
    now[0] = 59.0
    assert throttle.admit(key) is None
    now[0] = 61.0
    assert throttle.admit(key) == 100
    now[0] = 62.0
    assert throttle.admit(key) is None
    assert throttle.admit(("engine", "another")) == 0
