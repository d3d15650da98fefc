"""The usage kind of reconciliation: per closed period, accepted = pushed = invoiced units;
every other case is one mismatch a finance user can read, and a period that ended within the
settle window without an invoice is pending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from process_apis.reconciliation.compare import Books, UsageBook, compare

NOW = datetime(2027, 1, 5, tzinfo=UTC)
START = datetime(2026, 12, 1, tzinfo=UTC)


def _period(
    subscription: str,
    accepted: int,
    pushed: int,
    invoiced: int | None,
    *,
    end: datetime = START + timedelta(days=31),
) -> UsageBook:
    return UsageBook(
        subscription_id=subscription,
        metric="api_calls",
        legal_entity="US01",
        period_start=START,
        period_end=end,
        accepted=accepted,
        pushed=pushed,
        invoiced=invoiced,
    )


def test_usage_must_be_pushed_and_invoiced_in_full() -> None:
    books = Books(
        usage=[
            _period("sub_ok", 100, 100, 100),
            _period("sub_unpushed", 100, 60, 60),
            _period("sub_overbilled", 100, 100, 200),
            _period("sub_unbilled", 100, 100, None),
            _period("sub_closing", 5, 5, None, end=NOW - timedelta(seconds=30)),
        ]
    )

    found = compare(books, ["usage"], now=NOW, settle_seconds=300)

    assert (found.checked["usage"], found.pending["usage"]) == (4, 1)
    assert {f.key.split(":")[0]: f.code for f in found.findings} == {
        "sub_unpushed": "usage_not_pushed",
        "sub_overbilled": "usage_invoiced_differs",
        "sub_unbilled": "usage_invoiced_differs",
    }
    reasons = {f.key.split(":")[0]: f.reason for f in found.findings}
    assert "100 units accepted, 60 pushed" in reasons["sub_unpushed"]
    assert "100 units pushed to billing, 200 invoiced" in reasons["sub_overbilled"]
    assert "none invoiced" in reasons["sub_unbilled"]
    assert all(f.kind == "usage" and f.legal_entity == "US01" for f in found.findings)
