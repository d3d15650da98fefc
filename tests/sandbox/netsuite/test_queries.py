"""The emulator's `q` filters and SuiteQL subset, evaluated on plain rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from sandbox.netsuite.errors import WireError
from sandbox.netsuite.query import parse_filter
from sandbox.netsuite.suiteql import parse_suiteql

ROWS: list[dict[str, Any]] = [
    {"id": "1", "companyname": "Acme Robotics", "email": "ada@acme.test",
     "subsidiary": {"id": "1"}, "balance": Decimal("10.50"), "datecreated": "2026-01-05",
     "isinactive": False, "memo": None},
    {"id": "2", "companyname": "Globex", "email": "", "subsidiary": {"id": "2"},
     "balance": Decimal("0"), "datecreated": "2026-03-01T10:00:00Z", "isinactive": True,
     "memo": "x"},
    {"id": "3", "companyname": 'Say "hi" Ltd', "email": None, "subsidiary": {"id": "1"},
     "balance": Decimal("99"), "datecreated": "2025-12-31", "isinactive": False, "memo": None},
]


def _ids(q: str) -> list[str]:
    condition = parse_filter(q)
    return [row["id"] for row in ROWS if condition(row)]


@pytest.mark.parametrize(("q", "expected"), [
    ('companyName IS "globex"', ["2"]),
    ("companyName START_WITH acme", ["1"]),
    ('companyName CONTAIN "\\"hi\\""', ["3"]),
    ("subsidiary ANY_OF [1, 3]", ["1", "3"]),
    ("subsidiary ANY_OF_NOT [1]", ["2"]),
    ("email EMPTY", ["2", "3"]),
    ("email EMPTY_NOT", ["1"]),
    ('dateCreated ON_OR_AFTER "1/1/2026"', ["1", "2"]),
    ('dateCreated BEFORE "2026-01-01"', ["3"]),
    ("balance GREATER 10 AND balance LESS_OR_EQUAL 99", ["1", "3"]),
    ("balance BETWEEN [0, 11]", ["1", "2"]),
    ("isInactive IS true", ["2"]),
    ('(subsidiary ANY_OF [2] OR balance EQUAL 99) AND isInactive IS false', ["3"]),
    ('companyName IS "Acme Robotics" OR companyName IS Globex', ["1", "2"]),
])
def test_filters_select_the_documented_rows(q: str, expected: list[str]) -> None:
    assert _ids(q) == expected


@pytest.mark.parametrize("q", ["companyName", "companyName LIKES x", "id ANY_OF [1",
                               "(id ANY_OF [1]", "balance GREATER abc", "id BETWEEN [1]"])
def test_malformed_filters_are_refused(q: str) -> None:
    with pytest.raises(WireError) as caught:
        _ids(q)
    assert caught.value.status == 400 and caught.value.query_param == "q"


SQL_ROWS: list[dict[str, Any]] = [
    {"id": "5001", "tranid": "INV1001", "type": "CustInvc", "status": "A",
     "foreigntotal": Decimal("100.00"), "trandate": dt.date(2026, 1, 5), "memo": None},
    {"id": "5002", "tranid": "SO1001", "type": "SalesOrd", "status": "B",
     "foreigntotal": Decimal("20.00"), "trandate": dt.date(2026, 2, 1), "memo": "m"},
    {"id": "5003", "tranid": "INV1002", "type": "CustInvc", "status": "B",
     "foreigntotal": Decimal("5.50"), "trandate": dt.date(2026, 3, 1), "memo": None},
]
COLUMNS = ("id", "tranid", "type", "status", "foreigntotal", "trandate", "memo")


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT id FROM transaction WHERE type = 'CustInvc' ORDER BY id", ["5001", "5003"]),
    ("select t.id from transaction t where t.status <> 'A' order by t.id desc",
     ["5003", "5002"]),
    ("SELECT id FROM transaction WHERE foreigntotal > 10 ORDER BY foreigntotal",
     ["5002", "5001"]),
    ("SELECT id FROM transaction WHERE tranid LIKE 'INV%' AND status IN ('A', 'B')",
     ["5001", "5003"]),
    ("SELECT id FROM transaction WHERE memo IS NULL OR NOT (type = 'CustInvc')",
     ["5001", "5002", "5003"]),
    ("SELECT id FROM transaction WHERE memo IS NOT NULL", ["5002"]),
    ("SELECT id FROM transaction WHERE memo = 'x'", []),
])
def test_suiteql_subset(sql: str, expected: list[str]) -> None:
    query = parse_suiteql(sql)
    assert [row["id"] for row in query.run(SQL_ROWS, COLUMNS)] == expected


def test_suiteql_projects_aliases_and_star() -> None:
    aliased = parse_suiteql("SELECT tranid AS number FROM transaction WHERE id = 5002")
    assert aliased.run(SQL_ROWS, COLUMNS) == [{"number": "SO1001"}]
    star = parse_suiteql("SELECT * FROM transaction WHERE id = '5001'").run(SQL_ROWS, COLUMNS)
    assert set(star[0]) == set(COLUMNS)


@pytest.mark.parametrize("sql", ["SELECT FROM transaction", "SELECT id transaction",
                                 "SELECT nope FROM transaction", "SELECT id FROM t WHERE",
                                 "SELECT id FROM t WHERE id IN 1"])
def test_bad_suiteql_is_refused(sql: str) -> None:
    with pytest.raises(WireError) as caught:
        parse_suiteql(sql).run(SQL_ROWS, COLUMNS)
    assert caught.value.status == 400
