"""The layer order holds: import-linter's contracts (pyproject.toml) pass, and production
vendor code loads no part of the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _env() -> dict[str, str]:
    # This checkout first, whatever the virtualenv's editable install points at.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "module",
    [
        "system_apis.billing.stripe.client",
        "system_apis.crm.salesforce",
        "system_apis.support.zendesk",
        "system_apis.erp.netsuite",
        "process_apis.webhooks",
        "experience_apis",
    ],
)
def test_production_modules_load_no_sandbox(module: str) -> None:
    code = (
        f"import json, sys, {module}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'sandbox')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=True,
    )
    assert json.loads(result.stdout) == []
