"""Breaking-change detection between two JSON Schemas of a contract, and between versions.

Breaking, for a contract that is both sent and received: a field removed, a required field
added (or an optional one made required), a type narrowed (a JSON type no longer accepted,
a free value now limited to an enum, a constraint tightened, unknown fields now refused), an
enum value removed. Compatible: an optional field added, an enum value added, a type widened.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from contracts.schema import VERSIONS, json_schema, published

__all__ = [
    "Change",
    "SnapshotReport",
    "all_changes",
    "breaking_changes",
    "changes_between_versions",
    "check_snapshots",
    "diff_documents",
    "diff_versions",
    "schema_changes",
]

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_STRUCTURED = ("object", "array")


class SnapshotReport(msgspec.Struct, frozen=True, kw_only=True):
    """The published schemas compared with stored snapshots, keyed `"{version}/{Name}"`."""

    breaking: dict[str, list[str]]
    """Incompatible changes: these fail the build."""
    changed: list[str]
    """Changed compatibly: the snapshot should be refreshed."""
    missing: list[str]
    """Published with no snapshot yet."""


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The incompatible changes from schema `old` to schema `new` of the same contract.

    Each entry reads `"<path>: <what changed>"`, the path dotted from the root with `[]` for
    array items and `{}` for map values (`lines[].quantity: field removed`). Empty means a
    client of `old` keeps working against `new`.
    """
    comparer = _Comparer(old, new)
    comparer.compare(old, new, "")
    return list(dict.fromkeys(comparer.changes))


def schema_changes(
    old_root: Mapping[str, Any],
    old: Mapping[str, Any],
    new_root: Mapping[str, Any],
    new: Mapping[str, Any],
) -> list[str]:
    """Like `breaking_changes`, for schemas inside larger documents (an OpenAPI document's
    operation): `$ref`s resolve against `old_root` and `new_root`."""
    comparer = _Comparer(old_root, new_root)
    comparer.compare(old, new, "")
    return list(dict.fromkeys(comparer.changes))


def diff_documents(
    old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[str]]:
    """Breaking changes per name between two sets of schemas (name -> schema document)."""
    report: dict[str, list[str]] = {}
    for name, old_schema in sorted(old.items()):
        if name not in new:
            report[name] = ["(root): contract removed"]
        elif changes := breaking_changes(old_schema, new[name]):
            report[name] = changes
    return report


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One difference between two versions of a contract."""

    contract: str
    path: str
    """Dotted from the contract's root (`lines[].amount`), `(root)` for the contract itself."""
    change: str
    breaking: bool


# A compatible change is an incompatible one read backwards (new -> old): how to say it forwards.
_FORWARDS = (
    ("field removed", "field added (optional)"),
    ("field became required", "field became optional"),
    ("enum value removed: ", "enum value added: "),
    ("unknown fields now refused", "unknown fields now accepted"),
    ("type narrowed: ", "type widened (backwards: "),
    ("constraint tightened: ", "constraint loosened (backwards: "),
)


def all_changes(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every difference from schema `old` to schema `new` of contract `name`, each classified:
    breaking (a client of `old` may fail) or compatible (additions, widenings)."""
    breaking = [_change(name, entry, breaking=True) for entry in breaking_changes(old, new)]
    flagged = {change.path for change in breaking}
    compatible = []
    for entry in breaking_changes(new, old):
        change = _change(name, entry, breaking=False)
        if change.path in flagged:
            continue  # the same spot already changed incompatibly
        for backwards, forwards in _FORWARDS:
            if change.change.startswith(backwards):
                rest = change.change.removeprefix(backwards)
                closing = ")" if forwards.endswith("(backwards: ") else ""
                change = msgspec.structs.replace(change, change=f"{forwards}{rest}{closing}")
                break
        compatible.append(change)
    return [*breaking, *compatible]


def changes_between_versions(old_version: str, new_version: str) -> list[Change]:
    """Every change of every contract from one published version to another."""
    old, new = _documents(old_version), _documents(new_version)
    changes: list[Change] = []
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            changes.append(Change(contract=name, path="(root)", change="contract removed",
                                  breaking=True))
        elif name not in old:
            changes.append(Change(contract=name, path="(root)", change="contract added",
                                  breaking=False))
        else:
            changes.extend(all_changes(name, old[name], new[name]))
    return changes


def _change(name: str, entry: str, *, breaking: bool) -> Change:
    path, _, what = entry.partition(": ")
    return Change(contract=name, path=path, change=what, breaking=breaking)


def diff_versions(old_version: str, new_version: str) -> dict[str, list[str]]:
    """Breaking changes per contract name from one published version to another."""
    return diff_documents(_documents(old_version), _documents(new_version))


def check_snapshots(directory: Path) -> SnapshotReport:
    """Compare every published schema with its snapshot under `directory/{version}/`."""
    breaking: dict[str, list[str]] = {}
    changed: list[str] = []
    missing: list[str] = []
    for version in VERSIONS:
        stored = _stored(directory / version)
        current = _documents(version)
        for name, changes in diff_documents(stored, current).items():
            breaking[f"{version}/{name}"] = changes
        for name, schema in sorted(current.items()):
            key = f"{version}/{name}"
            if name not in stored:
                missing.append(key)
            elif key not in breaking and stored[name] != schema:
                changed.append(key)
    return SnapshotReport(breaking=breaking, changed=changed, missing=missing)


def _documents(version: str) -> dict[str, dict[str, Any]]:
    return {name: json_schema(version, name) for name in published(version)}


def _stored(directory: Path) -> dict[str, dict[str, Any]]:
    if not directory.is_dir():
        return {}
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
    }


class _Comparer:
    """Walks two schema documents side by side, collecting incompatible differences."""

    def __init__(self, old_root: Mapping[str, Any], new_root: Mapping[str, Any]) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.changes: list[str] = []
        self._in_progress: set[tuple[str, str]] = set()

    def compare(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_branches = list(_branches(self.old_root, old))
        new_branches = list(_branches(self.new_root, new))
        self._compare_values(old_branches, new_branches, path)
        for old_ref, old_branch in old_branches:
            match = _match(old_ref, old_branch, new_branches)
            if match is not None:
                self._compare_branch(old_ref, old_branch, *match, path)

    def _report(self, path: str, what: str) -> None:
        self.changes.append(f"{path or '(root)'}: {what}")

    def _compare_values(
        self, old: list[tuple[str, Mapping[str, Any]]], new: list[tuple[str, Mapping[str, Any]]],
        path: str,
    ) -> None:
        old_any, old_kinds, old_values = _accepted(old)
        new_any, new_kinds, new_values = _accepted(new)
        if new_any:
            return
        if old_any:
            self._report(path, f"type narrowed: any value was accepted, now {_show(new_kinds)}")
            return
        lost = [kind for kind in sorted(old_kinds) if not _kind_ok(kind, new_kinds)]
        limited = [kind for kind in lost if any(_kind_of(v) == kind for v in new_values)]
        for kind in limited:
            self._report(path, f"type narrowed: any {kind} was accepted, now only an enum")
        if dropped := [kind for kind in lost if kind not in limited]:
            self._report(
                path,
                f"type narrowed: {', '.join(dropped)} no longer accepted "
                f"(was {_show(old_kinds)}, now {_show(new_kinds)})",
            )
        removed = [
            value
            for value in old_values
            if not _kind_ok(_kind_of(value), new_kinds) and not _contains(new_values, value)
        ]
        if removed:
            shown = ", ".join(json.dumps(value) for value in removed)
            self._report(path, f"enum value removed: {shown}")

    def _compare_branch(
        self,
        old_ref: str,
        old: Mapping[str, Any],
        new_ref: str,
        new: Mapping[str, Any],
        path: str,
    ) -> None:
        key = (old_ref, new_ref)
        if old_ref and new_ref and key in self._in_progress:
            return  # a recursive definition already being compared further up
        self._in_progress.add(key)
        try:
            self._constraints(old, new, path)
            if "object" in _types(old) and "object" in _types(new):
                self._compare_object(old, new, path)
            if "array" in _types(old) and "array" in _types(new):
                self._compare_array(old, new, path)
        finally:
            self._in_progress.discard(key)

    def _compare_object(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_props: Mapping[str, Any] = old.get("properties", {})
        new_props: Mapping[str, Any] = new.get("properties", {})
        old_required = set(old.get("required", ()))
        for name in old_props:
            if name not in new_props:
                self._report(_join(path, name), "field removed")
        for name in new.get("required", ()):
            if name in old_required:
                continue
            what = "field became required" if name in old_props else "required field added"
            self._report(_join(path, name), what)
        for name, old_prop in old_props.items():
            if name in new_props:
                self.compare(old_prop, new_props[name], _join(path, name))
        self._compare_additional(old, new, path)

    def _compare_additional(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str
    ) -> None:
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        if old_extra is not False and new_extra is False:
            self._report(path, "unknown fields now refused")
        elif isinstance(old_extra, Mapping) and isinstance(new_extra, Mapping):
            self.compare(old_extra, new_extra, f"{path}{{}}")
        elif old_extra is True and isinstance(new_extra, Mapping):
            self._report(f"{path}{{}}", "type narrowed: extra members now constrained")

    def _compare_array(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_prefix = old.get("prefixItems", [])
        new_prefix = new.get("prefixItems", [])
        for index, (old_item, new_item) in enumerate(zip(old_prefix, new_prefix, strict=False)):
            self.compare(old_item, new_item, f"{path}[{index}]")
        if len(new_prefix) > len(old_prefix) and old_prefix:
            self._report(path, "required array position added")
        old_items = old.get("items", {})
        new_items = new.get("items", {})
        if isinstance(old_items, Mapping) and isinstance(new_items, Mapping):
            self.compare(old_items, new_items, f"{path}[]")
        elif old_items is not False and new_items is False:
            self._report(path, "array items past the fixed positions now refused")

    def _constraints(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        for word in _LOWER_BOUNDS:
            if word in new and (word not in old or new[word] > old[word]):
                self._report(path, f"constraint tightened: {word} {old.get(word)} -> {new[word]}")
        for word in _UPPER_BOUNDS:
            if word in new and (word not in old or new[word] < old[word]):
                self._report(path, f"constraint tightened: {word} {old.get(word)} -> {new[word]}")
        for word in ("pattern", "format"):
            if word in new and new[word] != old.get(word):
                self._report(path, f"type narrowed: {word} {old.get(word)!r} -> {new[word]!r}")
        step, old_step = new.get("multipleOf"), old.get("multipleOf")
        if step is not None and (old_step is None or step % old_step):
            self._report(path, f"constraint tightened: multipleOf {old_step} -> {step}")


def _branches(
    root: Mapping[str, Any], node: Mapping[str, Any] | bool, ref: str = ""
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The alternatives a schema accepts (anyOf/oneOf flattened), refs resolved and named."""
    if isinstance(node, bool):  # the boolean schemas: true accepts anything, false nothing
        yield ref, ({} if node else {"not": {}})
        return
    seen: set[str] = set()
    while "$ref" in node and node["$ref"] not in seen:
        seen.add(node["$ref"])
        target = _resolve(root, node["$ref"])
        if target is None:
            break
        ref, node = node["$ref"], target
    alternatives = node.get("anyOf") or node.get("oneOf")
    if alternatives:
        for alternative in alternatives:
            yield from _branches(root, alternative)
    else:
        yield ref, node


def _resolve(root: Mapping[str, Any], ref: str) -> Mapping[str, Any] | None:
    if not ref.startswith("#"):
        return None  # an external document: compared as written, not followed
    node: Any = root
    for token in filter(None, ref[1:].split("/")):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or token not in node:
            return None
        node = node[token]
    return node if isinstance(node, Mapping) else None


def _accepted(branches: list[tuple[str, Mapping[str, Any]]]) -> tuple[bool, set[str], list[Any]]:
    """(accepts anything, JSON types accepted freely, values accepted by enum or const)."""
    anything = False
    kinds: set[str] = set()
    values: list[Any] = []
    for _, branch in branches:
        if not branch:
            anything = True
        elif "enum" in branch:
            values.extend(branch["enum"])
        elif "const" in branch:
            values.append(branch["const"])
        elif "type" in branch:
            kinds |= _types(branch)
        elif "$ref" not in branch and "not" not in branch:
            anything = True  # no type keyword: any JSON value of any kind
    return anything, kinds, values


def _match(
    old_ref: str, old: Mapping[str, Any], new_branches: list[tuple[str, Mapping[str, Any]]]
) -> tuple[str, Mapping[str, Any]] | None:
    """The alternative of the new schema that continues `old` (same definition, else type)."""
    if old_ref:
        for new_ref, new in new_branches:
            if new_ref == old_ref:
                return new_ref, new
    kinds = _types(old)
    wanted = [kind for kind in _STRUCTURED if kind in kinds] or sorted(kinds - {"null"})
    if not wanted:
        return None
    candidates = [(ref, new) for ref, new in new_branches if wanted[0] in _types(new)]
    return candidates[0] if len(candidates) == 1 else None


def _types(branch: Mapping[str, Any]) -> set[str]:
    declared = branch.get("type")
    if declared is None:
        return set()
    return {declared} if isinstance(declared, str) else set(declared)


def _kind_ok(kind: str, kinds: set[str]) -> bool:
    return kind in kinds or (kind == "integer" and "number" in kinds)


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _contains(values: list[Any], value: Any) -> bool:
    # Compared with their JSON kind, so true does not match 1 as it would in Python.
    return any(_kind_of(v) == _kind_of(value) and v == value for v in values)


def _show(kinds: set[str]) -> str:
    return ", ".join(sorted(kinds)) or "only enumerated values"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
