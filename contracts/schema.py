"""JSON Schema export of the published contracts, one self-contained document per name.

Served by the gateway at `/contracts/{version}/{Name}.schema.json` and snapshotted in the test
suite so a published version cannot change incompatibly unnoticed. As a script:

    python -m contracts.schema --write-snapshots tests/contracts/snapshots
    python -m contracts.schema --check tests/contracts/snapshots
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

from contracts.errors import NotFound

__all__ = [
    "DIALECT",
    "VERSIONS",
    "entities",
    "index",
    "json_schema",
    "main",
    "published",
    "schema_url",
    "write_snapshots",
]

VERSIONS: tuple[str, ...] = ("v1", "v2")
"""Every published major version, oldest first."""

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def published(version: str) -> dict[str, type[msgspec.Struct]]:
    """Name -> Struct of every public contract of `version` (entities, inputs, envelope, ...).

    Generic Structs (`Page`) are left out: they have no schema of their own until
    parametrised. Raises NotFound for an unknown version.
    """
    return dict(_published(version))


def entities(version: str) -> dict[str, type[msgspec.Struct]]:
    """The published contracts that are entities: those with a canonical `id` and `refs`."""
    return {
        name: struct
        for name, struct in _published(version)
        if {"id", "refs"} <= set(struct.__struct_fields__)
    }


def schema_url(version: str, name: str, *, base_url: str = "") -> str:
    """Where the gateway serves the schema of `name`; relative unless `base_url` is given."""
    return f"{base_url.rstrip('/')}/contracts/{version}/{name}.schema.json"


def json_schema(version: str, name: str, *, base_url: str = "") -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of contract `name`, with `$id` and `title`.

    The document is self-contained: the contract itself is the root and every Struct it uses
    sits in its `$defs`, referenced as `#/$defs/...`. A fresh copy is returned on each call.
    Raises NotFound for an unknown version or name.
    """
    document: dict[str, Any] = msgspec.json.decode(_schema_bytes(version, name))
    document["$id"] = schema_url(version, name, base_url=base_url)
    return document


def index(*, base_url: str = "") -> list[dict[str, str]]:
    """Every published schema: name, version and the URL it is served at."""
    return [
        {"name": name, "version": version, "url": schema_url(version, name, base_url=base_url)}
        for version in VERSIONS
        for name, _ in _published(version)
    ]


def write_snapshots(directory: Path) -> list[Path]:
    """Write every published schema to `directory/{version}/{Name}.json`; return the paths."""
    written = []
    for version in VERSIONS:
        target = directory / version
        target.mkdir(parents=True, exist_ok=True)
        for name, _ in _published(version):
            path = target / f"{name}.json"
            path.write_text(_dump(json_schema(version, name)), encoding="utf-8")
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write or check the schema snapshots."""
    parser = argparse.ArgumentParser(prog="python -m contracts.schema", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write-snapshots", metavar="DIR", type=Path)
    action.add_argument("--check", metavar="DIR", type=Path)
    action.add_argument("--index", action="store_true", help="print the schema index")
    args = parser.parse_args(argv)
    if args.index:
        print(json.dumps(index(), indent=2))
        return 0
    if args.write_snapshots is not None:
        paths = write_snapshots(args.write_snapshots)
        print(f"wrote {len(paths)} schema snapshots under {args.write_snapshots}")
        return 0
    return _check(args.check)


def _check(directory: Path) -> int:
    # Imported here: contracts.compat imports this module for diff_versions.
    from contracts.compat import check_snapshots

    report = check_snapshots(directory)
    for name, changes in sorted(report.breaking.items()):
        for change in changes:
            print(f"BREAKING {name}: {change}")
    for name in report.changed:
        print(f"changed compatibly: {name} (refresh with --write-snapshots)")
    for name in report.missing:
        print(f"no snapshot yet: {name} (add it with --write-snapshots)")
    return 1 if report.breaking else 0


@cache
def _published(version: str) -> tuple[tuple[str, type[msgspec.Struct]], ...]:
    if version not in VERSIONS:
        raise NotFound(f"no contracts version {version!r}; published: {', '.join(VERSIONS)}")
    module = importlib.import_module(f"contracts.{version}")
    found = []
    for name in module.__all__:
        candidate = getattr(module, name)
        if (
            isinstance(candidate, type)
            and issubclass(candidate, msgspec.Struct)
            and not getattr(candidate, "__parameters__", ())
        ):
            found.append((name, candidate))
    return tuple(sorted(found))


@cache
def _schema_bytes(version: str, name: str) -> bytes:
    structs = dict(_published(version))
    if name not in structs:
        raise NotFound(f"no contract {name!r} in {version}")
    generated = msgspec.json.schema(structs[name])
    definitions: dict[str, Any] = generated.get("$defs", {})
    root_key = generated["$ref"].rsplit("/", 1)[-1]
    root = definitions[root_key]
    # The root stays in $defs only when something refers back to it.
    others = {
        key: value
        for key, value in definitions.items()
        if key != root_key or _refers_to(definitions, root_key)
    }
    document: dict[str, Any] = {"$schema": DIALECT, "$id": "", **root, "title": name}
    if others:
        document["$defs"] = others
    return msgspec.json.encode(document)


def _refers_to(definitions: dict[str, Any], key: str) -> bool:
    return f'"#/$defs/{key}"' in json.dumps(definitions)


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.exit(main())
