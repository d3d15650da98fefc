"""The access log: one line per request with the route template, status, client, latency and
correlation id, in the same format as every other log line; written off the request path
(buffered, a few times a second) but never lost at a clean stop; silent above INFO."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from gateway.logging import AccessLog, configure_logging
from tests.support.waiting import eventually

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from litestar.testing import TestClient
    from gateway.app import create_app
    from gateway.settings import load_settings

    app = create_app(load_settings(json.loads(sys.argv[1])))
    with TestClient(app) as client:
        from tests.gateway.conftest import make_client, token_for
        client_id, secret = make_client(client, "crm:read")
        token = token_for(client, client_id, secret)
        answer = client.get(
            "/process/v1/flows?status=hunter2", headers={"Authorization": f"Bearer {token}"}
        )
        print(json.dumps({
            "status": answer.status_code,
            "client_id": client_id,
            "token": token,
            "correlation_id": answer.headers["x-correlation-id"],
        }))
    """
)


def _serve_once(tmp_path: Path, **extra: str) -> tuple[dict[str, str], list[dict[str, object]]]:
    env = {
        "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        "ERPGW_VAR_DIR": str(tmp_path),
        "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "ERPGW_LOG_FORMAT": "json",
        "ERPGW_SANDBOX": "true",
        "ERPGW_SANDBOX_VENDORS": "none",
        **extra,
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(env)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    return answer, [line for line in lines if line.get("event") == "request"]


def test_each_request_is_one_line_with_its_route_status_client_and_correlation(
    tmp_path: Path,
) -> None:
    answer, requests = _serve_once(tmp_path)

    assert answer["status"] == 403  # the token lacks process:read
    refused = [line for line in requests if line["route"] == "/process/v1/flows"]
    assert len(refused) == 1
    line = refused[0]
    assert line["method"] == "GET"
    assert line["status"] == 403
    assert line["client_id"] == answer["client_id"]
    assert line["correlation_id"] == answer["correlation_id"]
    assert line["level"] == "info"
    assert isinstance(line["latency_ms"], float | int) and line["latency_ms"] >= 0
    assert str(line["timestamp"]).endswith("Z")
    # The token request was logged too, as an anonymous caller of the token route.
    assert any(entry["route"] == "/oauth/token" and entry["status"] == 200 for entry in requests)


def test_the_line_holds_no_query_string_and_no_token(tmp_path: Path) -> None:
    answer, requests = _serve_once(tmp_path)

    text = json.dumps(requests)
    assert "hunter2" not in text
    assert answer["token"] not in text


def test_no_line_is_written_above_info(tmp_path: Path) -> None:
    _, requests = _serve_once(tmp_path, ERPGW_LOG_LEVEL="WARNING")

    assert requests == []


def test_no_line_is_written_with_the_access_log_off(tmp_path: Path) -> None:
    _, requests = _serve_once(tmp_path, ERPGW_ACCESS_LOG="false")

    assert requests == []


def _scope(path_template: str) -> dict[str, object]:
    return {"method": "GET", "path_template": path_template, "headers": []}


async def test_lines_are_written_soon_after_the_request_not_on_its_path() -> None:
    stream = io.StringIO()
    log = AccessLog(render=json.dumps, stream=stream, flush_seconds=0.05)

    log.write(_scope("/a"), 200, 0.001)
    log.write(_scope("/b"), 404, 0.002)
    assert stream.getvalue() == ""  # nothing written while the request is answered

    written = await eventually(lambda: stream.getvalue() or None, timeout=5)
    routes = [json.loads(line)["route"] for line in written.splitlines()]
    assert routes == ["/a", "/b"]


def test_a_full_buffer_is_written_at_once() -> None:
    stream = io.StringIO()
    log = AccessLog(render=json.dumps, stream=stream, flush_seconds=60, flush_bytes=200)

    for _ in range(3):
        log.write(_scope("/" + "x" * 80), 200, 0.001)

    assert len(stream.getvalue().splitlines()) >= 2


def test_the_configured_format_is_the_one_every_log_line_uses() -> None:
    log = configure_logging(fmt="json", level="INFO")
    stream = io.StringIO()
    log.stream = stream

    log.write(_scope("/c"), 201, 0.0125)
    log.flush()

    line = json.loads(stream.getvalue())
    line.pop("correlation_id", None)  # present when a request's context is current
    assert line == {
        "method": "GET",
        "route": "/c",
        "status": 201,
        "client_id": None,
        "latency_ms": 12.5,
        "event": "request",
        "level": "info",
        "timestamp": line["timestamp"],
    }
