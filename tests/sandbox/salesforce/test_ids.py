"""18-character ids: the case-safety checksum against ids Salesforce itself minted."""

from __future__ import annotations

import pytest

from sandbox.salesforce.ids import (
    checksum,
    counter_id,
    is_record_id,
    normalize_id,
    seeded_id,
)

# Real ids: the documented example, and ids from recorded Salesforce responses.
REAL_IDS = [
    "001A0000006Vm9rIAC",
    "003ak00000luKU1AAM",
    "001ak00000OQTieAAH",
    "006ak00000OQ4RxAAL",
    "0015f00002J9YYEAA3",
    "005ak000005hvjJAAQ",
    "750ak000009BkrxAAC",
    "00Qak00000696HFEAY",
]


@pytest.mark.parametrize("real", REAL_IDS)
def test_checksum_matches_real_salesforce_ids(real: str) -> None:
    assert checksum(real[:15]) == real[15:]
    assert normalize_id(real[:15]) == real
    assert is_record_id(real)


def test_documented_example() -> None:
    assert normalize_id("001A0000006Vm9r") == "001A0000006Vm9rIAC"


def test_wrong_suffix_and_bad_shapes_are_refused() -> None:
    assert not is_record_id("001A0000006Vm9rAAA")
    assert not is_record_id("001A0000006Vm9")
    assert not is_record_id("001A0000006Vm9r-AC")
    with pytest.raises(ValueError):
        normalize_id("not-an-id")


def test_suffix_is_case_insensitive_on_input() -> None:
    assert is_record_id("001A0000006Vm9riac")
    assert normalize_id("001A0000006Vm9riac") == "001A0000006Vm9rIAC"


def test_generated_ids_carry_prefix_and_valid_checksum() -> None:
    for sobject, prefix in (("Account", "001"), ("OpportunityLineItem", "00k"),
                            ("Contract", "800"), ("PricebookEntry", "01u")):
        for record_id in (seeded_id(sobject, "demo"), counter_id(sobject, 7)):
            assert record_id.startswith(prefix)
            assert len(record_id) == 18
            assert is_record_id(record_id)
    assert seeded_id("Account", "acme") == seeded_id("Account", "acme")
    assert seeded_id("Account", "acme") != seeded_id("Account", "globex")
