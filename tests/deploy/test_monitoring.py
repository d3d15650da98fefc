"""The shipped monitoring: Prometheus alert rules that promtool accepts and whose unit tests
fire as intended, and a Grafana dashboard whose every query and every alert names series the
gateway really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.apps import gateway_app, settings_for
from tests.support.services import REPO_ROOT, services_required

DEPLOY = REPO_ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "erp-gateway.json"
SERIES = re.compile(r"\berpgw_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def promtool() -> str:
    """promtool (Debian package prometheus); skips, or fails in CI, where it is missing."""
    found = shutil.which("promtool")
    if found is None:
        reason = "no promtool on PATH (Debian package prometheus)"
        if services_required():
            pytest.fail(f"{reason} (ERPGW_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    return found


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    checked = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    tested = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=RULE_TESTS.parent,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_alerts_cover_what_operations_asked_for() -> None:
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    by_name = {rule["alert"]: rule for rule in rules}

    assert "erpgw_exceptions_open" in by_name["ErpGatewayExceptionOlderThanAnHour"]["expr"]
    assert "erpgw_reconciliation_mismatches" in by_name["ErpGatewayReconciliationDrift"]["expr"]
    assert "erpgw_webhook_event_age_seconds" in by_name["ErpGatewayWebhookLag"]["expr"]
    assert by_name["ErpGatewayBreakerOpen"]["for"] == "5m"
    assert "erpgw_http_requests_total" in by_name["ErpGatewayHighErrorRate"]["expr"]


def test_the_dashboard_is_a_grafana_dashboard_of_exported_series(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    exported = _exported_families(tmp_path)
    dashboard_series = {
        name
        for panel in panels
        for target in panel["targets"]
        for name in SERIES.findall(target["expr"])
    }
    alert_series = set(SERIES.findall(RULES.read_text()))

    assert dashboard["uid"] == "erp-gateway"
    assert isinstance(dashboard["schemaVersion"], int)
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
    assert {
        "erpgw_flows_total",
        "erpgw_step_duration_seconds_bucket",
        "erpgw_exceptions_open",
        "erpgw_money_minor_total",
        "erpgw_reconciliation_mismatches",
        "erpgw_webhook_event_age_seconds_bucket",
        "erpgw_webhook_processing_seconds_bucket",
    } <= dashboard_series
    unknown = {name for name in dashboard_series | alert_series if _family(name) not in exported}
    assert not unknown, f"series the gateway does not export: {sorted(unknown)}"


def _exported_families(tmp_path: Path) -> set[str]:
    """The metric families a gateway with every platform wired registers."""
    app = gateway_app(settings_for(tmp_path, emulated=True))
    registry: Any = app.state.gateway.metrics.registry
    return {_family(metric.name) for metric in registry.collect()}


def _family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
