"""The partner contract-test kit: schemathesis, every check, against a running gateway.

`erp-gateway contract-test --base-url URL --client-id ID --client-secret SECRET` fetches the
OpenAPI document, takes a token, and runs schemathesis with the configuration the gateway
publishes at `GET /contracts/partner-kit/schemathesis.toml`, plus hooks
(`gateway.partner_kit_hooks`) that feed it real ids and real cursors. A live gateway, or
`--read-only`, gets GET and HEAD requests only. A sandbox gateway also gets the unsafe
operations, after the kit has seeded its own business state through the API (a booked demo
deal, a reconciliation run); an unsafe operation on one record (an exception, a flow, a run)
reaches only records the kit seeded, never the operator's.

Why a generated cursor is allowed a 400 on a list: a cursor is only valid when the list handed
it out (sealed for the caller), so any schema-valid string the generator invents is rightly
refused; real cursors reach the lists through the hooks (kit) or the stateful phase's links.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from litestar import Request, Response, get

from process_apis.quote_to_cash.routes import DEMO_OPPORTUNITY_ID

__all__ = [
    "KIT_CONFIG_PATH",
    "MODE_HEADER",
    "STATE_FILE",
    "KitRun",
    "partner_kit_config",
    "run_contract_test",
    "schemathesis_config",
]

KIT_CONFIG_PATH = "/contracts/partner-kit/schemathesis.toml"
MODE_HEADER = "X-Gateway-Mode"
"""`sandbox` or `live`: whether the gateway may be written to by a contract test."""
STATE_FILE = "partner-kit-state.json"
"""In the run's working directory: the harvested ids and cursors, the seeded records, whether
the run is read-only, and where (if anywhere) to log each request's answer, for the hooks."""

READ_METHODS = ("GET", "HEAD")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
"""What a schema-valid request may be answered: a business rule (422), a record that is not
there (404), a scope the client lacks (403), a limit (429)."""


def schemathesis_config(
    document: dict[str, Any],
    *,
    read_only: bool,
    max_examples: int = 20,
    hooks: str | None = None,
) -> str:
    """The schemathesis configuration (TOML) for this gateway's OpenAPI `document`."""
    lines = [
        "# erp-gateway partner contract tests (schemathesis 4).",
        "# Run: schemathesis run --config-file schemathesis.toml \\",
        '#        -H "Authorization: Bearer $TOKEN" https://gateway.example/docs/openapi.json',
        "",
    ]
    if hooks:
        lines += [f'hooks = "{hooks}"', ""]
    lines += [
        "[generation]",
        f"max-examples = {max_examples}",
        "",
        "[checks.positive_data_acceptance]",
        f"expected-statuses = {json.dumps(ACCEPTED)}",
        "",
    ]
    if read_only:
        lines += [
            "# Read-only: nothing but GET and HEAD is sent, not even a probe of another method.",
            "[phases.coverage]",
            "unexpected-methods = []",
            "",
            "[[operations]]",
            f"include-method = {json.dumps(list(UNSAFE_METHODS))}",
            "enabled = false",
            "",
        ]
    for path in _paged_paths(document):
        lines += [
            "[[operations]]",
            f'include-path = "{path}"',
            'include-method = "GET"',
            "[operations.checks.positive_data_acceptance]",
            f"expected-statuses = {json.dumps([*ACCEPTED, '400'])}",
            "",
        ]
    return "\n".join(lines)


def _paged_paths(document: dict[str, Any]) -> list[str]:
    """The list operations that take a `cursor`."""
    return sorted(
        path
        for path, item in document.get("paths", {}).items()
        if any(
            parameter.get("name") == "cursor" and parameter.get("in") == "query"
            for parameter in item.get("get", {}).get("parameters", [])
        )
    )


@get(
    KIT_CONFIG_PATH,
    opt={"public": True, "rate_limit": False},
    tags=["contracts"],
    summary="The partner kit's schemathesis configuration (read-only: GET and HEAD)",
    media_type="application/toml",
    sync_to_thread=False,
)
def partner_kit_config(request: Request[Any, Any, Any]) -> Response[str]:
    """The published contract-test configuration; `X-Gateway-Mode` says sandbox or live."""
    gateway = request.app.state.gateway
    document = request.app.openapi_schema.to_schema()
    mode = "sandbox" if gateway.settings.sandbox.enabled else "live"
    return Response(
        schemathesis_config(document, read_only=True),
        media_type="application/toml",
        headers={MODE_HEADER: mode},
    )


@dataclass
class KitRun:
    """What one contract-test run did."""

    exit_code: int
    mode: str
    read_only: bool
    seeded: list[str] = field(default_factory=list)
    output: str = ""


def run_contract_test(
    base_url: str,
    *,
    client_id: str,
    client_secret: str,
    read_only: bool = False,
    junit_xml: Path | None = None,
    max_examples: int = 20,
    workdir: Path | None = None,
    echo: bool = True,
    answers: Path | None = None,
) -> KitRun:
    """Run the kit against the gateway at `base_url` and return schemathesis's verdict;
    `answers`: a file to append `METHOD /path status` to for every request sent."""
    if importlib.util.find_spec("schemathesis") is None:
        raise SystemExit("contract-test needs schemathesis: pip install 'erp-gateway[partner-kit]'")
    base_url = base_url.rstrip("/")
    with httpx.Client(base_url=base_url, timeout=30.0) as http:
        document = http.get("/docs/openapi.json").raise_for_status().json()
        published = http.get(KIT_CONFIG_PATH).raise_for_status()
        mode = published.headers.get(MODE_HEADER, "live")
        # Writes only ever reach a sandbox: a live gateway (or an unknown one) is read.
        read_only = read_only or mode != "sandbox"
        token = _token(http, client_id, client_secret)
        headers = {"Authorization": f"Bearer {token}"}
        seeded = [] if read_only else _seed(http, headers)
        state = _harvest(http, headers, document) | {
            "own": seeded,
            "read_only": read_only,
            "answers": str(answers.resolve()) if answers is not None else None,
        }
    with tempfile.TemporaryDirectory(prefix="erpgw-kit-", dir=workdir) as scratch:
        # A directory of its own: schemathesis reads any schemathesis.toml in its working
        # directory, which must not be one of the caller's.
        folder = Path(scratch)
        (folder / STATE_FILE).write_text(json.dumps(state))
        config = schemathesis_config(
            document,
            read_only=read_only,
            max_examples=max_examples,
            hooks="gateway.partner_kit_hooks",
        )
        (folder / "schemathesis.toml").write_text(config)
        command = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(folder / "schemathesis.toml"),
            "--no-color",
            "run",
            f"{base_url}/docs/openapi.json",
            "--url",
            base_url,
            "-H",
            f"Authorization: Bearer {token}",
        ]
        if junit_xml is not None:
            command += ["--report", "junit", "--report-junit-path", str(junit_xml.resolve())]
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if echo:
        print(output, end="")
    return KitRun(
        exit_code=done.returncode, mode=mode, read_only=read_only, seeded=seeded, output=output
    )


def _token(http: httpx.Client, client_id: str, client_secret: str) -> str:
    answer = http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, client_secret)
    )
    if answer.status_code != 200:
        raise SystemExit(f"contract-test: the token endpoint answered {answer.status_code}")
    return str(answer.json()["access_token"])


def _seed(http: httpx.Client, headers: dict[str, str]) -> list[str]:
    """Business state of the kit's own, created through the API (sandbox only): the demo
    deal booked by quote-to-cash, and a reconciliation run. Returns the ids of the records it
    owns; a client without the scopes seeds nothing (its run tests what it may do)."""
    seeded: list[str] = []
    flow = _start(
        http, headers, "/process/v1/quote-to-cash", {"opportunity_id": DEMO_OPPORTUNITY_ID}
    )
    if flow is not None:
        seeded.append(flow.rsplit("/", 1)[-1])
        _wait(http, headers, flow, ("succeeded", "failed"))
    run = _start(
        http,
        headers,
        "/process/v1/reconciliations",
        {"kinds": ["customers"], "settle_seconds": 0},
    )
    if run is not None:
        seeded.append(run.rsplit("/", 1)[-1])
        _wait(http, headers, run, ("completed", "failed"))
    return seeded


def _start(http: httpx.Client, headers: dict[str, str], path: str, body: Any) -> str | None:
    key = {"Idempotency-Key": f"partner-kit-{path.rsplit('/', 1)[-1]}-{time.time_ns()}"}
    answer = http.post(path, json=body, headers=headers | key)
    if answer.status_code != 202:
        return None
    return str(answer.headers["location"])


def _wait(
    http: httpx.Client, headers: dict[str, str], location: str, ends: tuple[str, ...]
) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        answer = http.get(location, headers=headers)
        if answer.status_code != 200 or answer.json().get("status") in ends:
            return
        time.sleep(0.5)


def _json_page(answer: httpx.Response) -> dict[str, Any]:
    """A 200 JSON object answer, else an empty one (an HTML page, a refusal)."""
    if answer.status_code != 200 or "json" not in answer.headers.get("content-type", ""):
        return {}
    body = answer.json()
    return body if isinstance(body, dict) else {}


def _harvest(
    http: httpx.Client, headers: dict[str, str], document: dict[str, Any]
) -> dict[str, Any]:
    """Real ids for the lookups by id and real cursors for the lists, read through the API
    as this client sees it."""
    paths = document.get("paths", {})
    ids: dict[str, list[str]] = {}
    cursors: dict[str, list[str]] = {}
    for path, item in paths.items():
        if "get" not in item or "{" in path:
            continue
        first = _json_page(http.get(path, params={"limit": 1}, headers=headers))
        if first.get("next_cursor"):
            cursors[path] = [str(first["next_cursor"])]
        items = _json_page(http.get(path, headers=headers)).get("data", [])
        found = [str(i["id"]) for i in items if isinstance(i, dict) and "id" in i][:5]
        for child in paths:
            if child.startswith(f"{path}/{{") and child.count("{") == 1 and found:
                ids[child] = found
    return {"ids": ids, "cursors": cursors}
