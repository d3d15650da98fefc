"""Validation of the emulator's answers against Stripe's published OpenAPI description.

`SpecValidator` finds the operation of a request in the 2023-08-16 subset and checks the JSON
body against that operation's response schema (`200`, or `default` for errors).
`ValidatingTransport` applies it to every response an httpx client receives.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.support.vendor_specs import vendor_specs_dir

__all__ = ["SpecValidator", "ValidatingTransport", "optional_validator", "spec_validator"]

SPEC_FILE = "stripe-billing-subset.2023-08-16.json"
_BASE = "urn:stripe-openapi"


def spec_validator() -> SpecValidator:
    """The validator over the published spec (skips, or fails in CI, without the specs)."""
    return SpecValidator(vendor_specs_dir() / "stripe" / SPEC_FILE)


def optional_validator() -> SpecValidator | None:
    """The validator when the specs are available, else None: the tests that need the specs
    (`test_openapi`, `test_wire_samples`) are the ones that skip or fail without them."""
    try:
        return spec_validator()
    except (pytest.skip.Exception, pytest.fail.Exception):
        return None


class SpecValidator:
    def __init__(self, path: Path) -> None:
        spec = json.loads(path.read_text())
        _allow_null(spec)
        resource = Resource.from_contents(spec, default_specification=DRAFT4)
        self._registry: Registry[Any] = Registry().with_resource(_BASE, resource)
        self._routes = _routes(spec)
        self.validated: Counter[str] = Counter()

    def check(self, method: str, path: str, status: int, body: bytes) -> str | None:
        """Validate one answer; returns the operation checked, None if outside the subset."""
        found = self._operation(method, path)
        if found is None:
            return None
        key, responses = found
        pointer = "200" if status == 200 else "default"
        schema = responses[pointer]["content"]["application/json"]["schema"]
        validator = OAS30Validator(_resolvable(schema), registry=self._registry)
        errors = sorted(validator.iter_errors(json.loads(body)), key=lambda e: list(e.path))
        assert not errors, f"{key} {status}: " + "; ".join(
            f"{'/'.join(map(str, e.path))}: {e.message[:160]}" for e in errors[:5]
        )
        self.validated[f"{key} {pointer}"] += 1
        return key

    def check_object(self, schema: str, obj: dict[str, Any]) -> None:
        """Validate one object against a component schema (`event`, `invoice`, ...)."""
        ref = {"$ref": f"{_BASE}#/components/schemas/{schema}"}
        validator = OAS30Validator(ref, registry=self._registry)
        errors = list(validator.iter_errors(obj))
        assert not errors, f"{schema}: " + "; ".join(e.message[:160] for e in errors[:5])
        self.validated[f"schema {schema}"] += 1

    def _operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for verb, pattern, template, responses in self._routes:
            if verb == method.lower() and pattern.fullmatch(path.rstrip("/")):
                return f"{method.upper()} {template}", responses
        return None


class ValidatingTransport(httpx.AsyncBaseTransport):
    """Checks every answer against the spec before the client sees it."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, validator: SpecValidator, *, prefix: str = ""
    ) -> None:
        self._inner = inner
        self._validator = validator
        self._prefix = prefix

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        path = request.url.path.removeprefix(self._prefix)
        if response.headers.get("content-type", "").startswith("application/json"):
            self._validator.check(request.method, path, response.status_code, body)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def _routes(spec: dict[str, Any]) -> list[tuple[str, re.Pattern[str], str, dict[str, Any]]]:
    routes = []
    for template, operations in spec["paths"].items():
        pattern = re.compile(re.sub(r"\{[^}]+\}", "[^/]+", template))
        for verb, operation in operations.items():
            if isinstance(operation, dict) and "responses" in operation:
                routes.append((verb, pattern, template, operation["responses"]))
    # A literal segment wins over a parameter: /v1/customers/search before /{customer}.
    routes.sort(key=lambda route: route[2].count("{"))
    return routes


def _resolvable(schema: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(schema).replace('"#/components/', f'"{_BASE}#/components/')
    resolved: dict[str, Any] = json.loads(text)
    return resolved


def _allow_null(node: Any) -> None:
    """OpenAPI 3.0 `nullable` beside `anyOf` or `enum` (as Stripe writes it) also admits null,
    which the 3.0 validator only honours next to `type`."""
    if isinstance(node, dict):
        if node.get("nullable"):
            for key in ("anyOf", "oneOf"):
                if key in node:
                    node[key] = [*node[key], {"enum": [None]}]
            if "enum" in node and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
        for value in node.values():
            _allow_null(value)
    elif isinstance(node, list):
        for value in node:
            _allow_null(value)
