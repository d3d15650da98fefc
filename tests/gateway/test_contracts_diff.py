"""`erp-gateway contracts diff v1 v2`: every change of the published contracts, each classified
breaking or compatible, as text and as JSON; a listing, so it exits 0."""

from __future__ import annotations

import json

import pytest

from gateway.cli import main


def test_diff_lists_the_invoice_changes_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "diff", "v1", "v2"]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert "BREAKING    Invoice: currency: field removed" in lines
    assert "BREAKING    Invoice: totals: required field added" in lines
    assert any(
        line.startswith("BREAKING    Invoice: lines[].amount: type narrowed") for line in lines
    )
    assert "compatible  Invoice: lines[].service_period: field added (optional)" in lines
    assert "compatible  InvoiceTotals: (root): contract added" in lines
    # Contracts v2 keeps unchanged are not listed.
    assert not [line for line in lines if ": Customer:" in line or " Customer:" in line]


def test_diff_as_json_counts_and_classifies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "diff", "v1", "v2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    changes = report["changes"]
    assert (report["old"], report["new"]) == ("v1", "v2")
    assert report["breaking"] == sum(c["breaking"] for c in changes) > 0
    assert report["compatible"] == len(changes) - report["breaking"] > 0
    assert {
        "contract": "InvoiceLine",
        "path": "unit_amount",
        "change": "field removed",
        "breaking": True,
    } in changes
    assert {c["contract"] for c in changes} == {
        "Invoice",
        "InvoiceLine",
        "InvoiceTotals",
        "LineTax",
        "ServicePeriod",
    }


def test_diff_of_a_version_with_itself_lists_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "diff", "v2", "v2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == []


def test_diff_of_an_unknown_version_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "diff", "v1", "v9"]) == 1
    assert "no contracts version 'v9'" in capsys.readouterr().err
