"""`contracts` is the bottom layer: it imports nothing from the packages above it."""

from __future__ import annotations

import ast
from pathlib import Path

import contracts

FORBIDDEN = ("system_apis", "process_apis", "experience_apis", "gateway")


def test_contracts_imports_no_other_layer():
    offenders = []
    for path in Path(contracts.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            offenders += [f"{path.name}: {m}" for m in modules if m.split(".")[0] in FORBIDDEN]
    assert offenders == []
