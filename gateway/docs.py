"""Developer docs: the OpenAPI 3.1 document, the interactive docs page with self-hosted assets
(it renders with no internet), and the published JSON Schemas of the canonical contracts.

Litestar generates the OpenAPI from the routes; `complete_openapi` then adds what only the
gateway knows: the security schemes and each operation's scopes (from the route's `opt`),
the problem+json answers every operation can give, and the deprecated versions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, Router, get
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import Components, Example, Tag
from litestar.params import PathParameter
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router

from contracts import schema as contract_schemas
from contracts.scopes import SCOPE_DESCRIPTIONS
from contracts.v1 import Problem
from gateway.idempotency import IDEMPOTENCY_KEY_PATTERN
from gateway.versioning import VersionRegistry

__all__ = ["complete_openapi", "contracts_routes", "docs_assets_router", "openapi_config"]

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
PUBLIC = {"public": True, "rate_limit": False}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
COMMON_PROBLEMS = {
    "400": "The request is malformed (field errors listed)",
    "413": "The body is larger than the gateway accepts",
    "429": "Rate limit reached; see Retry-After and the RateLimit fields",
    "500": "The gateway failed; the correlation id finds the log line",
}
AUTH_PROBLEMS = {
    "401": "No valid access token",
    "403": "The token lacks a scope or the legal entity this needs",
}
BODY_PROBLEMS = {"422": "The input breaks a business rule (field errors listed)"}
LOOKUP_PROBLEMS = {"404": "No such resource, or not visible to this client"}
IDEMPOTENCY_PROBLEMS = {
    "409": "A request with this Idempotency-Key is still in progress",
    "422": "This Idempotency-Key was used with a different request",
}
UPSTREAM_PROBLEMS = {
    "502": "A platform refused or failed the request",
    "503": "A platform or the gateway is unavailable; see Retry-After",
    "504": "A platform did not answer in time",
}


def _swagger_root() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


class _OpenAPIJson(OpenAPIRenderPlugin):
    """Serves the completed OpenAPI document at `/docs/openapi.json`."""

    def __init__(self, registry: VersionRegistry) -> None:
        super().__init__(path="/openapi.json", media_type=MediaType.JSON)
        self.registry = registry
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            document = complete_openapi(request.app, openapi_schema, self.registry)
            self._rendered = msgspec.json.encode(document)
        return self._rendered


class _DocsPage(OpenAPIRenderPlugin):
    """The interactive docs page (Swagger UI), its scripts and styles served by us."""

    def __init__(self) -> None:
        super().__init__(path="/", media_type=MediaType.HTML)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return _DOCS_HTML.encode()


_DOCS_HTML = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>erp-gateway API</title>
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
</head>
<body>
<div id="docs"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{ASSETS_PATH}/swagger-ui-standalone-preset.js"></script>
<script src="{DOCS_PATH}/init.js"></script>
</body>
</html>
"""

_DOCS_INIT_JS = f"""window.ui = SwaggerUIBundle({{
  url: "{DOCS_PATH}/openapi.json",
  dom_id: "#docs",
  deepLinking: true,
  docExpansion: "list",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}});
"""


@get(
    "/docs/init.js",
    opt=PUBLIC,
    include_in_schema=False,
    media_type="application/javascript",
    sync_to_thread=False,
)
def _docs_init() -> str:
    return _DOCS_INIT_JS


def openapi_config(registry: VersionRegistry, *, version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="erp-gateway",
        version=version,
        description=(
            "Keeps CRM, billing, support and ERP in step through versioned canonical APIs. "
            "Every error is application/problem+json (RFC 9457). Get a token with the OAuth 2.0 "
            "client credentials grant at /oauth/token."
        ),
        path=DOCS_PATH,
        openapi_router=Router(DOCS_PATH, route_handlers=[], opt=PUBLIC, include_in_schema=False),
        render_plugins=[_DocsPage(), _OpenAPIJson(registry)],
        create_examples=False,
        use_handler_docstrings=True,
        tags=[
            Tag(name="auth", description="Tokens, keys and the calling client"),
            Tag(name="contracts", description="JSON Schemas of the canonical contracts"),
            Tag(name="health", description="Liveness and readiness"),
        ],
        components=Components(),
    )


def docs_assets_router() -> list[Any]:
    return [
        create_static_files_router(
            path=ASSETS_PATH,
            directories=[_swagger_root()],
            opt=PUBLIC,
            include_in_schema=False,
            send_as_attachment=False,
        ),
        _docs_init,
    ]


@get(
    "/contracts",
    opt=PUBLIC,
    tags=["contracts"],
    summary="Index of the published contract schemas",
    sync_to_thread=False,
)
def contracts_index() -> list[dict[str, Any]]:
    return contract_schemas.index()


@get(
    "/contracts/{version:str}/{document:str}",
    opt=PUBLIC,
    tags=["contracts"],
    summary="The JSON Schema of one contract, e.g. /contracts/v1/Customer.schema.json",
    media_type="application/schema+json",
    sync_to_thread=False,
)
def contract_schema(
    version: Annotated[
        str, PathParameter(examples=[Example(summary="The first version", value="v1")])
    ],
    document: Annotated[
        str,
        PathParameter(
            examples=[Example(summary="A customer", value="Customer.schema.json")],
            description="`{Name}.schema.json`; `GET /contracts` lists the names",
        ),
    ],
) -> dict[str, Any]:
    name = document.removesuffix(".schema.json")
    if (
        version not in contract_schemas.VERSIONS
        or name == document
        or name not in contract_schemas.published(version)
    ):
        raise NotFoundException(f"no published contract {version}/{document}")
    return contract_schemas.json_schema(version, name)


contracts_routes = [contracts_index, contract_schema]


def complete_openapi(
    app: Litestar, generated: dict[str, Any], registry: VersionRegistry
) -> dict[str, Any]:
    """The generated document plus security, scopes, problem answers and deprecations."""
    document: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(generated))
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _add_problem_schema(schemas)
    components["securitySchemes"] = _security_schemes()
    handlers = _handlers_by_operation(app)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            opt = handlers.get((path, method.upper()), {})
            _complete_operation(path, method.upper(), operation, opt)
    registry.mark_openapi(document)
    _describe_token_endpoint(document)
    return document


def _add_problem_schema(schemas: dict[str, Any]) -> None:
    (_, defs) = msgspec.json.schema_components(
        [Problem], ref_template="#/components/schemas/{name}"
    )
    schemas.update(defs)
    if "Problem" not in schemas:
        problem_name = next(name for name in defs if name.endswith("Problem"))
        schemas["Problem"] = {"$ref": f"#/components/schemas/{problem_name}"}


def _security_schemes() -> dict[str, Any]:
    return {
        "oauth2": {
            "type": "oauth2",
            "description": "OAuth 2.0 client credentials; tokens are RFC 9068 JWTs",
            "flows": {
                "clientCredentials": {"tokenUrl": "/oauth/token", "scopes": SCOPE_DESCRIPTIONS}
            },
        },
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    }


def _handlers_by_operation(app: Litestar) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = re.sub(r"{(\w+):[^}]+}", r"{\1}", route.path)
        for handler in route.route_handlers:
            for method in handler.http_methods:
                found[(path, method)] = dict(handler.opt)
    return found


def _complete_operation(
    path: str, method: str, operation: dict[str, Any], opt: dict[str, Any]
) -> None:
    responses: dict[str, Any] = operation["responses"]
    problems = dict(COMMON_PROBLEMS)
    if not opt.get("public"):
        problems.update(AUTH_PROBLEMS)
        scopes = list(opt.get("scopes", ()))
        operation["security"] = [{"oauth2": scopes}, {"bearerAuth": []}]
        if scopes:
            note = f"Requires scope(s): `{' '.join(scopes)}`."
            operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
    else:
        operation["security"] = []
    if "{" in path:
        problems.update(LOOKUP_PROBLEMS)
    if method in ("POST", "PUT", "PATCH"):
        problems.update(BODY_PROBLEMS)
    if opt.get("idempotency"):
        problems.update(IDEMPOTENCY_PROBLEMS)
        _declare_idempotency_header(operation, required=opt["idempotency"] == "required")
    if path.startswith(("/system/", "/process/", "/experience/")):
        problems.update(UPSTREAM_PROBLEMS)
        problems["410"] = "This API version is past its sunset"
    for status, description in problems.items():
        responses[status] = _problem_response(description)
    responses["default"] = _problem_response("Any other error")


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": PROBLEM_REF}},
    }


def _declare_idempotency_header(operation: dict[str, Any], *, required: bool) -> None:
    parameters = operation.setdefault("parameters", [])
    if any(p.get("name") == "Idempotency-Key" for p in parameters):
        return
    parameters.append(
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": required,
            "description": "Retries with the same key replay the first answer",
            "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
        }
    )


def _describe_token_endpoint(document: dict[str, Any]) -> None:
    operation = document.get("paths", {}).get("/oauth/token", {}).get("post")
    if operation is None:
        return
    operation["requestBody"] = {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "scope": {"type": "string"},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string"},
                    },
                }
            }
        },
    }
    oauth_error = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    }
    responses = operation["responses"]
    responses["200"] = {
        "description": "An access token",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["access_token", "token_type", "expires_in"],
                    "properties": {
                        "access_token": {"type": "string"},
                        "token_type": {"type": "string"},
                        "expires_in": {"type": "integer"},
                        "scope": {"type": "string"},
                    },
                }
            }
        },
    }
    for status, description in (("400", "RFC 6749 error"), ("401", "Client authentication failed")):
        responses[status] = {
            "description": description,
            "content": {"application/json": {"schema": oauth_error}},
        }
