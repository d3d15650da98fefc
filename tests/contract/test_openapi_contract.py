"""The whole OpenAPI document, held to itself by schemathesis with every check: what partners
run in their CI. A token holding every scope is used, and every operation must answer at
least one 2xx, so a run that only ever met 401/403/404 fails."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from schemathesis.checks import CHECKS, load_all_checks

from contracts.scopes import SCOPES
from gateway import storage
from gateway.clients import ClientRegistry
from tests.support.apps import gateway_app, settings_for
from tests.support.servers import serve_asgi

MAX_EXAMPLES = 20
PATH_PARAMETER = re.compile(r"{(\w+)}")

answered: dict[str, set[int]] = defaultdict(set)
known_ids: dict[str, list[str]] = {}
id_schemas: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp: Path = tmp_path_factory.mktemp("contract")
    gateway_settings = settings_for(
        tmp,
        ERPGW_EMULATORS="true",
        ERPGW_RATE_LIMIT_TIERS="gold=1000000/minute;anonymous=1000000/minute",
    )
    app = gateway_app(gateway_settings)
    with serve_asgi(app, lifespan="on") as base_url:
        secret = asyncio.run(_create_client(gateway_settings.database_url))
        token = httpx.post(
            f"{base_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=secret
        ).json()["access_token"]
        yield {"base_url": base_url, "token": token}


async def _create_client(database_url: str) -> tuple[str, str]:
    engine = storage.create_engine(database_url)
    try:
        created = await ClientRegistry(engine).create(name="contract", scopes=SCOPES, tier="gold")
    finally:
        await engine.dispose()
    return created.client.client_id, created.client_secret


@pytest.fixture(scope="module")
def api_schema(gateway: dict[str, str]) -> Any:
    document = httpx.get(f"{gateway['base_url']}/docs/openapi.json").json()
    _harvest_ids(gateway, document)
    _drop_cursors(document)
    return schemathesis.openapi.from_dict(document)


def _drop_cursors(document: dict[str, Any]) -> None:
    """A cursor is only ever a `next_cursor` the API handed out; an invented one is a client
    error (400), not schema-valid data the API must accept, so it is not generated."""
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "parameters" in operation:
                operation["parameters"] = [
                    p
                    for p in operation["parameters"]
                    if not (p.get("in") == "query" and p.get("name") == "cursor")
                ]


def _harvest_ids(gateway: dict[str, str], document: dict[str, Any]) -> None:
    """Real ids for path parameters, taken from the list operations beside them, so that
    lookups by id answer 2xx as well as 404."""
    headers = {"Authorization": f"Bearer {gateway['token']}"}
    paths = document["paths"]
    for path in paths:
        match = re.match(r"^(.*)/{(\w+)}(/.*)?$", path)
        if match is None or match.group(1) not in paths or "get" not in paths[match.group(1)]:
            continue
        response = httpx.get(f"{gateway['base_url']}{match.group(1)}", headers=headers)
        if response.status_code != 200:
            continue
        body = response.json()
        items = body.get("data", body) if isinstance(body, dict) else body
        ids = [str(item["id"]) for item in items if isinstance(item, dict) and "id" in item]
        if ids:
            known_ids[path] = ids[:5]
            id_schemas[path] = _last_path_parameter_schema(paths[path])


def _last_path_parameter_schema(item: dict[str, Any]) -> dict[str, Any]:
    for operation in item.values():
        for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
            if parameter.get("in") == "path":
                return dict(parameter.get("schema", {}))
    return {}


schema = schemathesis.pytest.from_fixture("api_schema")


@schemathesis.hook
def map_path_parameters(context: Any, path_parameters: dict[str, Any]) -> dict[str, Any]:
    ids = known_ids.get(context.operation.path)
    if not ids or not path_parameters:
        return path_parameters
    name = PATH_PARAMETER.findall(context.operation.path)[-1]
    schema = id_schemas.get(context.operation.path, {})
    if not Draft202012Validator(schema).is_valid(path_parameters.get(name)):
        # A deliberately invalid id (negative testing) must stay invalid.
        return path_parameters
    index = abs(hash(str(path_parameters))) % (len(ids) + 1)
    if index < len(ids):
        path_parameters[name] = ids[index]
    return path_parameters


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_its_contract(case: Any, gateway: dict[str, str]) -> None:
    load_all_checks()
    response = case.call_and_validate(
        base_url=gateway["base_url"],
        headers={"Authorization": f"Bearer {gateway['token']}"},
        checks=list(CHECKS.get_all()),
    )
    answered[f"{case.operation.method.upper()} {case.operation.path}"].add(response.status_code)


def test_every_operation_answered_a_2xx(api_schema: Any) -> None:
    operations = [
        f"{method.upper()} {path}"
        for path, item in api_schema.raw_schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert operations
    never = [op for op in operations if not any(200 <= s < 300 for s in answered.get(op, ()))]
    assert never == [], f"operations that never answered 2xx: {never}"
