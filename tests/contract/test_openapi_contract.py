"""The whole OpenAPI document held to itself by the partner kit (`erp-gateway contract-test`):
the schemathesis run with every check that partners run in their CI, from a directory outside
the repository, against a served sandbox gateway. With a client holding every scope, every
operation must also answer at least one 2xx, so a run that only ever met 401/403/404 fails.
(The read-only client's run is in test_openapi_contract_read_only.py: a file of its own, so
that the suite's workers run the two at once.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.partner_kit import failures, run_kit, served_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with served_gateway(tmp_path_factory.mktemp("contract")) as served:
        yield served


STATEFUL = {
    # A 2xx here needs a credential or business state that the kit does not create (it
    # touches no record it did not seed): each is covered end to end by its own suite.
    "POST /oauth/token": "a client secret (tests/gateway/test_oauth.py)",
    "GET /system/crm/v1/opportunities/{opportunity_id}": "an opportunity id (crm tests)",
    "PATCH /system/crm/v1/accounts/{account_id}": "an account of the kit's own (crm tests)",
    "GET /system/billing/v1/invoices/{invoice_id}": "a finalized invoice (billing tests)",
    "GET /system/support/v1/entitlements/{organization_id}": "entitlement org ids (support)",
    "GET /system/erp/v1/invoices/{invoice_id}": "a posted ERP invoice (invoice posting)",
    "GET /system/erp/v1/approvals/{task_id}": "an approval task (escalation credit)",
    "GET /process/v1/exceptions/{exception_id}": "a failed flow (exception queue)",
    "GET /process/v1/usage/{subscription_id}": "a metered subscription (usage tests)",
    "POST /process/v1/exceptions/{exception_id}/retry": "a failed flow (exception queue)",
    "POST /process/v1/exceptions/{exception_id}/assign": "a failed flow (exception queue)",
    "POST /process/v1/exceptions/{exception_id}/resolve": "a failed flow (exception queue)",
    "POST /process/v1/customers/{crm_account_id}/sync": "an account of the kit's own",
    "GET /experience/portal/v1/subscription": "a portal-bound token (portal tests)",
    "GET /experience/portal/v1/invoices": "a portal-bound token (portal tests)",
    "GET /experience/portal/v1/invoices/{invoice_id}": "a portal-bound token (portal tests)",
    "POST /process/v1/escalations": "an urgent ticket in breach (escalation tests)",
    "GET /process/v1/service-credits/{credit_id}": "an escalation (escalation tests)",
    "POST /process/v1/service-credits/{credit_id}/approve": "an escalation (escalation tests)",
    "POST /process/v1/service-credits/{credit_id}/reject": "an escalation (escalation tests)",
    "POST /process/v1/subscription-amendments": "a live subscription item (amendment tests)",
    "POST /process/v1/renewals/{opportunity_id}/book": (
        "a closed renewal opportunity (tests/process_apis/renewals/test_renewals.py)"
    ),
    "POST /process/v1/reconciliations/{run_id}/mismatches/{mismatch_id}/repair": (
        "drift in the books (tests/process_apis/reconciliation/test_drift.py)"
    ),
}


def test_the_partner_kit_passes_with_every_scope(
    gateway: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("partner")
    done, seen, report = run_kit(gateway, "everything", outside, max_examples=8, read_only=False)

    assert failures(report) == []
    assert done.exit_code == 0, done.output[-4000:]
    assert (done.mode, done.read_only) == ("sandbox", False)
    assert len(done.seeded) == 2, done.seeded  # its own booked deal and reconciliation run
    assert not any(s >= 500 for statuses in seen.values() for s in statuses), seen
    # The kit's seeding booked the demo deal (202): generated deals are unknown (404) or
    # not won (422).
    assert done.seeded[0].startswith("q2c:")
    seen["POST /process/v1/quote-to-cash"].add(202)
    document = httpx.get(f"{gateway['base_url']}/docs/openapi.json").json()
    documented = [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    never = {
        op: sorted(seen.get(op, ()))
        for op in documented
        if op not in STATEFUL and not any(200 <= s < 300 for s in seen.get(op, ()))
    }
    assert never == {}, f"operations that never answered 2xx (statuses seen): {never}"
    # Lists were paged with cursors they handed out, and lookups found real records.
    assert any(200 <= s < 300 for s in seen["GET /system/erp/v1/customers/{customer_id}"])
