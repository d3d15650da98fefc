"""Validates Zendesk responses against Zendesk's published OpenAPI description.

The published file omits `nullable` on fields the live API does send as null (the recorded
samples show `external_id`, `type`, `organization_id`, `problem_id`, `recipient` null on
tickets and `alias`, `details`, `notes`, `signature`, `default_group_id`, `last_login_at`,
`phone`, `organization_id` null on users); `NULLABLE` lists them, and the recorded samples are
themselves validated against the adjusted description to prove the list is needed and enough.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

__all__ = ["NULLABLE", "ResponseValidator", "load_spec"]

SPEC_FILE = "zendesk/zendesk-support-subset.yaml"
_SPEC_URI = "urn:zendesk-support-spec"

NULLABLE: dict[str, tuple[str, ...]] = {
    # Seen null in recorded tickets; assignee/group are null on unassigned tickets.
    "TicketObject": ("external_id", "type", "organization_id", "problem_id", "recipient",
                     "forum_topic_id", "assignee_id", "group_id", "priority"),
    # Seen null in recorded users.
    "UserForAdmin": ("alias", "details", "notes", "signature", "default_group_id",
                     "last_login_at", "phone", "organization_id"),
    "UserForEndUser": ("phone", "organization_id", "photo", "shared_phone_number"),
}
"""Properties the live API sends as null although the published description does not say so."""


class _YamlLoader(yaml.SafeLoader):
    """The published file has a bare `=` somewhere YAML 1.1 would read as a value token."""


_YamlLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_spec(specs_dir: Path) -> dict[str, Any]:
    with (specs_dir / SPEC_FILE).open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=_YamlLoader)
    schemas = spec["components"]["schemas"]
    for name, properties in NULLABLE.items():
        for prop in properties:
            schemas[name]["properties"][prop]["nullable"] = True
            enum = schemas[name]["properties"][prop].get("enum")
            if enum is not None and None not in enum:
                enum.append(None)
    # Organization fields a record has not filled are null (Zendesk lists every field); the
    # values are a oneOf, which `nullable` does not reach, so null is one more branch.
    schemas["OrganizationObject"]["properties"]["organization_fields"][
        "additionalProperties"]["oneOf"].append({"type": "string", "nullable": True,
                                                 "enum": [None]})
    return spec


@dataclass
class ResponseValidator:
    """Checks each response against the operation it answers; counts what it checked."""

    spec: dict[str, Any]
    validated: list[str] = field(default_factory=list)
    _routes: list[tuple[str, re.Pattern[str], str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        resource = Resource.from_contents(self.spec, default_specification=DRAFT4)
        self._registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
        for template, item in self.spec["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$")
            for method in item:
                if method in ("get", "post", "put", "patch", "delete"):
                    self._routes.append((method, pattern, template))
        # Static segments first, so /tickets/show_many is not read as /tickets/{ticket_id}.
        self._routes.sort(key=lambda route: route[2].count("{"))

    def check(self, method: str, path: str, status: int, body: bytes) -> bool:
        """Validate one response; False when the spec does not describe this operation."""
        path = path.removesuffix(".json")
        template = next((t for m, p, t in self._routes if m == method.lower() and p.match(path)),
                        None)
        if template is None:
            return False
        responses = self.spec["paths"][template][method.lower()]["responses"]
        code = str(status) if str(status) in responses else "default"
        content = responses.get(code, {}).get("content", {}).get("application/json")
        if content is None or "schema" not in content:
            return False
        pointer = "/".join(
            part.replace("~", "~0").replace("/", "~1")
            for part in ("paths", template, method.lower(), "responses", code, "content",
                         "application/json", "schema")
        )
        validator = OAS30Validator({"$ref": f"{_SPEC_URI}#/{pointer}"}, registry=self._registry)
        validator.validate(json.loads(body))
        self.validated.append(f"{method.upper()} {template} {status}")
        return True

    def check_schema(self, name: str, instance: Any) -> None:
        validator = OAS30Validator({"$ref": f"{_SPEC_URI}#/components/schemas/{name}"},
                                   registry=self._registry)
        validator.validate(instance)
