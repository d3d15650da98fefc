"""The transaction types a SuiteQL query can match, which spares reading the others."""

from __future__ import annotations

import pytest

from sandbox.netsuite.suiteql import parse_suiteql


@pytest.mark.parametrize(("where", "types"), [
    ("type = 'CustInvc'", {"CustInvc"}),
    ("t.type = 'SalesOrd' AND entity = 1001", {"SalesOrd"}),
    ("entity = 1001 AND type = 'CustCred' AND status = 'A'", {"CustCred"}),
    ("type = 'CustInvc' OR entity = 1001", None),
    ("NOT type = 'CustInvc'", None),
    ("(type = 'CustInvc' OR type = 'CustCred') AND entity = 1001", None),
    ("type <> 'CustInvc'", None),
    ("type = status", None),
    ("entity = 1001", None),
])
def test_types_only_when_the_where_requires_them(where: str, types: set[str] | None) -> None:
    query = parse_suiteql(f"SELECT id FROM transaction t WHERE {where} ORDER BY id")
    assert query.types == (frozenset(types) if types is not None else None)


def test_the_filter_still_answers_every_row() -> None:
    query = parse_suiteql("SELECT id FROM transaction WHERE type = 'CustInvc' OR entity = 7")
    rows = [{"id": 1, "type": "SalesOrd", "entity": 7}, {"id": 2, "type": "CustInvc",
                                                          "entity": 8}]
    assert [row["id"] for row in query.run(rows, ("id", "type", "entity"))] == [1, 2]
