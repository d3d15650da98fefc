"""The compatibility gate over the whole published API: committed snapshots of the OpenAPI
document, one per API major, and the check that a change breaks none of them.

`contracts/published/openapi.<api>.<major>.json` (e.g. `openapi.system.billing.v1.json`;
`openapi.unversioned.json` for OAuth, health, docs, contracts and webhooks) each hold the
routes of one major and the component schemas they use. `erp-gateway contracts check` compares
the document this code publishes with them (`contracts.openapi_compat`) and names each
breaking change by file and JSON pointer; additions pass. `erp-gateway contracts check
--update` rewrites the snapshots after an intended change (an addition, or a new major).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from contracts.openapi_compat import ApiBreak, breaking_api_changes

__all__ = [
    "SNAPSHOTS",
    "GateReport",
    "check_published",
    "published_document",
    "split_by_major",
    "write_snapshots",
]

SNAPSHOTS = Path(__file__).resolve().parent.parent / "contracts" / "published"
"""Where the committed snapshots live (in the repository, beside the contracts)."""
_MAJOR = re.compile(r"^/(?P<api>[a-z][a-z0-9/_-]*?)/(?P<major>v\d+)(?:/|$)")
_REF = re.compile(r'"\$ref":\s*"#/components/schemas/([^"]+)"')


class GateReport(msgspec.Struct, frozen=True, kw_only=True):
    """The published document against the snapshots."""

    breaking: dict[str, list[ApiBreak]]
    """Snapshot file -> its breaking changes (these fail the build)."""
    changed: list[str]
    """Snapshots the document differs from compatibly (refresh with --update)."""
    missing: list[str]
    """Majors published with no snapshot yet (an addition)."""


def published_document() -> dict[str, Any]:
    """The OpenAPI document a gateway with every platform wired publishes."""
    from gateway.app import create_app
    from gateway.docs import complete_openapi
    from gateway.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="erpgw-openapi-") as scratch:
        settings = load_settings(
            {
                "ERPGW_SANDBOX": "true",
                "ERPGW_VAR_DIR": scratch,
                "ERPGW_DATABASE_URL": f"sqlite+aiosqlite:///{scratch}/gateway.db",
                "ERPGW_SIGNING_KEYS_DIR": f"{scratch}/keys",
                "ERPGW_LOG_FORMAT": "json",
            }
        )
        app = create_app(settings)
        generated = app.openapi_schema.to_schema()
        return complete_openapi(app, generated, app.state.gateway.versions)


def split_by_major(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """File name -> the part of `document` one API major publishes."""
    groups: dict[str, dict[str, Any]] = {}
    for path, item in sorted(document.get("paths", {}).items()):
        match = _MAJOR.match(path)
        key = (
            f"{match.group('api').replace('/', '.')}.{match.group('major')}"
            if match
            else "unversioned"
        )
        groups.setdefault(key, {})[path] = item
    schemas = document.get("components", {}).get("schemas", {})
    return {
        f"openapi.{key}.json": {
            "openapi": document.get("openapi"),
            "info": {"title": document.get("info", {}).get("title"), "major": key},
            "paths": paths,
            "components": {"schemas": _used_schemas(paths, schemas)},
        }
        for key, paths in groups.items()
    }


def _used_schemas(paths: Mapping[str, Any], schemas: Mapping[str, Any]) -> dict[str, Any]:
    """The component schemas `paths` refer to, directly or through other schemas."""
    wanted = set(_refs(paths))
    done: set[str] = set()
    while wanted - done:
        name = (wanted - done).pop()
        done.add(name)
        wanted |= set(_refs(schemas.get(name, {})))
    return {name: schemas[name] for name in sorted(done) if name in schemas}


def _refs(node: Any) -> Iterator[str]:
    yield from _REF.findall(json.dumps(node))


def write_snapshots(directory: Path = SNAPSHOTS) -> list[Path]:
    """Write the snapshot of every published major; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, part in split_by_major(published_document()).items():
        path = directory / name
        path.write_text(json.dumps(part, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def check_published(
    directory: Path = SNAPSHOTS, document: Mapping[str, Any] | None = None
) -> GateReport:
    """Compare the published document (or `document`) with the snapshots in `directory`."""
    current = split_by_major(document if document is not None else published_document())
    breaking: dict[str, list[ApiBreak]] = {}
    changed: list[str] = []
    for snapshot in sorted(directory.glob("openapi.*.json")):
        stored = json.loads(snapshot.read_text(encoding="utf-8"))
        now = current.get(snapshot.name, {"paths": {}})
        if found := breaking_api_changes(stored, now):
            breaking[snapshot.name] = found
        elif json.loads(json.dumps(now, sort_keys=True)) != stored:
            changed.append(snapshot.name)
    missing = sorted(name for name in current if not (directory / name).exists())
    return GateReport(breaking=breaking, changed=changed, missing=missing)
