"""Published v1 schemas may only change compatibly: checked against stored snapshots.

After an intended compatible change, refresh with
`python -m contracts.schema --write-snapshots tests/contracts/snapshots`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from contracts.compat import check_snapshots
from contracts.schema import write_snapshots

SNAPSHOTS = Path(__file__).parent / "snapshots"
REFRESH = "python -m contracts.schema --write-snapshots tests/contracts/snapshots"


def test_snapshots_exist_for_v1():
    assert sorted(SNAPSHOTS.joinpath("v1").glob("*.json")), f"no snapshots; run: {REFRESH}"


def test_published_schemas_changed_only_compatibly():
    report = check_snapshots(SNAPSHOTS)
    if report.changed or report.missing:
        warnings.warn(
            f"contract schemas changed compatibly ({', '.join(report.changed + report.missing)});"
            f" refresh the snapshots: {REFRESH}",
            stacklevel=1,
        )
    lines = [f"{name}: {change}" for name, changes in report.breaking.items() for change in changes]
    assert not lines, (
        "published contracts changed incompatibly; add the change as a new major version "
        "instead:\n" + "\n".join(lines)
    )


def test_check_tells_breaking_from_compatible_and_missing(tmp_path):
    write_snapshots(tmp_path)
    stored = tmp_path / "v1"
    customer = json.loads((stored / "Customer.json").read_text())
    del customer["properties"]["website"]  # the current schema adds it: compatible
    (stored / "Customer.json").write_text(json.dumps(customer))
    invoice = json.loads((stored / "Invoice.json").read_text())
    invoice["properties"]["po_number"] = {"type": "string"}  # the current one lacks it
    (stored / "Invoice.json").write_text(json.dumps(invoice))
    (stored / "Problem.json").unlink()

    report = check_snapshots(tmp_path)
    assert report.breaking == {"v1/Invoice": ["po_number: field removed"]}
    assert report.changed == ["v1/Customer"]
    assert report.missing == ["v1/Problem"]
