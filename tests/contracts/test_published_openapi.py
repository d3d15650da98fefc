"""The compatibility gate over the whole published API: the OpenAPI document this code serves
breaks none of the committed per-major snapshots, and a breaking change is caught and named by
snapshot file and JSON pointer (a removed response field, a lost route, a parameter made
required, a lost enum value, a documented status gone); additions pass."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from contracts.openapi_compat import ApiBreak, breaking_api_changes
from gateway.cli import main
from gateway.published import SNAPSHOTS, check_published, published_document, split_by_major

BILLING = "openapi.system.billing.v1.json"
INVOICE_200 = (
    "/paths/~1system~1billing~1v1~1invoices~1{invoice_id}/get/responses/200"
    "/content/application~1json/schema"
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return published_document()


def test_the_published_api_breaks_no_committed_snapshot(document: dict[str, Any]) -> None:
    assert sorted(SNAPSHOTS.glob("openapi.*.json")), "run: erp-gateway contracts check --update"
    report = check_published(SNAPSHOTS, document)
    named = {
        name: [f"{b.pointer}: {b.change}" for b in found] for name, found in report.breaking.items()
    }
    assert named == {}, (
        "the published API changed incompatibly; publish the change as a new major instead "
        "(an intended addition: erp-gateway contracts check --update)"
    )


# The component names the v1 billing API published before v2 existed: a partner's generated
# client names its types after them, so v2's classes must not rename them.
V1_BILLING_COMPONENTS = {
    "Address",
    "CreditNote",
    "CreditNoteLine",
    "Customer",
    "Invoice",
    "InvoiceLine",
    "Page_contracts.v1.billing.CreditNote_",
    "Page_contracts.v1.billing.Invoice_",
    "Page_contracts.v1.billing.Subscription_",
    "Page_contracts.v1.catalog.Price_",
    "Page_contracts.v1.catalog.Product_",
    "Page_contracts.v1.party.Customer_",
    "Price",
    "PriceTier",
    "Product",
    "Subscription",
    "SubscriptionItem",
}


def test_v1_billing_keeps_its_component_names_beside_v2(document: dict[str, Any]) -> None:
    parts = split_by_major(document)
    v1 = set(parts[BILLING]["components"]["schemas"])
    v2 = set(parts["openapi.system.billing.v2.json"]["components"]["schemas"])

    assert v1 - {"Problem", "ProblemFieldError"} == V1_BILLING_COMPONENTS
    # v2's invoices have names of their own, and nothing is named after its module.
    assert {"InvoiceV2", "InvoiceLineV2", "Page_contracts.v2.billing.InvoiceV2_"} <= v2
    assert [name for name in v1 | v2 if name.startswith(("v1_", "v2_"))] == []
    # The served document references v1's invoice by its own name.
    invoice = document["paths"]["/system/billing/v1/invoices/{invoice_id}"]["get"]
    schema = invoice["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Invoice"}


def test_a_removed_response_field_is_caught_and_named(
    document: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The snapshot says invoices had a field this code no longer serves.
    shutil.copytree(SNAPSHOTS, tmp_path, dirs_exist_ok=True)
    snapshot = json.loads((tmp_path / BILLING).read_text())
    invoice = snapshot["components"]["schemas"]["Invoice"]
    invoice["properties"]["legacy_total"] = {"type": "integer"}
    (tmp_path / BILLING).write_text(json.dumps(snapshot))

    report = check_published(tmp_path, document)

    assert list(report.breaking) == [BILLING]
    assert (
        ApiBreak(pointer=f"{INVOICE_200}/properties/legacy_total", change="field removed")
        in report.breaking[BILLING]
    )
    # The CLI fails, naming it.
    assert main(["contracts", "check", "--snapshots", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"BREAKING {BILLING}#{INVOICE_200}/properties/legacy_total: field removed" in out


def _edited(document: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> list[str]:
    new = copy.deepcopy(document)
    edit(new)
    old_parts, new_parts = split_by_major(document), split_by_major(new)
    return [
        f"{name}#{b.pointer}: {b.change}"
        for name, old in old_parts.items()
        for b in breaking_api_changes(old, new_parts.get(name, {"paths": {}}))
    ]


def test_each_kind_of_breaking_change_is_named(document: dict[str, Any]) -> None:
    listing = "/system/billing/v1/invoices"
    at = "/paths/~1system~1billing~1v1~1invoices/get"

    def lose_route(doc: dict[str, Any]) -> None:
        del doc["paths"]["/system/billing/v1/credit-notes"]

    def require_customer(doc: dict[str, Any]) -> None:
        for parameter in doc["paths"][listing]["get"]["parameters"]:
            if parameter["name"] == "customer":
                parameter["required"] = True

    def lose_status(doc: dict[str, Any]) -> None:
        del doc["paths"][listing]["get"]["responses"]["403"]

    def lose_enum_value(doc: dict[str, Any]) -> None:
        for parameter in doc["paths"][listing]["get"]["parameters"]:
            if parameter["name"] == "status":
                branches = parameter["schema"].get("oneOf") or [parameter["schema"]]
                for branch in branches:
                    if "enum" in branch:
                        branch["enum"] = [v for v in branch["enum"] if v != "void"]

    def retype_total(doc: dict[str, Any]) -> None:
        doc["components"]["schemas"]["Invoice"]["properties"]["total"] = {"type": "string"}

    assert _edited(document, lose_route) == [
        f"{BILLING}#/paths/~1system~1billing~1v1~1credit-notes/get: route removed"
    ]
    assert _edited(document, require_customer) == [
        f"{BILLING}#{at}/parameters/query:customer: query parameter customer became required"
    ]
    assert _edited(document, lose_status) == [f"{BILLING}#{at}/responses/403: status 403 removed"]
    assert _edited(document, lose_enum_value) == [
        f'{BILLING}#{at}/parameters/query:status/schema: status: enum value removed: "void"'
    ]
    retyped = _edited(document, retype_total)
    assert f"{BILLING}#{INVOICE_200}/properties/total: type narrowed" in "\n".join(
        line.split(" (was")[0] for line in retyped
    ), retyped


def test_additions_pass(document: dict[str, Any]) -> None:
    def add(doc: dict[str, Any]) -> None:
        doc["paths"]["/system/billing/v1/usage"] = copy.deepcopy(
            doc["paths"]["/system/billing/v1/products"]
        )
        listing = doc["paths"]["/system/billing/v1/invoices"]["get"]
        listing["parameters"].append(
            {"name": "currency", "in": "query", "required": False, "schema": {"type": "string"}}
        )
        listing["responses"]["418"] = {"description": "teapot"}
        invoice = doc["components"]["schemas"]["Invoice"]
        invoice["properties"]["memo"] = {"type": "string"}
        invoice["required"] = [*invoice.get("required", []), "memo"]

    assert _edited(document, add) == []
