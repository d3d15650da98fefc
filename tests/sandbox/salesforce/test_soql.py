"""The SOQL parser and matcher, and the errors the emulator answers for bad queries."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest

from sandbox.salesforce.soql import (
    And,
    Comparison,
    FieldPath,
    Not,
    Or,
    SoqlSyntaxError,
    like_pattern,
    matches,
    parse,
)
from tests.system_apis.crm.salesforce.conftest import token_for


def test_parses_fields_relationships_conditions_order_and_limit() -> None:
    query = parse(
        "select Id, Name, Account.Name from Opportunity "
        "where IsWon = TRUE and SystemModstamp > 2026-11-01T00:00:00Z "
        "and (Amount >= 10.5 or Name like 'Acme%') and StageName not in ('A', 'B') "
        "order by SystemModstamp desc nulls last, Id limit 5 offset 2"
    )
    assert [f.parts for f in query.fields] == [("Id",), ("Name",), ("Account", "Name")]
    assert query.sobject == "Opportunity"
    assert query.limit == 5 and query.offset == 2
    assert [(o.field.text, o.descending, o.nulls_last) for o in query.order_by] == [
        ("SystemModstamp", True, True), ("Id", False, False),
    ]
    assert isinstance(query.where, And)
    won, stamp, either, stage = query.where.operands
    assert isinstance(won, Comparison) and won.values[0].value is True
    assert isinstance(stamp, Comparison)
    assert stamp.values[0].value == datetime(2026, 11, 1, tzinfo=UTC)
    assert isinstance(either, Or)
    assert isinstance(stage, Comparison) and stage.op == "NOT IN"


def test_literals_dates_numbers_null_and_escapes() -> None:
    query = parse(
        "SELECT Id FROM Opportunity WHERE CloseDate = 2026-11-01 AND Amount < -3 "
        "AND Name = 'O\\'Brien \\\\ Co' AND AccountId = null "
        "AND LastModifiedDate >= 2026-11-01T10:00:00.000+0100"
    )
    assert isinstance(query.where, And)
    values = [c.values[0] for c in query.where.operands if isinstance(c, Comparison)]
    assert values[0].value == date(2026, 11, 1)
    assert values[1].value == Decimal(-3)
    assert values[2].value == "O'Brien \\ Co"
    assert values[3].kind == "null"
    assert values[4].value == datetime(2026, 11, 1, 9, tzinfo=UTC)


def test_not_and_parentheses_nest() -> None:
    query = parse("SELECT Id FROM Account WHERE NOT (Name = 'a' OR Name = 'b')")
    assert isinstance(query.where, Not) and isinstance(query.where.operand, Or)


@pytest.mark.parametrize(
    "text",
    [
        "SELECT FROM Account",
        "SELECT Id FROM",
        "SELECT Id, FROM Account",
        "SELECT Id FROM Account WHERE",
        "SELECT Id FROM Account WHERE Name = 'open",
        "SELECT Id FROM Account WHERE Name 'x'",
        "SELECT Id FROM Account LIMIT many",
        "SELECT Id FROM Account ORDER Name",
        "SELECT Id FROM Account WHERE (Name = 'x'",
        "SELECT Id FROM Account WHERE Name LIKE 5",
        "SELECT Id FROM Account extra",
        "UPDATE Account SET Name = 'x'",
        "SELECT Id FROM Account WHERE Name = 'x' #",
    ],
)
def test_malformed_queries_are_syntax_errors(text: str) -> None:
    with pytest.raises(SoqlSyntaxError) as caught:
        parse(text)
    assert "ERROR at Row:1:Column:" in str(caught.value)
    assert caught.value.column >= 1


def test_matching_is_case_insensitive_for_text_and_like() -> None:
    query = parse("SELECT Id FROM Account WHERE Name = 'ACME' AND Name LIKE 'ac_e%'")
    assert query.where is not None
    assert matches(query.where, lambda path: "acme")
    assert not matches(query.where, lambda path: "acne robotics")


def test_like_escapes_wildcards() -> None:
    assert like_pattern("100\\%").fullmatch("100%")
    assert not like_pattern("100\\%").fullmatch("1000")
    assert like_pattern("a\\_b").fullmatch("a_b")
    assert not like_pattern("a\\_b").fullmatch("axb")


def test_null_comparisons() -> None:
    query = parse("SELECT Id FROM Account WHERE Phone != null")
    assert query.where is not None
    assert matches(query.where, lambda path: "123")
    assert not matches(query.where, lambda path: None)
    ordered = parse("SELECT Id FROM Account WHERE Amount > 5")
    assert ordered.where is not None and not matches(ordered.where, lambda path: None)


def _field(path: str) -> FieldPath:
    return FieldPath(tuple(path.split(".")))


async def _query(http: httpx.AsyncClient, soql: str) -> httpx.Response:
    token = await token_for(http)
    return await http.get(
        "/services/data/v62.0/query", params={"q": soql},
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM", "MALFORMED_QUERY"),
        ("SELECT Id Name FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id, Nmae FROM Account", "INVALID_FIELD"),
        ("SELECT Id, Foo.Name FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Id FROM Accout", "INVALID_TYPE"),
        ("SELECT Id FROM Opportunity WHERE Amount = '5'", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE SystemModstamp > 2026-11-01", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE IsWon = 'true'", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE Id = 'nope'", "INVALID_QUERY_FILTER_OPERATOR"),
    ],
)
async def test_emulator_answers_bad_queries_in_salesforce_shape(
    http: httpx.AsyncClient, soql: str, code: str
) -> None:
    response = await _query(http, soql)
    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == code
    assert "message" in error


async def test_emulator_runs_relationship_fields_and_filters(http: httpx.AsyncClient) -> None:
    response = await _query(
        http,
        "SELECT Name, Amount, Account.Name, Account.Legal_Entity__c FROM Opportunity "
        "WHERE IsWon = true AND Account.Legal_Entity__c = 'DE01' ORDER BY Amount DESC",
    )
    assert response.status_code == 200
    records = response.json()["records"]
    names = [r["Name"] for r in records]
    assert names[:1] == ["Globex - Enterprise annual"]
    assert all(r["Account"]["Legal_Entity__c"] == "DE01" for r in records)
    assert records[0]["Account"]["attributes"]["type"] == "Account"
    assert "Id" not in records[0]


async def test_emulator_limit_offset_and_15_char_ids(http: httpx.AsyncClient) -> None:
    first = await _query(http, "SELECT Id FROM Account ORDER BY Name LIMIT 1")
    account_id = first.json()["records"][0]["Id"]
    again = await _query(http, f"SELECT Name FROM Account WHERE Id = '{account_id[:15]}'")
    assert again.json()["records"][0]["Name"] == "Acme Robotics Inc."
    rest = await _query(http, "SELECT Id FROM Account ORDER BY Name LIMIT 10 OFFSET 1")
    assert rest.json()["totalSize"] == 3
